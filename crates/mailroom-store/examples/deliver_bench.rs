//! Measures group-commit throughput: `cargo run --release -p mailroom-store
//! --example deliver_bench -- [DIR] [SESSIONS] [MESSAGES] [inline|file]`.
//!
//! Each of SESSIONS tasks delivers a 10 KiB message to one of ten accounts,
//! MESSAGES times in total: inline (how SMTP stores small mail), or as a
//! blob file written and fsync'd first (how it stores large mail). The
//! default directory is a new temporary one.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use mailroom_store::{HeaderCache, MailStore, NewContent, NewMessage, SqliteStore, StoreOptions};
use mailroom_types::{Address, Domain, Flags, IdGenerator, SystemClock};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = args.get(1).filter(|d| !d.is_empty()).map(Into::into).unwrap_or_else(|| tmp.path().to_path_buf());
    let sessions: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let total: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(6000);
    let files = args.get(4).is_some_and(|m| m == "file");

    let store = SqliteStore::open(&StoreOptions::new(dir, Arc::new(SystemClock))).await.expect("open");
    store.add_domain(&Domain::parse("bench.test").expect("valid domain")).await.expect("domain");
    let mut accounts = Vec::new();
    for i in 0..10 {
        let address = Address::parse(&format!("user{i}@bench.test")).expect("valid address");
        accounts.push(store.add_account(&address, "x").await.expect("account"));
    }
    let ids = Arc::new(IdGenerator::new(42));
    let body = vec![b'x'; 10 * 1024];
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let (store, ids, body, accounts) = (store.clone(), ids.clone(), body.clone(), accounts.clone());
        tasks.spawn(async move {
            for n in (s..total).step_by(sessions) {
                let id = ids.blob_id(SystemTime::now());
                let content = if files {
                    let blobs = store.blobs().clone();
                    let body = body.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut w = blobs.create(id)?;
                        w.write(&body)?;
                        w.finish()
                    })
                    .await
                    .expect("join")
                    .map(|(blob, _)| NewContent::File(blob, Vec::new()))
                    .expect("blob")
                } else {
                    NewContent::inline(id, body.clone()).expect("10 KiB is inline")
                };
                let msg = NewMessage {
                    content,
                    size: body.len() as u64,
                    internal_date: SystemTime::now(),
                    flags: Flags::empty(),
                    keywords: Vec::new(),
                    headers: HeaderCache { subject: format!("bench {n}"), ..HeaderCache::default() },
                };
                store.deliver(&msg, &[accounts[n % accounts.len()]]).await.expect("deliver");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{total} deliveries from {sessions} sessions in {secs:.2} s: {:.0}/s", total as f64 / secs);
}
