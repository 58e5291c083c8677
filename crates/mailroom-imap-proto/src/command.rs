//! The command model: what a client asked for, normalized and free of
//! imap-codec's types (ARCHITECTURE.md, Decisions: the alpha's API stays
//! inside this crate).
//!
//! Normalized means: FETCH macros are expanded, UID variants are a flag,
//! EXAMINE is SELECT with `read_only`, mailbox names are UTF-8 whatever
//! the client's encoding, and SEARCH's charset has been checked away.
//! Commands the [`crate::Server`] answers itself (CAPABILITY, LOGIN,
//! AUTHENTICATE, STARTTLS, ENABLE, IDLE, NAMESPACE, LOGOUT) never reach the
//! driver as a [`Command`].

mod convert;
pub(crate) mod lexer;
mod list;
mod search;
#[cfg(test)]
mod tests;

pub(crate) use convert::{Parsed, parse};
pub use list::{List, ListReturn, ListSelect};
pub use search::{Date, EntryType, Search, SearchKey, SearchReturn};

use crate::message::{Partial, Section};
use crate::response::Code;
use crate::sequence::SequenceSet;

/// A command the driver carries out, in a state where it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// NOOP in the authenticated or selected state: a chance to send
    /// pending updates (RFC 9051 §6.1.2).
    Noop,
    /// CHECK (IMAP4rev1 only; RFC 9051 removed it): same as NOOP.
    Check,
    /// ID (RFC 2971): the client's parameters, if any; answer with
    /// [`crate::response::id`].
    Id {
        /// Field/value pairs; `None` for `ID NIL`.
        params: Option<Vec<(String, Option<String>)>>,
    },
    /// SELECT or EXAMINE (RFC 9051 §6.3.2, §6.3.3). The state changes
    /// when the driver answers: OK enters the selected state, NO leaves the
    /// authenticated state.
    Select {
        /// The mailbox.
        mailbox: String,
        /// EXAMINE: no change may be made to the mailbox.
        read_only: bool,
        /// `(CONDSTORE)` was given (RFC 7162 §3.1.8).
        condstore: bool,
        /// `(QRESYNC (...))` was given (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    /// CREATE (RFC 9051 §6.3.4).
    Create {
        /// The new mailbox.
        mailbox: String,
    },
    /// DELETE (RFC 9051 §6.3.5).
    Delete {
        /// The mailbox.
        mailbox: String,
    },
    /// RENAME (RFC 9051 §6.3.6).
    Rename {
        /// The existing name.
        from: String,
        /// The new name.
        to: String,
    },
    /// SUBSCRIBE (RFC 9051 §6.3.7).
    Subscribe {
        /// The mailbox.
        mailbox: String,
    },
    /// UNSUBSCRIBE (RFC 9051 §6.3.8).
    Unsubscribe {
        /// The mailbox.
        mailbox: String,
    },
    /// LIST, basic or extended (RFC 9051 §6.3.9, RFC 5258, RFC 5819,
    /// RFC 6154).
    List(List),
    /// LSUB (IMAP4rev1, RFC 3501 §6.3.9).
    Lsub {
        /// The reference name.
        reference: String,
        /// The pattern with `%` and `*`.
        pattern: String,
    },
    /// STATUS (RFC 9051 §6.3.11).
    Status {
        /// The mailbox.
        mailbox: String,
        /// The items asked for, in order.
        items: Vec<StatusItem>,
    },
    /// APPEND (RFC 9051 §6.3.12); the message is whole, within
    /// [`crate::Limits::max_message_size`].
    Append {
        /// The destination mailbox.
        mailbox: String,
        /// Flags to set on the new message.
        flags: Vec<Flag>,
        /// The internal date to give it, if the client chose one.
        date: Option<InternalDate>,
        /// The message octets.
        message: Vec<u8>,
        /// Sent as `~{n}` (BINARY, RFC 3516 §4.4): may contain NUL.
        binary: bool,
    },
    /// CLOSE (RFC 9051 §6.4.1): expunge silently, then OK leaves the
    /// selected state.
    Close,
    /// UNSELECT (RFC 3691): OK leaves the selected state, no expunge.
    Unselect,
    /// EXPUNGE, or UID EXPUNGE (RFC 4315 §2.1) when `uids` is set.
    Expunge {
        /// Only these UIDs, for UID EXPUNGE.
        uids: Option<SequenceSet>,
    },
    /// SEARCH or UID SEARCH (RFC 9051 §6.4.4, ESEARCH of RFC 4731).
    Search(Search),
    /// FETCH or UID FETCH (RFC 9051 §6.4.5, RFC 7162).
    Fetch {
        /// UID FETCH: the set holds UIDs, and UID is in every response.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// What of them, with macros expanded, in order.
        items: Vec<FetchItem>,
        /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4).
        changed_since: Option<u64>,
        /// `(VANISHED)` with UID FETCH (RFC 7162 §3.2.6).
        vanished: bool,
    },
    /// STORE or UID STORE (RFC 9051 §6.4.6).
    Store {
        /// UID STORE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// The change.
        flags: StoreFlags,
    },
    /// COPY or UID COPY (RFC 9051 §6.4.7).
    Copy {
        /// UID COPY.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// The destination.
        mailbox: String,
    },
    /// MOVE or UID MOVE (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// The destination.
        mailbox: String,
    },
}

