//! Conformance cases for what the IMAP server needs beyond arrival and
//! flags: mailbox CREATE, DELETE and RENAME (RFC 9051 §6.3), subscriptions,
//! STATUS counts, COPY with UIDPLUS (RFC 4315), MOVE (RFC 6851),
//! `\Deleted` expunges, and the CONDSTORE/QRESYNC reads (RFC 7162).

use std::time::Duration;

use mailroom_types::{AccountId, Flags, MailboxId, ModSeq, Uid};
use tokio::sync::broadcast;

use super::{
    OpenStore, add_account, add_domain, addr, barrier, eventually, file_message, inbox, message, next, read, uid, uids,
};
use crate::{ChangeEvent, ChangeKind, FlagOp, MailStore, MailboxRecord, SpecialUse, StoreError};

async fn create<S: MailStore>(store: &S, account: AccountId, name: &str) -> MailboxRecord {
    store.create_mailbox(account, name).await.unwrap_or_else(|e| panic!("create {name}: {e}"))
}

async fn named<S: MailStore>(store: &S, account: AccountId, name: &str) -> MailboxRecord {
    store.mailbox(account, name).await.expect("read mailbox").unwrap_or_else(|| panic!("{name} exists"))
}

async fn names<S: MailStore>(store: &S, account: AccountId) -> Vec<String> {
    store.mailboxes(account).await.expect("list mailboxes").into_iter().map(|m| m.name).collect()
}

async fn listed_uids<S: MailStore>(store: &S, mailbox: MailboxId) -> Vec<Uid> {
    store.messages(mailbox).await.expect("list messages").iter().map(|m| m.uid).collect()
}

async fn flag<S: MailStore>(store: &S, mailbox: MailboxId, which: &[Uid], flags: Flags) {
    store.store_flags(mailbox, which, FlagOp::Add, flags, &[], None).await.expect("store flags");
}

/// The next event for `mailbox`, skipping others; panics after 10 s.
async fn event_for(rx: &mut broadcast::Receiver<ChangeEvent>, mailbox: MailboxId) -> ChangeEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change event within 10 s")
            .expect("event channel open");
        if event.mailbox == mailbox {
            return event;
        }
    }
}

/// The next event of each of `mailboxes`, in any order.
async fn events_for(rx: &mut broadcast::Receiver<ChangeEvent>, mailboxes: &[MailboxId]) -> Vec<ChangeEvent> {
    let mut seen: Vec<ChangeEvent> = Vec::new();
    while seen.len() < mailboxes.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change event within 10 s")
            .expect("event channel open");
        if mailboxes.contains(&event.mailbox) && !seen.iter().any(|e| e.mailbox == event.mailbox) {
            seen.push(event);
        }
    }
    seen
}

/// RFC 9051 §6.3.4: CREATE makes missing parents, each with a fresh
/// UIDVALIDITY, and spells a first level `inbox` as `INBOX`.
pub async fn create_mailbox_with_parents(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "create.test").await;
    let a = add_account(&store, "a@create.test").await;
    let newest = store.mailboxes(a).await.expect("list").iter().map(|m| m.uid_validity).max().expect("defaults");

    let q1 = create(&store, a, "Work/2026/Q1").await;
    assert_eq!((q1.name.as_str(), q1.account, q1.uid_next), ("Work/2026/Q1", a, uid(1)));
    assert!(q1.highest_modseq.0 >= 1 && q1.special_use.is_none());
    assert!(!q1.subscribed, "CREATE does not subscribe");
    let work = named(&store, a, "Work").await;
    let year = named(&store, a, "Work/2026").await;
    assert!(newest < work.uid_validity && work.uid_validity < year.uid_validity, "parents first, fresh values");
    assert!(year.uid_validity < q1.uid_validity);
    assert_eq!(store.mailbox_by_id(q1.id).await.expect("by id"), Some(q1.clone()));
    assert_eq!(fresh_names(open, a).await, names(&store, a).await, "committed before the reply");

    let other = create(&store, a, "Work/Other").await;
    assert_eq!(other.name, "Work/Other");
    assert_eq!(named(&store, a, "Work").await, work, "an existing parent is left alone");
    let child = create(&store, a, "inbox/Sub").await;
    assert_eq!(child.name, "INBOX/Sub", "INBOX is case-insensitive as a parent too");
    assert_eq!(named(&store, a, "Inbox/Sub").await.id, child.id);
    assert_eq!(store.mailbox(a, "INBOX/sub").await.expect("read"), None, "other levels are exact");
    assert_err!(store.create_mailbox(AccountId(i64::MAX), "Nowhere").await, NotFound);
}

