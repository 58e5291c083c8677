//! The backend-independent conformance suite: what every [`MailStore`] must
//! do, checked the same way on SQLite today and on PostgreSQL later.
//!
//! Each case is a public async function taking an [`OpenStore`], something
//! that opens (again) the same underlying store: a case writes through one
//! handle and checks through a freshly opened one, which proves that a write
//! had committed before it returned (design.md, "Durability"). Each case
//! uses its own domain names, so the cases are independent of each other
//! and of their order; they expect a store that has not seen those names.
//! [`run_all`] runs every case on one store.
//!
//! Blobs are real files written through [`MailStore::blobs`], so the suite
//! also checks that expunge and account deletion remove exactly the files
//! nothing references any more.
//!
//! The cases for mailbox management, copy, move and the QRESYNC reads live
//! in the `mailboxes` submodule and are re-exported here.
//!
//! Compiled for this crate's tests and, with the `conformance` feature, for
//! other crates' tests; it panics on the first violation, naming it.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use mailroom_types::{AccountId, Address, BlobId, Domain, Flags, IdGenerator, MailboxId, ModSeq, Uid};

use crate::{
    AliasRecord, AliasSource, FlagChange, FlagOp, HEADER_CACHE_CHARS, HeaderCache, MailStore, MailboxRecord,
    NewContent, NewMessage, Resolution, Scanned, SpecialUse, StoreError,
};

/// Opens (again) the store under test. Implemented for every
/// `Fn() -> impl Future<Output = impl MailStore>`.
pub trait OpenStore {
    /// The backend.
    type Store: MailStore;
    /// A new handle on the same underlying store.
    fn open(&self) -> impl Future<Output = Self::Store>;
}

impl<F, Fut> OpenStore for F
where
    F: Fn() -> Fut,
    Fut: Future,
    Fut::Output: MailStore,
{
    type Store = Fut::Output;
    fn open(&self) -> impl Future<Output = Self::Store> {
        self()
    }
}

/// Runs every case, in order, on the store `open` opens.
pub async fn run_all<S, F, Fut>(open: F)
where
    S: MailStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    domains_crud(&open).await;
    accounts_crud(&open).await;
    aliases_crud(&open).await;
    default_mailboxes(&open).await;
    resolve_recipient(&open).await;
    deliver_to_two_accounts(&open).await;
    deliver_to_special_use(&open).await;
    uids_increase_and_are_never_reused(&open).await;
    concurrent_deliveries(&open).await;
    modseq_bumps(&open).await;
    store_flags_ops(&open).await;
    unchanged_since(&open).await;
    visible_from_fresh_handle(&open).await;
    blobs_deleted_when_unreferenced(&open).await;
    inline_content_lives_and_dies_with_its_rows(&open).await;
    scan_blobs_visits_each_in_order(&open).await;
    scan_extents_locates_or_reads(&open).await;
    header_sections_kept_apart(&open).await;
    uids_keywords_and_subject_search(&open).await;
    orphan_blobs_are_swept(&open).await;
    change_events_after_commit(&open).await;
    create_mailbox_with_parents(&open).await;
    create_duplicate_mailbox(&open).await;
    invalid_mailbox_names(&open).await;
    delete_mailbox_keeps_children(&open).await;
    rename_mailbox_with_inferiors(&open).await;
    rename_inbox_moves_messages(&open).await;
    subscriptions_independent_of_existence(&open).await;
    mailbox_status_counts(&open).await;
    copy_messages_share_blobs(&open).await;
    move_messages_records_vanished(&open).await;
    expunge_deleted_all_and_within(&open).await;
    changed_and_vanished_since(&open).await;
    uids_never_reused_after_move_and_rename(&open).await;
    queue_submit_and_claim(&open).await;
    queue_reports_and_notices(&open).await;
    queue_notice_is_queued(&open).await;
}

/// Asserts that `$e` is `Err(StoreError::$variant(_))`.
macro_rules! assert_err {
    ($e:expr, $variant:ident) => {{
        let r = $e;
        assert!(
            matches!(r, Err(StoreError::$variant(_))),
            "{}: expected {}, got {r:?}",
            stringify!($e),
            stringify!($variant)
        );
    }};
}

mod mailboxes;
mod queue;
pub use mailboxes::{
    changed_and_vanished_since, copy_messages_share_blobs, create_duplicate_mailbox, create_mailbox_with_parents,
    delete_mailbox_keeps_children, expunge_deleted_all_and_within, invalid_mailbox_names, mailbox_status_counts,
    move_messages_records_vanished, rename_inbox_moves_messages, rename_mailbox_with_inferiors,
    subscriptions_independent_of_existence, uids_never_reused_after_move_and_rename,
};
pub use queue::{queue_notice_is_queued, queue_reports_and_notices, queue_submit_and_claim};

fn domain(s: &str) -> Domain {
    Domain::parse(s).expect("valid test domain")
}

fn addr(s: &str) -> Address {
    Address::parse(s).expect("valid test address")
}

/// One id generator for the whole process, so cases never collide on a
/// blob name; salted with the time so reruns against a kept store do not
/// either.
fn blob_ids() -> &'static IdGenerator {
    static IDS: OnceLock<IdGenerator> = OnceLock::new();
    IDS.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        IdGenerator::new((nanos as u64) ^ u64::from(std::process::id()))
    })
}

/// A small message, its bytes inline (how most mail is stored).
fn message<S: MailStore>(_store: &S, subject: &str) -> NewMessage {
    let id = blob_ids().blob_id(SystemTime::now());
    let body = format!("Subject: {subject}\r\n\r\nHello.\r\n");
    let size = body.len() as u64;
    let content = NewContent::inline(id, body.into_bytes()).expect("small enough to be inline");
    new_message(content, size, subject)
}

/// A message whose blob file has really been written and fsync'd (how a
/// large message is stored).
fn file_message<S: MailStore>(store: &S, subject: &str) -> NewMessage {
    let id = blob_ids().blob_id(SystemTime::now());
    let mut w = store.blobs().create(id).expect("create blob");
    let body = format!("Subject: {subject}\r\n\r\nHello.\r\n");
    w.write(body.as_bytes()).expect("write blob");
    let (blob, size) = w.finish().expect("finish blob");
    let header = format!("Subject: {subject}\r\n\r\n").into_bytes();
    new_message(NewContent::File(blob, header), size, subject)
}

