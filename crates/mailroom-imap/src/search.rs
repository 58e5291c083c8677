//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH results (RFC
//! 4731, and always for IMAP4rev2 clients), MODSEQ (RFC 7162 §3.1.5) and
//! WITHIN (RFC 5032).
//!
//! Keys on flags, dates, sizes, UIDs and modseqs are answered from the
//! session's view; a message's bytes are read only when a key asks about
//! its headers or text, and then analysed once for all such keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_imap_proto::Server;
use mailroom_imap_proto::command::{Date, Flag, Search, SearchKey};
use mailroom_imap_proto::message::ParsedMessage;
use mailroom_imap_proto::response::{self, Esearch};
use mailroom_store::{MailStore, StoreError};
use mailroom_types::{Flags, Uid};

use crate::selected::Msg;
use crate::session::{Outcome, Session, store_failure};

/// What one key is tested against.
struct Candidate<'a> {
    seq: u32,
    uid: Uid,
    /// The message's metadata, when some key needs it ([`needs_meta`]).
    msg: Option<&'a Msg>,
    /// Messages in the view, for `*` in a sequence set.
    count: u32,
    /// The highest UID in the view, for `*` in a UID set.
    max_uid: u32,
    now: SystemTime,
    parsed: Option<&'a ParsedMessage<'a>>,
    /// SUBJECT keys answered from the store's header cache.
    subjects: &'a Subjects,
}

/// For each ASCII SUBJECT needle, the messages the header cache says
/// contain it, and those whose cached subject is clipped (to be checked
/// in their header).
type Subjects = HashMap<String, (HashSet<Uid>, HashSet<Uid>)>;

