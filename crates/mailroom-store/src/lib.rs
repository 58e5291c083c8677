//! Mailroom's storage: domains, accounts and aliases; mailboxes with the
//! counters IMAP needs (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ); messages with
//! flags, keywords and modseq; and the blob store for raw RFC 5322 bytes.
//!
//! The [`MailStore`] trait is domain-level, not a key-value layer: each
//! method is one transaction. Front ends hold an [`AnyStore`], which
//! dispatches to a backend (SQLite today, PostgreSQL later) so that no front
//! end ever names a backend. SQL lives only in this crate.
//!
//! # Durability
//!
//! A small message's bytes ([`NewContent::Inline`]) are appended to a pack
//! file and fdatasync'd right before the transaction holding its metadata
//! commits; a large one's are written into the [`BlobStore`] and fsync'd,
//! file and directory ([`BlobWriter::finish`]), before its metadata is
//! committed. Concurrent commits are grouped, so many deliveries share one
//! pack sync and one database fsync. Once
//! [`MailStore::deliver`] or [`MailStore::append`] returns `Ok`, a crash loses
//! nothing; before that, nothing half-written is visible (an orphaned blob
//! file or pack extent is invisible, as no row points at it).
//!
//! # Ordering
//!
//! UIDs strictly increase per mailbox and are never reused; every arrival,
//! flag change and expunge bumps the mailbox's HIGHESTMODSEQ, and the
//! message's modseq is set to it. After each commit a [`ChangeEvent`] is
//! broadcast.
#![warn(missing_docs)]

mod blob;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
mod model;
pub mod names;
mod pack;
mod queue;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::{Duration, SystemTime};

use mailroom_types::{AccountId, Address, BlobId, Clock, Domain, DomainId, MailboxId, ModSeq, QueueId, Uid};
use tokio::sync::broadcast;

pub use blob::{BlobBytes, BlobExtent, BlobStore, BlobWriter, Scanned};
pub use error::StoreError;
pub use model::{
    AccountRecord, AliasRecord, AliasSource, ChangeEvent, ChangeKind, CopyOutcome, DomainRecord, FlagChange, FlagOp,
    HEADER_CACHE_CHARS, HeaderCache, MAX_HEADER_SECTION, MailboxRecord, MailboxStatus, MessageMeta, MessageRecord,
    NewContent, NewMessage, RenameOutcome, RenamedMailbox, Resolution, Selection, SpecialUse, SubjectMatches, Summary,
    header_section,
};
pub use queue::{
    AttemptReport, NewQueueEntry, QueueEntry, QueuedRecipient, RecipientId, RecipientState, RecipientUpdate, Submission,
};
pub use sqlite::SqliteStore;

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where and how to open the store.
#[derive(Clone)]
pub struct StoreOptions {
    /// The data directory: holds `mailroom.sqlite3` and `blobs/`.
    pub data_dir: PathBuf,
    /// The source of "now" for the values the store stamps itself: new
    /// mailboxes' UIDVALIDITY (RFC 9051 §2.3.1.1) and migration records.
    /// The store never reads the wall clock on its own.
    pub clock: Arc<dyn Clock>,
    /// Computes the summary kept beside each new message's header section
    /// (see [`Summarizer`]); `None` keeps none.
    pub summarize: Option<Summarizer>,
}

/// A function of a message's header section whose result the store keeps
/// with it and hands back from [`MailStore::summaries`]: what a protocol
/// computes from every header of a mailbox at once (IMAP's ENVELOPE), done
/// once per message when it is stored instead of on every read. Opaque to
/// the store; the result should say which version of the function made it,
/// so that a reader can tell a summary made by an older one.
pub type Summarizer = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

