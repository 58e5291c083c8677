//! A small pool of read-only connections used from `spawn_blocking`.
//!
//! In WAL mode readers never block the writer nor each other, and each read
//! transaction sees the last commit made before it began; so a caller that
//! got a write's reply always reads that write back. The pool is bounded by
//! two semaphores, one for point reads and one for reads over many
//! messages; connections are opened lazily and reused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::open_connection;
use crate::{Result, StoreError};

/// How many reads run at once; more wait for a free connection.
pub(crate) const READERS: usize = 4;

/// How many threads of reads over many messages ([`ReadPool::read_parallel`])
/// run at once, beside the [`READERS`]: a FETCH of a whole mailbox keeps
/// this many busy, and the point lookups of other sessions (a RCPT, a
/// SELECT) must never queue behind it.
pub(crate) const SCANNERS: usize = 4;

/// Read connections to the database file.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    scan_permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool for the database at `path`; opens nothing yet.
    pub(crate) fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READERS)),
            scan_permits: Arc::new(Semaphore::new(SCANNERS)),
        }
    }

    /// Runs `read` on a pooled connection in the blocking thread pool.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.read_with(&self.permits, read).await
    }

    /// Like [`ReadPool::read`], once one of `permits` is free.
    async fn read_with<T, F>(self: &Arc<Self>, permits: &Arc<Semaphore>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("store read pool closed".into()))?;
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.take()?;
            let result = read(&mut conn);
            pool.put(conn);
            result
        });
        task.await.map_err(|e| StoreError::Unavailable(format!("store read task failed: {e}")))?
    }

    /// Runs `work` on `workers` pooled connections at once in the blocking
    /// thread pool, for reads that grow with a mailbox and can share
    /// their rows out between threads; the results in no set order. They
    /// take the [`SCANNERS`] permits, not the [`READERS`] ones.
    pub(crate) async fn read_parallel<T, F>(self: &Arc<Self>, workers: usize, work: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> Result<T> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.clamp(1, SCANNERS) {
            let (pool, work) = (Arc::clone(self), Arc::clone(&work));
            tasks.spawn(async move { pool.read_with(&pool.scan_permits, move |conn| work(conn)).await });
        }
        let mut out = Vec::with_capacity(workers);
        while let Some(done) = tasks.join_next().await {
            out.push(done.map_err(|e| StoreError::Unavailable(format!("store read task failed: {e}")))??);
        }
        Ok(out)
    }

    /// Runs a point lookup (an indexed read of a few rows) on the calling
    /// thread when a connection is free, else like [`ReadPool::read`].
    ///
    /// Such a lookup takes microseconds from the page cache, while handing
    /// it to the blocking pool and back costs two thread wake-ups, which on
    /// a virtual machine cost more than the query; SMTP does one per RCPT.
    /// Only for lookups whose cost does not grow with a mailbox.
    pub(crate) async fn lookup<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        match self.permits.clone().try_acquire_owned() {
            Ok(_permit) => {
                let mut conn = self.take()?;
                let result = read(&mut conn);
                self.put(conn);
                result
            }
            Err(_) => self.read(read).await,
        }
    }

    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = open_connection(&self.path)?;
                // A reader must never write, whatever a bug asks of it.
                conn.pragma_update(None, "query_only", true).map_err(super::convert::db_error)?;
                Ok(conn)
            }
        }
    }

    fn put(&self, conn: Connection) {
        // A connection left inside a transaction by a failed read would pin
        // an old snapshot; drop it instead of reusing it.
        if conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A FETCH of a whole mailbox holds every scanning thread; a RCPT
    /// lookup of another session still gets a connection at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn point_reads_never_wait_behind_scans() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(ReadPool::new(dir.path().join("db.sqlite3")));
        let (started, scans_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let scans = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.read_parallel(SCANNERS, move |_| {
                    started.send(()).unwrap();
                    let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(30));
                    Ok(())
                })
                .await
            })
        };
        for _ in 0..SCANNERS {
            scans_started.recv_timeout(Duration::from_secs(30)).expect("every scanning thread starts");
        }
        let lookup = pool.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(super::super::convert::db_error)
        });
        let answer = tokio::time::timeout(Duration::from_secs(10), lookup).await;
        for _ in 0..SCANNERS {
            let _ = release.send(());
        }
        assert_eq!(answer.expect("the lookup did not wait for the scans").unwrap(), 1);
        assert_eq!(scans.await.unwrap().unwrap().len(), SCANNERS);
    }
}
