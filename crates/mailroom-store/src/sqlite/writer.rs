//! The single writer thread and its group commit.
//!
//! Every write of this process goes through one dedicated thread that owns
//! the write connection. Jobs arrive on a bounded channel (which gives
//! callers backpressure), each with a oneshot for its reply. The thread
//! takes one job, drains whatever else is already waiting (up to
//! [`MAX_BATCH`]), and runs the lot as one batch:
//!
//! 1. `BEGIN IMMEDIATE`;
//! 2. the jobs (if one fails: the batch again, each job inside its own
//!    `SAVEPOINT`, so that the failing job is rolled back alone and gets
//!    its own error while the others go on);
//! 3. checks which blobs given up by the batch's jobs (expunge, account
//!    deletion, a finished queue entry) no message or queue entry
//!    references any more, and deletes their rows;
//! 4. fdatasyncs the pack files appended to since the last batch (the
//!    bytes of the batch's new messages, [`crate::pack`]);
//! 5. `COMMIT`: one WAL fsync (`synchronous=FULL`) for the whole batch;
//! 6. broadcasts the batch's [`ChangeEvent`]s, coalesced per mailbox, so
//!    that once a caller hears of its write every subscriber has the event;
//! 7. sends the replies: a caller hears `Ok` only after its change is
//!    durable (the commit-before-2xx contract of design.md);
//! 8. deletes the unreferenced blob files and frees the packs' extents,
//!    best effort: bytes left behind are only wasted space, as no row
//!    points at them.
//!
//! Small messages' bytes are appended to a pack by the caller before its
//! job is sent, and are durable with the batch. Large messages' blob files
//! and their directory entries are already durable when a job arrives
//! ([`crate::BlobWriter::finish`] fsyncs both, in the caller's thread). The
//! serial syncs on this thread are the packs' and the WAL's.
//!
//! If `BEGIN` or `COMMIT` fails, every job of the batch fails with a
//! temporary error, since none of it is known to be durable. Under load,
//! batches grow by themselves: while one batch fsyncs, the next one queues
//! up, so throughput is not capped at one fsync per message.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use mailroom_types::BlobId;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::pack::{Extent, Packs};
use crate::{BlobStore, ChangeEvent, Result, StoreError};

/// The most jobs one transaction takes; bounds the latency a batch adds.
pub(crate) const MAX_BATCH: usize = 256;

/// How many jobs may wait before callers are made to wait for room.
pub(crate) const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// What a job did besides its result, applied around the batch's commit.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Mailboxes that changed, for subscribers.
    pub(crate) events: Vec<ChangeEvent>,
    /// Blobs whose rows were deleted: their files go after COMMIT unless a
    /// row still references them.
    pub(crate) released_blobs: Vec<BlobId>,
}

impl Effects {
    fn absorb(&mut self, other: Effects) {
        self.events.extend(other.events);
        self.released_blobs.extend(other.released_blobs);
    }
}

/// A unit of work for the writer, type-erased so one channel carries them.
pub(crate) trait Job: Send {
    /// Runs the work inside the batch's transaction; true on success.
    fn run(&mut self, conn: &Connection, effects: &mut Effects) -> bool;
    /// Replies: the job's own outcome if the batch committed (or if the job
    /// itself failed), otherwise the batch's error.
    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchError>);
}

/// Why a whole batch failed; each job gets its own copy as a [`StoreError`].
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The transaction could not begin or commit.
    Db(String),
}

impl BatchError {
    fn to_store_error(&self) -> StoreError {
        match self {
            BatchError::Db(m) => StoreError::Unavailable(m.clone()),
        }
    }
}

