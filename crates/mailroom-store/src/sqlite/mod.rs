//! The SQLite backend: the embedded default.
//!
//! Files: the database at `data_dir/mailroom.sqlite3` (WAL mode, so the
//! admin CLI may open it while the server runs); small messages' bytes in
//! pack files under `data_dir/packs` ([`crate::pack`]), their extents in
//! the database; large messages' blob files under `data_dir/blobs`.
//!
//! Concurrency: all writes of a process go through one writer thread that
//! group-commits concurrent jobs ([`writer`]); reads use a small pool of
//! separate connections on tokio's blocking threads ([`read`]), so no read
//! waits for the writer. Between processes, SQLite's own locking (with
//! `busy_timeout`) serializes the writers.
//!
//! Module map: [`migrate`] (embedded numbered schema files), [`checkpoint`]
//! (WAL checkpoints off the writer thread), [`content`] (reading a
//! message's bytes from a pack, a legacy row or a blob file), [`convert`]
//! (errors and value mapping), [`accounts`] (domains, accounts, aliases),
//! [`mailboxes`] (mailbox create, delete, rename; subscriptions; status),
//! [`messages`] (arrival, flags, expunge), [`transfer`] (copy, move,
//! expunge of `\Deleted`, CONDSTORE/QRESYNC reads), [`queue`] (the outbound
//! queue: submissions, claims, attempt reports).

mod accounts;
mod checkpoint;
mod content;
mod convert;
mod mailboxes;
mod messages;
mod migrate;
mod queue;
mod read;
mod transfer;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_types::{AccountId, Address, BlobId, Clock, Domain, DomainId, Flags, MailboxId, ModSeq, QueueId, Uid};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

use self::content::ContentReader;
use self::convert::Db;
use self::messages::Prepared;
use self::read::ReadPool;
use self::writer::WriterHandle;
use crate::pack::Packs;
use crate::{
    AccountRecord, AliasRecord, AliasSource, AttemptReport, BlobBytes, BlobStore, ChangeEvent, CopyOutcome,
    DomainRecord, FlagChange, FlagOp, MailStore, MailboxRecord, MailboxStatus, MessageMeta, MessageRecord, NewContent,
    NewMessage, QueueEntry, RenameOutcome, Resolution, Result, Scanned, Selection, SpecialUse, StoreError,
    StoreOptions, SubjectMatches, Submission, Summarizer, Summary,
};

/// How long a connection waits for another process's lock before giving up
/// with a temporary error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many events a slow subscriber may fall behind before it is told it
/// lagged (and must re-read its mailbox).
const EVENT_CAPACITY: usize = 1024;

/// The SQLite store. Cheap to clone: every clone shares one writer thread,
/// one read pool and one event channel; the writer stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: WriterHandle,
    readers: Arc<ReadPool>,
    blobs: BlobStore,
    packs: Arc<Packs>,
    events: broadcast::Sender<ChangeEvent>,
    clock: Arc<dyn Clock>,
    summarize: Option<Summarizer>,
}

