//! The outbound queue: submissions (local copies and queue entry in one
//! transaction), claims with a lease, attempt reports, admin reads.
//!
//! Implementation notes:
//! - A claim moves each claimed recipient's `next_attempt` to the end of
//!   its lease and counts the attempt, in the writer's transaction, before
//!   the runner dials: after a crash the recipient is due again when the
//!   lease ends, not at once, and never twice in one lease.
//! - An entry goes when its last pending recipient becomes final; its blob
//!   is then released like an expunged message's, and survives while a
//!   mailbox copy still references it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use mailroom_types::QueueId;
use mailroom_types::time::unix_seconds;
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use super::messages;
use super::writer::Effects;
use crate::{
    AttemptReport, MailboxId, NewQueueEntry, QueueEntry, QueuedRecipient, RecipientId, RecipientState, RecipientUpdate,
    Result, StoreError, Submission, Uid,
};

const PENDING: i64 = 0;
const DELIVERED: i64 = 1;
const FAILED: i64 = 2;

fn state(n: i64) -> Result<RecipientState> {
    match n {
        PENDING => Ok(RecipientState::Pending),
        DELIVERED => Ok(RecipientState::Delivered),
        FAILED => Ok(RecipientState::Failed),
        _ => Err(StoreError::Corrupt(format!("queue recipient state {n}"))),
    }
}

/// Whether [`submit`] stores the message at all: a copy, a queue entry or
/// a Sent copy references it.
pub(crate) fn stores_content(submission: &Submission) -> bool {
    !submission.local.is_empty() || submission.queue.is_some() || submission.sent.is_some()
}

/// Delivers the local copies and queues the rest, sharing one blob.
pub(crate) fn submit(
    conn: &Connection,
    effects: &mut Effects,
    submission: &Submission,
    prepared: &messages::Prepared,
) -> Result<Vec<(MailboxId, Uid)>> {
    let mut copies = if submission.local.is_empty() {
        if stores_content(submission) {
            messages::store_content(conn, &submission.message.content, prepared)?;
        }
        Vec::new()
    } else {
        messages::deliver(conn, effects, &submission.message, prepared, &submission.local, None)?
    };
    if let Some(mailbox) = submission.sent {
        let mut own = submission.message.clone();
        own.flags = own.flags | mailroom_types::Flags::SEEN;
        let (uid, _) = messages::append_copy(conn, effects, mailbox, &own)?;
        copies.push((mailbox, uid));
    }
    if let Some(entry) = &submission.queue {
        enqueue(conn, entry, &submission.message)?;
    }
    Ok(copies)
}

fn enqueue(conn: &Connection, entry: &NewQueueEntry, message: &crate::NewMessage) -> Result<()> {
    if entry.recipients.is_empty() {
        return Ok(());
    }
    let row: i64 = conn
        .prepare_cached(
            "INSERT INTO queue (queue_id, blob_id, size, sender, created) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .db()?
        .query_row(
            (
                entry.id.as_str(),
                message.content.blob().as_str(),
                convert::size_param(message.size),
                entry.sender.as_ref().map(|a| a.to_string()).unwrap_or_default(),
                unix_seconds(entry.created),
            ),
            |r| r.get(0),
        )
        .db()?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO queue_recipients (queue_row, address, domain, next_attempt) VALUES (?1, ?2, ?3, ?4)",
        )
        .db()?;
    let due = unix_seconds(entry.first_attempt);
    for rcpt in &entry.recipients {
        insert.execute((row, rcpt.to_string(), rcpt.domain().as_str().to_ascii_lowercase(), due)).db()?;
    }
    Ok(())
}

const ENTRY_COLUMNS: &str = "q.queue_id, q.blob_id, q.size, q.sender, q.created, \
     r.id, r.address, r.state, r.attempts, r.next_attempt, r.last_attempt, r.last_reply, r.warned";

/// Folds joined rows (ordered by entry) into entries.
fn collect(rows: &mut rusqlite::Rows<'_>) -> Result<Vec<QueueEntry>> {
    let mut out: Vec<QueueEntry> = Vec::new();
    while let Some(row) = rows.next().db()? {
        let id: String = row.get(0).db()?;
        let recipient = QueuedRecipient {
            id: RecipientId(row.get(5).db()?),
            address: convert::address(&row.get::<_, String>(6).db()?)?,
            state: state(row.get(7).db()?)?,
            attempts: u32::try_from(row.get::<_, i64>(8).db()?).unwrap_or(u32::MAX),
            next_attempt: convert::time(row.get(9).db()?),
            last_attempt: row.get::<_, Option<i64>>(10).db()?.map(convert::time),
            last_reply: row.get(11).db()?,
            warned: row.get(12).db()?,
        };
        if let Some(last) = out.last_mut().filter(|e| e.id.as_str() == id) {
            last.recipients.push(recipient);
            continue;
        }
        let sender: String = row.get(3).db()?;
        out.push(QueueEntry {
            id: QueueId::from_string(id),
            blob: convert::blob_id(&row.get::<_, String>(1).db()?)?,
            size: convert::size(row.get(2).db()?)?,
            sender: if sender.is_empty() { None } else { Some(convert::address(&sender)?) },
            created: convert::time(row.get(4).db()?),
            recipients: vec![recipient],
        });
    }
    Ok(out)
}