fn new_message(content: NewContent, size: u64, subject: &str) -> NewMessage {
    NewMessage {
        content,
        size,
        internal_date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        flags: Flags::empty(),
        keywords: Vec::new(),
        headers: HeaderCache {
            from: "sender@remote.test".into(),
            to: "rcpt@local.test".into(),
            subject: subject.into(),
            message_id: format!("<{subject}@remote.test>"),
            date: Some(1_699_999_999),
        },
    }
}

/// Delivers `count` messages to `account`, message `i` with the subject
/// `subject(i)`, every `file_every`th (from the third) in a blob file and
/// the rest inline; returns their blob ids in order.
async fn deliver_mixed<S: MailStore>(
    store: &S,
    account: AccountId,
    count: usize,
    file_every: usize,
    subject: impl Fn(usize) -> String,
) -> Vec<BlobId> {
    let mut ids = Vec::new();
    for i in 0..count {
        let m = if i % file_every == 3 % file_every {
            file_message(store, &subject(i))
        } else {
            message(store, &subject(i))
        };
        ids.push(m.content.blob().clone());
        store.deliver(&m, &[account]).await.expect("deliver");
    }
    ids
}

/// The raw bytes of blob `id`, or `None` once it is gone.
async fn read<S: MailStore>(store: &S, id: &BlobId) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    store.read_blob(id, &mut buf).await.expect("read blob").then_some(buf)
}

async fn add_domain<S: MailStore>(store: &S, name: &str) {
    store.add_domain(&domain(name)).await.expect("add domain");
}

async fn add_account<S: MailStore>(store: &S, address: &str) -> AccountId {
    store.add_account(&addr(address), "$argon2id$test").await.expect("add account")
}

async fn inbox<S: MailStore>(store: &S, account: AccountId) -> MailboxRecord {
    store.mailbox(account, "INBOX").await.expect("read mailbox").expect("INBOX exists")
}

async fn mailbox_by_id<S: MailStore>(store: &S, account: AccountId, id: MailboxId) -> MailboxRecord {
    let all = store.mailboxes(account).await.expect("list mailboxes");
    all.into_iter().find(|m| m.id == id).expect("mailbox exists")
}

fn uid(n: u32) -> Uid {
    Uid::new(n).expect("nonzero UID")
}

fn uids(ns: impl IntoIterator<Item = u32>) -> Vec<Uid> {
    ns.into_iter().map(uid).collect()
}

fn next(m: ModSeq) -> ModSeq {
    ModSeq(m.0 + 1)
}

/// Waits until the writes issued before it (and whatever a backend does
/// after their commit, such as deleting blob files) are done: another write
/// through the same handle, which changes nothing.
async fn barrier<S: MailStore>(store: &S, mailbox: MailboxId) {
    store.store_flags(mailbox, &[], FlagOp::Add, Flags::empty(), &[], None).await.expect("barrier write");
}

/// Waits (bounded) for a condition that a backend may satisfy just after a
/// write returned, such as a blob file's deletion.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Domains: add, list sorted, duplicates, and refusing to delete a domain
/// that still has accounts or aliases.
pub async fn domains_crud(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "crud-b.test").await;
    add_domain(&store, "Crud-A.test").await;
    assert_err!(store.add_domain(&domain("crud-a.test")).await, AlreadyExists);
    let names: Vec<String> = store
        .list_domains()
        .await
        .expect("list domains")
        .into_iter()
        .map(|d| d.name.to_string())
        .filter(|n| n.starts_with("crud-"))
        .collect();
    assert_eq!(names, ["crud-a.test", "crud-b.test"], "sorted, lower-cased");
    assert_err!(store.delete_domain(&domain("crud-missing.test")).await, NotFound);

    add_account(&store, "alice@crud-a.test").await;
    assert_err!(store.delete_domain(&domain("crud-a.test")).await, Conflict);
    let catch_all = AliasSource::CatchAll(domain("crud-b.test"));
    store.add_alias(&catch_all, &addr("alice@crud-a.test")).await.expect("add catch-all");
    assert_err!(store.delete_domain(&domain("crud-b.test")).await, Conflict);
    store.delete_alias(&catch_all, None).await.expect("delete catch-all");
    store.delete_domain(&domain("crud-b.test")).await.expect("delete empty domain");
    store.delete_account(&addr("alice@crud-a.test")).await.expect("delete account");
    store.delete_domain(&domain("CRUD-A.test")).await.expect("delete emptied domain");
    let left = store.list_domains().await.expect("list domains");
    assert!(left.iter().all(|d| !d.name.as_str().starts_with("crud-")), "{left:?}");
}

/// Accounts: case-insensitive local part stored lower-cased, every error.
pub async fn accounts_crud(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "acc.test").await;
    let alice = store.add_account(&addr("Alice@Acc.test"), "hash-1").await.expect("add alice");
    let record = store.account(&addr("ALICE@acc.test")).await.expect("read").expect("alice exists");
    assert_eq!(record.id, alice);
    assert_eq!(record.address.to_string(), "alice@acc.test", "local part stored lower-cased");
    assert_eq!(record.password_hash, "hash-1");
    assert_err!(store.add_account(&addr("alice@ACC.TEST"), "h").await, AlreadyExists);
    assert_err!(store.add_account(&addr("x@acc-unknown.test"), "h").await, NotFound);
    let bob = add_account(&store, "bob@acc.test").await;
    assert_ne!(alice, bob);

    let listed: Vec<String> = store
        .list_accounts(Some(&domain("acc.test")))
        .await
        .expect("list accounts")
        .into_iter()
        .map(|a| a.address.to_string())
        .collect();
    assert_eq!(listed, ["alice@acc.test", "bob@acc.test"]);
    let all = store.list_accounts(None).await.expect("list all accounts");
    assert!(all.iter().any(|a| a.id == bob) && all.iter().any(|a| a.id == alice));
    assert!(all.windows(2).all(|w| w[0].address.key() <= w[1].address.key()), "sorted by address");
    assert_err!(store.list_accounts(Some(&domain("acc-unknown.test"))).await, NotFound);

    store.set_password(&addr("BOB@acc.test"), "hash-2").await.expect("set password");
    let bob_record = store.account(&addr("bob@acc.test")).await.expect("read").expect("bob exists");
    assert_eq!(bob_record.password_hash, "hash-2");
    assert_err!(store.set_password(&addr("nobody@acc.test"), "h").await, NotFound);

    store.add_alias(&AliasSource::Address(addr("carol@acc.test")), &addr("bob@acc.test")).await.expect("alias");
    assert_err!(store.add_account(&addr("Carol@acc.test"), "h").await, Conflict);

    store.delete_account(&addr("bob@acc.test")).await.expect("delete bob");
    assert_eq!(store.account(&addr("bob@acc.test")).await.expect("read"), None);
    assert!(store.mailboxes(bob).await.expect("list mailboxes").is_empty(), "mailboxes go with the account");
    assert!(
        store.list_aliases(Some(&domain("acc.test"))).await.expect("list aliases").is_empty(),
        "aliases pointing at a deleted account go with it"
    );
    assert_err!(store.delete_account(&addr("bob@acc.test")).await, NotFound);
}

