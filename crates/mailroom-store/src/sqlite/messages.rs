//! Messages: arrival, UIDs, mod-sequences, flags, expunge.
//!
//! Implementation notes (RFC 9051 §2.3.1.1, RFC 7162 §3.1):
//! - A mailbox's `uid_next` and `highest_modseq` only ever grow, and only
//!   inside the writer's transaction, so two arrivals can never share a UID
//!   and an expunged UID is never handed out again.
//! - `highest_modseq` starts at 1 (an empty mailbox still reports a valid
//!   mod-sequence); every arrival, every flag update that changes something,
//!   and every expunge takes `highest_modseq + 1`. A message's `modseq` is
//!   the value of its last change.

use mailroom_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid};
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use super::writer::Effects;
use crate::pack::Extent;
use crate::{
    ChangeEvent, ChangeKind, FlagChange, FlagOp, HeaderCache, MessageRecord, NewContent, NewMessage, Result,
    SpecialUse, StoreError, Summary,
};

/// Takes the next UID of a mailbox and bumps its HIGHESTMODSEQ, returning
/// (mailbox, account, uid, modseq). `None` when no row matched.
fn take_uid(row: Option<(i64, i64, i64, i64)>) -> Result<Option<(MailboxId, AccountId, Uid, ModSeq)>> {
    let Some((mailbox, account, uid, modseq)) = row else { return Ok(None) };
    // RFC 9051 §2.3.1.1: UIDs are 32-bit; a mailbox that has used them all
    // cannot take more mail without a new UIDVALIDITY.
    let uid = u32::try_from(uid)
        .ok()
        .and_then(Uid::new)
        .ok_or_else(|| StoreError::Conflict(format!("mailbox {mailbox} has used every UID")))?;
    Ok(Some((MailboxId(mailbox), AccountId(account), uid, convert::modseq(modseq)?)))
}

fn insert_message(
    conn: &Connection,
    mailbox: MailboxId,
    uid: Uid,
    modseq: ModSeq,
    message: &NewMessage,
    keywords: &str,
) -> Result<()> {
    let h = &message.headers;
    conn.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id,
                               hdr_from, hdr_to, hdr_subject, hdr_message_id, hdr_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .db()?
    .execute(rusqlite::params![
        mailbox.0,
        uid.get(),
        convert::modseq_param(modseq),
        message.flags.bits(),
        keywords,
        mailroom_types::time::unix_seconds(message.internal_date),
        convert::size_param(message.size),
        message.content.blob().as_str(),
        h.from,
        h.to,
        h.subject,
        h.message_id,
        h.date,
    ])
    .db()?;
    Ok(())
}

/// What a write job needs besides the message to store its content: work
/// done on the caller's thread before the job, so that the writer thread,
/// which every write waits for, does none of it.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The summary of the header section (see [`crate::Summarizer`]).
    pub(crate) summary: Option<Vec<u8>>,
    /// Where inline content was appended ([`crate::pack`]).
    pub(crate) packed: Option<Extent>,
}

/// Records where a message's content is (once, however many rows will
/// reference it): inline content's extent in a pack, appended by the
/// caller and made durable by the writer before COMMIT; a file was made
/// durable by its writer already. Also keeps the header section apart
/// (`blob_header`) when it is known.
pub(crate) fn store_content(conn: &Connection, content: &NewContent, prepared: &Prepared) -> Result<()> {
    let header = match content {
        NewContent::Inline(id, bytes) => {
            let extent = prepared
                .packed
                .ok_or_else(|| StoreError::Unavailable(format!("content of {id} was not written to a pack")))?;
            conn.prepare_cached("INSERT INTO blob_packed (blob_id, pack, start, len) VALUES (?1, ?2, ?3, ?4)")
                .db()?
                .execute((
                    id.as_str(),
                    extent.pack,
                    convert::size_param(extent.offset),
                    convert::size_param(extent.len),
                ))
                .db()?;
            crate::header_section(bytes).unwrap_or_default()
        }
        NewContent::File(_, header) => header.as_slice(),
    };
    if !header.is_empty() {
        conn.prepare_cached("INSERT OR REPLACE INTO blob_header (blob_id, header, summary) VALUES (?1, ?2, ?3)")
            .db()?
            .execute((content.blob().as_str(), header, prepared.summary.as_deref()))
            .db()?;
    }
    Ok(())
}

