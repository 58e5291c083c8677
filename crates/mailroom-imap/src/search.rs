//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH results (RFC
//! 4731, and always for IMAP4rev2 clients), MODSEQ (RFC 7162 §3.1.5) and
//! WITHIN (RFC 5032).
//!
//! Keys on flags, dates, sizes, UIDs and modseqs are answered from the
//! session's view; a message's bytes are read only when a key asks about
//! its headers or text, and then analysed once for all such keys.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use mailroom_imap_proto::Server;
use mailroom_imap_proto::command::{Date, Flag, Search, SearchKey};
use mailroom_imap_proto::message::ParsedMessage;
use mailroom_imap_proto::response::{self, Esearch};
use mailroom_store::MailStore;
use mailroom_types::{Flags, Uid};

use crate::selected::Msg;
use crate::session::{Outcome, Session, store_failure};

/// What one key is tested against.
struct Candidate<'a> {
    seq: u32,
    msg: &'a Msg,
    /// Messages in the view, for `*` in a sequence set.
    count: u32,
    /// The highest UID in the view, for `*` in a UID set.
    max_uid: u32,
    now: SystemTime,
    parsed: Option<&'a ParsedMessage<'a>>,
}

impl Session<'_> {
    pub(crate) async fn search(&mut self, server: &mut Server, tag: &str, search: &Search) -> Outcome {
        let rev2 = server.imap4rev2_enabled();
        let store = &self.ctx.store;
        let now = self.ctx.clock.now();
        let Some(view) = self.selected.as_ref() else { return Outcome::Bad("No mailbox selected".into()) };
        let content = needs_content(&search.key);
        // Header keys alone are answered from the header sections the
        // store keeps apart, without reading bodies.
        let body = needs_body(&search.key);
        let count = view.len() as u32;
        let max_uid = view.max_uid();
        let live: Vec<usize> = (0..view.len()).filter(|&i| !view.is_gone(view.uid_at(i))).collect();
        let msgs = match view.load(store, &live).await {
            Ok(m) => m,
            Err(e) => return store_failure(&e),
        };
        let mut headers = if content && !body {
            let uids: Vec<Uid> = msgs.iter().map(|(_, m)| m.uid).collect();
            match store.headers(view.mailbox, &uids).await {
                Ok(h) => h.into_iter().peekable(),
                Err(e) => return store_failure(&e),
            }
        } else {
            Vec::new().into_iter().peekable()
        };
        let mut raw = Vec::new();
        let mut found: Vec<(u32, &Msg)> = Vec::new();
        for (i, msg) in &msgs {
            let seq = *i as u32 + 1;
            while headers.next_if(|(uid, _)| *uid < msg.uid).is_some() {}
            let header = headers.next_if(|(uid, h)| *uid == msg.uid && !h.is_empty()).map(|(_, h)| h);
            let read = match header {
                Some(h) => {
                    raw = h;
                    Ok(true)
                }
                None if content => store.read_blob(&msg.blob, &mut raw).await,
                None => Ok(false),
            };
            let matched = if content {
                match read {
                    Ok(true) => {
                        let parsed = ParsedMessage::new(&raw);
                        let c = Candidate { seq, msg, count, max_uid, now, parsed: Some(&parsed) };
                        eval(&search.key, &c)
                    }
                    Ok(false) => false,
                    Err(e) => return store_failure(&e),
                }
            } else {
                eval(&search.key, &Candidate { seq, msg, count, max_uid, now, parsed: None })
            };
            if matched {
                found.push((seq, msg));
            }
        }
        let numbers: Vec<u32> = found.iter().map(|(seq, m)| if search.uid { m.uid.get() } else { *seq }).collect();
        let modseq = search.key.uses_modseq().then(|| found.iter().map(|(_, m)| m.modseq.0).max()).flatten();
        let out = server.output_mut();
        match search.ret {
            None if !rev2 => response::search(out, &numbers, modseq),
            ret => {
                let ret = ret.unwrap_or_default();
                // `RETURN ()` and a plain SEARCH of an IMAP4rev2 client
                // mean ALL (RFC 4731 §3.1, RFC 9051 §6.4.4).
                let all = ret.all || !(ret.min || ret.max || ret.count);
                let result = Esearch {
                    min: ret.min.then(|| numbers.iter().copied().min()).flatten(),
                    max: ret.max.then(|| numbers.iter().copied().max()).flatten(),
                    count: ret.count.then_some(numbers.len() as u32),
                    all: (all && !numbers.is_empty()).then(|| numbers.clone()),
                    modseq,
                };
                response::esearch(out, Some(tag), search.uid, &result);
            }
        }
        Outcome::ok(if search.uid { "UID SEARCH completed" } else { "SEARCH completed" })
    }
}