/// Aliases: exact and catch-all, several targets, every error.
pub async fn aliases_crud(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "ali.test").await;
    add_account(&store, "a@ali.test").await;
    add_account(&store, "b@ali.test").await;
    let sales = AliasSource::Address(addr("sales@ali.test"));
    let catch_all = AliasSource::CatchAll(domain("ali.test"));
    store.add_alias(&sales, &addr("a@ali.test")).await.expect("sales -> a");
    store.add_alias(&sales, &addr("B@ali.test")).await.expect("sales -> b");
    store.add_alias(&catch_all, &addr("a@ali.test")).await.expect("catch-all -> a");

    assert_err!(
        store.add_alias(&AliasSource::Address(addr("Sales@ali.test")), &addr("a@ali.test")).await,
        AlreadyExists
    );
    assert_err!(store.add_alias(&sales, &addr("nobody@ali.test")).await, NotFound);
    assert_err!(store.add_alias(&sales, &addr("x@ali-elsewhere.test")).await, Conflict);
    assert_err!(store.add_alias(&AliasSource::Address(addr("a@ali.test")), &addr("b@ali.test")).await, Conflict);
    assert_err!(
        store.add_alias(&AliasSource::Address(addr("x@ali-nonlocal.test")), &addr("a@ali.test")).await,
        NotFound
    );

    let listed = store.list_aliases(Some(&domain("ali.test"))).await.expect("list aliases");
    let expected = vec![
        AliasRecord { source: catch_all.clone(), target: addr("a@ali.test") },
        AliasRecord { source: sales.clone(), target: addr("a@ali.test") },
        AliasRecord { source: sales.clone(), target: addr("b@ali.test") },
    ];
    assert_eq!(listed, expected, "sorted by source key, then target");
    let all = store.list_aliases(None).await.expect("list all aliases");
    assert!(expected.iter().all(|a| all.contains(a)));
    assert_err!(store.list_aliases(Some(&domain("ali-unknown.test"))).await, NotFound);

    store.delete_alias(&sales, Some(&addr("b@ali.test"))).await.expect("delete one row");
    assert_err!(store.delete_alias(&sales, Some(&addr("b@ali.test"))).await, NotFound);
    assert_eq!(store.list_aliases(Some(&domain("ali.test"))).await.expect("list").len(), 2);
    store.delete_alias(&sales, None).await.expect("delete every row of a source");
    assert_err!(store.delete_alias(&sales, None).await, NotFound);
    store.delete_alias(&catch_all, None).await.expect("delete catch-all");
    assert!(store.list_aliases(Some(&domain("ali.test"))).await.expect("list").is_empty());
}

/// Every new account gets INBOX and the special-use mailboxes, each with a
/// distinct UIDVALIDITY larger than any handed out before, even for a
/// re-created account in the same second.
pub async fn default_mailboxes(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "mbx.test").await;
    let a = add_account(&store, "a@mbx.test").await;
    let b = add_account(&store, "b@mbx.test").await;

    let boxes = store.mailboxes(a).await.expect("list mailboxes");
    let names: Vec<&str> = boxes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"], "INBOX first, then by name");
    for m in &boxes {
        assert_eq!(m.account, a);
        assert_eq!(m.uid_next, uid(1), "{}: UIDs start at 1", m.name);
        assert!(m.highest_modseq.0 >= 1, "{}: RFC 7162 mod-sequences are >= 1", m.name);
        assert!(m.subscribed, "{} is subscribed", m.name);
        let role = SpecialUse::DEFAULT_MAILBOXES.iter().find(|(n, _)| *n == m.name).map(|(_, r)| *r);
        assert_eq!(m.special_use, role, "{}", m.name);
    }
    let validities = |boxes: &[MailboxRecord]| {
        let mut v: Vec<u32> = boxes.iter().map(|m| m.uid_validity.get()).collect();
        v.sort_unstable();
        v
    };
    let va = validities(&boxes);
    assert!(va.windows(2).all(|w| w[0] < w[1]), "distinct UIDVALIDITY per mailbox: {va:?}");
    let vb = validities(&store.mailboxes(b).await.expect("list mailboxes"));
    assert!(vb.windows(2).all(|w| w[0] < w[1]), "distinct UIDVALIDITY per mailbox: {vb:?}");
    assert!(vb[0] > va[5], "a later account's UIDVALIDITY values are larger: {va:?} {vb:?}");

    store.delete_account(&addr("a@mbx.test")).await.expect("delete a");
    let a2 = add_account(&store, "a@mbx.test").await;
    let va2 = validities(&store.mailboxes(a2).await.expect("list mailboxes"));
    assert!(va2[0] > vb[5], "a re-created mailbox never reuses a UIDVALIDITY: {vb:?} {va2:?}");

    for spelling in ["INBOX", "inbox", "InBoX"] {
        let m = store.mailbox(a2, spelling).await.expect("read mailbox").expect("INBOX is case-insensitive");
        assert_eq!(m.name, "INBOX");
    }
    assert!(store.mailbox(a2, "Sent").await.expect("read").is_some());
    assert_eq!(store.mailbox(a2, "sent").await.expect("read"), None, "other names are exact");
    assert_eq!(store.mailbox(a2, "Nope").await.expect("read"), None);
}

