//! One POP3 session per maildrop (RFC 1939 §8: the server "should" lock the
//! maildrop; RFC 2449 §8.1.1 gives the refusal the `[IN-USE]` code).
//!
//! Two sessions deleting from one snapshot each would each believe they own
//! the message numbers; refusing the second is what users of other servers
//! know (Dovecot does the same by default). The lock lives in this process;
//! sessions on other nodes will need the store's help once there are any.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use mailroom_types::MailboxId;

/// The maildrops that have a session in TRANSACTION state.
#[derive(Debug, Default)]
pub struct MaildropLocks(Mutex<HashSet<MailboxId>>);

impl MaildropLocks {
    /// A new, empty lock table.
    pub fn new() -> Arc<MaildropLocks> {
        Arc::new(MaildropLocks::default())
    }

    /// Locks `mailbox`, or `None` when another session holds it. The lock is
    /// released when the guard drops, however the session ends.
    pub fn lock(self: &Arc<Self>, mailbox: MailboxId) -> Option<MaildropLock> {
        let inserted = self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(mailbox);
        inserted.then(|| MaildropLock { table: Arc::clone(self), mailbox })
    }
}

/// A held maildrop lock.
#[derive(Debug)]
pub struct MaildropLock {
    table: Arc<MaildropLocks>,
    mailbox: MailboxId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.table.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.mailbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let locks = MaildropLocks::new();
        let a = locks.lock(MailboxId(1)).expect("free");
        assert!(locks.lock(MailboxId(1)).is_none());
        assert!(locks.lock(MailboxId(2)).is_some());
        drop(a);
        assert!(locks.lock(MailboxId(1)).is_some());
    }
}