async fn fresh_names(open: &impl OpenStore, account: AccountId) -> Vec<String> {
    names(&open.open().await, account).await
}

/// CREATE of an existing name, INBOX in any spelling included, is refused
/// and changes nothing.
pub async fn create_duplicate_mailbox(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "dup.test").await;
    let a = add_account(&store, "a@dup.test").await;
    let first = create(&store, a, "Dup").await;
    for name in ["Dup", "INBOX", "inbox", "Sent"] {
        assert_err!(store.create_mailbox(a, name).await, AlreadyExists);
    }
    assert_eq!(named(&store, a, "Dup").await, first);
    create(&store, a, "Dup/x").await;
    assert_err!(store.create_mailbox(a, "Dup/x").await, AlreadyExists);
    assert_eq!(names(&store, a).await, ["INBOX", "Archive", "Drafts", "Dup", "Dup/x", "Junk", "Sent", "Trash"]);
}

/// Names the store refuses, whichever operation brings them.
pub async fn invalid_mailbox_names(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "names.test").await;
    let a = add_account(&store, "a@names.test").await;
    let before = names(&store, a).await;
    let long_level = "x".repeat(300);
    let long_name = vec!["abcdefgh"; 120].join("/");
    let deep = vec!["d"; 40].join("/");
    let invalid = [
        "",
        "/",
        "/Lead",
        "Trail/",
        "Dou//ble",
        "Tab\there",
        "Nul\0",
        "Del\u{7f}",
        "Wild*",
        "Per%cent",
        long_level.as_str(),
        long_name.as_str(),
        deep.as_str(),
    ];
    for name in invalid {
        assert_err!(store.create_mailbox(a, name).await, InvalidName);
        assert_err!(store.rename_mailbox(a, "Junk", name).await, InvalidName);
        assert_err!(store.add_subscription(a, name).await, InvalidName);
    }
    assert_eq!(names(&store, a).await, before, "nothing created, nothing renamed");
    let valid = create(&store, a, "Ünïcødé names/are fine [ok]").await;
    assert_eq!(valid.name, "Ünïcødé names/are fine [ok]");
}

/// RFC 9051 §6.3.5: DELETE refuses INBOX, removes the mailbox and its
/// messages, keeps inferiors and subscriptions, releases blobs with their
/// last message, and never reuses the id or UIDVALIDITY.
pub async fn delete_mailbox_keeps_children(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "del.test").await;
    let a = add_account(&store, "a@del.test").await;
    for name in ["INBOX", "inbox"] {
        assert_err!(store.delete_mailbox(a, name).await, Conflict);
    }
    let child = create(&store, a, "P/C").await;
    let parent = named(&store, a, "P").await;
    store.add_subscription(a, "P").await.expect("subscribe");
    let only_inline = message(&store, "only in P");
    let only_file = file_message(&store, "only in P, a file");
    let shared = message(&store, "in P and P/C");
    let file_path = store.blobs().path(only_file.content.blob());
    for m in [&only_inline, &only_file, &shared] {
        store.append(parent.id, m).await.expect("append");
    }
    store.copy_messages(parent.id, &uids([3]), child.id).await.expect("copy");
    let child = named(&store, a, "P/C").await;
    let mut rx = store.subscribe();

    assert_eq!(store.delete_mailbox(a, "P").await.expect("delete"), parent.id);
    let event = event_for(&mut rx, parent.id).await;
    assert_eq!((event.account, event.kind), (a, ChangeKind::Deleted));
    assert_eq!(store.mailbox_by_id(parent.id).await.expect("by id"), None);
    assert_eq!(store.mailbox(a, "P").await.expect("read"), None);
    assert_err!(store.messages(parent.id).await, NotFound);
    assert_err!(store.append(parent.id, &message(&store, "late")).await, NotFound);
    assert_eq!(named(&store, a, "P/C").await, child, "the inferior stays as it was");
    assert_eq!(listed_uids(&store, child.id).await, uids([1]));
    assert!(read(&store, only_inline.content.blob()).await.is_none(), "released with its last message");
    assert!(read(&store, shared.content.blob()).await.is_some(), "still referenced by P/C");
    barrier(&store, child.id).await;
    eventually("the deleted mailbox's blob file is deleted", || !file_path.exists()).await;
    assert!(store.subscriptions(a).await.expect("list").contains(&"P".to_string()), "subscription stays");
    assert_err!(store.delete_mailbox(a, "P").await, NotFound);
    assert_err!(store.delete_mailbox(a, "Never").await, NotFound);

    let again = create(&store, a, "P").await;
    assert!(again.id != parent.id, "a mailbox id is never reused");
    assert!(again.uid_validity > child.uid_validity, "nor a UIDVALIDITY");
    assert!(again.subscribed, "the kept subscription names it again");
    store.delete_mailbox(a, "P").await.expect("delete the newest mailbox");
    let newest = create(&store, a, "Z").await;
    assert!(newest.id != again.id, "not even the largest one");
}

