-- Mailroom SQLite schema, version 7: the outbound queue.
--
-- A message for other domains is kept here until every remote recipient is
-- delivered or has failed for good. The message's bytes are a blob like a
-- mailbox message's (`blob_inline` or a file), shared with any local copies
-- of the same delivery; a blob lives while a message row or a queue row
-- references it. The schedule is in the rows, so a restart loses nothing
-- and repeats nothing.
CREATE TABLE queue (
    id         INTEGER PRIMARY KEY,
    -- The id given in "250 2.0.0 Ok: queued as <id>", the logs and the CLI.
    queue_id   TEXT NOT NULL UNIQUE,
    blob_id    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    -- The envelope sender; '' for the null reverse path (a DSN).
    sender     TEXT NOT NULL,
    -- Unix seconds; expiry counts from here.
    created    INTEGER NOT NULL
);

CREATE INDEX queue_blob ON queue (blob_id);

-- One row per remote recipient. `state`: 0 pending, 1 delivered, 2 failed.
-- Final rows stay until the message's last recipient is final, when the
-- whole entry goes.
CREATE TABLE queue_recipients (
    id           INTEGER PRIMARY KEY,
    queue_row    INTEGER NOT NULL REFERENCES queue (id) ON DELETE CASCADE,
    -- The forward path as the client gave it.
    address      TEXT NOT NULL,
    -- Lower-cased, for grouping recipients by destination.
    domain       TEXT NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- Unix seconds. A claimed recipient's next attempt is already set to
    -- when its lease ends, before anyone dials, so a crash mid-attempt
    -- cannot cause a storm of retries.
    next_attempt INTEGER NOT NULL,
    last_attempt INTEGER,
    -- The last reply or error, for `mailroom queue show` and the DSN.
    last_reply   TEXT NOT NULL DEFAULT '',
    -- Whether a delay warning was sent.
    warned       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX queue_recipients_entry ON queue_recipients (queue_row);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt) WHERE state = 0;
