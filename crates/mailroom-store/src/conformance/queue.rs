//! Conformance cases for the outbound queue: a submission's local copies
//! and queue entry commit together; claims count the attempt and lease the
//! recipient before anyone dials; reports move recipients to their final
//! state and store their notice in the same transaction; a queued message's
//! blob lives while the entry or a mailbox copy needs it.
//!
//! Each case leaves the queue empty, as claims see every due entry.

use std::time::{Duration, SystemTime};

use mailroom_types::{IdGenerator, QueueId};

use super::{OpenStore, add_account, add_domain, addr, barrier, eventually, file_message, inbox, message, read};
use crate::{AttemptReport, MailStore, NewQueueEntry, RecipientState, RecipientUpdate, StoreError, Submission};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn queue_id(n: u64) -> QueueId {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    IdGenerator::new((nanos as u64) ^ n).queue_id(SystemTime::now())
}

fn entry(id: &QueueId, sender: Option<&str>, recipients: &[&str], created: SystemTime) -> NewQueueEntry {
    NewQueueEntry {
        id: id.clone(),
        sender: sender.map(addr),
        recipients: recipients.iter().map(|r| addr(r)).collect(),
        created,
        first_attempt: created,
    }
}

/// A submission with local and remote recipients: both parts commit, the
/// entry is listed with its recipients pending, and a claim counts the
/// attempt and leases the recipients so that a second claim within the
/// lease gets nothing.
pub async fn queue_submit_and_claim(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "qsubmit.test").await;
    let a = add_account(&store, "a@qsubmit.test").await;
    let msg = message(&store, "out and in");
    let id = queue_id(1);
    let t0 = at(2_000_000_000);
    let sent = store.mailbox(a, "Sent").await.expect("lookup").expect("Sent exists").id;
    let copies = store
        .submit(&Submission {
            message: msg.clone(),
            local: vec![a],
            queue: Some(entry(&id, Some("a@qsubmit.test"), &["x@remote.test", "y@other.test"], t0)),
            sent: Some(sent),
        })
        .await
        .expect("submit");
    assert_eq!(copies.len(), 2, "the local copy and the sender's own copy are stored");
    assert_eq!(copies[1].0, sent, "the sender's copy comes last");

    let fresh = open.open().await;
    assert_eq!(fresh.messages(inbox(&fresh, a).await.id).await.expect("list").len(), 1);
    let own = fresh.messages(sent).await.expect("list Sent");
    assert_eq!(own.len(), 1, "the sender's copy is filed");
    assert!(own[0].flags.contains(mailroom_types::Flags::SEEN), "and marked seen");
    assert_eq!(&own[0].blob, msg.content.blob(), "sharing the one blob");
    let listed = fresh.queue_entries(None).await.expect("list queue");
    assert_eq!(listed.len(), 1);
    let e = &listed[0];
    assert_eq!((&e.id, &e.blob, e.size), (&id, msg.content.blob(), msg.size));
    assert_eq!(e.sender, Some(addr("a@qsubmit.test")));
    assert_eq!(e.recipients.len(), 2);
    assert!(e.recipients.iter().all(|r| r.state == RecipientState::Pending && r.attempts == 0));
    assert_eq!(fresh.next_queue_due().await.expect("next due"), Some(t0));

    assert!(store.claim_due(at(1_999_999_999), Duration::from_secs(600), 10).await.expect("claim").is_empty());
    let claimed = store.claim_due(t0, Duration::from_secs(600), 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].recipients.len(), 2);
    assert!(claimed[0].recipients.iter().all(|r| r.attempts == 1 && r.last_attempt == Some(t0)));
    let fresh = open.open().await;
    assert!(
        fresh.claim_due(t0 + Duration::from_secs(599), Duration::from_secs(600), 10).await.expect("claim").is_empty(),
        "leased recipients are not claimed again within the lease, by any handle"
    );
    assert_eq!(fresh.next_queue_due().await.expect("next due"), Some(t0 + Duration::from_secs(600)));
    let again = fresh.claim_due(t0 + Duration::from_secs(600), Duration::from_secs(600), 1).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipients.len(), 1, "the limit counts recipients");
    assert_eq!(again[0].recipients[0].attempts, 2);

    store.delete_queued(&id).await.expect("delete");
    assert!(store.queue_entries(None).await.expect("list").is_empty());
    assert!(read(&store, msg.content.blob()).await.is_some(), "the local copy keeps the blob");
    assert_err!(store.delete_queued(&id).await, NotFound);
}

