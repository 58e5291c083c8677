//! Header summaries: computed by the store's summarizer when a message is
//! stored, shared by copies, and absent (the header instead) for messages
//! stored without one.

use std::sync::Arc;
use std::time::SystemTime;

use mailroom_store::{MailStore, NewContent, NewMessage, SqliteStore, Summary};
use mailroom_types::{Address, Domain, Flags, IdGenerator, Uid};

/// A summarizer anyone can check: the header, reversed.
fn reversed(header: &[u8]) -> Vec<u8> {
    header.iter().rev().copied().collect()
}

fn message(store: &SqliteStore, ids: &IdGenerator, subject: &str, file: bool) -> NewMessage {
    let raw = format!("Subject: {subject}\r\n\r\nBody.\r\n");
    let header = format!("Subject: {subject}\r\n\r\n").into_bytes();
    let id = ids.blob_id(SystemTime::now());
    let content = if file {
        let mut w = store.blobs().create(id).expect("create blob");
        w.write(raw.as_bytes()).expect("write blob");
        NewContent::File(w.finish().expect("finish blob").0, header)
    } else {
        NewContent::inline(id, raw.clone().into_bytes()).expect("inline")
    };
    NewMessage {
        content,
        size: raw.len() as u64,
        internal_date: SystemTime::now(),
        flags: Flags::empty(),
        keywords: Vec::new(),
        headers: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_for_every_way_in_and_shared_by_copies() {
    let dir = tempfile::tempdir().unwrap();
    let older = super::open(dir.path()).await;
    older.add_domain(&Domain::parse("sum.test").unwrap()).await.unwrap();
    let account = older.add_account(&Address::parse("a@sum.test").unwrap(), "x").await.unwrap();
    let inbox = older.mailbox(account, "INBOX").await.unwrap().unwrap().id;
    let ids = IdGenerator::new(7);
    // Stored by a version without summaries.
    older.deliver(&message(&older, &ids, "old", false), &[account]).await.unwrap();
    drop(older);

    let store = SqliteStore::open(&super::options(dir.path()).with_summarizer(Arc::new(reversed))).await.unwrap();
    store.deliver(&message(&store, &ids, "inline", false), &[account]).await.unwrap();
    store.deliver(&message(&store, &ids, "file", true), &[account]).await.unwrap();
    store.append(inbox, &message(&store, &ids, "appended", false)).await.unwrap();
    let archive = store.mailbox(account, "Archive").await.unwrap().unwrap().id;
    store.copy_messages(inbox, &[Uid::new(2).unwrap()], archive).await.unwrap();

    let uids: Vec<Uid> = (1..=4).map(|n| Uid::new(n).unwrap()).collect();
    let got = store.summaries(inbox, &uids).await.unwrap();
    let header = |s: &str| format!("Subject: {s}\r\n\r\n").into_bytes();
    assert_eq!(
        got,
        vec![
            (uids[0], Summary::Header(header("old"))),
            (uids[1], Summary::Kept(reversed(&header("inline")))),
            (uids[2], Summary::Kept(reversed(&header("file")))),
            (uids[3], Summary::Kept(reversed(&header("appended")))),
        ]
    );
    let copied = store.summaries(archive, &[Uid::new(1).unwrap()]).await.unwrap();
    assert_eq!(copied, vec![(Uid::new(1).unwrap(), Summary::Kept(reversed(&header("inline"))))]);
    // The index with summaries agrees with the index and the summaries.
    let (metas, kept): (Vec<_>, Vec<_>) = store.summarized_index(inbox).await.unwrap().into_iter().unzip();
    assert_eq!(metas, store.message_index(inbox).await.unwrap());
    assert_eq!(kept, got.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>());
    // A long list is read by range, with the same answers.
    let many: Vec<Uid> = (1..=40).map(|n| Uid::new(n).unwrap()).collect();
    assert_eq!(store.summaries(inbox, &many).await.unwrap(), got);
}
