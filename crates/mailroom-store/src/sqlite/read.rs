//! A small pool of read-only connections used from `spawn_blocking`.
//!
//! In WAL mode readers never block the writer nor each other, and each read
//! transaction sees the last commit made before it began; so a caller that
//! got a write's reply always reads that write back. The pool is bounded by
//! a semaphore; connections are opened lazily and reused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::open_connection;
use crate::{Result, StoreError};

/// How many reads run at once; more wait for a free connection.
pub(crate) const READERS: usize = 4;

/// Read connections to the database file.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool for the database at `path`; opens nothing yet.
    pub(crate) fn new(path: PathBuf) -> ReadPool {
        ReadPool { path, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(READERS)) }
    }

    /// Runs `read` on a pooled connection in the blocking thread pool.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
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
    /// their rows out between threads; the results in no set order.
    pub(crate) async fn read_parallel<T, F>(self: &Arc<Self>, workers: usize, work: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> Result<T> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.clamp(1, READERS) {
            let (pool, work) = (Arc::clone(self), Arc::clone(&work));
            tasks.spawn(async move { pool.read(move |conn| work(conn)).await });
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
