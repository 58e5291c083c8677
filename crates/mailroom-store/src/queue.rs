//! The outbound queue's values: what enters it ([`Submission`]), what the
//! queue runner claims ([`QueueEntry`]) and what it reports back
//! ([`AttemptReport`]).
//!
//! The store keeps the schedule and the per-recipient state; the policy
//! (when to retry, when to give up, whether to warn) belongs to the caller,
//! which passes its decisions in as times and states. So a PostgreSQL
//! backend can lease the same work to several nodes without knowing the
//! retry schedule.

use std::time::SystemTime;

use mailroom_types::{AccountId, Address, BlobId, QueueId};

use crate::NewMessage;

/// One accepted message on its way: its local copies and its queue entry,
/// committed in one transaction, so a `250` means both are durable and a
/// failure means neither exists.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The message's bytes and metadata (as for a delivery).
    pub message: NewMessage,
    /// Local accounts whose INBOX gets a copy now.
    pub local: Vec<AccountId>,
    /// The remote recipients, when there are any.
    pub queue: Option<NewQueueEntry>,
    /// The sender's own copy, filed `\Seen` into this mailbox (the
    /// webmail's Sent) in the same transaction, so "sent" never comes
    /// without it. Mail clients on port 587 file their own copies.
    pub sent: Option<mailroom_types::MailboxId>,
}

/// A message entering the outbound queue.
#[derive(Debug, Clone)]
pub struct NewQueueEntry {
    /// The id the client was told (`queued as <id>`); unique.
    pub id: QueueId,
    /// The envelope sender; `None` for the null reverse path, whose
    /// failures are never reported to anyone (RFC 5321 §4.5.5).
    pub sender: Option<Address>,
    /// Remote recipients, each once.
    pub recipients: Vec<Address>,
    /// When it was accepted; expiry counts from here.
    pub created: SystemTime,
    /// When the first attempt is due (usually `created`).
    pub first_attempt: SystemTime,
}

/// A queued recipient's row id: how the runner reports on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientId(pub i64);

/// Where a queued recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Still to be delivered.
    Pending,
    /// Accepted by the remote server.
    Delivered,
    /// Refused for good or expired; the sender was notified.
    Failed,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    /// Its row.
    pub id: RecipientId,
    /// The forward path.
    pub address: Address,
    /// Where it stands.
    pub state: RecipientState,
    /// Attempts started so far, counted before each one is dialled.
    pub attempts: u32,
    /// When the next attempt is due (a claimed recipient's lease end).
    pub next_attempt: SystemTime,
    /// When the last attempt started.
    pub last_attempt: Option<SystemTime>,
    /// The last reply or error, for the admin and the DSN.
    pub last_reply: String,
    /// Whether the sender was warned of the delay already.
    pub warned: bool,
}

/// A queued message with its recipients: all of them when listed, the
/// claimed ones when claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Its id.
    pub id: QueueId,
    /// Where its bytes are.
    pub blob: BlobId,
    /// Their length.
    pub size: u64,
    /// The envelope sender (`None`: null reverse path).
    pub sender: Option<Address>,
    /// When it was accepted.
    pub created: SystemTime,
    /// Its recipients.
    pub recipients: Vec<QueuedRecipient>,
}

/// What became of one recipient in an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientUpdate {
    /// Delivered: the remote server's reply.
    Delivered {
        /// The reply, for the logs.
        reply: String,
    },
    /// Not this time: try again at `at`.
    Retry {
        /// The next attempt.
        at: SystemTime,
        /// The reply or error.
        reply: String,
        /// Whether a delay warning has now been sent.
        warned: bool,
    },
    /// Failed for good (a 5xx, or expired).
    Failed {
        /// The reply or error.
        reply: String,
    },
}

/// The outcome of one attempt at a queued message, with the notice it
/// produced (a DSN) committed in the same transaction, so a crash cannot
/// lose the notice or send it twice.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// The message.
    pub entry: QueueId,
    /// Each recipient tried.
    pub updates: Vec<(RecipientId, RecipientUpdate)>,
    /// A delivery status notification to store, if any.
    pub notice: Option<Submission>,
}
