//! Mailboxes: create, delete, rename, subscriptions, status.
//!
//! Implementation notes (RFC 9051 §6.3):
//! - UIDVALIDITY is `max(now, last + 1)` with `last` kept in `meta`, so it is
//!   unique across the whole store and increases even within one second: a
//!   mailbox deleted and re-created never repeats one (RFC 9051 §2.3.1.1).
//! - Mailbox ids come from a counter in `meta` too, never from SQLite's
//!   rowid, which would hand the largest id out again after its deletion: a
//!   session holding a deleted mailbox's id must never find another one.
//! - A deleted mailbox leaves its inferiors alone; IMAP LIST shows the gap as
//!   a `\NonExistent` parent with children.
//! - Names are checked and spelt canonically by [`crate::names`] before any
//!   SQL sees them; the inferiors of `a` are the names in `["a/", "a0")`,
//!   `0` being the character after `/`, which the `(account_id, name)`
//!   index answers as a range (names compare as bytes).

use mailroom_types::{AccountId, Flags, MailboxId, UidValidity};
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use super::transfer;
use super::writer::Effects;
use crate::names::{ancestors, canonical_inbox, canonical_mailbox_name, is_within};
use crate::{
    ChangeEvent, ChangeKind, MailboxRecord, MailboxStatus, RenameOutcome, RenamedMailbox, Result, SpecialUse,
    StoreError,
};

/// Hands out the next UIDVALIDITY: the clock's Unix time, or one more than
/// the last value handed out if the clock has not moved past it.
fn next_uid_validity(conn: &Connection, now: i64) -> Result<UidValidity> {
    let last: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'last_uid_validity'")
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    let next = now.max(last + 1).max(1);
    let value = u32::try_from(next).ok().and_then(UidValidity::new).ok_or_else(|| {
        StoreError::Conflict("UIDVALIDITY values are exhausted (past 2^32-1); the clock may be wrong".into())
    })?;
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_uid_validity'").db()?.execute([next]).db()?;
    Ok(value)
}

/// Inserts a mailbox (already a valid, canonical name) with a fresh id and
/// UIDVALIDITY, unsubscribed; AlreadyExists if the name is taken.
pub(crate) fn insert_mailbox(
    conn: &Connection,
    now: i64,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    let uid_validity = next_uid_validity(conn, now)?;
    let id: i64 = conn
        .prepare_cached("UPDATE meta SET value = value + 1 WHERE key = 'last_mailbox_id' RETURNING value")
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO mailboxes (id, account_id, name, uid_validity, special_use)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .db()?
        .execute((id, account.0, name, uid_validity.get(), convert::special_use_param(special_use)))
        .db()?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(format!("mailbox {name}")));
    }
    Ok(MailboxId(id))
}

/// Adds `name` to the account's subscriptions; false if it was there.
fn subscribe(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)")
        .db()?
        .execute((account.0, name))
        .db()?;
    Ok(n == 1)
}

/// Removes `name` from the account's subscriptions; false if it was not
/// there.
fn unsubscribe(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2")
        .db()?
        .execute((account.0, name))
        .db()?;
    Ok(n == 1)
}

/// Creates an account's INBOX and default mailboxes, all subscribed.
pub(crate) fn create_defaults(conn: &Connection, now: i64, account: AccountId) -> Result<()> {
    let names = std::iter::once(("INBOX", None))
        .chain(SpecialUse::DEFAULT_MAILBOXES.iter().map(|(name, role)| (*name, Some(*role))));
    for (name, role) in names {
        insert_mailbox(conn, now, account, name, role)?;
        subscribe(conn, account, name)?;
    }
    Ok(())
}

fn require_account(conn: &Connection, account: AccountId) -> Result<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if exists { Ok(()) } else { Err(StoreError::NotFound(format!("account {account}"))) }
}

fn exists(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = ?1 AND name = ?2)")
        .db()?
        .query_row((account.0, name), |r| r.get(0))
        .db()
}

/// Creates each missing ancestor of `name`, outermost first (RFC 9051
/// §6.3.4), returning their ids.
fn create_parents(conn: &Connection, now: i64, account: AccountId, name: &str) -> Result<Vec<MailboxId>> {
    let mut created = Vec::new();
    for parent in ancestors(name) {
        if !exists(conn, account, parent)? {
            created.push(insert_mailbox(conn, now, account, parent, None)?);
        }
    }
    Ok(created)
}

/// RFC 9051 §6.3.4 CREATE, with missing parents.
pub(crate) fn create(conn: &Connection, now: i64, account: AccountId, name: &str) -> Result<MailboxRecord> {
    let name = canonical_mailbox_name(name)?;
    require_account(conn, account)?;
    if exists(conn, account, &name)? {
        return Err(StoreError::AlreadyExists(format!("mailbox {name}")));
    }
    create_parents(conn, now, account, &name)?;
    let id = insert_mailbox(conn, now, account, &name, None)?;
    require(conn, id)
}