/// The header summaries of `uids` (ascending) in `mailbox`, or the header
/// sections of those stored without one. Missing UIDs are skipped.
pub(crate) fn summaries(conn: &Connection, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Summary)>> {
    // The header is read only when there is no summary.
    let columns = "m.uid, h.summary, CASE WHEN h.summary IS NULL THEN h.header END";
    let mut out = Vec::with_capacity(uids.len());
    header_rows(conn, columns, mailbox, uids, |row| {
        let uid = convert::uid(row.get(0).db()?)?;
        let summary: Option<Vec<u8>> = row.get(1).db()?;
        let header: Option<Vec<u8>> = row.get(2).db()?;
        out.push((uid, summary.map_or_else(|| Summary::Header(header.unwrap_or_default()), Summary::Kept)));
        Ok(())
    })?;
    Ok(out)
}

/// The header sections of `uids` (ascending) in `mailbox`, each with its
/// UID; empty for a message whose header section is not kept apart.
/// Missing UIDs are skipped.
pub(crate) fn headers(conn: &Connection, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>> {
    let mut out = Vec::with_capacity(uids.len());
    header_rows(conn, "m.uid, h.header", mailbox, uids, |row| {
        let uid = convert::uid(row.get(0).db()?)?;
        let header: Option<Vec<u8>> = row.get(1).db()?;
        out.push((uid, header.unwrap_or_default()));
        Ok(())
    })?;
    Ok(out)
}

/// Calls `visit` with `columns` (the first being `m.uid`) of the messages
/// `uids` (ascending) of `mailbox`, joined with their kept header rows, in
/// UID order. A few UIDs are looked up one by one; more are read as one
/// ordered scan of their range, the unwanted ones skipped.
fn header_rows(
    conn: &Connection,
    columns: &str,
    mailbox: MailboxId,
    uids: &[Uid],
    mut visit: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let from = "FROM messages m LEFT JOIN blob_header h ON h.blob_id = m.blob_id";
    if uids.len() <= 32 {
        let sql = format!("SELECT {columns} {from} WHERE m.mailbox_id = ?1 AND m.uid = ?2");
        let mut stmt = conn.prepare_cached(&sql).db()?;
        for uid in uids {
            let mut rows = stmt.query((mailbox.0, uid.get())).db()?;
            if let Some(row) = rows.next().db()? {
                visit(row)?;
            }
        }
    } else {
        let (first, last) = (uids[0].get(), uids[uids.len() - 1].get());
        let sql = format!("SELECT {columns} {from} WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid");
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let mut rows = stmt.query((mailbox.0, first, last)).db()?;
        while let Some(row) = rows.next().db()? {
            let uid: u32 = row.get(0).db()?;
            if uids.binary_search_by_key(&uid, |u| u.get()).is_ok() {
                visit(row)?;
            }
        }
    }
    Ok(())
}

/// One copy per recipient into its INBOX, or with `special` into its
/// mailbox of that special use (the INBOX when it has none): two statements
/// per recipient (claim UID and modseq, insert the row), after the content.
pub(crate) fn deliver(
    conn: &Connection,
    effects: &mut Effects,
    message: &NewMessage,
    prepared: &Prepared,
    recipients: &[AccountId],
    special: Option<SpecialUse>,
) -> Result<Vec<(MailboxId, Uid)>> {
    let keywords = convert::keywords_param(&convert::normalize_keywords(&message.keywords)?);
    store_content(conn, &message.content, prepared)?;
    let mut out = Vec::with_capacity(recipients.len());
    for &account in recipients {
        let row = match special {
            None => conn
                .prepare_cached(
                    "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                     WHERE account_id = ?1 AND name = 'INBOX'
                     RETURNING id, account_id, uid_next - 1, highest_modseq",
                )
                .db()?
                .query_row([account.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
                .db()?,
            // The oldest mailbox with that use, else the INBOX.
            Some(special) => conn
                .prepare_cached(
                    "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                     WHERE id = (SELECT id FROM mailboxes
                                 WHERE account_id = ?1 AND (special_use = ?2 OR name = 'INBOX')
                                 ORDER BY name = 'INBOX', id LIMIT 1)
                     RETURNING id, account_id, uid_next - 1, highest_modseq",
                )
                .db()?
                .query_row(rusqlite::params![account.0, special.attribute()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .db()?,
        };
        let (mailbox, _, uid, modseq) =
            take_uid(row)?.ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))?;
        insert_message(conn, mailbox, uid, modseq, message, &keywords)?;
        effects.events.push(ChangeEvent { account, mailbox, modseq, kind: ChangeKind::Messages });
        out.push((mailbox, uid));
    }
    Ok(out)
}

pub(crate) fn append(
    conn: &Connection,
    effects: &mut Effects,
    mailbox: MailboxId,
    message: &NewMessage,
    prepared: &Prepared,
) -> Result<(Uid, ModSeq)> {
    append_as(conn, effects, mailbox, message, Some(prepared))
}

/// [`append`] of a message whose content this transaction has stored
/// already (another copy of it went in first).
pub(crate) fn append_copy(
    conn: &Connection,
    effects: &mut Effects,
    mailbox: MailboxId,
    message: &NewMessage,
) -> Result<(Uid, ModSeq)> {
    append_as(conn, effects, mailbox, message, None)
}

/// Appends a message, storing its content first unless `content` is
/// `None` (then it is stored already).
fn append_as(
    conn: &Connection,
    effects: &mut Effects,
    mailbox: MailboxId,
    message: &NewMessage,
    content: Option<&Prepared>,
) -> Result<(Uid, ModSeq)> {
    let keywords = convert::keywords_param(&convert::normalize_keywords(&message.keywords)?);
    let row = conn
        .prepare_cached(
            "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
             WHERE id = ?1
             RETURNING id, account_id, uid_next - 1, highest_modseq",
        )
        .db()?
        .query_row([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .db()?;
    let (mailbox, account, uid, modseq) =
        take_uid(row)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    if let Some(prepared) = content {
        store_content(conn, &message.content, prepared)?;
    }
    insert_message(conn, mailbox, uid, modseq, message, &keywords)?;
    effects.events.push(ChangeEvent { account, mailbox, modseq, kind: ChangeKind::Messages });
    Ok((uid, modseq))
}

/// The owner and HIGHESTMODSEQ of a mailbox, or NotFound.
pub(crate) fn mailbox_state(conn: &Connection, mailbox: MailboxId) -> Result<(AccountId, ModSeq)> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT account_id, highest_modseq FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    let (account, modseq) = row.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    Ok((AccountId(account), convert::modseq(modseq)?))
}

/// Bumps a mailbox's HIGHESTMODSEQ once and returns the new value.
pub(crate) fn bump_modseq(conn: &Connection, mailbox: MailboxId) -> Result<ModSeq> {
    let m: i64 = conn
        .prepare_cached(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING highest_modseq",
        )
        .db()?
        .query_row([mailbox.0], |r| r.get(0))
        .db()?;
    convert::modseq(m)
}

/// The UIDs in ascending order without duplicates.
pub(crate) fn sorted(uids: &[Uid]) -> Vec<Uid> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// Applies a STORE (RFC 9051 §6.4.6) with RFC 7162 §3.1.3 semantics: every
/// message that really changes gets the same new modseq; a no-op keeps its
/// modseq but is still reported; with UNCHANGEDSINCE, newer messages are
/// skipped and not reported. Results are in UID order.
#[expect(clippy::too_many_arguments, reason = "the trait method's arguments plus the connection and effects")]
pub(crate) fn store_flags(
    conn: &Connection,
    effects: &mut Effects,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    flags: Flags,
    keywords: &[String],
    unchanged_since: Option<ModSeq>,
) -> Result<Vec<FlagChange>> {
    let (account, _) = mailbox_state(conn, mailbox)?;
    let keywords = convert::normalize_keywords(keywords)?;
    let mut out = Vec::with_capacity(uids.len());
    let mut changed = Vec::new();
    {
        let mut select = conn
            .prepare_cached("SELECT modseq, flags, keywords FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
            .db()?;
        for uid in sorted(uids) {
            let row: Option<(i64, u8, String)> =
                select.query_row((mailbox.0, uid.get()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional().db()?;
            let Some((modseq, old_flags, old_keywords)) = row else { continue };
            let modseq = convert::modseq(modseq)?;
            if unchanged_since.is_some_and(|since| modseq > since) {
                continue;
            }
            let old_flags = Flags::from_bits(old_flags);
            let old_keywords = convert::keywords(&old_keywords);
            let (new_flags, new_keywords) = apply(op, old_flags, &old_keywords, flags, &keywords);
            if new_flags != old_flags || new_keywords != old_keywords {
                changed.push(out.len());
            }
            out.push(FlagChange { uid, modseq, flags: new_flags, keywords: new_keywords });
        }
    }
    if changed.is_empty() {
        return Ok(out);
    }
    let modseq = bump_modseq(conn, mailbox)?;
    let mut update = conn
        .prepare_cached("UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2")
        .db()?;
    for i in changed {
        let change = &mut out[i];
        change.modseq = modseq;
        update
            .execute((
                mailbox.0,
                change.uid.get(),
                change.flags.bits(),
                convert::keywords_param(&change.keywords),
                convert::modseq_param(modseq),
            ))
            .db()?;
    }
    effects.events.push(ChangeEvent { account, mailbox, modseq, kind: ChangeKind::Messages });
    Ok(out)
}

/// The flags and keywords after `op`; both keyword lists are sorted and
/// deduplicated, and so is the result.
fn apply(op: FlagOp, flags: Flags, keywords: &[String], arg: Flags, arg_keywords: &[String]) -> (Flags, Vec<String>) {
    match op {
        FlagOp::Replace => (arg, arg_keywords.to_vec()),
        FlagOp::Add => {
            let mut k: Vec<String> = keywords.iter().chain(arg_keywords).cloned().collect();
            k.sort_unstable();
            k.dedup();
            (flags.union(arg), k)
        }
        FlagOp::Remove => {
            let k = keywords.iter().filter(|k| !arg_keywords.contains(k)).cloned().collect();
            (flags.difference(arg), k)
        }
    }
}

/// Removes messages, records them for QRESYNC with one new modseq, and
/// hands their blobs to the writer for deletion if nothing else uses them.
pub(crate) fn expunge(conn: &Connection, effects: &mut Effects, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
    let (account, _) = mailbox_state(conn, mailbox)?;
    remove(conn, effects, account, mailbox, &sorted(uids), true)
}

/// Deletes the rows of `uids` (ascending, deduplicated) that exist, records
/// them in `expunged` with one new modseq and pushes the event. Their blobs
/// are released only with `release`: a move keeps referencing them.
/// Returns the UIDs removed.
pub(crate) fn remove(
    conn: &Connection,
    effects: &mut Effects,
    account: AccountId,
    mailbox: MailboxId,
    uids: &[Uid],
    release: bool,
) -> Result<Vec<Uid>> {
    let mut removed = Vec::new();
    {
        let mut delete =
            conn.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING blob_id").db()?;
        for &uid in uids {
            let blob: Option<String> = delete.query_row((mailbox.0, uid.get()), |r| r.get(0)).optional().db()?;
            if let Some(blob) = blob {
                if release {
                    effects.released_blobs.push(convert::blob_id(&blob)?);
                }
                removed.push(uid);
            }
        }
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    let modseq = bump_modseq(conn, mailbox)?;
    let mut record = conn.prepare_cached("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)").db()?;
    for uid in &removed {
        record.execute((mailbox.0, uid.get(), convert::modseq_param(modseq))).db()?;
    }
    effects.events.push(ChangeEvent { account, mailbox, modseq, kind: ChangeKind::Messages });
    Ok(removed)
}

pub(crate) const MESSAGE_COLUMNS: &str = "uid, modseq, flags, keywords, internal_date, size, blob_id,
     hdr_from, hdr_to, hdr_subject, hdr_message_id, hdr_date";

/// One `messages` row, selected with [`MESSAGE_COLUMNS`], as a record.
pub(crate) fn message_row(mailbox: MailboxId, row: &rusqlite::Row<'_>) -> Result<MessageRecord> {
    let keywords: String = row.get(3).db()?;
    let blob: String = row.get(6).db()?;
    Ok(MessageRecord {
        mailbox,
        uid: convert::uid(row.get(0).db()?)?,
        modseq: convert::modseq(row.get(1).db()?)?,
        flags: Flags::from_bits(row.get(2).db()?),
        keywords: convert::keywords(&keywords),
        internal_date: convert::time(row.get(4).db()?),
        size: convert::size(row.get(5).db()?)?,
        blob: convert::blob_id(&blob)?,
        headers: HeaderCache {
            from: row.get(7).db()?,
            to: row.get(8).db()?,
            subject: row.get(9).db()?,
            message_id: row.get(10).db()?,
            date: row.get(11).db()?,
        },
    })
}

pub(crate) fn messages(conn: &Connection, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
    mailbox_state(conn, mailbox)?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?1 ORDER BY uid");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(message_row(mailbox, row)?);
    }
    Ok(out)
}

pub(crate) fn message(conn: &Connection, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>> {
    mailbox_state(conn, mailbox)?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params![mailbox.0, uid.get()]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(message_row(mailbox, row)?)),
        None => Ok(None),
    }
}

/// Whether a message or a queue entry references a blob: while either
/// does, its bytes stay.
pub(crate) const BLOB_IN_USE: &str =
    "SELECT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?1) OR EXISTS (SELECT 1 FROM queue WHERE blob_id = ?1)";

/// The blobs of `candidates` that no message or queue entry references.
pub(crate) fn unreferenced(conn: &Connection, candidates: Vec<BlobId>) -> Result<Vec<BlobId>> {
    let mut stmt = conn.prepare_cached(BLOB_IN_USE).db()?;
    let mut out = Vec::new();
    for id in candidates {
        let used: bool = stmt.query_row([id.as_str()], |r| r.get(0)).db()?;
        if !used {
            out.push(id);
        }
    }
    Ok(out)
}