/// A job computing a `T` with a closure.
struct Typed<T, F> {
    work: F,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&Connection, &mut Effects) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection, effects: &mut Effects) -> bool {
        let work = &mut self.work;
        // A panicking job must not take the writer thread (and so every
        // later write) down with it; its writes are rolled back.
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn, effects))).unwrap_or_else(|_| {
            tracing::error!("store write job panicked");
            Err(StoreError::Unavailable("internal error in store write".into()))
        });
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchError>) {
        let reply = match (self.outcome, batch) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(b)) => Err(b.to_store_error()),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Err(b)) => Err(b.to_store_error()),
            (None, Ok(())) => Err(StoreError::Unavailable("store write job never ran".into())),
        };
        // The caller may have gone away (a dropped connection); the change
        // stands regardless, so a closed oneshot is not an error.
        let _ = self.reply.send(reply);
    }
}

/// The sending side: cheap to clone, held by every store handle.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl WriterHandle {
    /// Runs `work` in the writer's next batch and waits until it committed.
    /// `work` may run more than once, each time in a transaction that is
    /// rolled back but for the last (see `Writer::execute`): it must only
    /// act on the database it is given.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Typed { work, outcome: None, reply });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("store writer has stopped".into())
}

/// Starts the writer thread on `conn`. It runs until every [`WriterHandle`]
/// is dropped.
pub(crate) fn spawn(
    conn: Connection,
    blobs: BlobStore,
    packs: Arc<Packs>,
    events: broadcast::Sender<ChangeEvent>,
) -> std::io::Result<WriterHandle> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let writer = Writer { conn, blobs, packs, events };
    std::thread::Builder::new().name("mailroom-store-writer".into()).spawn(move || writer.run(rx))?;
    Ok(WriterHandle { jobs: tx })
}

struct Writer {
    conn: Connection,
    blobs: BlobStore,
    packs: Arc<Packs>,
    events: broadcast::Sender<ChangeEvent>,
}