/// Opens a connection with the settings every connection needs.
///
/// `synchronous=FULL` makes each commit fsync the WAL, which is what the
/// durability contract promises; `foreign_keys` is per connection in
/// SQLite and off by default.
fn open_connection(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).db()?;
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// The schema version this binary creates and understands.
    pub const SCHEMA_VERSION: u32 = migrate::LATEST;

    /// The database file's name inside the data directory.
    pub const DB_FILE: &'static str = "mailroom.sqlite3";

    /// Opens (creating if needed) the store under `options.data_dir`,
    /// applies pending migrations and starts the writer thread.
    ///
    /// Fails with [`StoreError::Corrupt`] if the database was written by a
    /// newer Mailroom, and with a temporary error if another process holds
    /// the write lock for longer than the busy timeout.
    pub async fn open(options: &StoreOptions) -> Result<SqliteStore> {
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&options))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store open task failed: {e}")))?
    }

    fn open_blocking(options: &StoreOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(&options.data_dir)?;
        let blobs = BlobStore::open(options.data_dir.join("blobs"))?;
        let packs = Arc::new(Packs::open(options.data_dir.join("packs"))?);
        let path = options.data_dir.join(Self::DB_FILE);
        let mut conn = open_connection(&path)?;
        // WAL is a property of the file: set once, every later connection
        // (including another process's) uses it.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!("cannot switch {} to WAL mode (got {mode})", path.display())));
        }
        let now = mailroom_types::time::unix_seconds(options.clock.now());
        migrate::migrate(&mut conn, now)?;
        checkpoint::start(&mut conn, &path)?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let writer = writer::spawn(conn, blobs.clone(), Arc::clone(&packs), events.clone())?;
        let inner = Inner {
            writer,
            readers: Arc::new(ReadPool::new(path)),
            blobs,
            packs,
            events,
            clock: options.clock.clone(),
            summarize: options.summarize.clone(),
        };
        Ok(SqliteStore { inner: Arc::new(inner) })
    }

    /// The summary of a new message's header section, computed on the
    /// caller's thread rather than the writer's, which every write waits
    /// for. `None` without a summarizer or a header section kept apart.
    /// One delivery to each recipient's INBOX, or to its mailbox of
    /// `special` use when it has one.
    async fn deliver_into(
        &self,
        message: &NewMessage,
        recipients: &[AccountId],
        special: Option<SpecialUse>,
    ) -> Result<Vec<(MailboxId, Uid)>> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let (message, recipients) = (message.clone(), recipients.to_vec());
        let prepared = self.prepare(&message)?;
        self.write_content(prepared, move |conn, fx, prepared| {
            messages::deliver(conn, fx, &message, prepared, &recipients, special)
        })
        .await
    }

    /// A new message's summary, and its bytes appended to a pack when they
    /// are inline: on the caller's thread, several at once, rather than on
    /// the writer's, which every write waits for.
    fn prepare(&self, message: &NewMessage) -> Result<Prepared> {
        let packed = match &message.content {
            NewContent::Inline(_, bytes) => Some(self.inner.packs.append(bytes)?),
            NewContent::File(..) => None,
        };
        Ok(Prepared { summary: self.summary(message), packed })
    }

    /// Runs a write job that stores `prepared` content. If the job fails,
    /// no row points at the bytes it appended, and they are freed; unless
    /// the batch's outcome is unknown (a temporary error), when the sweep
    /// at the next start frees them if nothing committed points at them.
    async fn write_content<T, F>(&self, prepared: Prepared, mut work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut writer::Effects, &Prepared) -> Result<T> + Send + 'static,
    {
        let packed = prepared.packed;
        let result = self.inner.writer.write(move |conn, fx| work(conn, fx, &prepared)).await;
        if let (Err(e), Some(extent)) = (&result, packed)
            && !matches!(e, StoreError::Unavailable(_))
        {
            self.inner.packs.free(vec![extent]);
        }
        result
    }

    fn summary(&self, message: &NewMessage) -> Option<Vec<u8>> {
        let summarize = self.inner.summarize.as_ref()?;
        let header = match &message.content {
            NewContent::Inline(_, bytes) => crate::header_section(bytes)?,
            NewContent::File(_, header) if !header.is_empty() => header,
            NewContent::File(..) => return None,
        };
        Some(summarize(header))
    }

    /// Unix seconds from the store's clock.
    fn now(&self) -> i64 {
        mailroom_types::time::unix_seconds(self.inner.clock.now())
    }

    async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.read(move |conn| in_snapshot(conn, read)).await
    }

    /// Like [`SqliteStore::read`] for point lookups, which run inline (see
    /// `ReadPool::lookup`).
    async fn lookup<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.lookup(move |conn| in_snapshot(conn, read)).await
    }

    /// Like [`SqliteStore::lookup`] for a single statement, which SQLite
    /// runs in a snapshot of its own: no BEGIN and COMMIT around it (a
    /// FETCH of a whole mailbox reads ten thousand blobs this way).
    async fn lookup_one<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.lookup(move |conn| read(conn)).await
    }
}

/// Runs `read` in one deferred transaction, so multi-statement reads see a
/// single snapshot.
fn in_snapshot<T>(conn: &mut Connection, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = conn.transaction().db()?;
    let value = read(&tx)?;
    tx.finish().db()?;
    Ok(value)
}

impl MailStore for SqliteStore {
    async fn add_domain(&self, name: &Domain) -> Result<DomainId> {
        let name = name.clone();
        self.inner.writer.write(move |conn, _| accounts::add_domain(conn, &name)).await
    }

    async fn list_domains(&self) -> Result<Vec<DomainRecord>> {
        self.lookup(accounts::list_domains).await
    }

    async fn delete_domain(&self, name: &Domain) -> Result<()> {
        let name = name.clone();
        self.inner.writer.write(move |conn, _| accounts::delete_domain(conn, &name)).await
    }