/// RFC 9051 §6.3.6: RENAME takes the inferiors along, keeping ids,
/// UIDVALIDITY, messages, special use and subscriptions; creates missing
/// parents; refuses clashes.
pub async fn rename_mailbox_with_inferiors(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "ren.test").await;
    let a = add_account(&store, "a@ren.test").await;
    let inner = create(&store, a, "Old/A/B").await;
    let (old, mid) = (named(&store, a, "Old").await, named(&store, a, "Old/A").await);
    let bystander = create(&store, a, "Oldish").await;
    store.append(old.id, &message(&store, "in Old")).await.expect("append");
    store.append(mid.id, &message(&store, "in Old/A")).await.expect("append");
    store.add_subscription(a, "Old/A").await.expect("subscribe");
    let old_messages = store.messages(old.id).await.expect("list");
    let mut rx = store.subscribe();

    let outcome = store.rename_mailbox(a, "Old", "New/Sub").await.expect("rename");
    assert_eq!(outcome.mailbox.id, old.id);
    assert_eq!(outcome.mailbox.name, "New/Sub");
    assert_eq!(outcome.mailbox.uid_validity, old.uid_validity, "UIDVALIDITY kept");
    assert_eq!(outcome.moved, None);
    let renamed: Vec<(MailboxId, &str, &str)> =
        outcome.inferiors.iter().map(|r| (r.id, r.old_name.as_str(), r.new_name.as_str())).collect();
    assert_eq!(renamed, [(mid.id, "Old/A", "New/Sub/A"), (inner.id, "Old/A/B", "New/Sub/A/B")]);
    let created: Vec<&str> = outcome.created_parents.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(created, ["New"]);
    assert_eq!(event_for(&mut rx, old.id).await.kind, ChangeKind::Renamed);

    let fresh = open.open().await;
    assert_eq!(
        names(&fresh, a).await,
        ["INBOX", "Archive", "Drafts", "Junk", "New", "New/Sub", "New/Sub/A", "New/Sub/A/B", "Oldish", "Sent", "Trash"]
    );
    assert_eq!(named(&fresh, a, "New/Sub/A/B").await.uid_validity, inner.uid_validity);
    assert_eq!(named(&fresh, a, "Oldish").await, bystander, "a name merely starting alike is no inferior");
    assert_eq!(fresh.messages(old.id).await.expect("list"), old_messages, "messages kept");
    assert_eq!(listed_uids(&fresh, mid.id).await, uids([1]));
    let subs = fresh.subscriptions(a).await.expect("subscriptions");
    assert!(subs.contains(&"New/Sub/A".into()) && !subs.contains(&"Old/A".into()), "{subs:?}");
    assert!(named(&fresh, a, "New/Sub/A").await.subscribed);
    assert_eq!(store.append(old.id, &message(&store, "after")).await.expect("append").0, uid(2), "UIDs go on");

    let sent = named(&store, a, "Sent").await;
    let r = store.rename_mailbox(a, "Sent", "Sent Items").await.expect("rename Sent");
    assert_eq!((r.mailbox.id, r.mailbox.special_use), (sent.id, Some(SpecialUse::Sent)), "special use kept");
    assert!(r.mailbox.subscribed, "a default mailbox's subscription follows it");

    assert_err!(store.rename_mailbox(a, "Missing", "Anything").await, NotFound);
    assert_err!(store.rename_mailbox(a, "Oldish", "New").await, AlreadyExists);
    assert_err!(store.rename_mailbox(a, "Oldish", "inbox").await, AlreadyExists);
    assert_err!(store.rename_mailbox(a, "New", "New/Sub/Deeper").await, Conflict);
    // An inferior's new name may clash although the new name itself is free.
    create(&store, a, "X/c").await;
    create(&store, a, "Y/c").await;
    store.delete_mailbox(a, "Y").await.expect("delete Y");
    assert_err!(store.rename_mailbox(a, "X", "Y").await, AlreadyExists);
    assert!(store.mailbox(a, "X/c").await.expect("read").is_some(), "a refused rename changes nothing");

    // Moving up over a deleted parent: `S/T` to `S` takes `S/T/T` to `S/T`.
    let deepest = create(&store, a, "S/T/T").await;
    let middle = named(&store, a, "S/T").await;
    store.delete_mailbox(a, "S").await.expect("delete S");
    let r = store.rename_mailbox(a, "S/T", "S").await.expect("rename up");
    assert_eq!((r.mailbox.id, r.mailbox.name.as_str()), (middle.id, "S"));
    assert_eq!(named(&store, a, "S/T").await.id, deepest.id);
}

