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

#[tokio::test]
async fn version_2_subscriptions_move_to_their_own_table() {
    // A database as Mailroom left it before schema 3: subscription was a
    // flag of each mailbox, and mailbox ids came from the rowid.
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join(SqliteStore::DB_FILE)).expect("open db");
    conn.execute_batch(include_str!("../../src/sqlite/migrations/0001_init.sql")).expect("schema 1");
    conn.execute_batch(include_str!("../../src/sqlite/migrations/0002_inline_blobs.sql")).expect("schema 2");
    conn.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_version VALUES (1, 0), (2, 0);
         INSERT INTO domains (id, name) VALUES (1, 'old.test');
         INSERT INTO accounts (id, domain_id, address, password_hash) VALUES (1, 1, 'a@old.test', 'h');
         INSERT INTO mailboxes (id, account_id, name, uid_validity, subscribed) VALUES
             (1, 1, 'INBOX', 10, 1), (2, 1, 'Sent', 11, 1), (7, 1, 'Hidden', 12, 0);
         UPDATE meta SET value = 12 WHERE key = 'last_uid_validity';",
    )
    .expect("version 2 data");
    drop(conn);

    let store = crate::open(dir.path()).await;
    let account = mailroom_types::AccountId(1);
    assert_eq!(store.subscriptions(account).await.expect("subscriptions"), ["INBOX", "Sent"]);
    let flags: Vec<(String, bool)> =
        store.mailboxes(account).await.expect("list").into_iter().map(|m| (m.name, m.subscribed)).collect();
    assert_eq!(flags, [("INBOX".into(), true), ("Hidden".into(), false), ("Sent".into(), true)]);
    let created = store.create_mailbox(account, "New").await.expect("create");
    assert!(created.id.0 > 7, "ids continue after the largest: {:?}", created.id);
}

#[tokio::test]
async fn version_7_inline_rows_are_read_and_freed() {
    // Before schema 8, small messages' bytes were rows of `blob_inline`:
    // such a message is read, scanned and expunged as before.
    use mailroom_store::{HeaderCache, NewContent, NewMessage, Scanned};
    use mailroom_types::{Address, Domain, Flags, IdGenerator};
    use std::time::{Duration, SystemTime};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::open(dir.path()).await;
    store.add_domain(&Domain::parse("old.test").unwrap()).await.expect("domain");
    let address = Address::parse("a@old.test").unwrap();
    let account = store.add_account(&address, "hash").await.expect("account");
    let inbox = store.mailboxes(account).await.expect("mailboxes").into_iter().find(|m| m.name == "INBOX").unwrap();
    let raw = b"Subject: old\r\n\r\nStored in the database.\r\n".to_vec();
    let id = IdGenerator::new(8).blob_id(SystemTime::now());
    let message = NewMessage {
        content: NewContent::inline(id.clone(), raw.clone()).expect("inline"),
        size: raw.len() as u64,
        internal_date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        flags: Flags::empty(),
        keywords: Vec::new(),
        headers: HeaderCache { subject: "old".into(), ..HeaderCache::default() },
    };
    let uid = store.deliver(&message, &[account]).await.expect("deliver")[0].1;
    drop(store);
    // Where a version 7 store kept the bytes.
    let conn = Connection::open(dir.path().join(SqliteStore::DB_FILE)).expect("open db");
    conn.execute("DELETE FROM blob_packed WHERE blob_id = ?1", [id.as_str()]).expect("unpack");
    conn.execute("INSERT INTO blob_inline (blob_id, data) VALUES (?1, ?2)", (id.as_str(), &raw)).expect("row");
    drop(conn);

    let store = crate::open(dir.path()).await;
    let mut buf = Vec::new();
    assert!(store.read_blob(&id, &mut buf).await.expect("read"));
    assert_eq!(buf, raw);
    let scanned = store
        .scan_extents(vec![id.clone()], 0, |_, blob| match blob {
            Some(Scanned::Bytes(b)) => Some(b.bytes().to_vec()),
            _ => None,
        })
        .await
        .expect("scan");
    assert_eq!(scanned, [Some(raw.clone())], "a row is read, never located");
    store.expunge(inbox.id, &[uid]).await.expect("expunge");
    assert!(!store.read_blob(&id, &mut buf).await.expect("read"), "gone with its message");
    let conn = Connection::open(dir.path().join(SqliteStore::DB_FILE)).expect("open db");
    let rows: i64 = conn.query_row("SELECT count(*) FROM blob_inline", [], |r| r.get(0)).expect("count");
    assert_eq!(rows, 0, "its row is deleted");
}
