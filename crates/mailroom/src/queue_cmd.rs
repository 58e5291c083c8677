//! `mailroom queue`: look at and steer the outbound queue, also while the
//! server runs (the runner sees a retry at its next poll).

use std::time::SystemTime;

use mailroom_store::{AnyStore, MailStore, QueueEntry, RecipientState};
use mailroom_types::QueueId;
use mailroom_types::time::rfc5322;

/// What to do with the queue.
#[derive(clap::Subcommand)]
pub enum QueueAction {
    /// List queued messages with their pending recipients.
    List,
    /// Show one message's recipients, attempts and last replies.
    Show { id: String },
    /// Make one message (or every message) due for delivery now.
    Retry { id: Option<String> },
    /// Remove a message from the queue without notifying its sender.
    Delete { id: String },
}

/// Runs one queue command, printing its result.
pub async fn run(store: &AnyStore, action: QueueAction, now: SystemTime) -> anyhow::Result<()> {
    match action {
        QueueAction::List => {
            let entries = store.queue_entries(None).await?;
            if entries.is_empty() {
                println!("queue is empty");
            }
            for e in &entries {
                let pending: Vec<_> = e.recipients.iter().filter(|r| r.state == RecipientState::Pending).collect();
                println!("{} {:>9} {} <{}>", e.id, e.size, rfc5322(e.created), sender(e));
                for r in pending {
                    let reply = if r.last_reply.is_empty() { String::new() } else { format!(": {}", r.last_reply) };
                    println!("    {} (attempts {}, next {}){reply}", r.address, r.attempts, rfc5322(r.next_attempt));
                }
            }
        }
        QueueAction::Show { id } => {
            let id = QueueId::from_string(id);
            let entry = store.queue_entries(Some(&id)).await?;
            let Some(e) = entry.first() else { anyhow::bail!("no queued message {id}") };
            println!("id: {}", e.id);
            println!("sender: <{}>", sender(e));
            println!("size: {}", e.size);
            println!("queued: {}", rfc5322(e.created));
            for r in &e.recipients {
                println!("recipient: {}", r.address);
                println!("  state: {}", state(r.state));
                println!("  attempts: {}", r.attempts);
                if let Some(t) = r.last_attempt {
                    println!("  last attempt: {}", rfc5322(t));
                }
                if r.state == RecipientState::Pending {
                    println!("  next attempt: {}", rfc5322(r.next_attempt));
                }
                if !r.last_reply.is_empty() {
                    println!("  last reply: {}", r.last_reply);
                }
            }
        }
        QueueAction::Retry { id } => {
            let id = id.map(QueueId::from_string);
            let n = store.retry_queued(id.as_ref(), now).await?;
            println!("{n} recipient(s) due now");
        }
        QueueAction::Delete { id } => {
            let id = QueueId::from_string(id);
            store.delete_queued(&id).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

fn sender(e: &QueueEntry) -> String {
    e.sender.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn state(s: RecipientState) -> &'static str {
    match s {
        RecipientState::Pending => "pending",
        RecipientState::Delivered => "delivered",
        RecipientState::Failed => "failed",
    }
}