impl StoreOptions {
    /// Options for the store under `data_dir`, taking time from `clock`,
    /// keeping no summaries.
    pub fn new(data_dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> StoreOptions {
        StoreOptions { data_dir: data_dir.into(), clock, summarize: None }
    }

    /// The same options, with header summaries computed by `summarize`.
    pub fn with_summarizer(mut self, summarize: Summarizer) -> StoreOptions {
        self.summarize = Some(summarize);
        self
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Clock` has no `Debug`; the data directory is what matters in logs.
        f.debug_struct("StoreOptions").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

/// Everything a front end or admin command may ask of storage.
///
/// Each method is one transaction. Methods that write return only after the
/// change is durable.
pub trait MailStore: Send + Sync + 'static {
    /// Adds a local domain.
    fn add_domain(&self, name: &Domain) -> impl Future<Output = Result<DomainId>> + Send;
    /// All local domains, sorted by name.
    fn list_domains(&self) -> impl Future<Output = Result<Vec<DomainRecord>>> + Send;
    /// Removes a domain; refused with [`StoreError::Conflict`] while it has
    /// accounts or aliases.
    fn delete_domain(&self, name: &Domain) -> impl Future<Output = Result<()>> + Send;

    /// Adds an account in an existing local domain together with its INBOX
    /// and the [`SpecialUse::DEFAULT_MAILBOXES`], in one transaction.
    /// [`StoreError::NotFound`] if the domain is not local,
    /// [`StoreError::AlreadyExists`] for a duplicate (local part compared
    /// case-insensitively), [`StoreError::Conflict`] if an exact alias has
    /// this address. Each new mailbox gets a UIDVALIDITY larger than any the
    /// store handed out before.
    fn add_account(&self, address: &Address, password_hash: &str) -> impl Future<Output = Result<AccountId>> + Send;
    /// Accounts, sorted by address, optionally of one domain only
    /// ([`StoreError::NotFound`] if that domain is not local).
    fn list_accounts(&self, domain: Option<&Domain>) -> impl Future<Output = Result<Vec<AccountRecord>>> + Send;
    /// The account with this address (case-insensitive local part).
    fn account(&self, address: &Address) -> impl Future<Output = Result<Option<AccountRecord>>> + Send;
    /// Replaces an account's password hash.
    fn set_password(&self, address: &Address, password_hash: &str) -> impl Future<Output = Result<()>> + Send;
    /// Removes an account, its mailboxes, messages, aliases pointing at it,
    /// and blobs no other message references.
    fn delete_account(&self, address: &Address) -> impl Future<Output = Result<()>> + Send;

    /// Adds an alias; the target must be an existing account, and an exact
    /// source must not itself be an account.
    ///
    /// Errors: [`StoreError::NotFound`] when the source's domain is not local
    /// or the target is a missing account of a local domain;
    /// [`StoreError::Conflict`] when the target's domain is not local or the
    /// exact source is an account; [`StoreError::AlreadyExists`] for a
    /// duplicate (source, target) pair.
    fn add_alias(&self, source: &AliasSource, target: &Address) -> impl Future<Output = Result<()>> + Send;
    /// Aliases, sorted by source key then target, optionally of one domain
    /// only ([`StoreError::NotFound`] if that domain is not local).
    fn list_aliases(&self, domain: Option<&Domain>) -> impl Future<Output = Result<Vec<AliasRecord>>> + Send;
    /// Removes one alias row, or every row of `source` when `target` is
    /// `None`; [`StoreError::NotFound`] if nothing matched.
    fn delete_alias(&self, source: &AliasSource, target: Option<&Address>) -> impl Future<Output = Result<()>> + Send;
    /// Resolves a recipient: account first, then exact alias, then catch-all.
    fn resolve_recipient(&self, address: &Address) -> impl Future<Output = Result<Resolution>> + Send;

    /// An account's mailboxes, sorted by name with INBOX first.
    fn mailboxes(&self, account: AccountId) -> impl Future<Output = Result<Vec<MailboxRecord>>> + Send;
    /// One mailbox by name (`INBOX` case-insensitive, also as the first
    /// level of a longer name; everything else exact).
    fn mailbox(&self, account: AccountId, name: &str) -> impl Future<Output = Result<Option<MailboxRecord>>> + Send;
    /// One mailbox by id; `None` once it is deleted. Ids are never reused,
    /// so a session holding a mailbox's id can always tell that it is gone.
    fn mailbox_by_id(&self, mailbox: MailboxId) -> impl Future<Output = Result<Option<MailboxRecord>>> + Send;

    /// Creates a mailbox (RFC 9051 §6.3.4 CREATE) and each missing parent
    /// of it (`a/b/c` creates `a` and `a/b` if they do not exist), each
    /// with a fresh UIDVALIDITY, none subscribed. Returns the new mailbox.
    /// No [`ChangeEvent`]: no session holds a mailbox that did not exist.
    ///
    /// Errors: [`StoreError::InvalidName`] for a name [`names`] refuses;
    /// [`StoreError::AlreadyExists`] if the mailbox exists (INBOX, in any
    /// spelling, always does); [`StoreError::NotFound`] for an unknown
    /// account.
    fn create_mailbox(&self, account: AccountId, name: &str) -> impl Future<Output = Result<MailboxRecord>> + Send;
    /// Deletes a mailbox and its messages (RFC 9051 §6.3.5 DELETE),
    /// releasing blobs nothing else references. Its inferiors stay, and so
    /// does its subscription (RFC 9051 §6.3.9); no expunge is recorded, as
    /// the mailbox and its id are gone for good (sessions holding it get a
    /// [`ChangeKind::Deleted`] event). Returns the deleted mailbox's id.
    ///
    /// Errors: [`StoreError::Conflict`] for INBOX; [`StoreError::NotFound`]
    /// if no such mailbox exists (also for a parent that exists only
    /// through its inferiors).
    fn delete_mailbox(&self, account: AccountId, name: &str) -> impl Future<Output = Result<MailboxId>> + Send;
    /// Renames a mailbox and every inferior (`old/x` becomes `new/x`) per
    /// RFC 9051 §6.3.6, keeping their ids, UIDVALIDITY, messages, special
    /// use, and subscriptions (a subscribed name is replaced by its new
    /// name); creates missing parents of `new`. Renaming INBOX instead
    /// creates a mailbox `new` (fresh UIDVALIDITY) and moves every INBOX
    /// message into it (new UIDs there; INBOX records them as expunged, and
    /// stays, with its inferiors untouched). Returns what happened, for the
    /// IMAP driver's reply and for sessions with one of these selected.
    ///
    /// Errors: [`StoreError::NotFound`] if `old` does not exist;
    /// [`StoreError::InvalidName`] if `new`, or a renamed inferior's new
    /// name, is refused by [`names`]; [`StoreError::AlreadyExists`] if
    /// `new` or any renamed inferior's new name exists;
    /// [`StoreError::Conflict`] for a rename into its own inferior
    /// (`a` to `a/b`).
    fn rename_mailbox(
        &self,
        account: AccountId,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Result<RenameOutcome>> + Send;

    /// Adds a name to the account's subscriptions (RFC 9051 §6.3.7
    /// SUBSCRIBE), whether or not a mailbox of that name exists. Returns
    /// false if it was subscribed already (not an error: subscribing twice
    /// is harmless). Not named `subscribe`: that is the change feed.
    ///
    /// Errors: [`StoreError::InvalidName`]; [`StoreError::NotFound`] for an
    /// unknown account.
    fn add_subscription(&self, account: AccountId, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Removes a name from the account's subscriptions (RFC 9051 §6.3.8
    /// UNSUBSCRIBE). Idempotent: returns false, not an error, if the name
    /// was not subscribed, and the front end picks the reply (RFC 9051 lets
    /// the server answer OK or NO).
    fn remove_subscription(&self, account: AccountId, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// The account's subscribed names, INBOX first, then by name; names of
    /// mailboxes that do not (or no longer) exist included.
    fn subscriptions(&self, account: AccountId) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// A mailbox's counts and counters in one snapshot (STATUS, SELECT,
    /// LIST-STATUS), computed from an index, so a 10,000-message mailbox
    /// answers in a few milliseconds.
    fn mailbox_status(&self, mailbox: MailboxId) -> impl Future<Output = Result<MailboxStatus>> + Send;

    /// Delivers one message into the INBOX of every recipient in a single
    /// transaction, group-committed with concurrent deliveries. Returns the
    /// mailbox and UID each copy got, in recipient order. A recipient
    /// without an INBOX fails the whole delivery with
    /// [`StoreError::NotFound`].
    fn deliver(
        &self,
        message: &NewMessage,
        recipients: &[AccountId],
    ) -> impl Future<Output = Result<Vec<(MailboxId, Uid)>>> + Send;
    /// Like [`MailStore::deliver`], but each copy goes into the recipient's
    /// mailbox of the given special use (the oldest, if several), or its
    /// INBOX when it has none: quarantined mail into Junk.
    fn deliver_special_use(
        &self,
        message: &NewMessage,
        recipients: &[AccountId],
        special: SpecialUse,
    ) -> impl Future<Output = Result<Vec<(MailboxId, Uid)>>> + Send;
    /// Stores one message into a mailbox (IMAP APPEND, Sent copies).
    fn append(&self, mailbox: MailboxId, message: &NewMessage) -> impl Future<Output = Result<(Uid, ModSeq)>> + Send;
    /// The messages of a mailbox in UID order ([`StoreError::NotFound`] for
    /// an unknown mailbox, as for every method taking a [`MailboxId`]).
    fn messages(&self, mailbox: MailboxId) -> impl Future<Output = Result<Vec<MessageRecord>>> + Send;
    /// One message, or `None` once it is expunged: a POP3 or IMAP session
    /// checks that a message of its snapshot still exists.
    fn message(&self, mailbox: MailboxId, uid: Uid) -> impl Future<Output = Result<Option<MessageRecord>>> + Send;
    /// Changes flags and keywords of the given UIDs (missing UIDs are
    /// skipped). Only messages whose flags really change get a new modseq.
    /// With `unchanged_since` (RFC 7162 UNCHANGEDSINCE), messages whose
    /// modseq is higher are left alone and not returned.
    fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: mailroom_types::Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> impl Future<Output = Result<Vec<FlagChange>>> + Send;
    /// Removes the given UIDs (missing ones are skipped), remembering each
    /// with the new modseq for QRESYNC, and deletes blobs nothing references
    /// any more. Returns the UIDs removed.
    fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> impl Future<Output = Result<Vec<Uid>>> + Send;
    /// Expunges the messages flagged `\Deleted`: all of them (EXPUNGE,
    /// CLOSE) or only those among `within` (RFC 4315 UID EXPUNGE), deciding
    /// which inside the write's transaction, so that a flag change made by
    /// another session in between cannot expunge a message it undeleted.
    /// Otherwise as [`MailStore::expunge`]; returns the UIDs removed,
    /// ascending.
    fn expunge_deleted(
        &self,
        mailbox: MailboxId,
        within: Option<&[Uid]>,
    ) -> impl Future<Output = Result<Vec<Uid>>> + Send;
    /// Copies messages (RFC 9051 §6.4.7 COPY) with their flags, keywords,
    /// internal date, size and header cache; the copies share the source's
    /// blob, so no byte is copied. They take new UIDs in `to` in ascending
    /// source UID order, and one new modseq there. Missing source UIDs are
    /// skipped; `from == to` duplicates the messages. Returns the pairs
    /// for UIDPLUS COPYUID (empty when nothing was copied, and then nothing
    /// changed).
    ///
    /// Errors: [`StoreError::NotFound`] if either mailbox is missing;
    /// [`StoreError::Conflict`] if they belong to different accounts, or
    /// if `to` has used every UID.
    fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> impl Future<Output = Result<CopyOutcome>> + Send;
    /// Moves messages (RFC 6851 MOVE): a copy as [`MailStore::copy_messages`]
    /// and the expunge of the sources, in one transaction. The sources are
    /// recorded as expunged with `from`'s new modseq (for VANISHED); both
    /// mailboxes get an event. Same result and errors as a copy.
    fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> impl Future<Output = Result<CopyOutcome>> + Send;
    /// Every message as [`MessageMeta`], in UID order: what SELECT needs of
    /// a large mailbox (sequence numbers, flags, modseqs), without reading
    /// and allocating the header caches [`MailStore::messages`] returns.
    fn message_index(&self, mailbox: MailboxId) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;
    /// [`MailStore::message_index`] with each message's header summary, as
    /// [`MailStore::summaries`] gives it, read in one pass: a client's
    /// first FETCH of a large mailbox's ENVELOPEs.
    fn summarized_index(&self, mailbox: MailboxId) -> impl Future<Output = Result<Vec<(MessageMeta, Summary)>>> + Send;
    /// Messages whose modseq is above `since`, in UID order (RFC 7162
    /// CHANGEDSINCE, QRESYNC's flag resynchronisation).
    fn changed_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> impl Future<Output = Result<Vec<MessageRecord>>> + Send;
    /// What SELECT needs, in one snapshot: the counters, the UIDs
    /// (ascending) to number the messages, and the keywords in use (for
    /// the FLAGS response), read from indexes only.
    fn selection(&self, mailbox: MailboxId) -> impl Future<Output = Result<Selection>> + Send;
    /// The messages whose subject contains `needle` (IMAP SEARCH SUBJECT),
    /// from the header cache: `certain` ones contain it, `maybe` ones have
    /// a clipped cached subject to check whole. Case is ignored in ASCII
    /// only, so a caller with a non-ASCII needle checks the messages itself.
    fn search_subject(&self, mailbox: MailboxId, needle: &str) -> impl Future<Output = Result<SubjectMatches>> + Send;
    /// The header sections of the messages `uids` (ascending), each with
    /// its UID, for ENVELOPE and header fetches and searches that need no
    /// body; an empty one where the store kept none (then read the blob).
    /// Missing UIDs are skipped.
    fn headers(&self, mailbox: MailboxId, uids: &[Uid]) -> impl Future<Output = Result<Vec<(Uid, Vec<u8>)>>> + Send;
    /// The header summaries of `uids` (ascending) in `mailbox` (see
    /// [`Summarizer`]), each with its UID. A message stored without one
    /// comes with its header section instead, as [`MailStore::headers`]
    /// gives it, for the caller to compute what it needs.
    fn summaries(&self, mailbox: MailboxId, uids: &[Uid]) -> impl Future<Output = Result<Vec<(Uid, Summary)>>> + Send;
    /// UIDs expunged at a modseq above `since`, ascending (RFC 7162 §3.2.5
    /// VANISHED). Includes the UIDs a move or an INBOX rename took away.
    fn vanished_since(&self, mailbox: MailboxId, since: ModSeq) -> impl Future<Output = Result<Vec<Uid>>> + Send;

    /// Accepts a message: delivers its local copies and queues it for its
    /// remote recipients, in one transaction sharing one blob (see
    /// [`Submission`]). Returns the local copies' mailboxes and UIDs.
    fn submit(&self, submission: &Submission) -> impl Future<Output = Result<Vec<(MailboxId, Uid)>>> + Send;
    /// Claims up to `limit` queued recipients due at `now`, oldest due
    /// first, grouped by message: counts an attempt for each and moves its
    /// next attempt to `now + lease`, before the caller dials, so a crash
    /// mid-attempt delays the retry instead of repeating it at once.
    fn claim_due(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<QueueEntry>>> + Send;
    /// Records an attempt's outcome per recipient and stores its notice, in
    /// one transaction; removes the entry once no recipient is pending.
    fn report_attempt(&self, report: &AttemptReport) -> impl Future<Output = Result<()>> + Send;
    /// The queue, oldest first, or the one entry `id`, with every
    /// recipient.
    fn queue_entries(&self, id: Option<&QueueId>) -> impl Future<Output = Result<Vec<QueueEntry>>> + Send;
    /// Makes the pending recipients of one entry (or all) due at `now`;
    /// returns how many. [`StoreError::NotFound`] for an unknown id.
    fn retry_queued(&self, id: Option<&QueueId>, now: SystemTime) -> impl Future<Output = Result<usize>> + Send;
    /// Removes a queue entry without notifying anyone; its blob goes unless
    /// a mailbox copy references it. [`StoreError::NotFound`] if absent.
    fn delete_queued(&self, id: &QueueId) -> impl Future<Output = Result<()>> + Send;
    /// When the earliest pending queued recipient is due, if any.
    fn next_queue_due(&self) -> impl Future<Output = Result<Option<SystemTime>>> + Send;

    /// Deletes blob files in the newest `shards` shard directories that no
    /// message references: what a crash left between writing a blob and
    /// committing its rows; and frees the regions of pack files no message
    /// references (a crash, or another process's deletions). Only for a
    /// server starting up, holding the data directory's lock, before it
    /// accepts anything (a blob being written has no row yet either): from
    /// then on, this handle's process frees the space of what is deleted.
    /// Returns how many files and regions were freed.
    fn sweep_orphan_blobs(&self, shards: usize) -> impl Future<Output = Result<usize>> + Send;

    /// Reads a message's raw bytes into `buf` (replacing its contents, so a
    /// caller reading many messages reuses one warm buffer). `false` when
    /// the blob no longer exists: its last message was expunged.
    fn read_blob(&self, id: &BlobId, buf: &mut Vec<u8>) -> impl Future<Output = Result<bool>> + Send;
    /// Reads each of `blobs` and calls `visit` with its index in `blobs`
    /// and its bytes (`None` when the blob no longer exists); the results
    /// come back in `blobs`' order. The reads and the visits run on the
    /// store's read threads, several at once, so that work over a whole
    /// mailbox (a SEARCH of its text) uses every core and never an async
    /// thread. Each blob is in memory only while it is visited, in a buffer
    /// each read thread reuses, unless the visitor takes it
    /// ([`BlobBytes::take`]).
    fn scan_blobs<T, F>(&self, blobs: Vec<BlobId>, visit: F) -> impl Future<Output = Result<Vec<T>>> + Send
    where
        T: Send + 'static,
        F: Fn(usize, Option<BlobBytes<'_>>) -> T + Send + Sync + 'static;
    /// Like [`MailStore::scan_blobs`], but a blob of at least `read_below`
    /// octets that lies in a file is only located ([`Scanned::Extent`]):
    /// a server can send it from there to a socket without reading it.
    fn scan_extents<T, F>(
        &self,
        blobs: Vec<BlobId>,
        read_below: u64,
        visit: F,
    ) -> impl Future<Output = Result<Vec<T>>> + Send
    where
        T: Send + 'static,
        F: Fn(usize, Option<Scanned<'_>>) -> T + Send + Sync + 'static;

    /// Where large messages' bytes are written (see [`NewContent`]).
    fn blobs(&self) -> &BlobStore;
    /// Change events for every commit made through this handle's process.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;
}

/// The store a front end holds: one of the backends, chosen at start.
#[derive(Clone)]
pub enum AnyStore {
    /// The embedded default.
    Sqlite(SqliteStore),
}

impl AnyStore {
    /// Opens (creating if needed) the configured store and applies pending
    /// migrations.
    pub async fn open(options: &StoreOptions) -> Result<AnyStore> {
        Ok(AnyStore::Sqlite(SqliteStore::open(options).await?))
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
        }
    };
}

impl MailStore for AnyStore {
    async fn add_domain(&self, name: &Domain) -> Result<DomainId> {
        dispatch!(self, s => s.add_domain(name).await)
    }
    async fn list_domains(&self) -> Result<Vec<DomainRecord>> {
        dispatch!(self, s => s.list_domains().await)
    }
    async fn delete_domain(&self, name: &Domain) -> Result<()> {
        dispatch!(self, s => s.delete_domain(name).await)
    }
    async fn add_account(&self, address: &Address, password_hash: &str) -> Result<AccountId> {
        dispatch!(self, s => s.add_account(address, password_hash).await)
    }
    async fn list_accounts(&self, domain: Option<&Domain>) -> Result<Vec<AccountRecord>> {
        dispatch!(self, s => s.list_accounts(domain).await)
    }
    async fn account(&self, address: &Address) -> Result<Option<AccountRecord>> {
        dispatch!(self, s => s.account(address).await)
    }
    async fn set_password(&self, address: &Address, password_hash: &str) -> Result<()> {
        dispatch!(self, s => s.set_password(address, password_hash).await)
    }
    async fn delete_account(&self, address: &Address) -> Result<()> {
        dispatch!(self, s => s.delete_account(address).await)
    }
    async fn add_alias(&self, source: &AliasSource, target: &Address) -> Result<()> {
        dispatch!(self, s => s.add_alias(source, target).await)
    }
    async fn list_aliases(&self, domain: Option<&Domain>) -> Result<Vec<AliasRecord>> {
        dispatch!(self, s => s.list_aliases(domain).await)
    }
    async fn delete_alias(&self, source: &AliasSource, target: Option<&Address>) -> Result<()> {
        dispatch!(self, s => s.delete_alias(source, target).await)
    }
    async fn resolve_recipient(&self, address: &Address) -> Result<Resolution> {
        dispatch!(self, s => s.resolve_recipient(address).await)
    }
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>> {
        dispatch!(self, s => s.mailboxes(account).await)
    }
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
        dispatch!(self, s => s.mailbox(account, name).await)
    }
    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<MailboxRecord>> {
        dispatch!(self, s => s.mailbox_by_id(mailbox).await)
    }
    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord> {
        dispatch!(self, s => s.create_mailbox(account, name).await)
    }
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxId> {
        dispatch!(self, s => s.delete_mailbox(account, name).await)
    }
    async fn rename_mailbox(&self, account: AccountId, old: &str, new: &str) -> Result<RenameOutcome> {
        dispatch!(self, s => s.rename_mailbox(account, old, new).await)
    }
    async fn add_subscription(&self, account: AccountId, name: &str) -> Result<bool> {
        dispatch!(self, s => s.add_subscription(account, name).await)
    }
    async fn remove_subscription(&self, account: AccountId, name: &str) -> Result<bool> {
        dispatch!(self, s => s.remove_subscription(account, name).await)
    }
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        dispatch!(self, s => s.subscriptions(account).await)
    }
    async fn mailbox_status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        dispatch!(self, s => s.mailbox_status(mailbox).await)
    }
    async fn deliver(&self, message: &NewMessage, recipients: &[AccountId]) -> Result<Vec<(MailboxId, Uid)>> {
        dispatch!(self, s => s.deliver(message, recipients).await)
    }
    async fn deliver_special_use(
        &self,
        message: &NewMessage,
        recipients: &[AccountId],
        special: SpecialUse,
    ) -> Result<Vec<(MailboxId, Uid)>> {
        dispatch!(self, s => s.deliver_special_use(message, recipients, special).await)
    }
    async fn append(&self, mailbox: MailboxId, message: &NewMessage) -> Result<(Uid, ModSeq)> {
        dispatch!(self, s => s.append(mailbox, message).await)
    }
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
        dispatch!(self, s => s.messages(mailbox).await)
    }
    async fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>> {
        dispatch!(self, s => s.message(mailbox, uid).await)
    }
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: mailroom_types::Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<Vec<FlagChange>> {
        dispatch!(self, s => s.store_flags(mailbox, uids, op, flags, keywords, unchanged_since).await)
    }
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        dispatch!(self, s => s.expunge(mailbox, uids).await)
    }
    async fn expunge_deleted(&self, mailbox: MailboxId, within: Option<&[Uid]>) -> Result<Vec<Uid>> {
        dispatch!(self, s => s.expunge_deleted(mailbox, within).await)
    }
    async fn copy_messages(&self, from: MailboxId, uids: &[Uid], to: MailboxId) -> Result<CopyOutcome> {
        dispatch!(self, s => s.copy_messages(from, uids, to).await)
    }
    async fn move_messages(&self, from: MailboxId, uids: &[Uid], to: MailboxId) -> Result<CopyOutcome> {
        dispatch!(self, s => s.move_messages(from, uids, to).await)
    }
    async fn message_index(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        dispatch!(self, s => s.message_index(mailbox).await)
    }
    async fn summarized_index(&self, mailbox: MailboxId) -> Result<Vec<(MessageMeta, Summary)>> {
        dispatch!(self, s => s.summarized_index(mailbox).await)
    }
    async fn changed_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<MessageRecord>> {
        dispatch!(self, s => s.changed_since(mailbox, since).await)
    }
    async fn selection(&self, mailbox: MailboxId) -> Result<Selection> {
        dispatch!(self, s => s.selection(mailbox).await)
    }
    async fn search_subject(&self, mailbox: MailboxId, needle: &str) -> Result<SubjectMatches> {
        dispatch!(self, s => s.search_subject(mailbox, needle).await)
    }
    async fn headers(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>> {
        dispatch!(self, s => s.headers(mailbox, uids).await)
    }
    async fn summaries(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Summary)>> {
        dispatch!(self, s => s.summaries(mailbox, uids).await)
    }
    async fn vanished_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<Uid>> {
        dispatch!(self, s => s.vanished_since(mailbox, since).await)
    }
    async fn submit(&self, submission: &Submission) -> Result<Vec<(MailboxId, Uid)>> {
        dispatch!(self, s => s.submit(submission).await)
    }
    async fn claim_due(&self, now: SystemTime, lease: Duration, limit: usize) -> Result<Vec<QueueEntry>> {
        dispatch!(self, s => s.claim_due(now, lease, limit).await)
    }
    async fn report_attempt(&self, report: &AttemptReport) -> Result<()> {
        dispatch!(self, s => s.report_attempt(report).await)
    }
    async fn queue_entries(&self, id: Option<&QueueId>) -> Result<Vec<QueueEntry>> {
        dispatch!(self, s => s.queue_entries(id).await)
    }
    async fn retry_queued(&self, id: Option<&QueueId>, now: SystemTime) -> Result<usize> {
        dispatch!(self, s => s.retry_queued(id, now).await)
    }
    async fn delete_queued(&self, id: &QueueId) -> Result<()> {
        dispatch!(self, s => s.delete_queued(id).await)
    }
    async fn next_queue_due(&self) -> Result<Option<SystemTime>> {
        dispatch!(self, s => s.next_queue_due().await)
    }
    async fn sweep_orphan_blobs(&self, shards: usize) -> Result<usize> {
        dispatch!(self, s => s.sweep_orphan_blobs(shards).await)
    }
    async fn read_blob(&self, id: &BlobId, buf: &mut Vec<u8>) -> Result<bool> {
        dispatch!(self, s => s.read_blob(id, buf).await)
    }
    async fn scan_blobs<T, F>(&self, blobs: Vec<BlobId>, visit: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize, Option<BlobBytes<'_>>) -> T + Send + Sync + 'static,
    {
        dispatch!(self, s => s.scan_blobs(blobs, visit).await)
    }

    async fn scan_extents<T, F>(&self, blobs: Vec<BlobId>, read_below: u64, visit: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize, Option<Scanned<'_>>) -> T + Send + Sync + 'static,
    {
        dispatch!(self, s => s.scan_extents(blobs, read_below, visit).await)
    }
    fn blobs(&self) -> &BlobStore {
        dispatch!(self, s => s.blobs())
    }
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        dispatch!(self, s => s.subscribe())
    }
}
