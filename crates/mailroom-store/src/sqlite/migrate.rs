//! Versioned schema migrations, embedded in the binary.
//!
//! Each migration is a numbered SQL file under `migrations/`; the table
//! `schema_version` records which have been applied. [`migrate`] applies the
//! pending ones in one `BEGIN IMMEDIATE` transaction at open, so a crash or a
//! second process opening the store at the same time never sees half a
//! schema. A database written by a newer Mailroom (a version this binary
//! does not know) is refused rather than guessed at.

use rusqlite::Connection;

use super::convert::Db;
use crate::{Result, StoreError};

/// Every migration, in order; the number is the schema version it produces.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_inline_blobs.sql")),
    (3, include_str!("migrations/0003_imap_mailboxes.sql")),
    (4, include_str!("migrations/0004_blob_headers.sql")),
    (5, include_str!("migrations/0005_keywords_index.sql")),
    (6, include_str!("migrations/0006_header_summaries.sql")),
    (7, include_str!("migrations/0007_queue.sql")),
    (8, include_str!("migrations/0008_packs.sql")),
];

/// The schema version this binary creates and understands.
pub(crate) const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`LATEST`], stamping applied migrations with
/// `now` (Unix seconds). Returns the version it found before migrating.
pub(crate) fn migrate(conn: &mut Connection, now: i64) -> Result<u32> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )
    .db()?;
    let found: u32 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0)).db()?;
    if found > LATEST {
        return Err(StoreError::Corrupt(format!(
            "database schema version {found} is newer than this Mailroom understands (up to {LATEST}); \
             run the Mailroom release that wrote it, or a newer one"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql).map_err(|e| StoreError::Corrupt(format!("migration {version} failed: {e}")))?;
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", (version, now)).db()?;
        tracing::info!(version, "store schema migrated");
    }
    tx.commit().db()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }

    #[test]
    fn migrates_in_memory_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, 1).unwrap(), 0);
        assert_eq!(migrate(&mut conn, 2).unwrap(), LATEST);
        let rows: u32 = conn.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, LATEST);
    }
}