/// RFC 9051 §6.3.6: renaming INBOX moves its messages into a new mailbox
/// and leaves INBOX, empty, with its inferiors; the moved UIDs are
/// recorded as expunged and never handed out again.
pub async fn rename_inbox_moves_messages(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "reninbox.test").await;
    let a = add_account(&store, "a@reninbox.test").await;
    let before = inbox(&store, a).await;
    for i in 0..3 {
        store.deliver(&message(&store, &format!("inbox {i}")), &[a]).await.expect("deliver");
    }
    flag(&store, before.id, &uids([2]), Flags::FLAGGED).await;
    let child = create(&store, a, "INBOX/Child").await;
    let originals = store.messages(before.id).await.expect("list");
    let hms = inbox(&store, a).await.highest_modseq;

    let outcome = store.rename_mailbox(a, "inbox", "Old Mail").await.expect("rename INBOX");
    let moved = outcome.moved.expect("INBOX's messages moved");
    assert_eq!(moved.pairs, [(uid(1), uid(1)), (uid(2), uid(2)), (uid(3), uid(3))]);
    let target = outcome.mailbox;
    assert_eq!(target.name, "Old Mail");
    assert_ne!(target.id, before.id);
    assert!(target.uid_validity > child.uid_validity, "a new mailbox: fresh UIDVALIDITY");
    assert_eq!(moved.uid_validity, target.uid_validity);
    assert!(outcome.inferiors.is_empty() && outcome.created_parents.is_empty());

    let fresh = open.open().await;
    let after = inbox(&fresh, a).await;
    assert_eq!((after.id, after.uid_validity, after.uid_next), (before.id, before.uid_validity, uid(4)));
    assert!(fresh.messages(after.id).await.expect("list").is_empty(), "INBOX is empty");
    assert_eq!(fresh.vanished_since(after.id, hms).await.expect("vanished"), uids([1, 2, 3]));
    assert_eq!(named(&fresh, a, "INBOX/Child").await, child, "INBOX's inferiors are not renamed");
    let copies = fresh.messages(target.id).await.expect("list");
    for (copy, original) in copies.iter().zip(&originals) {
        assert_eq!((copy.flags, &copy.blob, &copy.headers), (original.flags, &original.blob, &original.headers));
    }
    assert_eq!(copies.len(), 3);
    let placed = store.deliver(&message(&store, "after the rename"), &[a]).await.expect("deliver");
    assert_eq!(placed, [(before.id, uid(4))], "INBOX goes on receiving, UIDs never reused");
    assert_err!(store.rename_mailbox(a, "INBOX", "Old Mail").await, AlreadyExists);
    let nested = store.rename_mailbox(a, "INBOX", "Archive/2026/INBOX").await.expect("rename INBOX again");
    let created: Vec<&str> = nested.created_parents.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(created, ["Archive/2026"]);
    assert_eq!(nested.moved.expect("moved").pairs, [(uid(4), uid(1))]);
}

