//! Between and within mailboxes: copy, move, expunge of `\Deleted`
//! messages, and the reads of CONDSTORE/QRESYNC (RFC 7162) and SELECT.
//!
//! Implementation notes:
//! - A copy shares its source's blob (pack extent, row or file); nothing
//!   is read or written but the `messages` row, copied by `INSERT ...
//!   SELECT`. The blob goes only when its last row does, which the writer
//!   checks.
//! - The copies of one call take consecutive UIDs from the destination's
//!   `uid_next`, in ascending source UID order (RFC 4315 §3 pairs them up
//!   in that order), and one new modseq, whatever their number.
//! - A move is that copy plus the source's expunge, in the same job, hence
//!   the same transaction: no session ever sees a message in both mailboxes
//!   or in neither (RFC 6851 §3.3).

use mailroom_types::{AccountId, Flags, MailboxId, ModSeq, Uid};
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use super::messages::{self, MESSAGE_COLUMNS, mailbox_state, message_row, sorted};
use super::writer::Effects;
use crate::{
    ChangeEvent, ChangeKind, CopyOutcome, MessageMeta, MessageRecord, Result, StoreError, SubjectMatches, Summary,
};

/// The owner of both mailboxes; NotFound if either is missing, Conflict if
/// they belong to different accounts (nothing in IMAP copies across
/// accounts, so such a call is a bug that must not leak mail).
fn same_account(conn: &Connection, from: MailboxId, to: MailboxId) -> Result<AccountId> {
    let (a, _) = mailbox_state(conn, from)?;
    let (b, _) = mailbox_state(conn, to)?;
    if a != b {
        return Err(StoreError::Conflict(format!("mailboxes {from} and {to} belong to different accounts")));
    }
    Ok(a)
}