/// Account first, then exact alias, then catch-all; local part
/// case-insensitive; NotLocal and Unknown.
pub async fn resolve_recipient(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "res.test").await;
    add_domain(&store, "res-nocatch.test").await;
    let alice = add_account(&store, "alice@res.test").await;
    let bob = add_account(&store, "bob@res.test").await;
    let carol = add_account(&store, "carol@res.test").await;
    let team = AliasSource::Address(addr("team@res.test"));
    store.add_alias(&team, &addr("alice@res.test")).await.expect("team -> alice");
    store.add_alias(&team, &addr("bob@res.test")).await.expect("team -> bob");
    store.add_alias(&AliasSource::CatchAll(domain("res.test")), &addr("carol@res.test")).await.expect("catch-all");

    let resolve = |a: &'static str| {
        let store = &store;
        async move {
            match store.resolve_recipient(&addr(a)).await.expect("resolve") {
                Resolution::Accounts(mut ids) => {
                    ids.sort();
                    Resolution::Accounts(ids)
                }
                other => other,
            }
        }
    };
    let mut team_ids = vec![alice, bob];
    team_ids.sort();
    assert_eq!(resolve("alice@res.test").await, Resolution::Accounts(vec![alice]));
    assert_eq!(resolve("ALICE@Res.Test").await, Resolution::Accounts(vec![alice]));
    assert_eq!(resolve("team@res.test").await, Resolution::Accounts(team_ids.clone()), "alias beats catch-all");
    assert_eq!(resolve("Team@res.test").await, Resolution::Accounts(team_ids));
    assert_eq!(resolve("random@res.test").await, Resolution::Accounts(vec![carol]), "catch-all");
    assert_eq!(resolve("x@res-nocatch.test").await, Resolution::Unknown);
    assert_eq!(resolve("x@res-nonlocal.test").await, Resolution::NotLocal);
}

/// One delivery to two accounts lands in both INBOXes with everything the
/// message carried; a delivery to a missing account changes nothing.
pub async fn deliver_to_two_accounts(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "dlv.test").await;
    let a = add_account(&store, "a@dlv.test").await;
    let b = add_account(&store, "b@dlv.test").await;
    let (inbox_a, inbox_b) = (inbox(&store, a).await, inbox(&store, b).await);

    let mut msg = message(&store, "two recipients");
    msg.flags = Flags::SEEN;
    msg.keywords = vec!["b".into(), "$a".into(), "b".into()];
    let placed = store.deliver(&msg, &[a, b]).await.expect("deliver");
    assert_eq!(placed, [(inbox_a.id, uid(1)), (inbox_b.id, uid(1))], "recipient order");

    for (account, before) in [(a, &inbox_a), (b, &inbox_b)] {
        let after = inbox(&store, account).await;
        assert_eq!(after.uid_next, uid(2));
        assert_eq!(after.highest_modseq, next(before.highest_modseq), "an arrival bumps HIGHESTMODSEQ");
        let msgs = store.messages(after.id).await.expect("list messages");
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!((m.mailbox, m.uid, m.modseq), (after.id, uid(1), after.highest_modseq));
        assert_eq!((&m.blob, m.size), (msg.content.blob(), msg.size));
        assert_eq!(m.flags, Flags::SEEN);
        assert_eq!(m.keywords, ["$a", "b"], "keywords sorted and deduplicated");
        assert_eq!(m.internal_date, msg.internal_date);
        assert_eq!(m.headers, msg.headers);
        assert_eq!(read(&store, &m.blob).await.expect("blob present").len() as u64, m.size);
    }

    let other = message(&store, "half delivered");
    let missing = AccountId(i64::MAX);
    assert_err!(store.deliver(&other, &[a, missing]).await, NotFound);
    assert_eq!(store.messages(inbox_a.id).await.expect("list").len(), 1, "a failed delivery leaves nothing behind");
    assert_eq!(inbox(&store, a).await.uid_next, uid(2));
    assert!(store.deliver(&other, &[]).await.expect("no recipients").is_empty());
}

/// A delivery by special use lands in each account's Junk, or in the
/// INBOX of an account that has no Junk; a missing account changes nothing.
pub async fn deliver_to_special_use(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "junk.test").await;
    let a = add_account(&store, "a@junk.test").await;
    let b = add_account(&store, "b@junk.test").await;
    store.delete_mailbox(b, "Junk").await.expect("delete b's Junk");
    let junk_a = store.mailbox(a, "Junk").await.expect("lookup").expect("a has Junk");
    let inbox_b = inbox(&store, b).await;

    let msg = message(&store, "quarantined");
    let placed = store.deliver_special_use(&msg, &[a, b], SpecialUse::Junk).await.expect("deliver");
    assert_eq!(placed, [(junk_a.id, uid(1)), (inbox_b.id, uid(1))], "Junk, else INBOX, in recipient order");
    let in_junk = store.messages(junk_a.id).await.expect("list");
    assert_eq!(in_junk.len(), 1);
    assert_eq!((&in_junk[0].blob, in_junk[0].size), (msg.content.blob(), msg.size));
    assert!(store.messages(inbox(&store, a).await.id).await.expect("list").is_empty(), "not in a's INBOX");
    let after = store.mailbox(a, "Junk").await.expect("lookup").expect("Junk");
    assert_eq!(after.highest_modseq, next(junk_a.highest_modseq), "an arrival bumps HIGHESTMODSEQ");

    let other = message(&store, "half delivered");
    assert_err!(store.deliver_special_use(&other, &[a, AccountId(i64::MAX)], SpecialUse::Junk).await, NotFound);
    assert_eq!(store.messages(junk_a.id).await.expect("list").len(), 1, "a failed delivery leaves nothing behind");
    assert!(store.deliver_special_use(&other, &[], SpecialUse::Junk).await.expect("no recipients").is_empty());
}