/// RFC 9051 §6.3.7–6.3.9: subscriptions are names, independent of
/// mailboxes existing.
pub async fn subscriptions_independent_of_existence(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "subs.test").await;
    let a = add_account(&store, "a@subs.test").await;
    let defaults = store.subscriptions(a).await.expect("list");
    assert_eq!(defaults, ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"], "defaults are subscribed");

    assert!(store.add_subscription(a, "Not/There").await.expect("subscribe"));
    assert!(!store.add_subscription(a, "Not/There").await.expect("again"), "already subscribed");
    assert!(!store.add_subscription(a, "inbox").await.expect("INBOX"), "INBOX in any spelling");
    assert_eq!(store.mailbox(a, "Not/There").await.expect("read"), None, "subscribing creates nothing");
    let made = create(&store, a, "Made").await;
    assert!(!made.subscribed);
    assert!(store.add_subscription(a, "Made").await.expect("subscribe"));
    assert!(named(&store, a, "Made").await.subscribed);
    store.delete_mailbox(a, "Made").await.expect("delete");

    let fresh = open.open().await;
    assert_eq!(
        fresh.subscriptions(a).await.expect("list"),
        ["INBOX", "Archive", "Drafts", "Junk", "Made", "Not/There", "Sent", "Trash"]
    );
    assert!(store.remove_subscription(a, "Not/There").await.expect("unsubscribe"));
    assert!(!store.remove_subscription(a, "Not/There").await.expect("again"), "idempotent, reported");
    assert!(store.remove_subscription(a, "Trash").await.expect("unsubscribe Trash"));
    assert!(!named(&store, a, "Trash").await.subscribed, "the mailbox stays, unsubscribed");
    assert!(store.remove_subscription(a, "Inbox").await.expect("unsubscribe INBOX"));
    assert_eq!(store.subscriptions(a).await.expect("list"), ["Archive", "Drafts", "Junk", "Made", "Sent"]);
    assert_err!(store.add_subscription(AccountId(i64::MAX), "X").await, NotFound);

    let b = add_account(&store, "b@subs.test").await;
    assert_eq!(store.subscriptions(b).await.expect("list").len(), 6, "per account");
    store.delete_account(&addr("a@subs.test")).await.expect("delete account");
    assert!(store.subscriptions(a).await.expect("list").is_empty(), "subscriptions go with the account");
}

/// STATUS counts in one snapshot, following arrivals, flag changes and
/// expunges.
pub async fn mailbox_status_counts(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "status.test").await;
    let a = add_account(&store, "a@status.test").await;
    let mbox = inbox(&store, a).await;
    let empty = store.mailbox_status(mbox.id).await.expect("status");
    assert_eq!((empty.messages, empty.unseen, empty.deleted, empty.size, empty.recent), (0, 0, 0, 0, 0));
    assert_eq!(
        (empty.uid_next, empty.uid_validity, empty.highest_modseq),
        (uid(1), mbox.uid_validity, mbox.highest_modseq)
    );

    let mut sizes = 0;
    for i in 0..4 {
        let m = message(&store, &format!("status message number {i}"));
        sizes += m.size;
        store.deliver(&m, &[a]).await.expect("deliver");
    }
    flag(&store, mbox.id, &uids([1]), Flags::SEEN).await;
    flag(&store, mbox.id, &uids([2, 3]), Flags::DELETED).await;
    flag(&store, mbox.id, &uids([3]), Flags::SEEN).await;
    let s = open.open().await.mailbox_status(mbox.id).await.expect("status");
    assert_eq!((s.messages, s.unseen, s.deleted, s.size), (4, 2, 2, sizes));
    let record = inbox(&store, a).await;
    assert_eq!((s.uid_next, s.highest_modseq), (uid(5), record.highest_modseq));

    let gone = store.messages(mbox.id).await.expect("list")[1].size;
    store.expunge_deleted(mbox.id, Some(&uids([2]))).await.expect("expunge 2");
    let s = store.mailbox_status(mbox.id).await.expect("status");
    assert_eq!((s.messages, s.unseen, s.deleted, s.size), (3, 1, 1, sizes - gone));
    assert_eq!(s.uid_next, uid(5));
    assert_err!(store.mailbox_status(MailboxId(i64::MAX)).await, NotFound);
}