    async fn add_account(&self, address: &Address, password_hash: &str) -> Result<AccountId> {
        let (address, hash, now) = (address.clone(), password_hash.to_string(), self.now());
        self.inner.writer.write(move |conn, _| accounts::add_account(conn, now, &address, &hash)).await
    }

    async fn list_accounts(&self, domain: Option<&Domain>) -> Result<Vec<AccountRecord>> {
        let domain = domain.cloned();
        self.read(move |conn| accounts::list_accounts(conn, domain.as_ref())).await
    }

    async fn account(&self, address: &Address) -> Result<Option<AccountRecord>> {
        let address = address.clone();
        self.lookup(move |conn| accounts::account(conn, &address)).await
    }

    async fn set_password(&self, address: &Address, password_hash: &str) -> Result<()> {
        let (address, hash) = (address.clone(), password_hash.to_string());
        self.inner.writer.write(move |conn, _| accounts::set_password(conn, &address, &hash)).await
    }

    async fn delete_account(&self, address: &Address) -> Result<()> {
        let address = address.clone();
        self.inner.writer.write(move |conn, fx| accounts::delete_account(conn, fx, &address)).await
    }

    async fn add_alias(&self, source: &AliasSource, target: &Address) -> Result<()> {
        let (source, target) = (source.clone(), target.clone());
        self.inner.writer.write(move |conn, _| accounts::add_alias(conn, &source, &target)).await
    }

    async fn list_aliases(&self, domain: Option<&Domain>) -> Result<Vec<AliasRecord>> {
        let domain = domain.cloned();
        self.read(move |conn| accounts::list_aliases(conn, domain.as_ref())).await
    }

    async fn delete_alias(&self, source: &AliasSource, target: Option<&Address>) -> Result<()> {
        let (source, target) = (source.clone(), target.cloned());
        self.inner.writer.write(move |conn, _| accounts::delete_alias(conn, &source, target.as_ref())).await
    }

    async fn resolve_recipient(&self, address: &Address) -> Result<Resolution> {
        let address = address.clone();
        self.lookup(move |conn| accounts::resolve_recipient(conn, &address)).await
    }

    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>> {
        self.read(move |conn| mailboxes::mailboxes(conn, account)).await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
        let name = name.to_string();
        self.lookup(move |conn| mailboxes::mailbox(conn, account, &name)).await
    }

    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<MailboxRecord>> {
        self.lookup(move |conn| mailboxes::mailbox_by_id(conn, mailbox)).await
    }

    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord> {
        let (name, now) = (name.to_string(), self.now());
        self.inner.writer.write(move |conn, _| mailboxes::create(conn, now, account, &name)).await
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxId> {
        let name = name.to_string();
        self.inner.writer.write(move |conn, fx| mailboxes::delete(conn, fx, account, &name)).await
    }

    async fn rename_mailbox(&self, account: AccountId, old: &str, new: &str) -> Result<RenameOutcome> {
        let (old, new, now) = (old.to_string(), new.to_string(), self.now());
        self.inner.writer.write(move |conn, fx| mailboxes::rename(conn, fx, now, account, &old, &new)).await
    }

    async fn add_subscription(&self, account: AccountId, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.inner.writer.write(move |conn, _| mailboxes::add_subscription(conn, account, &name)).await
    }

    async fn remove_subscription(&self, account: AccountId, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.inner.writer.write(move |conn, _| mailboxes::remove_subscription(conn, account, &name)).await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.lookup(move |conn| mailboxes::subscriptions(conn, account)).await
    }

    async fn mailbox_status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        self.read(move |conn| mailboxes::status(conn, mailbox)).await
    }

    async fn deliver(&self, message: &NewMessage, recipients: &[AccountId]) -> Result<Vec<(MailboxId, Uid)>> {
        self.deliver_into(message, recipients, None).await
    }

    async fn deliver_special_use(
        &self,
        message: &NewMessage,
        recipients: &[AccountId],
        special: SpecialUse,
    ) -> Result<Vec<(MailboxId, Uid)>> {
        self.deliver_into(message, recipients, Some(special)).await
    }