/// UIDs strictly increase across deliver and append, and an expunged UID
/// is never handed out again.
pub async fn uids_increase_and_are_never_reused(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "uid.test").await;
    let a = add_account(&store, "a@uid.test").await;
    let inbox_id = inbox(&store, a).await.id;
    for n in 1..=3 {
        let placed = store.deliver(&message(&store, "deliver"), &[a]).await.expect("deliver");
        assert_eq!(placed, [(inbox_id, uid(n))]);
    }
    let (u, m) = store.append(inbox_id, &message(&store, "append")).await.expect("append");
    assert_eq!(u, uid(4));
    assert_eq!(m, inbox(&store, a).await.highest_modseq, "append returns the new HIGHESTMODSEQ");

    let removed = store.expunge(inbox_id, &uids([4, 3, 4, 99])).await.expect("expunge");
    assert_eq!(removed, uids([3, 4]), "missing and repeated UIDs are skipped");
    assert_eq!(store.deliver(&message(&store, "after"), &[a]).await.expect("deliver"), [(inbox_id, uid(5))]);
    assert_eq!(store.append(inbox_id, &message(&store, "after")).await.expect("append").0, uid(6));
    let listed: Vec<Uid> = store.messages(inbox_id).await.expect("list").iter().map(|m| m.uid).collect();
    assert_eq!(listed, uids([1, 2, 5, 6]), "UID order");
    assert_eq!(inbox(&store, a).await.uid_next, uid(7));
    let one = store.message(inbox_id, uid(5)).await.expect("lookup").expect("message 5 exists");
    assert_eq!(one, store.messages(inbox_id).await.expect("list")[2], "the lookup equals the listed record");
    assert!(store.message(inbox_id, uid(3)).await.expect("lookup").is_none(), "an expunged UID is gone");

    let sent = store.mailbox(a, "Sent").await.expect("read").expect("Sent exists");
    assert_eq!(
        store.append(sent.id, &message(&store, "sent")).await.expect("append").0,
        uid(1),
        "UIDs are per mailbox"
    );

    let missing = MailboxId(i64::MAX);
    assert_err!(store.append(missing, &message(&store, "nowhere")).await, NotFound);
    assert_err!(store.expunge(missing, &uids([1])).await, NotFound);
    assert_err!(store.messages(missing).await, NotFound);
    assert_err!(store.message(missing, uid(1)).await, NotFound);
    assert!(store.expunge(inbox_id, &uids([3])).await.expect("expunge again").is_empty());
}

/// Fifty concurrent deliveries to one mailbox get UIDs 1..=50, each once,
/// and HIGHESTMODSEQ moves by exactly fifty.
pub async fn concurrent_deliveries(open: &impl OpenStore) {
    let store = Arc::new(open.open().await);
    add_domain(&*store, "conc.test").await;
    let a = add_account(&*store, "a@conc.test").await;
    let before = inbox(&*store, a).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = Arc::clone(&store);
        let msg = message(&*store, &format!("concurrent {i}"));
        tasks.spawn(async move { store.deliver(&msg, &[a]).await });
    }
    let mut got = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let placed = joined.expect("delivery task").expect("deliver");
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].0, before.id);
        got.push(placed[0].1.get());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=50).collect::<Vec<u32>>());

    let after = inbox(&*store, a).await;
    assert_eq!(after.uid_next, uid(51));
    assert_eq!(after.highest_modseq, ModSeq(before.highest_modseq.0 + 50));
    let mut modseqs: Vec<u64> = store.messages(before.id).await.expect("list").iter().map(|m| m.modseq.0).collect();
    modseqs.sort_unstable();
    let expected: Vec<u64> = (before.highest_modseq.0 + 1..=before.highest_modseq.0 + 50).collect();
    assert_eq!(modseqs, expected, "one modseq per arrival");
}

/// RFC 7162 §3.1: arrival, a real flag change and expunge bump the modseq;
/// a no-op flag change does not.
pub async fn modseq_bumps(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "mod.test").await;
    let a = add_account(&store, "a@mod.test").await;
    let m0 = inbox(&store, a).await;
    store.deliver(&message(&store, "one"), &[a]).await.expect("deliver");
    let m1 = inbox(&store, a).await;
    assert_eq!(m1.highest_modseq, next(m0.highest_modseq), "arrival");

    let change = |op, flags, keywords: &[&str]| {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        let store = &store;
        async move { store.store_flags(m0.id, &[uid(1)], op, flags, &keywords, None).await.expect("store flags") }
    };
    let seen = change(FlagOp::Add, Flags::SEEN, &[]).await;
    let m2 = next(m1.highest_modseq);
    assert_eq!(seen, [FlagChange { uid: uid(1), modseq: m2, flags: Flags::SEEN, keywords: vec![] }]);
    assert_eq!(inbox(&store, a).await.highest_modseq, m2, "flag change");

    let again = change(FlagOp::Add, Flags::SEEN, &[]).await;
    assert_eq!(again, seen, "a no-op is reported with its unchanged modseq");
    let same = change(FlagOp::Replace, Flags::SEEN, &[]).await;
    assert_eq!(same, seen);
    let absent = change(FlagOp::Remove, Flags::empty(), &["$absent"]).await;
    assert_eq!(absent, seen);
    assert_eq!(inbox(&store, a).await.highest_modseq, m2, "no-op changes do not bump");

    let kw = change(FlagOp::Add, Flags::empty(), &["$Forwarded"]).await;
    let m3 = next(m2);
    assert_eq!(kw[0].modseq, m3, "a keyword change bumps");
    assert_eq!(kw[0].keywords, ["$Forwarded"]);
    let record = &store.messages(m0.id).await.expect("list")[0];
    assert_eq!((record.modseq, record.flags, record.keywords.clone()), (m3, Flags::SEEN, vec!["$Forwarded".into()]));

    store.deliver(&message(&store, "two"), &[a]).await.expect("deliver");
    store.deliver(&message(&store, "three"), &[a]).await.expect("deliver");
    let m5 = inbox(&store, a).await.highest_modseq;
    assert_eq!(m5, ModSeq(m3.0 + 2));
    assert_eq!(store.expunge(m0.id, &uids([2, 3])).await.expect("expunge"), uids([2, 3]));
    assert_eq!(inbox(&store, a).await.highest_modseq, next(m5), "one bump per expunge, however many messages");
    store.expunge(m0.id, &uids([2])).await.expect("expunge nothing");
    assert_eq!(inbox(&store, a).await.highest_modseq, next(m5), "expunging nothing does not bump");
    assert_err!(store.store_flags(MailboxId(i64::MAX), &[uid(1)], FlagOp::Add, Flags::SEEN, &[], None).await, NotFound);
}

