//! Delivery status notifications (RFC 3464) for the queue runner: a bounce
//! when recipients failed for good, a warning when they are delayed. The
//! notice goes to the envelope sender, locally or through the queue with
//! the null sender, and never for a message that had the null sender
//! itself (RFC 5321 §4.5.5), so notices cannot loop.

use std::time::SystemTime;

use mailroom_services::delivery::StoredMessage;
use mailroom_services::dsn::{self, DsnAction, DsnRecipient, DsnRequest};
use mailroom_store::{
    MailStore, NewContent, NewQueueEntry, QueueEntry, QueuedRecipient, Resolution, StoreError, Submission,
};
use tracing::{info, warn};

use crate::runner::{Inner, Outcome};

/// The notice an attempt calls for, if any: a bounce for `failed`, else a
/// delay warning for `delayed` (with each one's next attempt).
pub(crate) async fn for_outcome(
    inner: &Inner,
    entry: &QueueEntry,
    failed: &[(QueuedRecipient, Outcome)],
    delayed: &[(QueuedRecipient, Outcome, SystemTime)],
    now: SystemTime,
) -> Result<Option<Submission>, StoreError> {
    let Some(sender) = &entry.sender else {
        if !failed.is_empty() {
            info!(queue_id = %entry.id, "no bounce for a message with the null sender");
        }
        return Ok(None);
    };
    let recipients: Vec<DsnRecipient> = if failed.is_empty() {
        delayed
            .iter()
            .map(|(r, o, next)| DsnRecipient {
                recipient: r.address.to_string(),
                action: DsnAction::Delayed,
                status: o.status,
                remote_mta: o.remote.clone(),
                diagnostic: Some(o.text.clone()),
                last_attempt: r.last_attempt,
                will_retry_until: Some(entry.created + inner.max_age).filter(|until| until >= next),
            })
            .collect()
    } else {
        failed
            .iter()
            .map(|(r, o)| DsnRecipient {
                recipient: r.address.to_string(),
                action: DsnAction::Failed,
                status: failure_status(o.status),
                remote_mta: o.remote.clone(),
                diagnostic: Some(o.text.clone()),
                last_attempt: r.last_attempt,
                will_retry_until: None,
            })
            .collect()
    };
    if recipients.is_empty() {
        return Ok(None);
    }
    let mut original = Vec::new();
    if !inner.store.read_blob(&entry.blob, &mut original).await? {
        warn!(queue_id = %entry.id, "message bytes gone; the notice quotes no headers");
    }
    let header = mailroom_store::header_section(&original).unwrap_or(&original[..]);
    let message_id = format!("<{}@{}>", inner.ids.queue_id(now), inner.hostname);
    let sender_text = sender.to_string();
    let bytes = dsn::build(&DsnRequest {
        reporting_mta: &inner.hostname,
        sender: &sender_text,
        postmaster: None,
        queue_id: entry.id.as_str(),
        arrival: entry.created,
        now,
        recipients: &recipients,
        original: header,
        message_id,
    });
    // Signed like any mail from a domain with keys: the notice is final.
    let signature = inner.dkim.sign(&bytes, now);
    let bytes = if signature.is_empty() { bytes } else { [signature, bytes].concat() };
    let size = bytes.len() as u64;
    let head = mailroom_store::header_section(&bytes).unwrap_or(&bytes[..]).to_vec();
    let content = match NewContent::inline(inner.ids.blob_id(now), bytes) {
        Ok(content) => content,
        Err(bytes) => {
            // A notice quotes only headers, so this is rare: write a file.
            let mut w = inner.store.blobs().create(inner.ids.blob_id(now))?;
            w.write(&bytes)?;
            let (blob, _) = w.finish()?;
            NewContent::File(blob, head.clone())
        }
    };
    let message = StoredMessage { content, size, head, received_at: now }.new_message();
    let submission = match inner.store.resolve_recipient(sender).await? {
        Resolution::Accounts(accounts) => Submission { message, local: accounts, queue: None, sent: None },
        Resolution::NotLocal => Submission {
            message,
            local: Vec::new(),
            queue: Some(NewQueueEntry {
                id: inner.ids.queue_id(now),
                sender: None,
                recipients: vec![sender.clone()],
                created: now,
                first_attempt: now,
            }),
            sent: None,
        },
        Resolution::Unknown => {
            info!(queue_id = %entry.id, %sender, "the sender is no longer a local user: no notice");
            return Ok(None);
        }
    };
    Ok(Some(submission))
}

/// A failure's DSN status is permanent even when its last error was not
/// (an expired message's last try may have been a 4xx).
fn failure_status(status: (u8, u16, u16)) -> (u8, u16, u16) {
    if status.0 == 5 { status } else { (5, 4, 7) }
}
