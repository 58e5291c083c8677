-- Mailroom SQLite schema, version 2: small messages live in the database.
--
-- A message up to 256 KiB is stored here, in the transaction that adds its
-- rows to `messages`, instead of in a file of its own: one group commit then
-- makes a whole batch of deliveries durable, with no file to create, fsync
-- and enter into a directory per message. Larger messages stay in blob
-- files. A `messages.blob_id` names a row here or else a file; the row goes
-- in the same transaction that removes the last message referencing it.
CREATE TABLE blob_inline (
    blob_id TEXT PRIMARY KEY,
    data    BLOB NOT NULL
);