/// Replace, add and remove on flags and keywords; changed messages of one
/// call share one new modseq; missing UIDs are skipped; results in UID order.
pub async fn store_flags_ops(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "flags.test").await;
    let a = add_account(&store, "a@flags.test").await;
    let mbox = inbox(&store, a).await.id;
    let mut seen_msg = message(&store, "seen");
    seen_msg.flags = Flags::SEEN;
    store.deliver(&seen_msg, &[a]).await.expect("deliver");
    store.deliver(&message(&store, "unseen"), &[a]).await.expect("deliver");
    let before = store.messages(mbox).await.expect("list");
    let hms = inbox(&store, a).await.highest_modseq;

    let kw = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<String>>();
    let r = store.store_flags(mbox, &uids([2, 1, 7]), FlagOp::Add, Flags::SEEN, &[], None).await.expect("store");
    assert_eq!(r.iter().map(|c| c.uid).collect::<Vec<_>>(), uids([1, 2]), "UID order, missing UID skipped");
    assert_eq!(r[0].modseq, before[0].modseq, "already \\Seen: unchanged");
    assert_eq!(r[1].modseq, next(hms), "newly \\Seen: new modseq");

    let r = store
        .store_flags(mbox, &uids([1, 2]), FlagOp::Add, Flags::FLAGGED, &kw(&["z", "a", "z"]), None)
        .await
        .expect("store");
    let m = ModSeq(hms.0 + 2);
    assert!(r.iter().all(|c| c.modseq == m), "one modseq for the whole call: {r:?}");
    assert!(r.iter().all(|c| c.flags == Flags::SEEN | Flags::FLAGGED && c.keywords == ["a", "z"]), "{r:?}");

    let r = store.store_flags(mbox, &uids([1]), FlagOp::Remove, Flags::SEEN, &kw(&["z"]), None).await.expect("store");
    assert_eq!((r[0].flags, r[0].keywords.clone()), (Flags::FLAGGED, kw(&["a"])));
    let r = store.store_flags(mbox, &uids([2]), FlagOp::Replace, Flags::DRAFT, &kw(&["q"]), None).await.expect("store");
    assert_eq!((r[0].flags, r[0].keywords.clone()), (Flags::DRAFT, kw(&["q"])));

    let after = store.messages(mbox).await.expect("list");
    assert_eq!((after[0].flags, after[0].keywords.clone()), (Flags::FLAGGED, kw(&["a"])));
    assert_eq!((after[1].flags, after[1].keywords.clone()), (Flags::DRAFT, kw(&["q"])));
    assert_eq!(inbox(&store, a).await.highest_modseq, after[0].modseq.max(after[1].modseq));
}

/// RFC 7162 §3.1.3 UNCHANGEDSINCE: messages changed after the given modseq
/// are neither changed nor returned.
pub async fn unchanged_since(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "since.test").await;
    let a = add_account(&store, "a@since.test").await;
    let mbox = inbox(&store, a).await.id;
    store.deliver(&message(&store, "old"), &[a]).await.expect("deliver");
    store.deliver(&message(&store, "new"), &[a]).await.expect("deliver");
    let msgs = store.messages(mbox).await.expect("list");
    let (old, new) = (msgs[0].modseq, msgs[1].modseq);
    assert!(old < new);

    let r = store.store_flags(mbox, &uids([1, 2]), FlagOp::Add, Flags::FLAGGED, &[], Some(old)).await.expect("store");
    assert_eq!(r.len(), 1, "only the message not modified since {old}: {r:?}");
    assert_eq!(r[0].uid, uid(1));
    assert_eq!(r[0].modseq, next(new));
    let msgs = store.messages(mbox).await.expect("list");
    assert_eq!(msgs[1].flags, Flags::empty(), "the newer message is left alone");
    assert_eq!(msgs[1].modseq, new);

    let hms = inbox(&store, a).await.highest_modseq;
    let r = store
        .store_flags(mbox, &uids([1, 2]), FlagOp::Add, Flags::SEEN, &[], Some(ModSeq(old.0 - 1)))
        .await
        .expect("store");
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(inbox(&store, a).await.highest_modseq, hms, "nothing changed, nothing bumped");
    let r = store.store_flags(mbox, &uids([2]), FlagOp::Add, Flags::SEEN, &[], Some(new)).await.expect("store");
    assert_eq!(r.len(), 1, "modseq equal to UNCHANGEDSINCE is still unchanged");
}

/// What a write returned is visible from a freshly opened handle at once:
/// the commit happened before the reply.
pub async fn visible_from_fresh_handle(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "fresh.test").await;
    assert!(open.open().await.list_domains().await.expect("list").iter().any(|d| d.name.as_str() == "fresh.test"));
    let a = add_account(&store, "a@fresh.test").await;
    let fresh = open.open().await;
    assert_eq!(fresh.account(&addr("a@fresh.test")).await.expect("read").map(|r| r.id), Some(a));
    assert_eq!(fresh.mailboxes(a).await.expect("list").len(), 6);

    let placed = store.deliver(&message(&store, "durable"), &[a]).await.expect("deliver");
    let (mbox, u) = placed[0];
    let fresh = open.open().await;
    let msgs = fresh.messages(mbox).await.expect("list");
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [u]);
    assert_eq!(mailbox_by_id(&fresh, a, mbox).await.highest_modseq, msgs[0].modseq);

    let changed = store.store_flags(mbox, &[u], FlagOp::Add, Flags::SEEN, &[], None).await.expect("store");
    let fresh = open.open().await;
    let msgs = fresh.messages(mbox).await.expect("list");
    assert_eq!((msgs[0].flags, msgs[0].modseq), (Flags::SEEN, changed[0].modseq));

    store.expunge(mbox, &[u]).await.expect("expunge");
    assert!(open.open().await.messages(mbox).await.expect("list").is_empty());
    store.delete_account(&addr("a@fresh.test")).await.expect("delete");
    assert_eq!(open.open().await.account(&addr("a@fresh.test")).await.expect("read"), None);
}

/// A blob file is deleted when its last message goes (expunge or account
/// deletion), and kept while another message references it.
pub async fn blobs_deleted_when_unreferenced(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "blob.test").await;
    let a = add_account(&store, "a@blob.test").await;
    let b = add_account(&store, "b@blob.test").await;
    let (inbox_a, inbox_b) = (inbox(&store, a).await.id, inbox(&store, b).await.id);

    let shared = file_message(&store, "shared");
    let path = store.blobs().path(shared.content.blob());
    let placed = store.deliver(&shared, &[a, b]).await.expect("deliver");
    store.expunge(inbox_a, &[placed[0].1]).await.expect("expunge from a");
    barrier(&store, inbox_a).await;
    assert!(path.exists(), "b's copy still references the blob");
    store.expunge(inbox_b, &[placed[1].1]).await.expect("expunge from b");
    barrier(&store, inbox_b).await;
    eventually("the unreferenced blob is deleted", || !path.exists()).await;

    let both = file_message(&store, "both");
    let only_a = file_message(&store, "only a");
    let (both_path, only_a_path) = (store.blobs().path(both.content.blob()), store.blobs().path(only_a.content.blob()));
    store.deliver(&both, &[a, b]).await.expect("deliver");
    store.deliver(&only_a, &[a]).await.expect("deliver");
    store.delete_account(&addr("a@blob.test")).await.expect("delete a");
    barrier(&store, inbox_b).await;
    eventually("a deleted account's own blob is deleted", || !only_a_path.exists()).await;
    assert!(both_path.exists(), "a blob b still references survives a's deletion");
    assert_eq!(store.messages(inbox_b).await.expect("list").len(), 1);
}

