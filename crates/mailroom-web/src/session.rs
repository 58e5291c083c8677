//! Signed-in browsers: a random token in an HttpOnly cookie names a
//! session the server holds, with its account and its CSRF token. Expiry is
//! the server's decision (idle time and lifetime), never the cookie's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mailroom_types::{AccountId, Address};

/// The session cookie's name; `__Host-` binds it to this origin over HTTPS
/// (no Domain, Path `/`, Secure), so a sibling host cannot plant one.
pub const COOKIE: &str = "mailroom_session";
/// The same over HTTPS.
pub const SECURE_COOKIE: &str = "__Host-mailroom_session";

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed-in account.
    pub account: AccountId,
    /// Its address, for the From: of what it sends.
    pub address: Address,
    /// The token every state-changing request must carry.
    pub csrf: String,
    created: SystemTime,
    last_seen: SystemTime,
}

/// Every session, bounded in number and time.
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    max: usize,
    by_token: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions that end after `idle` unused or `lifetime` in all; at most
    /// `max` at once.
    pub fn new(idle: Duration, lifetime: Duration, max: usize) -> Sessions {
        Sessions { idle, lifetime, max: max.max(1), by_token: Mutex::default() }
    }

    /// Starts a session; returns its token (the cookie's value).
    pub fn create(&self, account: AccountId, address: Address, now: SystemTime) -> std::io::Result<String> {
        let token = random_token()?;
        let csrf = random_token()?;
        let mut map = self.lock();
        if map.len() >= self.max {
            map.retain(|_, s| !self.expired(s, now));
        }
        if map.len() >= self.max
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(t, _)| t.clone())
        {
            map.remove(&oldest);
        }
        map.insert(token.clone(), Session { account, address, csrf, created: now, last_seen: now });
        Ok(token)
    }

    /// The live session of `token`, marked as used now; an expired one is
    /// removed.
    pub fn touch(&self, token: &str, now: SystemTime) -> Option<Session> {
        let mut map = self.lock();
        let session = map.get_mut(token)?;
        if self.expired(session, now) {
            map.remove(token);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends a session (sign-out).
    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expired(&self, s: &Session, now: SystemTime) -> bool {
        let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        since(s.last_seen) > self.idle || since(s.created) > self.lifetime
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_token.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 256 random bits, URL- and cookie-safe (hex).
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn alice() -> Address {
        Address::parse("alice@example.test").unwrap()
    }

    #[test]
    fn sessions_expire_when_idle_and_at_their_lifetime() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(150), 10);
        let t = s.create(AccountId(1), alice(), at(1000)).unwrap();
        assert_eq!(t.len(), 64);
        assert!(s.touch(&t, at(1050)).is_some());
        assert!(s.touch(&t, at(1100)).is_some(), "use keeps it alive");
        assert!(s.touch(&t, at(1140)).is_some());
        assert!(s.touch(&t, at(1151)).is_none(), "the lifetime ends it however busy");
        assert!(s.is_empty(), "an expired session is removed");
        let t = s.create(AccountId(1), alice(), at(2000)).unwrap();
        assert!(s.touch(&t, at(2061)).is_none(), "idle too long");
        assert!(s.touch("nope", at(2000)).is_none());
    }

    #[test]
    fn the_least_recently_used_session_goes_first_when_full() {
        let s = Sessions::new(Duration::from_secs(600), Duration::from_secs(6000), 2);
        let a = s.create(AccountId(1), alice(), at(1)).unwrap();
        let b = s.create(AccountId(2), alice(), at(2)).unwrap();
        s.touch(&a, at(3));
        let c = s.create(AccountId(3), alice(), at(4)).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.touch(&b, at(5)).is_none(), "b was least recently used");
        assert!(s.touch(&a, at(5)).is_some() && s.touch(&c, at(5)).is_some());
        s.remove(&a);
        assert!(s.touch(&a, at(6)).is_none(), "signed out");
        s.remove(&c);
        assert!(s.is_empty());
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
