-- Mailroom SQLite schema, version 5: the keywords in use, from an index.
--
-- SELECT announces the keywords a mailbox uses (IMAP FLAGS). Most messages
-- have none, so a partial index of those that do answers it without
-- reading every row of a large mailbox.
CREATE INDEX messages_keywords ON messages (mailbox_id, keywords) WHERE keywords <> '';