impl Writer {
    fn run(self, mut rx: mpsc::Receiver<Box<dyn Job>>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.run_batch(&mut batch);
        }
        tracing::debug!("store writer stopped");
    }

    fn run_batch(&self, batch: &mut Vec<Box<dyn Job>>) {
        let mut effects = Effects::default();
        let outcome = self.execute(batch, &mut effects);
        let unreferenced = match &outcome {
            Ok(unreferenced) => {
                tracing::trace!(jobs = batch.len(), "store batch committed");
                Some(unreferenced)
            }
            Err(e) => {
                tracing::warn!(error = ?e, jobs = batch.len(), "store batch failed");
                None
            }
        };
        // Events go out before the replies: a caller that hears its write
        // succeeded can rely on every subscriber's queue already holding the
        // change (a POP3 session checks its queue before serving a message).
        if unreferenced.is_some() {
            self.broadcast(effects.events);
        }
        let status = outcome.as_ref().map(|_| ());
        for job in batch.drain(..) {
            job.finish(status);
        }
        let Some(Unreferenced { files, extents }) = unreferenced else { return };
        for id in files {
            if let Err(error) = self.blobs.delete(id) {
                tracing::warn!(blob = %id, %error, "unreferenced blob not deleted");
            }
        }
        // Also punches what earlier batches freed while a reader held it.
        self.packs.free(extents.clone());
    }

    /// Runs the batch's transaction; returns what to delete once the
    /// replies are out.
    ///
    /// Nearly every job succeeds, so the batch first runs with no savepoint
    /// per job (each costs a statement-journal copy of every page the job
    /// touches). Only if a job fails is that transaction rolled back and
    /// the batch run again with a savepoint per job, so that the failing
    /// job alone is undone: jobs are database work only, so running one
    /// twice is safe.
    fn execute(
        &self,
        batch: &mut [Box<dyn Job>],
        effects: &mut Effects,
    ) -> std::result::Result<Unreferenced, BatchError> {
        self.exec("BEGIN IMMEDIATE")?;
        let mut all = Effects::default();
        if batch.iter_mut().all(|job| job.run(&self.conn, &mut all)) {
            *effects = all;
            return self.commit(effects);
        }
        self.rollback();
        if batch.len() == 1 {
            // The one job failed and is undone; it reports its own error.
            return Ok(Unreferenced::default());
        }
        self.exec("BEGIN IMMEDIATE")?;
        match self.run_jobs(batch, effects) {
            Ok(()) => self.commit(effects),
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Finishes the open transaction: drops what the batch left
    /// unreferenced, makes the packs' new bytes durable, then commits.
    fn commit(&self, effects: &Effects) -> std::result::Result<Unreferenced, BatchError> {
        let result = self.prepare_commit(effects).and_then(|unreferenced| {
            self.packs.sync().map_err(|e| BatchError::Db(format!("message bytes not made durable: {e}")))?;
            self.exec("COMMIT").map(|()| unreferenced)
        });
        if result.is_err() {
            self.rollback();
        }
        result
    }

    fn run_jobs(&self, batch: &mut [Box<dyn Job>], effects: &mut Effects) -> std::result::Result<(), BatchError> {
        for job in batch.iter_mut() {
            self.exec("SAVEPOINT job")?;
            let mut own = Effects::default();
            if job.run(&self.conn, &mut own) {
                self.exec("RELEASE job")?;
                effects.absorb(own);
            } else {
                if self.conn.is_autocommit() {
                    // SQLite rolled the whole transaction back (it does so on
                    // some I/O and out-of-memory errors): nothing of the
                    // batch survives.
                    return Err(BatchError::Db("transaction aborted by a failing write".into()));
                }
                self.exec("ROLLBACK TO job")?;
                self.exec("RELEASE job")?;
            }
        }
        Ok(())
    }

    /// Finds the blobs nothing references any more; inside the transaction
    /// and after all jobs, since a later job of the batch may reference one.
    /// Their rows are deleted right here, with the rows that used them; the
    /// files and pack extents are returned, to go once the batch is durable.
    fn prepare_commit(&self, effects: &Effects) -> std::result::Result<Unreferenced, BatchError> {
        let mut out = Unreferenced::default();
        let released: BTreeSet<&BlobId> = effects.released_blobs.iter().collect();
        if !released.is_empty() {
            let mut used = self.conn.prepare_cached(super::messages::BLOB_IN_USE).map_err(batch_db)?;
            let mut delete_packed = self
                .conn
                .prepare_cached("DELETE FROM blob_packed WHERE blob_id = ?1 RETURNING pack, start, len")
                .map_err(batch_db)?;
            let mut delete_inline =
                self.conn.prepare_cached("DELETE FROM blob_inline WHERE blob_id = ?1").map_err(batch_db)?;
            let mut delete_header =
                self.conn.prepare_cached("DELETE FROM blob_header WHERE blob_id = ?1").map_err(batch_db)?;
            for id in released {
                if used.query_row([id.as_str()], |r| r.get(0)).map_err(batch_db)? {
                    continue;
                }
                delete_header.execute([id.as_str()]).map_err(batch_db)?;
                let packed = delete_packed
                    .query_row([id.as_str()], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
                    .optional()
                    .map_err(batch_db)?;
                if let Some((pack, offset, len)) = packed {
                    out.extents.push(Extent { pack, offset: offset.unsigned_abs(), len: len.unsigned_abs() });
                } else if delete_inline.execute([id.as_str()]).map_err(batch_db)? == 0 {
                    out.files.push(id.clone());
                }
            }
        }
        Ok(out)
    }

    fn exec(&self, sql: &str) -> std::result::Result<(), BatchError> {
        self.conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop).map_err(batch_db)
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "store rollback failed");
        }
    }

    /// Sends the batch's events, one per mailbox with its latest modseq and
    /// strongest kind: subscribers re-read the mailbox anyway, so fifty
    /// deliveries in one batch need wake them only once, and a deletion is
    /// never hidden behind an arrival.
    fn broadcast(&self, events: Vec<ChangeEvent>) {
        let mut latest: Vec<ChangeEvent> = Vec::with_capacity(events.len());
        let mut index = HashMap::with_capacity(events.len());
        for event in events {
            match index.get(&event.mailbox) {
                Some(&i) => {
                    let e: &mut ChangeEvent = &mut latest[i];
                    e.modseq = e.modseq.max(event.modseq);
                    e.kind = e.kind.max(event.kind);
                }
                None => {
                    index.insert(event.mailbox, latest.len());
                    latest.push(event);
                }
            }
        }
        for event in latest {
            // No subscriber is not an error.
            let _ = self.events.send(event);
        }
    }
}