    async fn append(&self, mailbox: MailboxId, message: &NewMessage) -> Result<(Uid, ModSeq)> {
        let message = message.clone();
        let prepared = self.prepare(&message)?;
        self.write_content(prepared, move |conn, fx, prepared| messages::append(conn, fx, mailbox, &message, prepared))
            .await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
        self.read(move |conn| messages::messages(conn, mailbox)).await
    }
    async fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>> {
        self.lookup(move |conn| messages::message(conn, mailbox, uid)).await
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<Vec<FlagChange>> {
        let (uids, keywords) = (uids.to_vec(), keywords.to_vec());
        self.inner
            .writer
            .write(move |conn, fx| {
                messages::store_flags(conn, fx, mailbox, &uids, op, flags, &keywords, unchanged_since)
            })
            .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        let uids = uids.to_vec();
        self.inner.writer.write(move |conn, fx| messages::expunge(conn, fx, mailbox, &uids)).await
    }

    async fn expunge_deleted(&self, mailbox: MailboxId, within: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let within = within.map(<[Uid]>::to_vec);
        self.inner.writer.write(move |conn, fx| transfer::expunge_deleted(conn, fx, mailbox, within.as_deref())).await
    }

    async fn copy_messages(&self, from: MailboxId, uids: &[Uid], to: MailboxId) -> Result<CopyOutcome> {
        let uids = uids.to_vec();
        self.inner.writer.write(move |conn, fx| transfer::copy(conn, fx, from, &uids, to)).await
    }

    async fn move_messages(&self, from: MailboxId, uids: &[Uid], to: MailboxId) -> Result<CopyOutcome> {
        let uids = uids.to_vec();
        self.inner.writer.write(move |conn, fx| transfer::move_messages(conn, fx, from, &uids, to)).await
    }

    async fn message_index(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.read(move |conn| transfer::message_index(conn, mailbox)).await
    }

    async fn summarized_index(&self, mailbox: MailboxId) -> Result<Vec<(MessageMeta, Summary)>> {
        self.read(move |conn| transfer::summarized_index(conn, mailbox)).await
    }

    async fn changed_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<MessageRecord>> {
        self.read(move |conn| transfer::changed_since(conn, mailbox, since)).await
    }

    async fn selection(&self, mailbox: MailboxId) -> Result<Selection> {
        self.read(move |conn| {
            Ok(Selection {
                status: mailboxes::status(conn, mailbox)?,
                uids: transfer::uids(conn, mailbox)?,
                keywords: transfer::keywords_in_use(conn, mailbox)?,
            })
        })
        .await
    }

    async fn search_subject(&self, mailbox: MailboxId, needle: &str) -> Result<SubjectMatches> {
        let needle = needle.to_string();
        self.read(move |conn| transfer::search_subject(conn, mailbox, &needle)).await
    }

    async fn headers(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>> {
        let uids = uids.to_vec();
        self.read(move |conn| messages::headers(conn, mailbox, &uids)).await
    }
    async fn summaries(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Summary)>> {
        let uids = uids.to_vec();
        self.read(move |conn| messages::summaries(conn, mailbox, &uids)).await
    }

    async fn vanished_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<Uid>> {
        self.read(move |conn| transfer::vanished_since(conn, mailbox, since)).await
    }

    async fn submit(&self, submission: &Submission) -> Result<Vec<(MailboxId, Uid)>> {
        let submission = submission.clone();
        let prepared =
            if queue::stores_content(&submission) { self.prepare(&submission.message)? } else { Prepared::default() };
        self.write_content(prepared, move |conn, fx, prepared| queue::submit(conn, fx, &submission, prepared)).await
    }

    async fn claim_due(&self, now: SystemTime, lease: Duration, limit: usize) -> Result<Vec<QueueEntry>> {
        self.inner.writer.write(move |conn, _| queue::claim_due(conn, now, lease, limit)).await
    }

    async fn report_attempt(&self, report: &AttemptReport) -> Result<()> {
        let report = report.clone();
        let prepared = match &report.notice {
            Some(notice) if queue::stores_content(notice) => self.prepare(&notice.message)?,
            _ => Prepared::default(),
        };
        self.write_content(prepared, move |conn, fx, prepared| queue::report(conn, fx, &report, prepared)).await
    }

    async fn queue_entries(&self, id: Option<&QueueId>) -> Result<Vec<QueueEntry>> {
        let id = id.cloned();
        self.read(move |conn| queue::entries(conn, id.as_ref())).await
    }

    async fn retry_queued(&self, id: Option<&QueueId>, now: SystemTime) -> Result<usize> {
        let id = id.cloned();
        self.inner.writer.write(move |conn, _| queue::retry(conn, id.as_ref(), now)).await
    }

    async fn delete_queued(&self, id: &QueueId) -> Result<()> {
        let id = id.clone();
        self.inner.writer.write(move |conn, fx| queue::delete(conn, fx, &id)).await
    }

    async fn next_queue_due(&self) -> Result<Option<SystemTime>> {
        self.lookup(queue::next_due).await
    }

    async fn sweep_orphan_blobs(&self, shards: usize) -> Result<usize> {
        let blobs = self.inner.blobs.clone();
        let candidates = tokio::task::spawn_blocking(move || blobs.recent_blobs(shards))
            .await
            .map_err(|e| StoreError::Unavailable(format!("blob listing failed: {e}")))??;
        let orphans = self.read(move |conn| messages::unreferenced(conn, candidates)).await?;
        for id in &orphans {
            self.inner.blobs.delete(id)?;
        }
        let packs = Arc::clone(&self.inner.packs);
        let regions = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached("SELECT start, len FROM blob_packed WHERE pack = ?1").db()?;
                let extents = |pack: u32| {
                    let rows = stmt.query_map([pack], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)));
                    rows.and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                        .map(|rows| rows.into_iter().map(|(at, len)| (at.unsigned_abs(), len.unsigned_abs())).collect())
                        .map_err(std::io::Error::other)
                };
                Ok(packs.sweep(extents)?)
            })
            .await?;
        if regions > 0 {
            tracing::info!(regions, "freed message bytes no message referenced in the packs");
        }
        Ok(orphans.len() + regions)
    }

    async fn read_blob(&self, id: &BlobId, buf: &mut Vec<u8>) -> Result<bool> {
        // A pack or a row first: that is where almost every message is,
        // and a lookup and read of at most `NewContent::INLINE_MAX` octets
        // run inline.
        let (key, taken) = (id.clone(), std::mem::take(buf));
        let (packs, files) = (Arc::clone(&self.inner.packs), self.inner.blobs.clone());
        let (found, back) = self
            .lookup_one(move |conn| {
                let mut b = taken;
                let found = ContentReader::new(conn, &packs, &files).read_row(&key, &mut b)?;
                if let Some(len) = found {
                    b.truncate(len);
                }
                Ok((found.is_some(), b))
            })
            .await?;
        *buf = back;
        if found {
            return Ok(true);
        }
        // A file: a large message, read off the async threads.
        let (blobs, id, mut b) = (self.inner.blobs.clone(), id.clone(), std::mem::take(buf));
        let (read, back) = tokio::task::spawn_blocking(move || (blobs.read_into(&id, &mut b), b))
            .await
            .map_err(|e| StoreError::Unavailable(format!("blob read task failed: {e}")))?;
        *buf = back;
        match read {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn scan_blobs<T, F>(&self, blobs: Vec<BlobId>, visit: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize, Option<BlobBytes<'_>>) -> T + Send + Sync + 'static,
    {
        // Nothing is u64::MAX octets long: every blob is read.
        self.scan_extents(blobs, u64::MAX, move |i, blob| visit(i, blob.and_then(Scanned::into_bytes))).await
    }

    async fn scan_extents<T, F>(&self, blobs: Vec<BlobId>, read_below: u64, visit: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize, Option<Scanned<'_>>) -> T + Send + Sync + 'static,
    {
        /// At most this many blobs are claimed by a worker at once.
        const CLAIM: usize = 16;
        let count = blobs.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.min(count);
        // Small claims for a short list, so that the workers finish
        // together; larger ones for a long list, where claiming is cheap.
        let claim = (count / (workers * 4)).clamp(1, CLAIM);
        let (blobs, files, packs) = (Arc::new(blobs), self.inner.blobs.clone(), Arc::clone(&self.inner.packs));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let parts = self
            .inner
            .readers
            .read_parallel(workers, move |conn| {
                let (mut out, mut buf) = (Vec::new(), Vec::new());
                let mut reader = ContentReader::new(conn, &packs, &files);
                loop {
                    let start = next.fetch_add(claim, std::sync::atomic::Ordering::Relaxed);
                    if start >= count {
                        return Ok(out);
                    }
                    for (i, id) in blobs.iter().enumerate().take((start + claim).min(count)).skip(start) {
                        // Each lookup is one statement, in a snapshot of
                        // its own, as `read_blob`'s.
                        let found = reader.scan(id, read_below, &mut buf)?;
                        out.push((i, visit(i, found)));
                    }
                }
            })
            .await?;
        let mut all: Vec<(usize, T)> = parts.into_iter().flatten().collect();
        all.sort_unstable_by_key(|&(i, _)| i);
        Ok(all.into_iter().map(|(_, t)| t).collect())
    }

    fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.events.subscribe()
    }
}
