//! The records the store hands out and takes in.

use std::sync::Arc;
use std::time::SystemTime;

use mailroom_types::{AccountId, Address, BlobId, Domain, DomainId, Flags, MailboxId, ModSeq, Uid, UidValidity};

/// A local domain: mail for any address in it is ours to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Row id.
    pub id: DomainId,
    /// The domain name, lower-cased.
    pub name: Domain,
}

/// A user account: one address, one password, its own mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Row id.
    pub id: AccountId,
    /// The account's address; its local part is stored lower-cased.
    pub address: Address,
    /// A PHC-format argon2 hash; never the password itself.
    pub password_hash: String,
}

/// The left-hand side of an alias: one address, or every otherwise unknown
/// address of a domain (the catch-all, written `@domain`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AliasSource {
    /// Exactly this address.
    Address(Address),
    /// Any address of this domain that is neither an account nor an alias.
    CatchAll(Domain),
}

impl AliasSource {
    /// Parses `user@domain` or `@domain`.
    pub fn parse(s: &str) -> Result<AliasSource, mailroom_types::AddressError> {
        match s.strip_prefix('@') {
            Some(domain) => Ok(AliasSource::CatchAll(Domain::parse(domain)?)),
            None => Ok(AliasSource::Address(Address::parse(s)?)),
        }
    }

    /// The domain the alias belongs to.
    pub fn domain(&self) -> &Domain {
        match self {
            AliasSource::Address(a) => a.domain(),
            AliasSource::CatchAll(d) => d,
        }
    }

    /// The stored key: the lower-cased address, or `@domain`.
    pub fn key(&self) -> String {
        match self {
            AliasSource::Address(a) => a.key(),
            AliasSource::CatchAll(d) => format!("@{d}"),
        }
    }
}

impl std::fmt::Display for AliasSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AliasSource::Address(a) => a.fmt(f),
            AliasSource::CatchAll(d) => write!(f, "@{d}"),
        }
    }
}

/// One alias row: `source` delivers to the account `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// The aliased address or catch-all.
    pub source: AliasSource,
    /// A local account's address.
    pub target: Address,
}

/// Where a recipient address leads (RFC 5321 §4.1.1.3: decided at RCPT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The domain is not one of ours.
    NotLocal,
    /// The domain is ours but no account, alias or catch-all matches.
    Unknown,
    /// These accounts receive the message (deduplicated, never empty).
    Accounts(Vec<AccountId>),
}

/// The special-use role of a mailbox (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\Sent`.
    Sent,
    /// `\Drafts`.
    Drafts,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
}

impl SpecialUse {
    /// The mailboxes every new account gets besides INBOX, with their roles.
    pub const DEFAULT_MAILBOXES: [(&'static str, SpecialUse); 5] = [
        ("Sent", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Trash", SpecialUse::Trash),
        ("Junk", SpecialUse::Junk),
        ("Archive", SpecialUse::Archive),
    ];

    /// The RFC 6154 attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

/// A mailbox (folder) of an account, with the counters IMAP needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRecord {
    /// Row id; stable across renames.
    pub id: MailboxId,
    /// The owning account.
    pub account: AccountId,
    /// Full name with `/` as hierarchy delimiter; `INBOX` is always spelt so.
    pub name: String,
    /// RFC 9051 §2.3.1.1 UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// RFC 7162 HIGHESTMODSEQ: the modseq of the latest change.
    pub highest_modseq: ModSeq,
    /// RFC 6154 role, if any.
    pub special_use: Option<SpecialUse>,
    /// Whether the account's subscription list holds this name (RFC 9051
    /// §6.3.9). Subscriptions are names, kept apart from mailboxes (see
    /// [`crate::MailStore::subscriptions`]); this is a convenience copy
    /// read in the same snapshot.
    pub subscribed: bool,
}

/// A mailbox's counters in one snapshot: what STATUS, SELECT and
/// LIST-STATUS report (RFC 9051 §6.3.11, RFC 7162 §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    /// MESSAGES: how many messages the mailbox holds.
    pub messages: u32,
    /// UNSEEN: messages without `\Seen`.
    pub unseen: u32,
    /// DELETED: messages with `\Deleted` (RFC 9051 §6.3.11).
    pub deleted: u32,
    /// SIZE: the sum of the messages' RFC822.SIZE, in octets.
    pub size: u64,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// RECENT (IMAP4rev1 only): always 0, as this store keeps no `\Recent`
    /// (RFC 9051 removed it; RFC 3501 allows a server never to set it).
    pub recent: u32,
}

/// Where copied or moved messages went: what UIDPLUS's COPYUID reports
/// (RFC 4315 §3, RFC 6851 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The destination's UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// (source UID, destination UID) in ascending source order; source UIDs
    /// that did not exist are absent.
    pub pairs: Vec<(Uid, Uid)>,
}