pub(crate) fn copy(
    conn: &Connection,
    effects: &mut Effects,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<CopyOutcome> {
    let account = same_account(conn, from, to)?;
    copy_sorted(conn, effects, account, from, &sorted(uids), to)
}

pub(crate) fn move_messages(
    conn: &Connection,
    effects: &mut Effects,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<CopyOutcome> {
    let account = same_account(conn, from, to)?;
    move_sorted(conn, effects, account, from, &sorted(uids), to)
}

/// Moves every message of `from` (INBOX's rename).
pub(crate) fn move_all(
    conn: &Connection,
    effects: &mut Effects,
    account: AccountId,
    from: MailboxId,
    to: MailboxId,
) -> Result<CopyOutcome> {
    let uids = {
        let mut stmt = conn.prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid").db()?;
        let rows = stmt.query_map([from.0], |r| r.get::<_, i64>(0)).db()?;
        let raw = rows.collect::<rusqlite::Result<Vec<i64>>>().db()?;
        raw.into_iter().map(convert::uid).collect::<Result<Vec<Uid>>>()?
    };
    move_sorted(conn, effects, account, from, &uids, to)
}

fn move_sorted(
    conn: &Connection,
    effects: &mut Effects,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<CopyOutcome> {
    let outcome = copy_sorted(conn, effects, account, from, uids, to)?;
    let sources: Vec<Uid> = outcome.pairs.iter().map(|(source, _)| *source).collect();
    // The copies still reference the blobs: nothing to release.
    messages::remove(conn, effects, account, from, &sources, false)?;
    Ok(outcome)
}

/// Copies the existing messages among `uids` (ascending, deduplicated).
fn copy_sorted(
    conn: &Connection,
    effects: &mut Effects,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<CopyOutcome> {
    let (uid_next, highest, validity): (i64, i64, i64) = conn
        .prepare_cached("SELECT uid_next, highest_modseq, uid_validity FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([to.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .db()?;
    let uid_validity = convert::uid_validity(validity)?;
    let modseq = highest + 1;
    let mut pairs = Vec::new();
    let mut next = uid_next;
    {
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id,
                                       hdr_from, hdr_to, hdr_subject, hdr_message_id, hdr_date)
                 SELECT ?3, ?4, ?5, flags, keywords, internal_date, size, blob_id,
                        hdr_from, hdr_to, hdr_subject, hdr_message_id, hdr_date
                 FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            )
            .db()?;
        for &uid in uids {
            if insert.execute((from.0, uid.get(), to.0, next, modseq)).db()? == 0 {
                continue;
            }
            // RFC 9051 §2.3.1.1: UIDs are 32-bit; a full mailbox takes no
            // more (the job's savepoint undoes the row just written).
            let copied = u32::try_from(next)
                .ok()
                .and_then(Uid::new)
                .ok_or_else(|| StoreError::Conflict(format!("mailbox {to} has used every UID")))?;
            pairs.push((uid, copied));
            next += 1;
        }
    }
    if !pairs.is_empty() {
        conn.prepare_cached("UPDATE mailboxes SET uid_next = ?2, highest_modseq = ?3 WHERE id = ?1")
            .db()?
            .execute((to.0, next, modseq))
            .db()?;
        effects.events.push(ChangeEvent {
            account,
            mailbox: to,
            modseq: convert::modseq(modseq)?,
            kind: ChangeKind::Messages,
        });
    }
    Ok(CopyOutcome { uid_validity, pairs })
}

/// Expunges the `\Deleted` messages (of `within` only, if given) in one
/// transaction, so no flag change can slip between the check and the
/// removal.
pub(crate) fn expunge_deleted(
    conn: &Connection,
    effects: &mut Effects,
    mailbox: MailboxId,
    within: Option<&[Uid]>,
) -> Result<Vec<Uid>> {
    let (account, _) = mailbox_state(conn, mailbox)?;
    let deleted = Flags::DELETED.bits();
    let uids = match within {
        None => {
            let mut stmt = conn
                .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 AND (flags & ?2) <> 0 ORDER BY uid")
                .db()?;
            let rows = stmt.query_map((mailbox.0, deleted), |r| r.get::<_, i64>(0)).db()?;
            let raw = rows.collect::<rusqlite::Result<Vec<i64>>>().db()?;
            raw.into_iter().map(convert::uid).collect::<Result<Vec<Uid>>>()?
        }
        Some(within) => {
            let mut stmt = conn.prepare_cached("SELECT flags FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
            let mut out = Vec::new();
            for uid in sorted(within) {
                let flags: Option<u8> = stmt.query_row((mailbox.0, uid.get()), |r| r.get(0)).optional().db()?;
                if flags.is_some_and(|f| Flags::from_bits(f).contains(Flags::DELETED)) {
                    out.push(uid);
                }
            }
            out
        }
    };
    messages::remove(conn, effects, account, mailbox, &uids, true)
}

/// RFC 7162 §3.1.4 CHANGEDSINCE: messages whose modseq is above `since`,
/// in UID order; a range scan of `messages_modseq`.
pub(crate) fn changed_since(conn: &Connection, mailbox: MailboxId, since: ModSeq) -> Result<Vec<MessageRecord>> {
    mailbox_state(conn, mailbox)?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query((mailbox.0, convert::modseq_param(since))).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(message_row(mailbox, row)?);
    }
    Ok(out)
}

/// RFC 7162 §3.2.5.1 VANISHED (EARLIER): UIDs expunged at a modseq above
/// `since`, ascending.
pub(crate) fn vanished_since(conn: &Connection, mailbox: MailboxId, since: ModSeq) -> Result<Vec<Uid>> {
    mailbox_state(conn, mailbox)?;
    let mut stmt =
        conn.prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid").db()?;
    let rows = stmt.query_map((mailbox.0, convert::modseq_param(since)), |r| r.get::<_, i64>(0)).db()?;
    let raw = rows.collect::<rusqlite::Result<Vec<i64>>>().db()?;
    raw.into_iter().map(convert::uid).collect()
}

/// The UIDs of a mailbox, ascending: a covering index scan.
pub(crate) fn uids(conn: &Connection, mailbox: MailboxId) -> Result<Vec<Uid>> {
    mailbox_state(conn, mailbox)?;
    let mut stmt = conn.prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid").db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(convert::uid(row.get(0).db()?)?);
    }
    Ok(out)
}

/// The keywords set on any message of a mailbox, sorted; from the partial
/// index of messages with keywords (usually few).
pub(crate) fn keywords_in_use(conn: &Connection, mailbox: MailboxId) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ?1 AND keywords <> ''").db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut out = std::collections::BTreeSet::new();
    while let Some(row) = rows.next().db()? {
        let list = row.get_ref(0).db()?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        out.extend(convert::keywords(list));
    }
    Ok(out.into_iter().collect())
}

/// Which messages' cached subject contains `needle`, compared
/// case-insensitively in ASCII (SQLite's LIKE); see
/// [`crate::MailStore::search_subject`].
pub(crate) fn search_subject(conn: &Connection, mailbox: MailboxId, needle: &str) -> Result<SubjectMatches> {
    mailbox_state(conn, mailbox)?;
    let escaped: String =
        needle.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    let pattern = format!("%{escaped}%");
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, hdr_subject LIKE ?2 ESCAPE '\\', length(hdr_subject) >= ?3 FROM messages
             WHERE mailbox_id = ?1 AND (hdr_subject LIKE ?2 ESCAPE '\\' OR length(hdr_subject) >= ?3)
             ORDER BY uid",
        )
        .db()?;
    let mut rows = stmt.query((mailbox.0, pattern, crate::HEADER_CACHE_CHARS as i64)).db()?;
    let mut out = SubjectMatches::default();
    while let Some(row) = rows.next().db()? {
        let uid = convert::uid(row.get(0).db()?)?;
        let (found, clipped): (bool, bool) = (row.get(1).db()?, row.get(2).db()?);
        if found {
            out.certain.push(uid)
        } else if clipped {
            out.maybe.push(uid)
        }
    }
    Ok(out)
}