/// What a batch left unreferenced: blob files to delete and pack extents
/// to free once it is durable.
#[derive(Debug, Default)]
struct Unreferenced {
    files: Vec<BlobId>,
    extents: Vec<Extent>,
}

fn batch_db(e: rusqlite::Error) -> BatchError {
    BatchError::Db(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A writer on a fresh database in `dir`.
    fn writer(dir: &std::path::Path) -> (WriterHandle, BlobStore) {
        let mut conn = super::super::open_connection(&dir.join("db.sqlite3")).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).unwrap();
        super::super::migrate::migrate(&mut conn, 1).unwrap();
        let blobs = BlobStore::open(dir.join("blobs")).unwrap();
        let packs = Arc::new(Packs::open(dir.join("packs")).unwrap());
        let (events, _) = broadcast::channel(16);
        (spawn(conn, blobs.clone(), packs, events).unwrap(), blobs)
    }

    fn insert_domain(conn: &Connection, name: &str) -> Result<()> {
        conn.execute("INSERT INTO domains (name) VALUES (?1)", [name]).map_err(super::super::convert::db_error)?;
        Ok(())
    }

    fn domains(dir: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(dir.join("db.sqlite3")).unwrap();
        let mut stmt = conn.prepare("SELECT name FROM domains ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Holds the writer inside a first job until released, so the jobs
    /// queued meanwhile are certain to share the next batch.
    async fn block_writer(handle: &WriterHandle) -> std::sync::mpsc::Sender<()> {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let h = handle.clone();
        let mut started = Some(started);
        tokio::spawn(async move {
            h.write(move |_, _| {
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                wait.recv().map_err(|_| StoreError::Unavailable("test blocker dropped".into()))
            })
            .await
        });
        running.await.unwrap();
        release
    }

    async fn wait_queued(handle: &WriterHandle, jobs: usize) {
        while handle.jobs.capacity() != QUEUE_DEPTH - jobs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _) = writer(dir.path());
        let release = block_writer(&handle).await;
        let (h1, h2, h3) = (handle.clone(), handle.clone(), handle.clone());
        let ok1 = tokio::spawn(async move { h1.write(|conn, _| insert_domain(conn, "one.test")).await });
        wait_queued(&handle, 1).await;
        let bad = tokio::spawn(async move {
            h2.write(|conn, _| {
                insert_domain(conn, "half.test")?;
                Err::<(), _>(StoreError::Conflict("refused".into()))
            })
            .await
        });
        wait_queued(&handle, 2).await;
        let ok2 = tokio::spawn(async move { h3.write(|conn, _| insert_domain(conn, "two.test")).await });
        wait_queued(&handle, 3).await;
        release.send(()).unwrap();
        ok1.await.unwrap().unwrap();
        assert!(matches!(bad.await.unwrap(), Err(StoreError::Conflict(m)) if m == "refused"));
        ok2.await.unwrap().unwrap();
        assert_eq!(domains(dir.path()), ["one.test", "two.test"]);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _) = writer(dir.path());
        let r: Result<()> = handle.write(|_, _| panic!("bug in a job")).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        handle.write(|conn, _| insert_domain(conn, "after.test")).await.unwrap();
        assert_eq!(domains(dir.path()), ["after.test"]);
    }
}