impl Command {
    /// The command's name for logs (`UID FETCH`, `EXAMINE`...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Noop => "NOOP",
            Command::Check => "CHECK",
            Command::Id { .. } => "ID",
            Command::Select { read_only: false, .. } => "SELECT",
            Command::Select { read_only: true, .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete { .. } => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe { .. } => "SUBSCRIBE",
            Command::Unsubscribe { .. } => "UNSUBSCRIBE",
            Command::List(_) => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge { uids: None } => "EXPUNGE",
            Command::Expunge { uids: Some(_) } => "UID EXPUNGE",
            Command::Search(s) if s.uid => "UID SEARCH",
            Command::Search(_) => "SEARCH",
            Command::Fetch { uid: true, .. } => "UID FETCH",
            Command::Fetch { .. } => "FETCH",
            Command::Store { uid: true, .. } => "UID STORE",
            Command::Store { .. } => "STORE",
            Command::Copy { uid: true, .. } => "UID COPY",
            Command::Copy { .. } => "COPY",
            Command::Move { uid: true, .. } => "UID MOVE",
            Command::Move { .. } => "MOVE",
        }
    }
}

/// The QRESYNC parameters of SELECT (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client knows.
    pub uid_validity: u32,
    /// The last known HIGHESTMODSEQ.
    pub modseq: u64,
    /// The UIDs the client knows, if it said.
    pub known_uids: Option<SequenceSet>,
    /// Message numbers and their UIDs the client knows, to limit the
    /// VANISHED reply.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A message flag (RFC 9051 §2.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
    /// A keyword (`$Forwarded`, `Junk`...), as sent.
    Keyword(String),
    /// Another `\`-flag (`\Recent` in responses, or an unknown one), the
    /// name without the backslash.
    Extension(String),
}

impl Flag {
    /// The flag as written on the wire.
    pub fn as_wire(&self) -> String {
        match self {
            Flag::Seen => "\\Seen".into(),
            Flag::Answered => "\\Answered".into(),
            Flag::Flagged => "\\Flagged".into(),
            Flag::Deleted => "\\Deleted".into(),
            Flag::Draft => "\\Draft".into(),
            Flag::Keyword(k) => k.clone(),
            Flag::Extension(e) => format!("\\{e}"),
        }
    }
}

/// An APPEND date-time: the instant and the zone it was written in
/// (RFC 9051 §9 `date-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalDate {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix_seconds: i64,
    /// The zone, in minutes east of UTC.
    pub offset_minutes: i32,
}

/// A STATUS item (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162
/// HIGHESTMODSEQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED (RFC 9051).
    Deleted,
    /// SIZE (RFC 8438).
    Size,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.6).
    HighestModSeq,
    /// RECENT (IMAP4rev1 only; always 0 here).
    Recent,
}

impl StatusItem {
    /// The item's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::Recent => "RECENT",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<StatusItem> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "RECENT" => StatusItem::Recent,
            _ => return None,
        })
    }
}

/// A FETCH data item (RFC 9051 §6.4.5), macros expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// UID.
    Uid,
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822.SIZE.
    Rfc822Size,
    /// ENVELOPE.
    Envelope,
    /// BODYSTRUCTURE (with extension data).
    BodyStructure,
    /// BODY without a section: BODYSTRUCTURE without extension data.
    Body,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        /// Which part and what of it.
        section: Section,
        /// Which octets of it.
        partial: Option<Partial>,
        /// PEEK: `\Seen` is not set.
        peek: bool,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK` (RFC 3516 §4.2): the
    /// part's content with its transfer encoding undone.
    Binary {
        /// Part numbers; empty for the whole message.
        part: Vec<u32>,
        /// Which octets.
        partial: Option<Partial>,
        /// PEEK: `\Seen` is not set.
        peek: bool,
    },
    /// `BINARY.SIZE[part]` (RFC 3516 §4.2).
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
    },
    /// RFC822 (IMAP4rev1): `BODY[]` answered as `RFC822`; sets `\Seen`.
    Rfc822,
    /// RFC822.HEADER (IMAP4rev1): `BODY.PEEK[HEADER]` answered as
    /// `RFC822.HEADER`.
    Rfc822Header,
    /// RFC822.TEXT (IMAP4rev1): `BODY[TEXT]` answered as `RFC822.TEXT`;
    /// sets `\Seen`.
    Rfc822Text,
    /// MODSEQ (RFC 7162 §3.1.5).
    ModSeq,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

/// A STORE's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFlags {
    /// Add, remove or replace.
    pub mode: StoreMode,
    /// `.SILENT`: no FETCH response for the change itself.
    pub silent: bool,
    /// The flags.
    pub flags: Vec<Flag>,
    /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
    pub unchanged_since: Option<u64>,
}

/// Why a command was refused before reaching the driver: the status and
/// text of the tagged response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// NO rather than BAD.
    pub no: bool,
    pub code: Option<Code>,
    pub text: String,
}

impl Refusal {
    pub fn bad(text: impl Into<String>) -> Refusal {
        Refusal { no: false, code: None, text: text.into() }
    }

    pub fn no(code: Option<Code>, text: impl Into<String>) -> Refusal {
        Refusal { no: true, code, text: text.into() }
    }
}
