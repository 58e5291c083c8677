//! SEARCH (RFC 9051 §6.4.4): the key tree, and ESEARCH's `RETURN (...)`
//! (RFC 4731), which imap-codec lacks and is peeled off here before the
//! rest goes to it.

use chrono::Datelike as _;
use imap_codec::imap_types::extensions::condstore_qresync::EntryTypeReq;
use imap_codec::imap_types::search::SearchKey as Key;

use super::convert::{astring, flag_from_atom, sequence_set};
use super::lexer::{self, Lexer};
use super::{Flag, Refusal};
use crate::sequence::SequenceSet;

/// A SEARCH or UID SEARCH command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// UID SEARCH: answer with UIDs.
    pub uid: bool,
    /// The criteria, all of which must match (several top-level keys are
    /// an [`SearchKey::And`]).
    pub key: SearchKey,
    /// `RETURN (...)`: answer with `* ESEARCH` (RFC 4731). `None` for a
    /// plain SEARCH, which IMAP4rev2 clients also get as ESEARCH
    /// (RFC 9051 §6.4.4) while IMAP4rev1 clients get `* SEARCH`.
    pub ret: Option<SearchReturn>,
}

/// ESEARCH result options (RFC 4731 §3.1). `RETURN ()` means ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    /// MIN: the lowest matching number.
    pub min: bool,
    /// MAX: the highest.
    pub max: bool,
    /// COUNT: how many match.
    pub count: bool,
    /// ALL: every match, as a compressed set.
    pub all: bool,
}

/// A calendar date of a date search key (RFC 9051 §9 `date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
}

/// The metadata item kind of `MODSEQ` search (RFC 7162 §3.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `priv`.
    Private,
    /// `shared`.
    Shared,
    /// `all`.
    All,
}

/// A search key (RFC 9051 §6.4.4). Strings are UTF-8 (the only charsets
/// accepted are UTF-8 and US-ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// ALL.
    All,
    /// All of these (a parenthesized list, or several keys in a row).
    And(Vec<SearchKey>),
    /// OR a b.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// NOT a.
    Not(Box<SearchKey>),
    /// A bare sequence set: message numbers.
    SequenceSet(SequenceSet),
    /// UID set.
    Uid(SequenceSet),
    /// Messages with the flag: ANSWERED, DELETED, DRAFT, FLAGGED, SEEN,
    /// KEYWORD.
    Flag(Flag),
    /// Messages without it: UNANSWERED ... UNKEYWORD.
    NotFlag(Flag),
    /// NEW (IMAP4rev1): recent and unseen; never recent here.
    New,
    /// OLD (IMAP4rev1): not recent; every message here.
    Old,
    /// RECENT (IMAP4rev1): none here.
    Recent,
    /// Internal date before the day.
    Before(Date),
    /// Internal date on the day.
    On(Date),
    /// Internal date on or after the day.
    Since(Date),
    /// Date: header before the day.
    SentBefore(Date),
    /// Date: header on the day.
    SentOn(Date),
    /// Date: header on or after the day.
    SentSince(Date),
    /// Larger than n octets.
    Larger(u64),
    /// Smaller than n octets.
    Smaller(u64),
    /// Header field `name` contains `value` (empty: the field exists).
    Header(String, String),
    /// BCC contains.
    Bcc(String),
    /// CC contains.
    Cc(String),
    /// FROM contains.
    From(String),
    /// TO contains.
    To(String),
    /// SUBJECT contains.
    Subject(String),
    /// The body contains.
    Body(String),
    /// The header or body contains.
    Text(String),
    /// OLDER n (RFC 5032): internal date more than n seconds ago.
    Older(u32),
    /// YOUNGER n (RFC 5032): internal date at most n seconds ago.
    Younger(u32),
    /// MODSEQ (RFC 7162 §3.1.5): modseq at least `modseq`.
    ModSeq {
        /// The lower bound.
        modseq: u64,
        /// The optional entry name and type, which we do not
        /// distinguish.
        entry: Option<(String, EntryType)>,
    },
}

impl SearchKey {
    /// True when the key uses MODSEQ, which enables CONDSTORE
    /// (RFC 7162 §3.1).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq { .. } => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_modseq),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::Not(a) => a.uses_modseq(),
            _ => false,
        }
    }
}

fn date(d: &imap_codec::imap_types::datetime::NaiveDate) -> Date {
    let d = d.as_ref();
    Date { year: d.year(), month: d.month(), day: d.day() }
}

fn text(s: &imap_codec::imap_types::core::AString<'_>) -> Result<String, Refusal> {
    astring(s).ok_or_else(|| Refusal::no(Some(crate::response::Code::BadCharset), "Search strings must be UTF-8"))
}