impl Session<'_> {
    pub(crate) async fn search(&mut self, server: &mut Server, tag: &str, search: &Search) -> Outcome {
        let rev2 = server.imap4rev2_enabled();
        let store = &self.ctx.store;
        let now = self.ctx.clock.now();
        let Some(view) = self.selected.as_ref() else { return Outcome::Bad("No mailbox selected".into()) };
        let mut subjects = Subjects::new();
        for needle in cached_subjects(&search.key) {
            match store.search_subject(view.mailbox, &needle).await {
                Ok(m) => {
                    subjects.insert(needle, (m.certain.into_iter().collect(), m.maybe.into_iter().collect()));
                }
                Err(e) => return store_failure(&e),
            }
        }
        let count = view.len() as u32;
        let max_uid = view.max_uid();
        let live: Vec<usize> = (0..view.len()).filter(|&i| !view.is_gone(view.uid_at(i))).collect();
        let found = if needs_body(&search.key) {
            // Every message's text: read and matched on the store's read
            // threads, all cores at once.
            let loaded = match view.load(store, &live).await {
                Ok(m) => m,
                Err(e) => return store_failure(&e),
            };
            let blobs = loaded.iter().map(|(_, m)| m.blob.clone()).collect();
            let scan = Arc::new(Scan { key: search.key.clone(), subjects, loaded, count, max_uid, now });
            let visit = Arc::clone(&scan);
            match store.scan_blobs(blobs, move |i, raw| visit.matches(i, raw.as_ref().map(|r| r.bytes()))).await {
                Ok(hits) => scan
                    .loaded
                    .iter()
                    .zip(hits)
                    .filter(|(_, hit)| *hit)
                    .map(|((i, m), _)| (*i as u32 + 1, m.uid, Some(m.modseq.0)))
                    .collect(),
                Err(e) => return store_failure(&e),
            }
        } else {
            match self.search_headers(search, subjects, &live, now).await {
                Ok(found) => found,
                Err(e) => return store_failure(&e),
            }
        };
        let numbers: Vec<u32> = found.iter().map(|(seq, uid, _)| if search.uid { uid.get() } else { *seq }).collect();
        let modseq = search.key.uses_modseq().then(|| found.iter().filter_map(|&(_, _, m)| m).max()).flatten();
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

/// A SEARCH that reads every message's text, shared with the store's
/// read threads.
struct Scan {
    key: SearchKey,
    subjects: Subjects,
    /// The live messages, with their sequence-number index.
    loaded: Vec<(usize, Msg)>,
    count: u32,
    max_uid: u32,
    now: SystemTime,
}

impl Scan {
    /// Whether `loaded[i]`, whose bytes are `raw`, matches; a message
    /// whose bytes are gone (expunged meanwhile) matches nothing.
    fn matches(&self, i: usize, raw: Option<&[u8]>) -> bool {
        let Some(raw) = raw else { return false };
        let (index, msg) = &self.loaded[i];
        let parsed = ParsedMessage::new(raw);
        let c = Candidate {
            seq: *index as u32 + 1,
            uid: msg.uid,
            msg: Some(msg),
            count: self.count,
            max_uid: self.max_uid,
            now: self.now,
            parsed: Some(&parsed),
            subjects: &self.subjects,
        };
        eval(&self.key, &c)
    }
}

impl Session<'_> {
    /// A SEARCH whose keys need no message text: metadata from the
    /// store's index, headers from its header sections, SUBJECT from its
    /// header cache. Returns sequence number, UID and modseq of each match.
    async fn search_headers(
        &self,
        search: &Search,
        subjects: Subjects,
        live: &[usize],
        now: SystemTime,
    ) -> Result<Vec<(u32, Uid, Option<u64>)>, StoreError> {
        let store = &self.ctx.store;
        let view = self.selected.as_ref().expect("a SEARCH runs in the selected state");
        let (count, max_uid) = (view.len() as u32, view.max_uid());
        let msgs: Vec<(usize, Option<Msg>)> = if needs_meta(&search.key) {
            view.load(store, live).await?.into_iter().map(|(i, m)| (i, Some(m))).collect()
        } else {
            live.iter().map(|&i| (i, None)).collect()
        };
        // Which messages need their header read: all of them for keys the
        // caches cannot answer; else only those whose cached subject was
        // clipped.
        let content = needs_content(&search.key);
        let wanted: Option<HashSet<Uid>> =
            (!content).then(|| subjects.values().flat_map(|(_, maybe)| maybe.iter().copied()).collect());
        let mut headers = if wanted.as_ref().is_none_or(|w| !w.is_empty()) {
            let uids: Vec<Uid> = msgs
                .iter()
                .map(|&(i, _)| view.uid_at(i))
                .filter(|u| wanted.as_ref().is_none_or(|w| w.contains(u)))
                .collect();
            store.headers(view.mailbox, &uids).await?.into_iter().peekable()
        } else {
            Vec::new().into_iter().peekable()
        };
        let mut raw = Vec::new();
        let mut found = Vec::new();
        for (i, msg) in &msgs {
            let seq = *i as u32 + 1;
            let uid = view.uid_at(*i);
            let read_needed = content || wanted.as_ref().is_some_and(|w| w.contains(&uid));
            while headers.next_if(|(u, _)| *u < uid).is_some() {}
            let header = headers.next_if(|(u, h)| *u == uid && !h.is_empty()).map(|(_, h)| h);
            let read = match header {
                Some(h) => {
                    raw = h;
                    true
                }
                None if read_needed => match msg {
                    Some(m) => store.read_blob(&m.blob, &mut raw).await?,
                    None => match store.message(view.mailbox, uid).await? {
                        Some(m) => store.read_blob(&m.blob, &mut raw).await?,
                        None => false,
                    },
                },
                None => false,
            };
            let parsed = (read_needed && read).then(|| ParsedMessage::new(&raw));
            let c = Candidate {
                seq,
                uid,
                msg: msg.as_ref(),
                count,
                max_uid,
                now,
                parsed: parsed.as_ref(),
                subjects: &subjects,
            };
            if (!read_needed || read) && eval(&search.key, &c) {
                found.push((seq, uid, msg.as_ref().map(|m| m.modseq.0)));
            }
        }
        Ok(found)
    }
}