/// Claims up to `limit` due recipients, oldest due first, grouped by
/// entry; each gets its attempt counted and a lease of `lease`.
pub(crate) fn claim_due(conn: &Connection, now: SystemTime, lease: Duration, limit: usize) -> Result<Vec<QueueEntry>> {
    let now_s = unix_seconds(now);
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM queue_recipients r JOIN queue q ON q.id = r.queue_row
         WHERE r.state = 0 AND r.next_attempt <= ?1
         ORDER BY r.next_attempt, r.queue_row, r.id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query((now_s, i64::try_from(limit).unwrap_or(i64::MAX))).db()?;
    let mut entries = collect(&mut rows)?;
    drop(rows);
    // Rows of one entry may come apart when their due times differ; merge.
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<QueueEntry> = Vec::with_capacity(entries.len());
    for e in entries.drain(..) {
        match by_id.get(e.id.as_str()) {
            Some(&i) => merged[i].recipients.extend(e.recipients),
            None => {
                by_id.insert(e.id.as_str().to_owned(), merged.len());
                merged.push(e);
            }
        }
    }
    let until = now + lease;
    let mut lease_stmt = conn
        .prepare_cached(
            "UPDATE queue_recipients SET attempts = attempts + 1, last_attempt = ?1, next_attempt = ?2 WHERE id = ?3",
        )
        .db()?;
    for entry in &mut merged {
        for r in &mut entry.recipients {
            lease_stmt.execute((now_s, unix_seconds(until), r.id.0)).db()?;
            r.attempts = r.attempts.saturating_add(1);
            r.last_attempt = Some(convert::time(now_s));
            r.next_attempt = convert::time(unix_seconds(until));
        }
    }
    Ok(merged)
}

/// Applies an attempt's outcome, stores its notice, and removes the entry
/// once no recipient is pending. An entry deleted meanwhile (by the admin)
/// is not an error: the report has nothing left to change.
pub(crate) fn report(
    conn: &Connection,
    effects: &mut Effects,
    report: &AttemptReport,
    prepared: &messages::Prepared,
) -> Result<()> {
    if let Some(notice) = &report.notice {
        submit(conn, effects, notice, prepared)?;
    }
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, blob_id FROM queue WHERE queue_id = ?1")
        .db()?
        .query_row([report.entry.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    let Some((row, blob)) = row else { return Ok(()) };
    let mut update = conn
        .prepare_cached(
            "UPDATE queue_recipients SET state = ?1, next_attempt = COALESCE(?2, next_attempt), last_reply = ?3,
                    warned = COALESCE(?4, warned)
             WHERE id = ?5 AND queue_row = ?6 AND state = 0",
        )
        .db()?;
    for (id, outcome) in &report.updates {
        let (state, at, reply, warned) = match outcome {
            RecipientUpdate::Delivered { reply } => (DELIVERED, None, reply, None),
            RecipientUpdate::Retry { at, reply, warned } => (PENDING, Some(unix_seconds(*at)), reply, Some(*warned)),
            RecipientUpdate::Failed { reply } => (FAILED, None, reply, None),
        };
        update.execute(rusqlite::params![state, at, reply, warned, id.0, row]).db()?;
    }
    finish_if_done(conn, effects, row, &blob)
}

fn finish_if_done(conn: &Connection, effects: &mut Effects, row: i64, blob: &str) -> Result<()> {
    let pending: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM queue_recipients WHERE queue_row = ?1 AND state = 0)")
        .db()?
        .query_row([row], |r| r.get(0))
        .db()?;
    if !pending {
        conn.prepare_cached("DELETE FROM queue WHERE id = ?1").db()?.execute([row]).db()?;
        effects.released_blobs.push(convert::blob_id(blob)?);
    }
    Ok(())
}

/// Every entry with all its recipients, oldest first; or one entry.
pub(crate) fn entries(conn: &Connection, id: Option<&QueueId>) -> Result<Vec<QueueEntry>> {
    let filter = if id.is_some() { "WHERE q.queue_id = ?1" } else { "WHERE ?1 IS NULL" };
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM queue q JOIN queue_recipients r ON r.queue_row = q.id {filter}
         ORDER BY q.created, q.id, r.id"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query([id.map(QueueId::as_str)]).db()?;
    collect(&mut rows)
}

/// Makes pending recipients due at `now` (one entry, or all); returns how
/// many.
pub(crate) fn retry(conn: &Connection, id: Option<&QueueId>, now: SystemTime) -> Result<usize> {
    let n = conn
        .prepare_cached(
            "UPDATE queue_recipients SET next_attempt = ?1
             WHERE state = 0 AND (?2 IS NULL OR queue_row = (SELECT id FROM queue WHERE queue_id = ?2))",
        )
        .db()?
        .execute((unix_seconds(now), id.map(QueueId::as_str)))
        .db()?;
    if n == 0
        && let Some(id) = id
        && entries(conn, Some(id))?.is_empty()
    {
        return Err(StoreError::NotFound(format!("queue entry {id}")));
    }
    Ok(n)
}

/// Removes an entry without notifying anyone (the admin's choice).
pub(crate) fn delete(conn: &Connection, effects: &mut Effects, id: &QueueId) -> Result<()> {
    let blob: Option<String> = conn
        .prepare_cached("DELETE FROM queue WHERE queue_id = ?1 RETURNING blob_id")
        .db()?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()
        .db()?;
    let blob = blob.ok_or_else(|| StoreError::NotFound(format!("queue entry {id}")))?;
    effects.released_blobs.push(convert::blob_id(&blob)?);
    Ok(())
}

/// When the earliest pending recipient is due.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<SystemTime>> {
    let t: Option<i64> = conn
        .prepare_cached("SELECT MIN(next_attempt) FROM queue_recipients WHERE state = 0")
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    Ok(t.map(convert::time))
}
