//! The rules of authenticated submission (RFC 6409) that are not SMTP
//! syntax: which sender addresses a user owns, how many messages a user
//! may send, and the header fields a submitted message must carry.
//!
//! Shared by every way a user sends mail (ports 587 and 465 now, webmail
//! later), so that one policy holds for all of them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mail_parser::MessageParser;
use mailroom_store::{AccountRecord, AliasSource, MailStore, StoreError, Submission};
use mailroom_types::{AccountId, Address, Clock, IdGenerator, time::rfc5322};
use tokio::sync::Notify;

/// Whether `account` may use `address` as a sender: its own address, or an
/// exact alias that leads to it. A catch-all does not make every address of
/// a domain the user's.
pub async fn owns<S: MailStore>(store: &S, account: &AccountRecord, address: &Address) -> Result<bool, StoreError> {
    if address.key() == account.address.key() {
        return Ok(true);
    }
    let aliases = match store.list_aliases(Some(address.domain())).await {
        Ok(aliases) => aliases,
        // Not a local domain: nobody here owns it.
        Err(StoreError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let key = address.key();
    Ok(aliases.iter().any(|a| {
        matches!(&a.source, AliasSource::Address(s) if s.key() == key) && a.target.key() == account.address.key()
    }))
}

/// The addresses of the `From:` field of a header section (RFC 5322
/// §3.6.2), as written; an unparsable one comes back as its raw text so
/// that the caller refuses it rather than skipping it.
pub fn from_addresses(header: &[u8]) -> Vec<String> {
    let Some(msg) = MessageParser::new().parse_headers(header) else { return Vec::new() };
    let Some(from) = msg.from() else { return Vec::new() };
    from.iter()
        .map(|a| a.address.as_deref().map_or_else(|| a.name.as_deref().unwrap_or("").to_owned(), str::to_owned))
        .collect()
}

/// The header fields a submission server adds when the client left them
/// out (RFC 6409 §8.1, §8.3): `Date:` and `Message-ID:`, CRLF-terminated,
/// or nothing when both are present.
pub fn missing_fields(header: &[u8], now: SystemTime, ids: &IdGenerator, hostname: &str) -> Vec<u8> {
    let (mut date, mut message_id) = (false, false);
    for line in header.split(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') || name.len() == line.len() {
            continue;
        }
        date |= name.trim_ascii().eq_ignore_ascii_case(b"date");
        message_id |= name.trim_ascii().eq_ignore_ascii_case(b"message-id");
    }
    let mut out = String::new();
    if !date {
        out.push_str(&format!("Date: {}\r\n", rfc5322(now)));
    }
    if !message_id {
        out.push_str(&format!("Message-ID: <{}@{hostname}>\r\n", ids.queue_id(now)));
    }
    out.into_bytes()
}

/// Counts each account's submissions over a sliding window.
///
/// Memory is bounded by the accounts that sent in the window times the
/// limit; an account's entry goes when its window empties.
pub struct RateLimiter {
    limit: u32,
    period: Duration,
    clock: Arc<dyn Clock>,
    sent: Mutex<HashMap<AccountId, VecDeque<SystemTime>>>,
}

impl RateLimiter {
    /// `limit` messages per `period`; a limit of 0 allows everything.
    pub fn new(limit: u32, period: Duration, clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter { limit, period, clock, sent: Mutex::default() }
    }

    /// Whether `account` may start another message now.
    pub fn allows(&self, account: AccountId) -> bool {
        if self.limit == 0 {
            return true;
        }
        let now = self.clock.now();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = sent.get_mut(&account) else { return true };
        self.expire(times, now);
        if times.is_empty() {
            sent.remove(&account);
            return true;
        }
        times.len() < self.limit as usize
    }

    /// Counts one accepted message of `account`.
    pub fn record(&self, account: AccountId) {
        if self.limit == 0 {
            return;
        }
        let now = self.clock.now();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let times = sent.entry(account).or_default();
        self.expire(times, now);
        if times.len() >= self.limit as usize {
            times.pop_front();
        }
        times.push_back(now);
    }

    fn expire(&self, times: &mut VecDeque<SystemTime>, now: SystemTime) {
        while times.front().is_some_and(|t| now.duration_since(*t).is_ok_and(|age| age >= self.period)) {
            times.pop_front();
        }
    }
}

/// Where accepted mail goes: the store, and a wake-up for the queue
/// runner when some of it is for other domains, so it leaves at once
/// rather than at the runner's next poll.
#[derive(Clone)]
pub struct Outbound<S> {
    store: S,
    wake: Arc<Notify>,
}

impl<S: MailStore + Clone> Outbound<S> {
    /// An outbound path over `store`.
    pub fn new(store: S) -> Outbound<S> {
        Outbound { store, wake: Arc::new(Notify::new()) }
    }

    /// Commits the submission (see [`MailStore::submit`]) and wakes the
    /// runner if it queued anything.
    pub async fn submit(
        &self,
        submission: &Submission,
    ) -> Result<Vec<(mailroom_types::MailboxId, mailroom_types::Uid)>, StoreError> {
        let copies = self.store.submit(submission).await?;
        if submission.queue.as_ref().is_some_and(|q| !q.recipients.is_empty()) {
            self.wake.notify_one();
        }
        Ok(copies)
    }

    /// What the queue runner waits on.
    pub fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_types::FixedClock;

    #[test]
    fn missing_date_and_message_id_are_added() {
        let ids = IdGenerator::new(7);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let added = String::from_utf8(missing_fields(b"Subject: x\r\n\r\n", now, &ids, "mx.test")).unwrap();
        assert!(added.starts_with("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <"), "{added}");
        assert!(added.ends_with("@mx.test>\r\n"), "{added}");
        let present = b"date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMESSAGE-ID:<a@b>\r\n\r\n";
        assert!(missing_fields(present, now, &ids, "mx.test").is_empty());
        let folded = b"Subject: x\r\n Date: no, a folded line\r\n\r\n";
        assert!(String::from_utf8(missing_fields(folded, now, &ids, "h")).unwrap().starts_with("Date: "));
    }

    #[test]
    fn from_addresses_lists_every_mailbox() {
        let h = b"From: Alice <alice@example.test>, bob@example.test\r\nTo: x@y.test\r\n\r\n";
        assert_eq!(from_addresses(h), vec!["alice@example.test", "bob@example.test"]);
        assert!(from_addresses(b"Subject: none\r\n\r\n").is_empty());
    }

    #[test]
    fn rate_limiter_counts_a_sliding_window() {
        let clock = Arc::new(FixedClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000)));
        let limiter = RateLimiter::new(2, Duration::from_secs(60), clock.clone());
        let a = AccountId(1);
        assert!(limiter.allows(a));
        limiter.record(a);
        clock.advance(Duration::from_secs(30));
        limiter.record(a);
        assert!(!limiter.allows(a), "two in the window");
        assert!(limiter.allows(AccountId(2)), "per account");
        clock.advance(Duration::from_secs(30));
        assert!(limiter.allows(a), "the first left the window");
        assert!(RateLimiter::new(0, Duration::from_secs(1), clock).allows(a));
    }
}