/// Reports: a delivered and a retried recipient keep the entry; the retry
/// time is kept; a failure with its notice removes the entry and stores
/// the notice in the same transaction; the blob goes with the entry.
pub async fn queue_reports_and_notices(open: &impl OpenStore) {
    let store = open.open().await;
    add_domain(&store, "qreport.test").await;
    let a = add_account(&store, "a@qreport.test").await;
    let msg = file_message(&store, "queued only");
    let path = store.blobs().path(msg.content.blob());
    let id = queue_id(2);
    let t0 = at(2_000_100_000);
    let recipients = ["d@remote.test", "r@remote.test", "f@remote.test"];
    store
        .submit(&Submission {
            message: msg.clone(),
            local: vec![],
            queue: Some(entry(&id, Some("a@qreport.test"), &recipients, t0)),
            sent: None,
        })
        .await
        .expect("submit");
    assert!(path.exists());
    let claimed = store.claim_due(t0, Duration::from_secs(60), 10).await.expect("claim");
    let rcpt = |n: usize| claimed[0].recipients[n].id;
    let retry_at = t0 + Duration::from_secs(300);
    store
        .report_attempt(&AttemptReport {
            entry: id.clone(),
            updates: vec![
                (rcpt(0), RecipientUpdate::Delivered { reply: "250 ok".into() }),
                (rcpt(1), RecipientUpdate::Retry { at: retry_at, reply: "451 later".into(), warned: false }),
                (rcpt(2), RecipientUpdate::Retry { at: retry_at, reply: "421 busy".into(), warned: true }),
            ],
            notice: None,
        })
        .await
        .expect("report");
    let fresh = open.open().await;
    let listed = fresh.queue_entries(Some(&id)).await.expect("show");
    let states: Vec<_> =
        listed[0].recipients.iter().map(|r| (r.state, r.next_attempt, r.last_reply.as_str(), r.warned)).collect();
    assert_eq!(
        states,
        vec![
            (RecipientState::Delivered, t0 + Duration::from_secs(60), "250 ok", false),
            (RecipientState::Pending, retry_at, "451 later", false),
            (RecipientState::Pending, retry_at, "421 busy", true),
        ]
    );
    assert_eq!(fresh.next_queue_due().await.expect("next due"), Some(retry_at));

    // `retry` makes them due now; an unknown id is refused.
    assert_eq!(fresh.retry_queued(Some(&id), t0 + Duration::from_secs(1)).await.expect("retry"), 2);
    assert_err!(fresh.retry_queued(Some(&queue_id(99)), t0).await, NotFound);
    let claimed = store.claim_due(t0 + Duration::from_secs(1), Duration::from_secs(60), 10).await.expect("claim");
    assert_eq!(claimed[0].recipients.len(), 2, "delivered recipients are never claimed");

    let notice = message(&store, "notice");
    let report = AttemptReport {
        entry: id.clone(),
        updates: claimed[0]
            .recipients
            .iter()
            .map(|r| (r.id, RecipientUpdate::Failed { reply: "550 no such user".into() }))
            .collect(),
        notice: Some(Submission { message: notice.clone(), local: vec![a], queue: None, sent: None }),
    };
    store.report_attempt(&report).await.expect("report");
    let fresh = open.open().await;
    assert!(fresh.queue_entries(None).await.expect("list").is_empty(), "no pending recipient: the entry goes");
    let inbox_a = inbox(&fresh, a).await.id;
    let delivered = fresh.messages(inbox_a).await.expect("list");
    assert_eq!(delivered.len(), 1, "the notice is in the sender's INBOX");
    assert_eq!(&delivered[0].blob, notice.content.blob());
    barrier(&store, inbox_a).await;
    eventually("the finished entry's blob file is deleted", || !path.exists()).await;
    let late = AttemptReport { notice: None, ..report };
    store.report_attempt(&late).await.expect("a report on a finished entry changes nothing");
    store.expunge(inbox_a, &[delivered[0].uid]).await.expect("expunge");
}

/// A notice may itself be queued (a DSN for a remote sender), with the
/// null reverse path; entries are listed oldest first.
pub async fn queue_notice_is_queued(open: &impl OpenStore) {
    let store = open.open().await;
    let (first, dsn) = (queue_id(3), queue_id(4));
    let t0 = at(2_000_200_000);
    let msg = message(&store, "bounce me");
    store
        .submit(&Submission {
            message: msg.clone(),
            local: vec![],
            queue: Some(entry(&first, Some("someone@remote.test"), &["gone@other.test"], t0)),
            sent: None,
        })
        .await
        .expect("submit");
    let claimed = store.claim_due(t0, Duration::from_secs(60), 10).await.expect("claim");
    let notice = message(&store, "dsn");
    store
        .report_attempt(&AttemptReport {
            entry: first.clone(),
            updates: vec![(claimed[0].recipients[0].id, RecipientUpdate::Failed { reply: "550 gone".into() })],
            notice: Some(Submission {
                message: notice.clone(),
                local: vec![],
                queue: Some(entry(&dsn, None, &["someone@remote.test"], t0 + Duration::from_secs(1))),
                sent: None,
            }),
        })
        .await
        .expect("report");
    let listed = open.open().await.queue_entries(None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0].id, &listed[0].sender), (&dsn, &None));
    assert!(read(&store, msg.content.blob()).await.is_none(), "the bounced message's bytes are gone");
    assert!(read(&store, notice.content.blob()).await.is_some());
    store.delete_queued(&dsn).await.expect("delete");
    assert!(read(&store, notice.content.blob()).await.is_none());
}
