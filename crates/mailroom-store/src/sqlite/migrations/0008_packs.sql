-- Mailroom SQLite schema, version 8: small messages' bytes in pack files.
--
-- A message up to 256 KiB is appended to a pack file (`data_dir/packs/`)
-- and the pack fdatasync'd before the transaction that adds this row
-- commits. Its bytes then lie contiguous in one file: read with one call,
-- sent to a client straight from the page cache, and written once (not
-- into the WAL and again at checkpoint). Rows of `blob_inline` written
-- before version 8 stay where they are and are read as before. A row
-- goes in the same transaction that removes the last message referencing
-- it; its extent is punched out of the pack after that commit.
-- Small rows looked up by blob id: kept in that key's b-tree alone.
CREATE TABLE blob_packed (
    blob_id TEXT PRIMARY KEY,
    pack    INTEGER NOT NULL,
    start   INTEGER NOT NULL,
    len     INTEGER NOT NULL
) WITHOUT ROWID;
-- The extents of one pack, for the sweep at start-up.
CREATE INDEX blob_packed_extents ON blob_packed (pack, start);
