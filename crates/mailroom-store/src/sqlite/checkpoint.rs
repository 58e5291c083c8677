//! WAL checkpoints on a thread of their own.
//!
//! A checkpoint copies the pages committed to the WAL back into the
//! database file and fsyncs it. SQLite runs one by default inside the
//! commit that takes the WAL past 1000 pages, on the committing connection:
//! here the writer thread, so every delivery waiting for the next batch
//! would wait for the copy and its fsync too (milliseconds, several times a
//! second under load).
//!
//! Instead the writer's WAL hook only wakes a checkpoint thread, which
//! checkpoints `PASSIVE` (never blocking the writer or readers) on its own
//! connection while the writer goes on committing. A WAL is reset only when
//! a checkpoint has caught up with it, which a busy writer may keep from
//! happening; so past [`WAL_LIMIT_PAGES`] the writer checkpoints itself,
//! as SQLite would, which bounds the WAL file.

use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::convert::Db;
use super::open_connection;
use crate::Result;

/// WAL size (pages) that wakes the checkpoint thread: about 16 MiB, four
/// times SQLite's default. Each checkpoint copies a page once however often
/// it was committed since the last one, and the B-tree pages every batch
/// rewrites are most of a delivery's pages besides the message itself: so
/// fewer, larger checkpoints copy less (about 3% of the CPU time of a
/// delivery measured with smtp-source, against the default).
const CHECKPOINT_PAGES: i32 = 4000;

/// WAL size (pages) past which the writer checkpoints itself: 64 MiB with
/// 4 KiB pages.
const WAL_LIMIT_PAGES: i32 = 16 * 1024;

/// Starts the checkpoint thread for the database at `path` and hooks the
/// writer connection `writer` to it. The thread ends when `writer` is
/// closed.
pub(crate) fn start(writer: &mut Connection, path: &Path) -> Result<()> {
    let conn = open_connection(path)?;
    let (wake, woken) = sync_channel::<()>(1);
    std::thread::Builder::new().name("mailroom-store-checkpoint".into()).spawn(move || {
        // Each wake-up checkpoints whatever the WAL holds by then, so wakes
        // sent meanwhile coalesce into the one slot of the channel.
        while woken.recv().is_ok() {
            match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                Ok(_) => {}
                // The writer checkpointing itself at the WAL limit: its
                // checkpoint does the work.
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => {
                    tracing::debug!("wal checkpoint skipped: another one is running");
                }
                Err(error) => tracing::warn!(%error, "wal checkpoint failed"),
            }
        }
        tracing::debug!("store checkpoint thread stopped");
    })?;
    writer.wal_hook(Some(move |wal: &mut Wal, pages| hook(&wake, wal, pages))).db()
}

/// Runs after each commit of the writer, with the WAL's size in pages.
///
/// It never fails: the commit it follows is already durable, and an error
/// returned here would be reported as the commit's.
fn hook(wake: &SyncSender<()>, wal: &mut Wal, pages: i32) -> rusqlite::Result<()> {
    if pages >= WAL_LIMIT_PAGES {
        // Busy while the checkpoint thread is at it; the next commit retries.
        if let Err(error) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            tracing::debug!(%error, pages, "wal checkpoint by the writer failed");
        }
    } else if pages >= CHECKPOINT_PAGES {
        // Full means a wake-up is already pending; a gone thread means the
        // store is closing. Neither is the commit's business.
        let _ = wake.try_send(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_pages(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("db.sqlite3-wal")).map(|m| m.len() / 4096).unwrap_or(0)
    }

    #[test]
    fn the_wal_stays_bounded_under_constant_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let mut conn = open_connection(&path).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        start(&mut conn, &path).unwrap();
        // About 160 MiB of commits with no pause: without checkpoints the
        // WAL would hold all of it.
        let row = vec![7u8; 16 * 1024];
        for _ in 0..10_000 {
            conn.execute("INSERT INTO t (b) VALUES (?1)", [&row]).unwrap();
        }
        let pages = wal_pages(dir.path());
        assert!(pages < (WAL_LIMIT_PAGES + CHECKPOINT_PAGES) as u64, "the WAL is bounded ({pages} pages)");
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 10_000);
    }
}