/// Inline content is stored once with the rows of a delivery, read back
/// exactly, left out when the delivery fails, and removed with the last
/// message that references it.
pub async fn inline_content_lives_and_dies_with_its_rows(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "inline.test").await;
    let a = add_account(&store, "a@inline.test").await;
    let b = add_account(&store, "b@inline.test").await;
    let (inbox_a, inbox_b) = (inbox(&store, a).await.id, inbox(&store, b).await.id);

    let unterminated = NewContent::inline(blob_ids().blob_id(SystemTime::now()), b"Subject: x\r\n\r\nend".to_vec());
    let Ok(NewContent::Inline(_, bytes)) = &unterminated else { panic!("small content is inline") };
    assert_eq!(&bytes[..], b"Subject: x\r\n\r\nend\r\n", "the last line is completed");
    let too_big = vec![b'x'; NewContent::INLINE_MAX + 1];
    assert!(NewContent::inline(blob_ids().blob_id(SystemTime::now()), too_big).is_err());

    let shared = message(&store, "shared inline");
    let id = shared.content.blob().clone();
    let placed = store.deliver(&shared, &[a, b]).await.expect("deliver");
    let fresh = open.open().await;
    assert_eq!(read(&fresh, &id).await.expect("present"), b"Subject: shared inline\r\n\r\nHello.\r\n");
    store.expunge(inbox_a, &[placed[0].1]).await.expect("expunge from a");
    assert!(read(&store, &id).await.is_some(), "b's copy still references it");
    store.expunge(inbox_b, &[placed[1].1]).await.expect("expunge from b");
    assert!(read(&store, &id).await.is_none(), "gone with its last message, in the same commit");

    let failed = message(&store, "never delivered");
    assert_err!(store.deliver(&failed, &[a, AccountId(i64::MAX)]).await, NotFound);
    assert!(read(&store, failed.content.blob()).await.is_none(), "a failed delivery stores no content");

    let appended = message(&store, "appended");
    store.append(inbox_a, &appended).await.expect("append");
    assert!(read(&store, appended.content.blob()).await.is_some());
    store.delete_account(&addr("a@inline.test")).await.expect("delete a");
    assert!(read(&store, appended.content.blob()).await.is_none(), "an account's content goes with it");
}

/// `scan_blobs` reads inline and file content alike, answers in the order
/// asked (whatever thread visited each), and reports a gone blob as such.
pub async fn scan_blobs_visits_each_in_order(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "scan.test").await;
    let a = add_account(&store, "a@scan.test").await;
    let inbox_a = inbox(&store, a).await.id;
    let ids = deliver_mixed(&store, a, 100, 10, |i| format!("scan {i}")).await;
    let gone = store.messages(inbox_a).await.expect("list")[50].uid;
    store.expunge(inbox_a, &[gone]).await.expect("expunge");
    barrier(&store, inbox_a).await;
    let seen = store
        .scan_blobs(ids.clone(), |i, bytes| (i, bytes.map(|b| String::from_utf8_lossy(b.bytes()).into_owned())))
        .await
        .expect("scan");
    assert_eq!(seen.len(), 100);
    for (i, (index, text)) in seen.into_iter().enumerate() {
        assert_eq!(index, i, "in the order asked");
        match text {
            None => assert_eq!(i, 50, "only the expunged message's blob is gone"),
            Some(t) => assert_eq!(t, format!("Subject: scan {i}\r\n\r\nHello.\r\n")),
        }
    }
    assert!(store.scan_blobs(Vec::new(), |_, _| ()).await.expect("empty scan").is_empty());
}

/// `scan_extents` hands out each blob's bytes, read when smaller than
/// asked, else read or located in a file (a backend without files reads
/// them all); a located extent keeps its bytes while it is held, even
/// after its message's last copy is expunged.
pub async fn scan_extents_locates_or_reads(open: &impl OpenStore) {
    use std::os::unix::fs::FileExt;
    let store = open.open().await;
    add_domain(&store, "extents.test").await;
    let a = add_account(&store, "a@extents.test").await;
    let inbox_a = inbox(&store, a).await.id;
    let ids = deliver_mixed(&store, a, 20, 5, |i| format!("extent {i:02}")).await;
    let expected = |i: usize| format!("Subject: extent {i:02}\r\n\r\nHello.\r\n").into_bytes();
    let size = expected(0).len() as u64;
    for read_below in [size + 1, size, 0] {
        let seen = store
            .scan_extents(ids.clone(), read_below, |_, blob| match blob.expect("present") {
                Scanned::Bytes(b) => (false, b.bytes().to_vec()),
                Scanned::Extent(e) => {
                    let mut bytes = vec![0; e.len() as usize];
                    e.file().read_exact_at(&mut bytes, e.offset()).expect("read extent");
                    (true, bytes)
                }
            })
            .await
            .expect("scan");
        for (i, (located, bytes)) in seen.into_iter().enumerate() {
            assert_eq!(bytes, expected(i), "blob {i}");
            assert!(!located || read_below <= size, "blob {i} is smaller than asked: read");
        }
    }
    let held = store
        .scan_extents(ids.clone(), 0, |_, blob| match blob {
            Some(Scanned::Extent(e)) => Some(e),
            _ => None,
        })
        .await
        .expect("scan");
    let uids: Vec<Uid> = store.messages(inbox_a).await.expect("list").iter().map(|m| m.uid).collect();
    store.expunge(inbox_a, &uids).await.expect("expunge all");
    barrier(&store, inbox_a).await;
    // Another write: frees what may be freed.
    store.deliver(&message(&store, "after"), &[a]).await.expect("deliver");
    for (i, extent) in held.iter().enumerate() {
        if let Some(e) = extent {
            let mut bytes = vec![0; e.len() as usize];
            e.file().read_exact_at(&mut bytes, e.offset()).expect("read extent");
            assert_eq!(bytes, expected(i), "held extent {i} keeps its bytes after the expunge");
        }
    }
    let gone = store.scan_extents(ids, 0, |_, blob| blob.is_none()).await.expect("scan");
    assert!(gone.iter().all(|&g| g), "every expunged blob is gone for new scans");
}