/// The SUBJECT needles the store's header cache can answer: ASCII ones
/// (its comparison folds case in ASCII only).
fn cached_subjects(key: &SearchKey) -> Vec<String> {
    match key {
        SearchKey::And(keys) => keys.iter().flat_map(cached_subjects).collect(),
        SearchKey::Or(a, b) => [cached_subjects(a), cached_subjects(b)].concat(),
        SearchKey::Not(k) => cached_subjects(k),
        SearchKey::Subject(s) if s.is_ascii() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// True when some key needs a message's flags, dates, size or modseq.
fn needs_meta(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_meta),
        SearchKey::Or(a, b) => needs_meta(a) || needs_meta(b),
        SearchKey::Not(k) => needs_meta(k),
        SearchKey::All
        | SearchKey::SequenceSet(_)
        | SearchKey::Uid(_)
        | SearchKey::New
        | SearchKey::Recent
        | SearchKey::Old
        | SearchKey::Header(..)
        | SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Subject(_)
        | SearchKey::Body(_)
        | SearchKey::Text(_) => false,
        _ => true,
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

/// True when some key needs the message's headers or text (ASCII
/// SUBJECT keys aside: the header cache answers them).
fn needs_content(key: &SearchKey) -> bool {
    match key {
        SearchKey::Subject(s) => !s.is_ascii(),
        SearchKey::And(keys) => keys.iter().any(needs_content),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Not(k) => needs_content(k),
        SearchKey::Header(..)
        | SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
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
    // Keys on metadata: `msg` is there whenever one of them is asked.
    let meta = |f: &dyn Fn(&Msg) -> bool| c.msg.is_some_and(f);
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => keys.iter().all(|k| eval(k, c)),
        SearchKey::Or(a, b) => eval(a, c) || eval(b, c),
        SearchKey::Not(k) => !eval(k, c),
        SearchKey::SequenceSet(set) => set.contains(c.seq, c.count),
        SearchKey::Uid(set) => set.contains(c.uid.get(), c.max_uid),
        SearchKey::Flag(flag) => meta(&|m| has_flag(m, flag)),
        SearchKey::NotFlag(flag) => meta(&|m| !has_flag(m, flag)),
        // No message is \Recent in this store (RFC 9051 removed it).
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Old => true,
        SearchKey::Before(d) => meta(&|m| internal_day(m) < day_number(*d)),
        SearchKey::On(d) => meta(&|m| internal_day(m) == day_number(*d)),
        SearchKey::Since(d) => meta(&|m| internal_day(m) >= day_number(*d)),
        SearchKey::SentBefore(d) => sent_day(c).is_some_and(|day| day < day_number(*d)),
        SearchKey::SentOn(d) => sent_day(c).is_some_and(|day| day == day_number(*d)),
        SearchKey::SentSince(d) => sent_day(c).is_some_and(|day| day >= day_number(*d)),
        SearchKey::Larger(n) => meta(&|m| m.size > *n),
        SearchKey::Smaller(n) => meta(&|m| m.size < *n),
        SearchKey::Header(field, needle) => header(field, needle),
        SearchKey::Bcc(s) => header("Bcc", s),
        SearchKey::Cc(s) => header("Cc", s),
        SearchKey::From(s) => header("From", s),
        SearchKey::To(s) => header("To", s),
        SearchKey::Subject(s) => match c.subjects.get(s) {
            Some((certain, _)) if certain.contains(&c.uid) => true,
            Some((_, maybe)) if maybe.contains(&c.uid) => header("Subject", s),
            Some(_) => false,
            None => header("Subject", s),
        },
        SearchKey::Body(s) => c.parsed.is_some_and(|p| p.body_contains(s)),
        SearchKey::Text(s) => c.parsed.is_some_and(|p| p.text_contains(s)),
        SearchKey::Older(secs) => meta(&|m| m.internal_date <= c.now - Duration::from_secs(u64::from(*secs))),
        SearchKey::Younger(secs) => meta(&|m| m.internal_date > c.now - Duration::from_secs(u64::from(*secs))),
        SearchKey::ModSeq { modseq, .. } => meta(&|m| m.modseq.0 >= *modseq),
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
/// INTERNALDATE's (`None` when neither is at hand).
fn sent_day(c: &Candidate<'_>) -> Option<i64> {
    match c.parsed.and_then(|p| p.sent_date()) {
        Some(d) => Some(days_from_civil(i64::from(d.year), d.month, d.day)),
        None => c.msg.map(internal_day),
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