/// COPY (RFC 4315 COPYUID): new UIDs in source order, everything kept, one
/// new modseq in the destination, the blob shared.
pub async fn copy_messages_share_blobs(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "copy.test").await;
    let a = add_account(&store, "a@copy.test").await;
    let src = inbox(&store, a).await.id;
    let dst = named(&store, a, "Archive").await;
    let mut first = file_message(&store, "first");
    first.flags = Flags::SEEN | Flags::ANSWERED;
    first.keywords = vec!["$Forwarded".into(), "work".into()];
    let file_path = store.blobs().path(first.content.blob());
    store.deliver(&first, &[a]).await.expect("deliver");
    store.deliver(&message(&store, "second"), &[a]).await.expect("deliver");
    let third = message(&store, "third");
    store.deliver(&third, &[a]).await.expect("deliver");
    let src_hms = inbox(&store, a).await.highest_modseq;
    let mut rx = store.subscribe();

    let outcome = store.copy_messages(src, &uids([3, 1, 99, 3]), dst.id).await.expect("copy");
    assert_eq!(outcome.uid_validity, dst.uid_validity);
    assert_eq!(outcome.pairs, [(uid(1), uid(1)), (uid(3), uid(2))], "source order, missing skipped");
    let after = named(&store, a, "Archive").await;
    assert_eq!((after.uid_next, after.highest_modseq), (uid(3), next(dst.highest_modseq)), "one new modseq");
    assert_eq!(event_for(&mut rx, dst.id).await.modseq, after.highest_modseq);
    assert_eq!(inbox(&store, a).await.highest_modseq, src_hms, "the source is unchanged");

    let originals = store.messages(src).await.expect("list");
    let copies = open.open().await.messages(dst.id).await.expect("list");
    for (copy, original) in copies.iter().zip([&originals[0], &originals[2]]) {
        assert_eq!(copy.modseq, after.highest_modseq);
        assert_eq!(
            (copy.flags, &copy.keywords, copy.internal_date),
            (original.flags, &original.keywords, original.internal_date)
        );
        assert_eq!((copy.size, &copy.blob, &copy.headers), (original.size, &original.blob, &original.headers));
    }
    assert_eq!(copies.len(), 2);

    store.expunge(src, &uids([1, 3])).await.expect("expunge the sources");
    barrier(&store, src).await;
    assert!(file_path.exists(), "the copy still references the file");
    assert!(read(&store, third.content.blob()).await.is_some(), "and the inline bytes");
    store.expunge(dst.id, &uids([1, 2])).await.expect("expunge the copies");
    assert!(read(&store, third.content.blob()).await.is_none(), "gone with the last reference");
    barrier(&store, dst.id).await;
    eventually("the last reference's blob file is deleted", || !file_path.exists()).await;

    let same = store.copy_messages(src, &uids([2]), src).await.expect("copy into itself");
    assert_eq!(same.pairs, [(uid(2), uid(4))], "a duplicate with a new UID");
    let hms = named(&store, a, "Archive").await.highest_modseq;
    let none = store.copy_messages(src, &uids([1, 77]), dst.id).await.expect("copy nothing");
    assert!(none.pairs.is_empty());
    assert_eq!(named(&store, a, "Archive").await.highest_modseq, hms, "nothing copied, nothing bumped");
    assert_err!(store.copy_messages(src, &uids([2]), MailboxId(i64::MAX)).await, NotFound);
    assert_err!(store.copy_messages(MailboxId(i64::MAX), &uids([2]), src).await, NotFound);
    add_account(&store, "b@copy.test").await;
    let other = store.account(&addr("b@copy.test")).await.expect("read").expect("b exists");
    let theirs = inbox(&store, other.id).await.id;
    assert_err!(store.copy_messages(src, &uids([2]), theirs).await, Conflict);
}