/// Header sections are kept apart for inline and file content alike,
/// shared by copies, read back for a few UIDs or for a long range.
pub async fn header_sections_kept_apart(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "headers.test").await;
    let a = add_account(&store, "a@headers.test").await;
    let inbox_a = inbox(&store, a).await.id;
    let mut uids = Vec::new();
    for i in 0..40 {
        let msg = if i % 10 == 9 { file_message(&store, &format!("h{i}")) } else { message(&store, &format!("h{i}")) };
        uids.push(store.deliver(&msg, &[a]).await.expect("deliver")[0].1);
    }
    let all = store.headers(inbox_a, &uids).await.expect("headers");
    assert_eq!(all.len(), 40);
    for (i, (uid, header)) in all.iter().enumerate() {
        assert_eq!(*uid, uids[i]);
        assert_eq!(header, format!("Subject: h{i}\r\n\r\n").as_bytes(), "header section of message {i}");
    }
    let few = store.headers(inbox_a, &[uids[3], uids[9], uid(999)]).await.expect("headers");
    assert_eq!(few, vec![all[3].clone(), all[9].clone()], "missing UIDs are skipped");
    store.expunge(inbox_a, &[uids[3]]).await.expect("expunge");
    assert!(store.headers(inbox_a, &[uids[3]]).await.expect("headers").is_empty());

    assert_eq!(crate::header_section(b"A: b\r\n\r\nbody"), Some(&b"A: b\r\n\r\n"[..]));
    assert_eq!(crate::header_section(b"A: b\r\n"), Some(&b"A: b\r\n"[..]), "no body: all header");
    assert_eq!(crate::header_section(b"\r\nbody"), Some(&b"\r\n"[..]));
    assert_eq!(crate::header_section(&vec![b'x'; crate::MAX_HEADER_SECTION]), None, "too long");
}

/// SELECT's UID list and keywords, and SEARCH SUBJECT from the header
/// cache: ASCII case folded, LIKE wildcards taken literally, clipped
/// subjects reported as "maybe".
pub async fn uids_keywords_and_subject_search(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "subjects.test").await;
    let a = add_account(&store, "a@subjects.test").await;
    let mbox = inbox(&store, a).await.id;
    let long = format!("{}Milestone", "x".repeat(HEADER_CACHE_CHARS));
    let mut uids = Vec::new();
    for (subject, keywords) in [
        ("Weekly MILESTONE report", vec!["$Work".to_string()]),
        ("100% done", vec!["$Work".to_string(), "later".to_string()]),
        ("nothing here", vec![]),
        (long.as_str(), vec![]),
    ] {
        let mut msg = message(&store, "s");
        msg.headers.subject = subject.chars().take(HEADER_CACHE_CHARS).collect();
        msg.keywords = keywords;
        uids.push(store.deliver(&msg, &[a]).await.expect("deliver")[0].1);
    }
    let selection = store.selection(mbox).await.expect("selection");
    assert_eq!(selection.uids, uids);
    assert_eq!(selection.keywords, ["$Work", "later"]);
    assert_eq!(selection.status, store.mailbox_status(mbox).await.expect("status"));
    let m = store.search_subject(mbox, "milestone").await.expect("search");
    assert_eq!(m.certain, [uids[0]], "ASCII case is folded");
    assert_eq!(m.maybe, [uids[3]], "a clipped subject is to be checked");
    assert_eq!(store.search_subject(mbox, "0% d").await.expect("search").certain, [uids[1]]);
    assert!(store.search_subject(mbox, "_").await.expect("search").certain.is_empty(), "_ is literal");
}

/// The start-up sweep deletes blobs a crash left without rows, and only
/// those: delivered messages keep theirs.
pub async fn orphan_blobs_are_swept(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "sweep.test").await;
    let a = add_account(&store, "a@sweep.test").await;
    let kept = message(&store, "delivered");
    store.deliver(&kept, &[a]).await.expect("deliver");
    let orphan = file_message(&store, "written, never committed");
    let orphan_path = store.blobs().path(orphan.content.blob());
    assert!(orphan_path.exists());
    let swept = store.sweep_orphan_blobs(2).await.expect("sweep");
    assert!(swept >= 1, "at least the orphan is swept");
    assert!(!orphan_path.exists(), "the orphan is gone");
    let raw = read(&store, kept.content.blob()).await.expect("the delivered blob survives");
    assert_eq!(raw.len() as u64, kept.size);
    assert_eq!(store.sweep_orphan_blobs(2).await.expect("sweep again"), 0, "nothing left to sweep");
}

/// Change events arrive after the commit: when a subscriber hears of a
/// change, a fresh handle already sees it.
pub async fn change_events_after_commit(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "events.test").await;
    let a = add_account(&store, "a@events.test").await;
    let mbox = inbox(&store, a).await.id;
    let mut rx = store.subscribe();

    let mut wait_for = async |at_least: ModSeq| {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a change event within 10 s")
                .expect("event channel open");
            if event.mailbox == mbox && event.modseq >= at_least {
                assert_eq!(event.account, a);
                return event.modseq;
            }
        }
    };

    let placed = store.deliver(&message(&store, "event"), &[a]).await.expect("deliver");
    let hms = inbox(&store, a).await.highest_modseq;
    let seen = wait_for(hms).await;
    assert_eq!(seen, hms);
    let fresh = open.open().await;
    assert_eq!(fresh.messages(mbox).await.expect("list").len(), 1, "broadcast after commit");

    let changed = store.store_flags(mbox, &[placed[0].1], FlagOp::Add, Flags::SEEN, &[], None).await.expect("store");
    assert_eq!(wait_for(changed[0].modseq).await, changed[0].modseq);
    store.expunge(mbox, &[placed[0].1]).await.expect("expunge");
    let hms = inbox(&store, a).await.highest_modseq;
    assert_eq!(wait_for(hms).await, hms);
}
