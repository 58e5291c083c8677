-- Mailroom SQLite schema, version 1.
--
-- Conventions: row ids are INTEGER PRIMARY KEY (the PostgreSQL port uses
-- BIGINT identity columns); times are Unix seconds; addresses are stored as
-- their lookup key (local part and domain lower-cased); UIDs, UIDVALIDITY and
-- mod-sequences are plain integers checked by the Rust side.

-- Store-wide counters. `last_uid_validity` is the UIDVALIDITY most recently
-- handed out, so a new mailbox always gets a larger one (RFC 9051 §2.3.1.1),
-- even when a mailbox is deleted and re-created within the same second.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('last_uid_validity', 0);

CREATE TABLE domains (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    -- Deleting a domain with accounts is refused (no cascade).
    domain_id     INTEGER NOT NULL REFERENCES domains (id),
    -- `Address::key()`: lower-cased, unique.
    address       TEXT NOT NULL UNIQUE,
    -- PHC-format argon2 hash.
    password_hash TEXT NOT NULL
);

CREATE INDEX accounts_domain ON accounts (domain_id);

CREATE TABLE aliases (
    id        INTEGER PRIMARY KEY,
    -- The source's domain, for listing and for refusing to delete a domain
    -- that still has aliases.
    domain_id INTEGER NOT NULL REFERENCES domains (id),
    -- `user@domain` (lower-cased) or `@domain` for the catch-all.
    source    TEXT NOT NULL,
    -- Aliases die with their target account.
    target_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    UNIQUE (source, target_id)
);

CREATE INDEX aliases_domain ON aliases (domain_id);
CREATE INDEX aliases_target ON aliases (target_id);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Full name, `/` as hierarchy delimiter; INBOX is always spelt `INBOX`.
    name           TEXT NOT NULL,
    uid_validity   INTEGER NOT NULL,
    -- The UID the next message gets; starts at 1, never goes down.
    uid_next       INTEGER NOT NULL DEFAULT 1,
    -- RFC 7162 HIGHESTMODSEQ. Starts at 1 so that even an empty mailbox
    -- reports a valid mod-sequence (RFC 7162 §7: mod-sequence-value >= 1);
    -- the first change gets 2.
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    -- RFC 6154 attribute such as '\Sent', or NULL.
    special_use    TEXT,
    subscribed     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid            INTEGER NOT NULL,
    -- Mod-sequence of the last change (arrival or flag change).
    modseq         INTEGER NOT NULL,
    -- `Flags::bits()`.
    flags          INTEGER NOT NULL DEFAULT 0,
    -- Keywords sorted, deduplicated, separated by one space.
    keywords       TEXT NOT NULL DEFAULT '',
    -- INTERNALDATE, Unix seconds.
    internal_date  INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    -- The raw bytes in the blob store; several rows may share one blob
    -- (one delivery to several recipients).
    blob_id        TEXT NOT NULL,
    -- Header cache for listings and simple searches.
    hdr_from       TEXT NOT NULL DEFAULT '',
    hdr_to         TEXT NOT NULL DEFAULT '',
    hdr_subject    TEXT NOT NULL DEFAULT '',
    hdr_message_id TEXT NOT NULL DEFAULT '',
    hdr_date       INTEGER,
    UNIQUE (mailbox_id, uid)
);

-- Expunge and account deletion ask whether a blob is still referenced.
CREATE INDEX messages_blob ON messages (blob_id);

-- Expunged UIDs with the mod-sequence of their expunge, for RFC 7162
-- QRESYNC's VANISHED (EARLIER). UIDs are never reused, so (mailbox, uid) is
-- a key.
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