/// MOVE (RFC 6851): the destination gains, the source loses and records
/// the UIDs for VANISHED, in one transaction; blobs are kept.
pub async fn move_messages_records_vanished(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "move.test").await;
    let a = add_account(&store, "a@move.test").await;
    let src = inbox(&store, a).await.id;
    let dst = named(&store, a, "Trash").await;
    for i in 0..3 {
        let mut m = message(&store, &format!("move {i}"));
        m.flags = Flags::FLAGGED;
        store.deliver(&m, &[a]).await.expect("deliver");
    }
    let originals = store.messages(src).await.expect("list");
    let hms = inbox(&store, a).await.highest_modseq;
    let mut rx = store.subscribe();

    let outcome = store.move_messages(src, &uids([2, 1, 42]), dst.id).await.expect("move");
    assert_eq!(outcome.pairs, [(uid(1), uid(1)), (uid(2), uid(2))]);
    assert_eq!(outcome.uid_validity, dst.uid_validity);
    let fresh = open.open().await;
    assert_eq!(listed_uids(&fresh, src).await, uids([3]));
    let moved = fresh.messages(dst.id).await.expect("list");
    assert_eq!(moved.len(), 2);
    assert!(moved.iter().zip(&originals).all(|(m, o)| m.flags == Flags::FLAGGED && m.blob == o.blob));
    assert_eq!(inbox(&fresh, a).await.highest_modseq, next(hms), "one expunge modseq in the source");
    assert_eq!(fresh.vanished_since(src, hms).await.expect("vanished"), uids([1, 2]));
    assert!(read(&fresh, &originals[0].blob).await.is_some(), "the blob moved with the message");
    let seen = events_for(&mut rx, &[src, dst.id]).await;
    assert!(seen.iter().all(|e| e.kind == ChangeKind::Messages), "{seen:?}");

    let placed = store.deliver(&message(&store, "after"), &[a]).await.expect("deliver");
    assert_eq!(placed[0].1, uid(4), "moved-out UIDs are not reused");
    let back = store.move_messages(dst.id, &uids([1]), src).await.expect("move back");
    assert_eq!(back.pairs, [(uid(1), uid(5))]);
    let itself = store.move_messages(src, &uids([3]), src).await.expect("move into itself");
    assert_eq!(itself.pairs, [(uid(3), uid(6))]);
    assert_eq!(listed_uids(&store, src).await, uids([4, 5, 6]));
    assert!(store.move_messages(src, &uids([3]), dst.id).await.expect("nothing").pairs.is_empty());
    assert_err!(store.move_messages(src, &uids([4]), MailboxId(i64::MAX)).await, NotFound);
    assert_eq!(listed_uids(&store, src).await, uids([4, 5, 6]), "a failed move changes nothing");
}

/// EXPUNGE and UID EXPUNGE (RFC 4315): only `\Deleted` messages go, all of
/// them or those of the given set.
pub async fn expunge_deleted_all_and_within(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "expdel.test").await;
    let a = add_account(&store, "a@expdel.test").await;
    let mbox = inbox(&store, a).await.id;
    let inline = message(&store, "deleted, inline");
    store.deliver(&inline, &[a]).await.expect("deliver");
    for i in 2..=5 {
        store.deliver(&message(&store, &format!("expdel {i}")), &[a]).await.expect("deliver");
    }
    flag(&store, mbox, &uids([1, 2, 4]), Flags::DELETED).await;
    let hms = inbox(&store, a).await.highest_modseq;

    let within = store.expunge_deleted(mbox, Some(&uids([5, 4, 3, 2, 2]))).await.expect("UID EXPUNGE");
    assert_eq!(within, uids([2, 4]), "only the \\Deleted ones of the set");
    assert_eq!(listed_uids(&store, mbox).await, uids([1, 3, 5]));
    assert_eq!(inbox(&store, a).await.highest_modseq, next(hms));
    let all = store.expunge_deleted(mbox, None).await.expect("EXPUNGE");
    assert_eq!(all, uids([1]));
    assert!(read(&store, inline.content.blob()).await.is_none(), "its blob released");
    let hms = inbox(&store, a).await.highest_modseq;
    assert!(store.expunge_deleted(mbox, None).await.expect("nothing left").is_empty());
    assert!(store.expunge_deleted(mbox, Some(&[])).await.expect("empty set").is_empty());
    assert_eq!(inbox(&store, a).await.highest_modseq, hms, "nothing expunged, nothing bumped");
    assert_eq!(store.vanished_since(mbox, ModSeq(0)).await.expect("vanished"), uids([1, 2, 4]));
    assert_err!(store.expunge_deleted(MailboxId(i64::MAX), None).await, NotFound);
}

