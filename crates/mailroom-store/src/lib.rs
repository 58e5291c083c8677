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
//! A small message's bytes are committed with its metadata, in the same
//! transaction ([`NewContent::Inline`]); a large one's are written into the
//! [`BlobStore`] and fsync'd, file and directory ([`BlobWriter::finish`]),
//! before its metadata is committed. Concurrent commits are grouped, so many
//! deliveries share one database fsync. Once
//! [`MailStore::deliver`] or [`MailStore::append`] returns `Ok`, a crash loses
//! nothing; before that, nothing half-written is visible (an orphaned blob
//! file is invisible, as no row points at it).
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
mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use mailroom_types::{AccountId, Address, BlobId, Clock, Domain, DomainId, MailboxId, ModSeq, Uid};
use tokio::sync::broadcast;

pub use blob::{BlobStore, BlobWriter};
pub use error::StoreError;
pub use model::{
    AccountRecord, AliasRecord, AliasSource, ChangeEvent, DomainRecord, FlagChange, FlagOp, HeaderCache, MailboxRecord,
    MessageRecord, NewContent, NewMessage, Resolution, SpecialUse,
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
}

impl StoreOptions {
    /// Options for the store under `data_dir`, taking time from `clock`.
    pub fn new(data_dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> StoreOptions {
        StoreOptions { data_dir: data_dir.into(), clock }
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
    /// One mailbox by name (`INBOX` case-insensitive, others exact).
    fn mailbox(&self, account: AccountId, name: &str) -> impl Future<Output = Result<Option<MailboxRecord>>> + Send;

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

    /// Deletes blob files in the newest `shards` shard directories that no
    /// message references: what a crash left between writing a blob and
    /// committing its rows. Only for a server starting up, holding the
    /// data directory's lock, before it accepts anything (a blob being
    /// written has no row yet either). Returns how many were deleted.
    fn sweep_orphan_blobs(&self, shards: usize) -> impl Future<Output = Result<usize>> + Send;

    /// Reads a message's raw bytes into `buf` (replacing its contents, so a
    /// caller reading many messages reuses one warm buffer). `false` when
    /// the blob no longer exists: its last message was expunged.
    fn read_blob(&self, id: &BlobId, buf: &mut Vec<u8>) -> impl Future<Output = Result<bool>> + Send;

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
    async fn deliver(&self, message: &NewMessage, recipients: &[AccountId]) -> Result<Vec<(MailboxId, Uid)>> {
        dispatch!(self, s => s.deliver(message, recipients).await)
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
    async fn sweep_orphan_blobs(&self, shards: usize) -> Result<usize> {
        dispatch!(self, s => s.sweep_orphan_blobs(shards).await)
    }
    async fn read_blob(&self, id: &BlobId, buf: &mut Vec<u8>) -> Result<bool> {
        dispatch!(self, s => s.read_blob(id, buf).await)
    }
    fn blobs(&self) -> &BlobStore {
        dispatch!(self, s => s.blobs())
    }
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        dispatch!(self, s => s.subscribe())
    }
}
