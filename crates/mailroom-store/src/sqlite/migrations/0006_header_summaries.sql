-- Mailroom SQLite schema, version 6: a summary beside each header section.
--
-- A client's first look at a large mailbox asks for every message's
-- ENVELOPE; parsing ten thousand header sections for it costs more than
-- reading them. The summary is computed once, when the message is stored,
-- by a function the server gives the store (the store does not interpret
-- it), and read back instead of the header. NULL for messages stored
-- before version 6 or without that function: readers compute it then.
ALTER TABLE blob_header ADD COLUMN summary BLOB;