/// CONDSTORE/QRESYNC reads after a mix of arrivals, flag changes, copies,
/// moves and expunges; the light index matches the full listing.
pub async fn changed_and_vanished_since(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "qresync.test").await;
    let a = add_account(&store, "a@qresync.test").await;
    let mbox = inbox(&store, a).await.id;
    let other = named(&store, a, "Archive").await.id;
    let m0 = inbox(&store, a).await.highest_modseq;
    for i in 0..4 {
        store.deliver(&message(&store, &format!("qresync {i}")), &[a]).await.expect("deliver");
    }
    let m1 = inbox(&store, a).await.highest_modseq;
    flag(&store, mbox, &uids([1]), Flags::SEEN).await;
    store.expunge(mbox, &uids([2])).await.expect("expunge");
    store.move_messages(mbox, &uids([3]), other).await.expect("move");
    store.copy_messages(other, &uids([1]), mbox).await.expect("copy back");
    let m2 = inbox(&store, a).await.highest_modseq;

    let changed = |since| {
        let store = &store;
        async move {
            let records = store.changed_since(mbox, since).await.expect("changed since");
            records.iter().map(|m| m.uid).collect::<Vec<Uid>>()
        }
    };
    assert_eq!(changed(m0).await, uids([1, 4, 5]));
    assert_eq!(changed(m1).await, uids([1, 5]), "the flag change and the copy");
    assert!(changed(m2).await.is_empty());
    assert_eq!(store.vanished_since(mbox, m0).await.expect("vanished"), uids([2, 3]));
    assert_eq!(store.vanished_since(mbox, m1).await.expect("vanished"), uids([2, 3]));
    assert!(store.vanished_since(mbox, m2).await.expect("vanished").is_empty());
    let records = store.changed_since(mbox, m1).await.expect("changed since");
    assert!(records.iter().all(|m| m.modseq > m1), "{records:?}");
    assert_eq!(records[0].flags, Flags::SEEN);

    let full = store.messages(mbox).await.expect("list");
    let index = store.message_index(mbox).await.expect("index");
    let projected: Vec<_> =
        full.iter().map(|m| (m.uid, m.modseq, m.flags, m.keywords.clone(), m.size, m.internal_date)).collect();
    let light: Vec<_> =
        index.iter().map(|m| (m.uid, m.modseq, m.flags, m.keywords.clone(), m.size, m.internal_date)).collect();
    assert_eq!(light, projected);
    assert_err!(store.changed_since(MailboxId(i64::MAX), m0).await, NotFound);
    assert_err!(store.vanished_since(MailboxId(i64::MAX), m0).await, NotFound);
    assert_err!(store.message_index(MailboxId(i64::MAX)).await, NotFound);
}

/// UIDs are never reused, whatever moves messages in and out and whatever
/// the mailbox is called.
pub async fn uids_never_reused_after_move_and_rename(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "reuse.test").await;
    let a = add_account(&store, "a@reuse.test").await;
    let drafts = named(&store, a, "Drafts").await.id;
    let junk = named(&store, a, "Junk").await.id;
    store.append(drafts, &message(&store, "one")).await.expect("append");
    store.append(drafts, &message(&store, "two")).await.expect("append");
    store.move_messages(drafts, &uids([2]), junk).await.expect("move out");
    assert_eq!(store.append(drafts, &message(&store, "three")).await.expect("append").0, uid(3));
    store.rename_mailbox(a, "Drafts", "Entwürfe").await.expect("rename");
    assert_eq!(store.append(drafts, &message(&store, "four")).await.expect("append").0, uid(4));
    let back = store.move_messages(junk, &uids([1]), drafts).await.expect("move back");
    assert_eq!(back.pairs, [(uid(1), uid(5))]);
    store.expunge(drafts, &uids([5])).await.expect("expunge");
    let copied = store.copy_messages(drafts, &uids([1]), drafts).await.expect("copy");
    assert_eq!(copied.pairs, [(uid(1), uid(6))]);
    assert_eq!(listed_uids(&store, drafts).await, uids([1, 3, 4, 6]));
    assert_eq!(named(&store, a, "Entwürfe").await.uid_next, uid(7));
}
