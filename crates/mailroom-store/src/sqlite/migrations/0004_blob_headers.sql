-- Mailroom SQLite schema, version 4: header sections apart from messages.
--
-- ENVELOPE, header fetches and header searches over a whole mailbox need
-- only each message's header section (a few hundred octets to a few KiB),
-- not its body. Kept per blob, so copies share it; written with the
-- message's first rows and removed with its last, like `blob_inline`. A
-- blob without a row here (stored before version 4, or with a header
-- section over 64 KiB) is read whole instead.
CREATE TABLE blob_header (
    blob_id TEXT PRIMARY KEY,
    header  BLOB NOT NULL
);
