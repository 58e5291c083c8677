//! Local delivery: an accepted message whose bytes are durable goes into the
//! INBOX of every local recipient, in one transaction.

use std::time::SystemTime;

use mailroom_store::{MailStore, NewContent, NewMessage, SpecialUse, StoreError};
use mailroom_types::{AccountId, Flags, MailboxId, Uid};

use crate::message::header_cache;

/// The accounts a message goes to, each once, in the order first named.
///
/// Two RCPTs that lead to one account (an alias and the address itself,
/// say) deliver a single copy, as users expect.
#[derive(Debug, Default, Clone)]
pub struct LocalRecipients(Vec<AccountId>);

impl LocalRecipients {
    /// Adds accounts, skipping ones already present.
    pub fn extend(&mut self, accounts: &[AccountId]) {
        for a in accounts {
            if !self.0.contains(a) {
                self.0.push(*a);
            }
        }
    }

    /// The accounts.
    pub fn as_slice(&self) -> &[AccountId] {
        &self.0
    }

    /// True when no account was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A received message ready to be delivered: its bytes in memory, or in a
/// finished, fsync'd blob file.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Where the bytes are.
    pub content: NewContent,
    /// Their length.
    pub size: u64,
    /// The first bytes of the message (at least its header section), for
    /// the header cache; may be left empty for inline content, which is
    /// its own (see [`StoredMessage::head`]).
    pub head: Vec<u8>,
    /// Arrival time.
    pub received_at: SystemTime,
}

/// Commits a message into the INBOX of each recipient; returns once durable.
pub async fn deliver_local<S: MailStore>(
    store: &S,
    message: &StoredMessage,
    recipients: &LocalRecipients,
) -> Result<Vec<(MailboxId, Uid)>, StoreError> {
    store.deliver(&message.new_message(), recipients.as_slice()).await
}

/// Like [`deliver_local`], into each recipient's mailbox of the special use
/// `special` (its INBOX when it has none): quarantined mail into Junk.
pub async fn deliver_local_special<S: MailStore>(
    store: &S,
    message: &StoredMessage,
    recipients: &LocalRecipients,
    special: SpecialUse,
) -> Result<Vec<(MailboxId, Uid)>, StoreError> {
    store.deliver_special_use(&message.new_message(), recipients.as_slice(), special).await
}

impl StoredMessage {
    /// The message as the store takes it: arrived now, no flags, its
    /// header cache read from its first bytes.
    pub fn new_message(&self) -> NewMessage {
        NewMessage {
            content: self.content.clone(),
            size: self.size,
            internal_date: self.received_at,
            flags: Flags::empty(),
            keywords: Vec::new(),
            headers: header_cache(self.head()),
        }
    }

    /// The first bytes of the message: [`StoredMessage::head`], or the
    /// inline content itself when that was left empty.
    pub fn head(&self) -> &[u8] {
        match &self.content {
            NewContent::Inline(_, bytes) if self.head.is_empty() => bytes,
            _ => &self.head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_deduplicated_in_order() {
        let mut r = LocalRecipients::default();
        assert!(r.is_empty());
        r.extend(&[AccountId(3), AccountId(1)]);
        r.extend(&[AccountId(1), AccountId(2)]);
        assert_eq!(r.as_slice(), &[AccountId(3), AccountId(1), AccountId(2)]);
    }
}