/// A mailbox renamed along with the one named in a rename: an inferior.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamedMailbox {
    /// The mailbox (its id, UIDVALIDITY and messages are kept).
    pub id: MailboxId,
    /// Its name before.
    pub old_name: String,
    /// Its name now.
    pub new_name: String,
}

/// What a rename did (RFC 9051 §6.3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameOutcome {
    /// The mailbox now called by the new name: the renamed one (same id and
    /// UIDVALIDITY), or, when INBOX was renamed, a new mailbox.
    pub mailbox: MailboxRecord,
    /// Inferiors renamed with it, by old name (never any for INBOX).
    pub inferiors: Vec<RenamedMailbox>,
    /// Missing parents of the new name that were created, outermost first.
    pub created_parents: Vec<MailboxRecord>,
    /// For INBOX only: its messages, moved into [`RenameOutcome::mailbox`]
    /// (INBOX UID, new UID); INBOX records them as expunged.
    pub moved: Option<CopyOutcome>,
}

/// A message without its header cache: the light listing a SELECT or a
/// FETCH of a large mailbox needs (sequence numbers, flags, modseqs, sizes,
/// where the bytes are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its UID.
    pub uid: Uid,
    /// The modseq of its last change.
    pub modseq: ModSeq,
    /// System flags.
    pub flags: Flags,
    /// Keywords, sorted, without duplicates.
    pub keywords: Vec<String>,
    /// Octets of the raw message.
    pub size: u64,
    /// Arrival time (INTERNALDATE), whole seconds.
    pub internal_date: SystemTime,
    /// Where its bytes are, for [`crate::MailStore::read_blob`].
    pub blob: BlobId,
}

/// The most characters a [`HeaderCache`] value keeps; a longer one is
/// clipped (so a search in it must check the message).
pub const HEADER_CACHE_CHARS: usize = 256;

/// A mailbox as SELECT opens it ([`crate::MailStore::selection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Its counters.
    pub status: MailboxStatus,
    /// Its messages' UIDs, ascending.
    pub uids: Vec<Uid>,
    /// The keywords set on any of its messages, sorted.
    pub keywords: Vec<String>,
}

/// What [`crate::MailStore::summaries`] has for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// The summary computed when the message was stored.
    Kept(Vec<u8>),
    /// No summary: the header section (empty when that is not kept apart
    /// either, and the message must be read whole).
    Header(Vec<u8>),
}

/// What [`crate::MailStore::search_subject`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectMatches {
    /// Messages whose cached subject contains the text.
    pub certain: Vec<Uid>,
    /// Messages whose cached subject is clipped and does not contain it:
    /// their whole subject must be checked.
    pub maybe: Vec<Uid>,
}

/// A small copy of a message's main headers, so listing and simple searches
/// need not open the blob.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderCache {
    /// The `From:` header, decoded, at most 256 characters.
    pub from: String,
    /// The `To:` header, decoded, at most 256 characters.
    pub to: String,
    /// The `Subject:` header, decoded, at most [`HEADER_CACHE_CHARS`]
    /// characters.
    pub subject: String,
    /// The `Message-ID:` header, at most 256 characters.
    pub message_id: String,
    /// The `Date:` header as Unix seconds, when it parses.
    pub date: Option<i64>,
}

/// Where a new message's raw bytes are when its rows are written.
///
/// Most mail is small: its bytes travel with the metadata into the store,
/// which appends them to a pack file shared by many messages, so storing
/// it costs no file, no directory entry and no fsync of its own (one group
/// commit syncs the packs for a whole batch). A
/// message too large to hold in memory while it arrives is streamed into a
/// blob file instead, which must be finished ([`crate::BlobWriter::finish`])
/// before its rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewContent {
    /// A finished blob file, and its header section (see
    /// [`header_section`]; empty when unknown), kept in the database so
    /// that ENVELOPE and header searches need not open the file.
    File(BlobId, Vec<u8>),
    /// The bytes themselves, at most [`NewContent::INLINE_MAX`] octets and
    /// ending in CRLF (see [`NewContent::inline`]). A `Vec` inside, so
    /// that the buffer a message arrived in becomes its content uncopied.
    Inline(BlobId, Arc<Vec<u8>>),
}

impl NewContent {
    /// The largest message kept in a pack rather than in a file of its own. A
    /// receiver buffers at most this much in memory before it spills to a
    /// blob file.
    pub const INLINE_MAX: usize = 256 * 1024;