/// Converts imap-codec's key.
pub(super) fn key(k: &Key<'_>) -> Result<SearchKey, Refusal> {
    let boxed = |k: &Key<'_>| key(k).map(Box::new);
    Ok(match k {
        Key::And(keys) => SearchKey::And(keys.as_ref().iter().map(key).collect::<Result<_, _>>()?),
        Key::SequenceSet(s) => SearchKey::SequenceSet(sequence_set(s)),
        Key::All => SearchKey::All,
        Key::Answered => SearchKey::Flag(Flag::Answered),
        Key::Bcc(s) => SearchKey::Bcc(text(s)?),
        Key::Before(d) => SearchKey::Before(date(d)),
        Key::Body(s) => SearchKey::Body(text(s)?),
        Key::Cc(s) => SearchKey::Cc(text(s)?),
        Key::Deleted => SearchKey::Flag(Flag::Deleted),
        Key::Draft => SearchKey::Flag(Flag::Draft),
        Key::Flagged => SearchKey::Flag(Flag::Flagged),
        Key::From(s) => SearchKey::From(text(s)?),
        Key::Header(name, value) => SearchKey::Header(text(name)?, text(value)?),
        Key::Keyword(a) => SearchKey::Flag(flag_from_atom(a.as_ref())),
        Key::Larger(n) => SearchKey::Larger(u64::from(*n)),
        Key::New => SearchKey::New,
        Key::Not(k) => SearchKey::Not(boxed(k)?),
        Key::Old => SearchKey::Old,
        Key::Older(n) => SearchKey::Older(n.get()),
        Key::On(d) => SearchKey::On(date(d)),
        Key::Or(a, b) => SearchKey::Or(boxed(a)?, boxed(b)?),
        Key::Recent => SearchKey::Recent,
        Key::Seen => SearchKey::Flag(Flag::Seen),
        Key::SentBefore(d) => SearchKey::SentBefore(date(d)),
        Key::SentOn(d) => SearchKey::SentOn(date(d)),
        Key::SentSince(d) => SearchKey::SentSince(date(d)),
        Key::Since(d) => SearchKey::Since(date(d)),
        Key::Smaller(n) => SearchKey::Smaller(u64::from(*n)),
        Key::Subject(s) => SearchKey::Subject(text(s)?),
        Key::Text(s) => SearchKey::Text(text(s)?),
        Key::To(s) => SearchKey::To(text(s)?),
        Key::Uid(s) => SearchKey::Uid(sequence_set(s)),
        Key::Unanswered => SearchKey::NotFlag(Flag::Answered),
        Key::Undeleted => SearchKey::NotFlag(Flag::Deleted),
        Key::Undraft => SearchKey::NotFlag(Flag::Draft),
        Key::Unflagged => SearchKey::NotFlag(Flag::Flagged),
        Key::Unkeyword(a) => SearchKey::NotFlag(flag_from_atom(a.as_ref())),
        Key::Unseen => SearchKey::NotFlag(Flag::Seen),
        Key::Younger(n) => SearchKey::Younger(n.get()),
        Key::ModSequence { entry, modseq } => SearchKey::ModSeq {
            modseq: *modseq,
            entry: entry.as_ref().map(|(flag, kind)| {
                let kind = match kind {
                    EntryTypeReq::Private => EntryType::Private,
                    EntryTypeReq::Shared => EntryType::Shared,
                    EntryTypeReq::All => EntryType::All,
                };
                (format!("/flags/{flag}"), kind)
            }),
        },
    })
}

/// Takes `RETURN (...)` out of a SEARCH command: returns the options and
/// the command without them, ready for imap-codec. `None` when there is no
/// RETURN.
pub(crate) fn peel_return(msg: &[u8]) -> Result<Option<(SearchReturn, Vec<u8>)>, Refusal> {
    let mut lx = Lexer::new(msg);
    let bad = || Refusal::bad("Invalid SEARCH RETURN options");
    // The caller checked `tag [UID ]SEARCH` is there.
    let _ = lx.tag();
    let _ = lx.sp();
    if lexer::peek_name(msg).is_some_and(|(_, n)| n.starts_with("UID")) {
        let _ = lx.atom();
        let _ = lx.sp();
    }
    let _ = lx.atom();
    let start = lx.pos();
    if lx.sp().is_none() {
        return Ok(None);
    }
    match lx.atom() {
        Some(w) if w.eq_ignore_ascii_case(b"RETURN") => {}
        _ => return Ok(None),
    }
    lx.sp().ok_or_else(bad)?;
    lx.byte(b'(').ok_or_else(bad)?;
    let mut ret = SearchReturn::default();
    let mut any = false;
    if lx.byte(b')').is_none() {
        loop {
            let option = lx.atom().ok_or_else(bad)?;
            match option.to_ascii_uppercase().as_slice() {
                b"MIN" => ret.min = true,
                b"MAX" => ret.max = true,
                b"COUNT" => ret.count = true,
                b"ALL" => ret.all = true,
                // SAVE needs SEARCHRES (RFC 5182), which is not offered.
                _ => {
                    return Err(Refusal::bad(format!(
                        "Unknown SEARCH RETURN option {}",
                        String::from_utf8_lossy(option)
                    )));
                }
            }
            any = true;
            if lx.byte(b')').is_some() {
                break;
            }
            lx.sp().ok_or_else(bad)?;
        }
    }
    if !any {
        // RFC 4731 §3.1: `RETURN ()` is `RETURN (ALL)`.
        ret.all = true;
    }
    let end = lx.pos();
    let mut rest = Vec::with_capacity(msg.len());
    rest.extend_from_slice(&msg[..start]);
    rest.extend_from_slice(&msg[end..]);
    Ok(Some((ret, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peels_return() {
        let (ret, rest) =
            peel_return(b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(ret, SearchReturn { min: true, count: true, ..Default::default() });
        assert_eq!(rest, b"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
        let (ret, rest) = peel_return(b"A1 uid search return () 1:*\r\n").unwrap().unwrap();
        assert_eq!(ret, SearchReturn { all: true, ..Default::default() });
        assert_eq!(rest, b"A1 uid search 1:*\r\n");
        assert_eq!(peel_return(b"A1 SEARCH UNSEEN\r\n").unwrap(), None);
        assert!(peel_return(b"A1 SEARCH RETURN (SAVE) ALL\r\n").is_err());
        assert!(peel_return(b"A1 SEARCH RETURN MIN ALL\r\n").is_err());
        assert!(peel_return(b"A1 SEARCH RETURN (MIN\r\n").is_err());
    }
}