/// True when some key needs the message's text (not only its header).
fn needs_body(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_body),
        SearchKey::Or(a, b) => needs_body(a) || needs_body(b),
        SearchKey::Not(k) => needs_body(k),
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    }
}

/// True when some key needs the message's headers or text.
fn needs_content(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_content),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Not(k) => needs_content(k),
        SearchKey::Header(..)
        | SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Subject(_)
        | SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

fn eval(key: &SearchKey, c: &Candidate<'_>) -> bool {
    let header = |field: &str, needle: &str| c.parsed.is_some_and(|p| p.header_contains(field, needle));
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => keys.iter().all(|k| eval(k, c)),
        SearchKey::Or(a, b) => eval(a, c) || eval(b, c),
        SearchKey::Not(k) => !eval(k, c),
        SearchKey::SequenceSet(set) => set.contains(c.seq, c.count),
        SearchKey::Uid(set) => set.contains(c.msg.uid.get(), c.max_uid),
        SearchKey::Flag(flag) => has_flag(c.msg, flag),
        SearchKey::NotFlag(flag) => !has_flag(c.msg, flag),
        // No message is \Recent in this store (RFC 9051 removed it).
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Old => true,
        SearchKey::Before(d) => internal_day(c.msg) < day_number(*d),
        SearchKey::On(d) => internal_day(c.msg) == day_number(*d),
        SearchKey::Since(d) => internal_day(c.msg) >= day_number(*d),
        SearchKey::SentBefore(d) => sent_day(c).cmp(&day_number(*d)) == Ordering::Less,
        SearchKey::SentOn(d) => sent_day(c) == day_number(*d),
        SearchKey::SentSince(d) => sent_day(c) >= day_number(*d),
        SearchKey::Larger(n) => c.msg.size > *n,
        SearchKey::Smaller(n) => c.msg.size < *n,
        SearchKey::Header(field, needle) => header(field, needle),
        SearchKey::Bcc(s) => header("Bcc", s),
        SearchKey::Cc(s) => header("Cc", s),
        SearchKey::From(s) => header("From", s),
        SearchKey::To(s) => header("To", s),
        SearchKey::Subject(s) => header("Subject", s),
        SearchKey::Body(s) => c.parsed.is_some_and(|p| p.body_contains(s)),
        SearchKey::Text(s) => c.parsed.is_some_and(|p| p.text_contains(s)),
        SearchKey::Older(secs) => c.msg.internal_date <= c.now - Duration::from_secs(u64::from(*secs)),
        SearchKey::Younger(secs) => c.msg.internal_date > c.now - Duration::from_secs(u64::from(*secs)),
        SearchKey::ModSeq { modseq, .. } => c.msg.modseq.0 >= *modseq,
    }
}

fn has_flag(msg: &Msg, flag: &Flag) -> bool {
    let bit = match flag {
        Flag::Seen => Flags::SEEN,
        Flag::Answered => Flags::ANSWERED,
        Flag::Flagged => Flags::FLAGGED,
        Flag::Deleted => Flags::DELETED,
        Flag::Draft => Flags::DRAFT,
        // Keywords are case-insensitive atoms (RFC 9051 §2.3.2).
        Flag::Keyword(k) => return msg.keywords.iter().any(|have| have.eq_ignore_ascii_case(k)),
        Flag::Extension(_) => return false,
    };
    msg.flags.contains(bit)
}

/// Days since 1970-01-01 of a calendar date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn day_number(d: Date) -> i64 {
    days_from_civil(i64::from(d.year), d.month, d.day)
}

/// The day of the INTERNALDATE, in UTC (the zone the store keeps).
fn internal_day(msg: &Msg) -> i64 {
    mailroom_types::time::unix_seconds(msg.internal_date).div_euclid(86_400)
}

/// The day of the Date: header in its own zone; without a usable one, the
/// INTERNALDATE's.
fn sent_day(c: &Candidate<'_>) -> i64 {
    match c.parsed.and_then(|p| p.sent_date()) {
        Some(d) => days_from_civil(i64::from(d.year), d.month, d.day),
        None => internal_day(c.msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 22), 20_779);
        let (y, m, d) = mailroom_types::time::civil_from_days(20_779);
        assert_eq!((y, m, d), (2026, 11, 22));
    }
}