    /// Inline content, with an unterminated last line ended by CRLF as
    /// [`crate::BlobWriter::finish`] does for files, so every stored
    /// message holds complete lines. Returns `None` past
    /// [`NewContent::INLINE_MAX`], handing the bytes back as they came.
    pub fn inline(id: BlobId, mut bytes: Vec<u8>) -> Result<NewContent, Vec<u8>> {
        let complete = bytes.is_empty() || bytes.ends_with(b"\r\n");
        if bytes.len() + if complete { 0 } else { 2 } > Self::INLINE_MAX {
            return Err(bytes);
        }
        if !complete {
            bytes.extend_from_slice(b"\r\n");
        }
        Ok(NewContent::Inline(id, Arc::new(bytes)))
    }

    /// The length of inline content; `None` for a file.
    pub fn inline_len(&self) -> Option<u64> {
        match self {
            NewContent::Inline(_, bytes) => Some(bytes.len() as u64),
            NewContent::File(..) => None,
        }
    }

    /// The blob id the message's rows reference.
    pub fn blob(&self) -> &BlobId {
        match self {
            NewContent::File(id, _) | NewContent::Inline(id, _) => id,
        }
    }
}

/// The most octets of a header section kept apart from the message.
pub const MAX_HEADER_SECTION: usize = 64 * 1024;

/// The header section of a raw message: its start up to and including the
/// empty line that ends it (RFC 5322 §2.1), or the whole message when it
/// has no body. `None` when that is longer than [`MAX_HEADER_SECTION`] (or
/// `raw`, a message's first octets, ends before it does).
pub fn header_section(raw: &[u8]) -> Option<&[u8]> {
    if raw.starts_with(b"\r\n") {
        return Some(&raw[..2]);
    }
    let window = &raw[..raw.len().min(MAX_HEADER_SECTION)];
    match memchr::memmem::find(window, b"\r\n\r\n") {
        Some(i) => Some(&raw[..i + 4]),
        None if raw.len() < MAX_HEADER_SECTION => Some(raw),
        None => None,
    }
}

/// A message about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The raw RFC 5322 bytes.
    pub content: NewContent,
    /// Size of the raw bytes in octets (RFC822.SIZE).
    pub size: u64,
    /// The IMAP INTERNALDATE: when the message arrived.
    pub internal_date: SystemTime,
    /// Initial system flags.
    pub flags: Flags,
    /// Initial keywords.
    pub keywords: Vec<String>,
    /// Header cache for listings.
    pub headers: HeaderCache,
}

/// A stored message as a mailbox lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// The mailbox holding it.
    pub mailbox: MailboxId,
    /// Its UID in that mailbox.
    pub uid: Uid,
    /// The modseq of its last change.
    pub modseq: ModSeq,
    /// System flags.
    pub flags: Flags,
    /// Keywords, sorted, without duplicates.
    pub keywords: Vec<String>,
    /// Arrival time (INTERNALDATE), whole seconds.
    pub internal_date: SystemTime,
    /// Octets of the raw message.
    pub size: u64,
    /// Where the raw bytes are.
    pub blob: BlobId,
    /// Cached headers.
    pub headers: HeaderCache,
}

/// How a flag update applies (IMAP STORE `FLAGS`, `+FLAGS`, `-FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// Replace the flags and keywords.
    Replace,
    /// Add to them.
    Add,
    /// Remove from them.
    Remove,
}

/// The result of a flag update for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The message.
    pub uid: Uid,
    /// Its modseq after the update (unchanged when the update changed nothing).
    pub modseq: ModSeq,
    /// Its flags after the update.
    pub flags: Flags,
    /// Its keywords after the update.
    pub keywords: Vec<String>,
}

/// What changed in a mailbox, broadcast to every interested session (IMAP
/// IDLE, webmail refresh) after the change has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The account owning the mailbox.
    pub account: AccountId,
    /// The mailbox that changed.
    pub mailbox: MailboxId,
    /// Its HIGHESTMODSEQ after the change (for a deleted mailbox, its last).
    pub modseq: ModSeq,
    /// What happened to it; events of one commit are coalesced per mailbox
    /// into the strongest kind ([`ChangeKind::Deleted`] over
    /// [`ChangeKind::Renamed`] over [`ChangeKind::Messages`]).
    pub kind: ChangeKind,
}

/// The kind of a [`ChangeEvent`]. Every kind means "re-read what you hold
/// of this mailbox"; the stronger ones say more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Messages arrived, changed flags or were expunged.
    Messages,
    /// The mailbox has a new name (and may have message changes too): an
    /// IMAP session with it selected keeps it selected (RFC 9051 §6.3.6).
    Renamed,
    /// The mailbox is gone: a session with it selected must end the
    /// selection (RFC 9051 §7.1, `BYE` or `NO`), as its id never comes back.
    Deleted,
}
