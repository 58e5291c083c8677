use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A domain's row in the store.
    DomainId
);
row_id!(
    /// An account's row in the store.
    AccountId
);
row_id!(
    /// A mailbox's row in the store; stable across renames.
    MailboxId
);

/// A message's unique identifier within one mailbox (RFC 9051 §2.3.1.1).
///
/// Never zero, strictly increasing per mailbox, never reused while the
/// mailbox keeps its UIDVALIDITY.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Uid(pub NonZeroU32);

impl Uid {
    /// The UID for `n`, or `None` for zero.
    pub fn new(n: u32) -> Option<Uid> {
        NonZeroU32::new(n).map(Uid)
    }

    /// The raw number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The UIDVALIDITY of a mailbox (RFC 9051 §2.3.1.1): if it changes, clients
/// must forget every UID they cached.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct UidValidity(pub NonZeroU32);

impl UidValidity {
    /// The UIDVALIDITY for `n`, or `None` for zero.
    pub fn new(n: u32) -> Option<UidValidity> {
        NonZeroU32::new(n).map(UidValidity)
    }

    /// The raw number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for UidValidity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A modification sequence (RFC 7162 §3.1.1): every change to a message's
/// flags, and every arrival or expunge, gets a higher one in its mailbox.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ModSeq(pub u64);

impl fmt::Display for ModSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a stored raw message in the blob store.
///
/// Thirty-two lowercase hex digits. The first eight name the hour the blob
/// was written, which is also its directory: blobs written close together
/// share a directory, so one directory fsync covers a whole group commit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct BlobId(String);

impl BlobId {
    /// Parses a stored blob id; `None` unless it is 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<BlobId> {
        let ok = s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| BlobId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory the blob lives in (its hour bucket).
    pub fn shard(&self) -> &str {
        &self.0[..8]
    }

    /// The file name within the shard directory.
    pub fn file_name(&self) -> &str {
        &self.0[8..]
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id an SMTP transaction reports (`250 2.0.0 Ok: queued as <id>`) and
/// logs carry, so an operator can follow one message through the system.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct QueueId(String);

impl QueueId {
    /// Wraps an id read back from storage or a log.
    pub fn from_string(s: String) -> QueueId {
        QueueId(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes queue and blob ids that are unique without asking the store.
///
/// Uniqueness comes from a per-process salt (random in production, fixed in
/// tests so transcripts can assert exact ids) plus a counter.
#[derive(Debug)]
pub struct IdGenerator {
    salt: u64,
    counter: AtomicU64,
}

impl IdGenerator {
    /// A generator whose ids depend only on `salt`, the clock and call order.
    pub fn new(salt: u64) -> IdGenerator {
        IdGenerator { salt, counter: AtomicU64::new(0) }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A new queue id: fourteen uppercase hex digits, time first so ids sort
    /// roughly by arrival.
    pub fn queue_id(&self, now: SystemTime) -> QueueId {
        let secs = unix_secs(now);
        let n = self.salt.wrapping_add(self.next()) & 0xFF_FFFF;
        QueueId(format!("{:08X}{:06X}", secs as u32, n))
    }

    /// A new blob id in the hour bucket of `now`.
    pub fn blob_id(&self, now: SystemTime) -> BlobId {
        let hour = unix_secs(now) / 3600;
        BlobId(format!("{:08x}{:016x}{:08x}", hour as u32, self.salt, self.next() as u32))
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let g = IdGenerator::new(7);
        let a = g.blob_id(t);
        let b = g.blob_id(t);
        assert_ne!(a, b);
        assert_eq!(a.shard(), b.shard());
        assert_eq!(BlobId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.file_name().len(), 24);
        assert_eq!(IdGenerator::new(7).blob_id(t), a);
        assert_eq!(g.queue_id(t).as_str(), "6B49D200000009");
        assert!(BlobId::parse("../etc/passwd").is_none());
    }
}