/// RFC 9051 §6.3.5 DELETE: the mailbox and its messages; inferiors and
/// subscriptions stay.
pub(crate) fn delete(conn: &Connection, effects: &mut Effects, account: AccountId, name: &str) -> Result<MailboxId> {
    let name = canonical_inbox(name);
    if name == "INBOX" {
        return Err(StoreError::Conflict("INBOX cannot be deleted".into()));
    }
    let mailbox = mailbox(conn, account, &name)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
    {
        let mut stmt = conn.prepare_cached("SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ?1").db()?;
        let mut rows = stmt.query([mailbox.id.0]).db()?;
        while let Some(row) = rows.next().db()? {
            let blob: String = row.get(0).db()?;
            effects.released_blobs.push(convert::blob_id(&blob)?);
        }
    }
    // Messages and expunge records go by ON DELETE CASCADE.
    conn.prepare_cached("DELETE FROM mailboxes WHERE id = ?1").db()?.execute([mailbox.id.0]).db()?;
    effects.events.push(ChangeEvent {
        account,
        mailbox: mailbox.id,
        modseq: mailbox.highest_modseq,
        kind: ChangeKind::Deleted,
    });
    Ok(mailbox.id)
}

/// RFC 9051 §6.3.6 RENAME, INBOX's special case included.
pub(crate) fn rename(
    conn: &Connection,
    effects: &mut Effects,
    now: i64,
    account: AccountId,
    old: &str,
    new: &str,
) -> Result<RenameOutcome> {
    let old = canonical_inbox(old);
    let new = canonical_mailbox_name(new)?;
    let source = mailbox(conn, account, &old)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {old}")))?;
    if exists(conn, account, &new)? {
        return Err(StoreError::AlreadyExists(format!("mailbox {new}")));
    }
    if old == "INBOX" {
        return rename_inbox(conn, effects, now, account, source, &new);
    }
    if is_within(&new, &old) {
        return Err(StoreError::Conflict(format!("cannot rename {old} to its own inferior {new}")));
    }

    // The mailbox and its inferiors, by name, with their new names.
    let mut moving: Vec<(MailboxId, String, String, bool)> = Vec::new();
    {
        let sql = format!(
            "SELECT {MAILBOX_COLUMNS} WHERE m.account_id = ?1
             AND (m.name = ?2 OR (m.name >= ?2 || '/' AND m.name < ?2 || '0')) ORDER BY m.name"
        );
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let mut rows = stmt.query((account.0, &old)).db()?;
        while let Some(row) = rows.next().db()? {
            let m = mailbox_row(row)?;
            let target = canonical_mailbox_name(&format!("{new}{}", &m.name[old.len()..]))?;
            moving.push((m.id, m.name, target, m.subscribed));
        }
    }
    // A target may be the old name of another moving mailbox (`a/b` to `a`
    // moves `a/b/b` to `a/b`), so collisions are checked against the others
    // only, and every row first takes a placeholder no real name can be
    // (control characters are refused), then its new name.
    let mut clash = conn.prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2").db()?;
    for (_, _, target, _) in &moving {
        let taken: Option<i64> = clash.query_row((account.0, target), |r| r.get(0)).optional().db()?;
        if taken.is_some_and(|id| !moving.iter().any(|(m, ..)| m.0 == id)) {
            return Err(StoreError::AlreadyExists(format!("mailbox {target}")));
        }
    }
    let mut set_name = conn.prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1").db()?;
    for (id, ..) in &moving {
        set_name.execute((id.0, format!("\u{1}renaming {}", id.0))).db()?;
    }
    for (id, _, target, _) in &moving {
        set_name.execute((id.0, target)).db()?;
    }
    // Subscriptions follow the mailboxes they named, so a renamed folder
    // stays visible to clients that list subscribed ones only.
    for (_, old_name, _, subscribed) in &moving {
        if *subscribed {
            unsubscribe(conn, account, old_name)?;
        }
    }
    for (_, _, target, subscribed) in &moving {
        if *subscribed {
            subscribe(conn, account, target)?;
        }
    }
    let created = create_parents(conn, now, account, &new)?;

    let mut renamed = Vec::with_capacity(moving.len());
    for (id, old_name, new_name, _) in moving {
        let m = require(conn, id)?;
        effects.events.push(ChangeEvent { account, mailbox: id, modseq: m.highest_modseq, kind: ChangeKind::Renamed });
        renamed.push((m, RenamedMailbox { id, old_name, new_name }));
    }
    // The first row is `old` itself: it sorts before its inferiors.
    let mut renamed = renamed.into_iter();
    let (mailbox, _) = renamed.next().ok_or_else(|| StoreError::Corrupt(format!("mailbox {old} vanished")))?;
    Ok(RenameOutcome {
        mailbox,
        inferiors: renamed.map(|(_, r)| r).collect(),
        created_parents: created.into_iter().map(|id| require(conn, id)).collect::<Result<_>>()?,
        moved: None,
    })
}

/// RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox
/// of the new name, leaving INBOX empty; its inferiors are not renamed.
fn rename_inbox(
    conn: &Connection,
    effects: &mut Effects,
    now: i64,
    account: AccountId,
    inbox: MailboxRecord,
    new: &str,
) -> Result<RenameOutcome> {
    let created = create_parents(conn, now, account, new)?;
    let target = insert_mailbox(conn, now, account, new, None)?;
    let moved = transfer::move_all(conn, effects, account, inbox.id, target)?;
    Ok(RenameOutcome {
        mailbox: require(conn, target)?,
        inferiors: Vec::new(),
        created_parents: created.into_iter().map(|id| require(conn, id)).collect::<Result<_>>()?,
        moved: Some(moved),
    })
}

pub(crate) fn add_subscription(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    let name = canonical_mailbox_name(name)?;
    require_account(conn, account)?;
    subscribe(conn, account, &name)
}

pub(crate) fn remove_subscription(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    unsubscribe(conn, account, &canonical_inbox(name))
}

/// INBOX first, then by name, as [`mailboxes`].
pub(crate) fn subscriptions(conn: &Connection, account: AccountId) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name <> 'INBOX', name")
        .db()?;
    let names = stmt.query_map([account.0], |r| r.get(0)).db()?;
    names.collect::<rusqlite::Result<Vec<String>>>().db()
}

/// The counters and the counts in the reader's one snapshot. The counts
/// scan only the mailbox's entries of the covering index `messages_modseq`
/// (mailbox, modseq, flags, size), never the wide rows.
pub(crate) fn status(conn: &Connection, mailbox: MailboxId) -> Result<MailboxStatus> {
    let m = require(conn, mailbox)?;
    let (messages, unseen, deleted, size): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM((flags & ?2) = 0), 0), COALESCE(SUM((flags & ?3) <> 0), 0),
                    COALESCE(SUM(size), 0)
             FROM messages WHERE mailbox_id = ?1",
        )
        .db()?
        .query_row((mailbox.0, Flags::SEEN.bits(), Flags::DELETED.bits()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .db()?;
    let count = |n: i64| u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("message count {n} out of range")));
    Ok(MailboxStatus {
        messages: count(messages)?,
        unseen: count(unseen)?,
        deleted: count(deleted)?,
        size: convert::size(size)?,
        uid_next: m.uid_next,
        uid_validity: m.uid_validity,
        highest_modseq: m.highest_modseq,
        recent: 0,
    })
}

/// Selects a mailbox's record; add the `WHERE` clause. `subscribed` is read
/// from `subscriptions` in the same statement.
const MAILBOX_COLUMNS: &str = "m.id, m.account_id, m.name, m.uid_validity, m.uid_next, m.highest_modseq,
     m.special_use,
     EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)
     FROM mailboxes m";

fn mailbox_row(row: &rusqlite::Row<'_>) -> Result<MailboxRecord> {
    let uid_next: i64 = row.get(4).db()?;
    Ok(MailboxRecord {
        id: MailboxId(row.get(0).db()?),
        account: AccountId(row.get(1).db()?),
        name: row.get(2).db()?,
        uid_validity: convert::uid_validity(row.get(3).db()?)?,
        // Past the last UID the counter may read 2^32, which no UID can
        // hold; report the largest instead (the mailbox is full).
        uid_next: convert::uid(uid_next.min(i64::from(u32::MAX)))?,
        highest_modseq: convert::modseq(row.get(5).db()?)?,
        special_use: convert::special_use(row.get(6).db()?)?,
        subscribed: row.get(7).db()?,
    })
}

/// INBOX first, then the others by name.
pub(crate) fn mailboxes(conn: &Connection, account: AccountId) -> Result<Vec<MailboxRecord>> {
    let sql = format!("SELECT {MAILBOX_COLUMNS} WHERE m.account_id = ?1 ORDER BY m.name <> 'INBOX', m.name");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query([account.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(mailbox_row(row)?);
    }
    Ok(out)
}

/// RFC 9051 §5.1: INBOX is case-insensitive, also as the first level of a
/// longer name; everything else is exact.
pub(crate) fn mailbox(conn: &Connection, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
    let name = canonical_inbox(name);
    let sql = format!("SELECT {MAILBOX_COLUMNS} WHERE m.account_id = ?1 AND m.name = ?2");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query((account.0, &name)).db()?;
    match rows.next().db()? {
        Some(row) => mailbox_row(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn mailbox_by_id(conn: &Connection, mailbox: MailboxId) -> Result<Option<MailboxRecord>> {
    let sql = format!("SELECT {MAILBOX_COLUMNS} WHERE m.id = ?1");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    match rows.next().db()? {
        Some(row) => mailbox_row(row).map(Some),
        None => Ok(None),
    }
}

/// The record of a mailbox that must exist.
fn require(conn: &Connection, mailbox: MailboxId) -> Result<MailboxRecord> {
    mailbox_by_id(conn, mailbox)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status counts must come from the covering index, not the rows.
    #[test]
    fn status_counts_use_the_covering_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&mut conn, 1).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT COUNT(*), SUM((flags & 1) = 0), SUM((flags & 8) <> 0), SUM(size)
                 FROM messages WHERE mailbox_id = 1",
            )
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("COVERING INDEX messages_modseq")), "{plan:?}");
    }
}
