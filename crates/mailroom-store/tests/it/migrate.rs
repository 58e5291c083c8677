//! Schema migrations: a fresh database gets the latest version, reopening
//! changes nothing, and a database from a newer Mailroom is refused.

use mailroom_store::{MailStore, SqliteStore, StoreError};
use rusqlite::Connection;

fn versions(dir: &std::path::Path) -> Vec<(u32, i64)> {
    let conn = Connection::open(dir.join(SqliteStore::DB_FILE)).expect("open db");
    let mut stmt = conn.prepare("SELECT version, applied_at FROM schema_version ORDER BY version").expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
}

#[tokio::test]
async fn fresh_database_gets_latest_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::open(dir.path()).await;
    let applied = versions(dir.path());
    assert_eq!(
        applied.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (1..=SqliteStore::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert!(applied.iter().all(|(_, at)| *at == 1_800_000_000), "stamped with the store's clock");
    assert!(dir.path().join("blobs").is_dir());
    assert!(store.list_domains().await.expect("list").is_empty());

    let conn = Connection::open(dir.path().join(SqliteStore::DB_FILE)).expect("open db");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn reopening_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::open(dir.path()).await;
    store.add_domain(&mailroom_types::Domain::parse("keep.test").unwrap()).await.expect("add domain");
    drop(store);
    let before = versions(dir.path());
    let store = crate::open(dir.path()).await;
    assert_eq!(versions(dir.path()), before);
    let domains = store.list_domains().await.expect("list");
    assert_eq!(domains.len(), 1, "data survives reopening");
}

#[tokio::test]
async fn newer_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(crate::open(dir.path()).await);
    let future = SqliteStore::SCHEMA_VERSION + 1;
    let conn = Connection::open(dir.path().join(SqliteStore::DB_FILE)).expect("open db");
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)", [future]).expect("insert");
    drop(conn);
    match SqliteStore::open(&crate::options(dir.path())).await {
        Err(StoreError::Corrupt(msg)) => {
            assert!(msg.contains(&format!("version {future}")), "{msg}");
            assert!(msg.contains("newer"), "{msg}");
        }
        Err(e) => panic!("expected Corrupt, got {e:?}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test]
async fn two_handles_share_one_database() {
    // The admin CLI opens the store while the server runs: two processes,
    // two writer connections, one WAL database.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = crate::open(dir.path()).await;
    let cli = crate::open(dir.path()).await;
    cli.add_domain(&mailroom_types::Domain::parse("cli.test").unwrap()).await.expect("cli write");
    server.add_domain(&mailroom_types::Domain::parse("server.test").unwrap()).await.expect("server write");
    assert_eq!(server.list_domains().await.expect("list").len(), 2);
    assert_eq!(cli.list_domains().await.expect("list").len(), 2);
}