/// Every message without the header cache, in UID order.
pub(crate) fn message_index(conn: &Connection, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
    mailbox_state(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, modseq, flags, keywords, size, internal_date, blob_id FROM messages
             WHERE mailbox_id = ?1 ORDER BY uid",
        )
        .db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(meta(row)?);
    }
    Ok(out)
}

/// [`message_index`] with each message's header summary (or header
/// section), read in the same pass.
pub(crate) fn summarized_index(conn: &Connection, mailbox: MailboxId) -> Result<Vec<(MessageMeta, Summary)>> {
    mailbox_state(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid, m.modseq, m.flags, m.keywords, m.size, m.internal_date, m.blob_id,
                    h.summary, CASE WHEN h.summary IS NULL THEN h.header END
             FROM messages m LEFT JOIN blob_header h ON h.blob_id = m.blob_id
             WHERE m.mailbox_id = ?1 ORDER BY m.uid",
        )
        .db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        let summary: Option<Vec<u8>> = row.get(7).db()?;
        let summary = match summary {
            Some(s) => Summary::Kept(s),
            None => Summary::Header(row.get::<_, Option<Vec<u8>>>(8).db()?.unwrap_or_default()),
        };
        out.push((meta(row)?, summary));
    }
    Ok(out)
}

/// A [`MessageMeta`] from the first seven columns of [`message_index`].
fn meta(row: &rusqlite::Row<'_>) -> Result<MessageMeta> {
    let keywords = row.get_ref(3).db()?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(MessageMeta {
        uid: convert::uid(row.get(0).db()?)?,
        modseq: convert::modseq(row.get(1).db()?)?,
        flags: Flags::from_bits(row.get(2).db()?),
        keywords: convert::keywords(keywords),
        size: convert::size(row.get(4).db()?)?,
        internal_date: convert::time(row.get(5).db()?),
        blob: convert::blob_id(row.get_ref(6).db()?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()))?)?,
    })
}
