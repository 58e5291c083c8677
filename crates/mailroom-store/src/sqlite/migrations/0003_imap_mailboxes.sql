-- Mailroom SQLite schema, version 3: what the IMAP server needs of
-- mailboxes.
--
-- Subscriptions are names, not mailboxes (RFC 9051 §6.3.7): a name may be
-- subscribed whether or not a mailbox of that name exists, and deleting a
-- mailbox leaves its subscription alone (RFC 9051 §6.3.9: the server MUST
-- NOT remove a name from the list unilaterally). So they get their own
-- table, and the per-mailbox flag of version 1 goes.
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- As `mailboxes.name`: `/` as delimiter, INBOX spelt `INBOX`.
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;

ALTER TABLE mailboxes DROP COLUMN subscribed;

-- Mailbox ids are never reused: a session holding the id of a deleted
-- mailbox must not find another mailbox under it. SQLite's rowid would hand
-- the largest id out again once its row is gone, so new mailboxes take
-- their id from this counter instead.
INSERT INTO meta (key, value) VALUES ('last_mailbox_id', (SELECT COALESCE(MAX(id), 0) FROM mailboxes));

-- STATUS and SELECT count messages, unseen, deleted and octets of a
-- mailbox; CONDSTORE/QRESYNC ask for messages changed since a modseq. One
-- covering index answers both without touching the wide rows (header
-- cache): the counts scan only the mailbox's index entries, and
-- CHANGEDSINCE is a range scan.
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq, flags, size);

-- QRESYNC's VANISHED (EARLIER) asks for UIDs expunged since a modseq; the
-- table only grows, so the range must not scan a mailbox's whole history.
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
