//! Password logins for every protocol (POP3 now; IMAP, submission and
//! webmail later), with throttling that does not reveal which users exist.
//!
//! - A wrong password and an unknown user look the same: same outcome, and
//!   an argon2 check is run either way (against a dummy hash for an unknown
//!   user), so timing does not tell them apart.
//! - Each failure makes the next reply slower: the caller waits
//!   [`Authenticator::failure_delay`] before answering, a delay that doubles
//!   with each recent failure from the same client address or for the same
//!   account, up to a maximum. Failures are forgotten after a window, and a
//!   success clears its address and account.
//! - The hash check runs on a few threads of its own ([`Checkers`]): it is
//!   deliberately slow and takes about 19 MiB per check. On the shared
//!   blocking pool every thread that ever ran one kept that memory in its
//!   allocator arena, so a burst of logins grew the server by hundreds of
//!   MiB for good; a fixed pool bounds both that memory and the CPU a
//!   burst of logins can take.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mailroom_store::{AccountRecord, MailStore, StoreError};
use mailroom_types::{Address, Clock, Secret};

use crate::accounts::{Verifier, hash_password};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept per table; past it the stalest are dropped, so an attacker
/// spraying addresses or user names cannot grow memory without bound.
const MAX_ENTRIES: usize = 10_000;

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The password is right.
    Success(AccountRecord),
    /// Wrong password or unknown user (deliberately not distinguished); the
    /// caller waits the given delay before answering.
    Failure(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: SystemTime,
}

#[derive(Debug, Default)]
struct Tables {
    by_ip: HashMap<IpAddr, Failures>,
    by_user: HashMap<String, Failures>,
}

/// A password check for a [`Checkers`] thread, with where to answer.
struct Check {
    hash: String,
    password: Secret<String>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// The threads that run argon2 checks: one per core, at most four. They
/// end when the [`Authenticator`] is dropped.
struct Checkers {
    jobs: std::sync::mpsc::SyncSender<Check>,
}

impl Checkers {
    fn start() -> std::io::Result<Checkers> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        // Waiting checks queue here; a full queue makes callers wait.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Check>(256);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("mailroom-password-{i}")).spawn(move || {
                // One work area per thread for its whole life.
                let mut verifier = Verifier::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(check) = next else { return };
                    let _ = check.reply.send(verifier.verify(&check.hash, &check.password));
                }
            })?;
        }
        Ok(Checkers { jobs })
    }

    async fn verify(&self, hash: String, password: Secret<String>) -> Result<bool, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("password checks have stopped".into());
        match self.jobs.try_send(Check { hash, password, reply }) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(check)) => {
                // 256 checks wait already: wait for room off the async threads.
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(check))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("password check failed: {e}")))?
                    .map_err(|_| stopped())?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.await.map_err(|_| stopped())
    }
}

/// Checks passwords and throttles failures; one per server, shared by all
/// listeners.
pub struct Authenticator {
    clock: Arc<dyn Clock>,
    base_delay: Duration,
    max_delay: Duration,
    dummy_hash: String,
    tables: Mutex<Tables>,
    checkers: Checkers,
}

impl Authenticator {
    /// An authenticator whose first failure waits `base_delay`, doubling per
    /// recent failure up to `max_delay`.
    pub fn new(clock: Arc<dyn Clock>, base_delay: Duration, max_delay: Duration) -> Result<Authenticator, StoreError> {
        let dummy = hash_password(&Secret::new("mailroom-dummy-password".to_string()))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let checkers = Checkers::start().map_err(StoreError::Io)?;
        Ok(Authenticator { clock, base_delay, max_delay, dummy_hash: dummy, tables: Mutex::default(), checkers })
    }

    /// Checks `password` for the account named `user` (an address, as
    /// typed; case-insensitive) from client `ip`.
    pub async fn login<S: MailStore>(
        &self,
        store: &S,
        ip: IpAddr,
        user: &str,
        password: &Secret<String>,
    ) -> Result<Login, StoreError> {
        let account = match Address::parse(user.trim()) {
            Ok(address) => store.account(&address).await?,
            Err(_) => None,
        };
        let hash = account.as_ref().map_or_else(|| self.dummy_hash.clone(), |a| a.password_hash.clone());
        let password = password.clone();
        let matches = self.checkers.verify(hash, password).await?;
        let key = user.trim().to_lowercase();
        match account {
            Some(account) if matches => {
                self.forget(ip, &key);
                Ok(Login::Success(account))
            }
            _ => Ok(Login::Failure(self.record_failure(ip, key))),
        }
    }

    /// The delay owed for the failures recorded so far from `ip` or for
    /// `user`, without recording a new one.
    pub fn failure_delay(&self, ip: IpAddr, user: &str) -> Duration {
        let now = self.clock.now();
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let count = |f: Option<&Failures>| f.filter(|f| recent(f, now)).map_or(0, |f| f.count);
        let n = count(t.by_ip.get(&ip)).max(count(t.by_user.get(&user.trim().to_lowercase())));
        self.delay_for(n)
    }

    fn delay_for(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(16);
        self.base_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }

    fn record_failure(&self, ip: IpAddr, user: String) -> Duration {
        let now = self.clock.now();
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let ip_count = bump(&mut t.by_ip, ip, now);
        let user_count = bump(&mut t.by_user, user, now);
        self.delay_for(ip_count.max(user_count))
    }

    fn forget(&self, ip: IpAddr, user: &str) {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.by_ip.remove(&ip);
        t.by_user.remove(user);
    }
}

fn recent(f: &Failures, now: SystemTime) -> bool {
    now.duration_since(f.last).map_or(true, |age| age < WINDOW)
}

/// Counts one more failure for `key`; returns the new count.
fn bump<K: std::hash::Hash + Eq + Clone>(table: &mut HashMap<K, Failures>, key: K, now: SystemTime) -> u32 {
    if table.len() >= MAX_ENTRIES && !table.contains_key(&key) {
        table.retain(|_, f| recent(f, now));
        if table.len() >= MAX_ENTRIES
            && let Some(stalest) = table.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| k.clone())
        {
            table.remove(&stalest);
        }
    }
    let entry = table.entry(key).or_insert(Failures { count: 0, last: now });
    if !recent(entry, now) {
        entry.count = 0;
    }
    entry.count += 1;
    entry.last = now;
    entry.count
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_store::{AnyStore, StoreOptions};
    use mailroom_types::{Domain, FixedClock};

    async fn world() -> (tempfile::TempDir, AnyStore, Arc<FixedClock>, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at_unix(1_795_326_956));
        let store = AnyStore::open(&StoreOptions::new(dir.path(), clock.clone())).await.unwrap();
        store.add_domain(&Domain::parse("example.test").unwrap()).await.unwrap();
        let hash = hash_password(&Secret::new("right".into())).unwrap();
        store.add_account(&Address::parse("alice@example.test").unwrap(), &hash).await.unwrap();
        let auth = Authenticator::new(clock.clone(), Duration::from_secs(1), Duration::from_secs(8)).unwrap();
        (dir, store, clock, auth)
    }

    #[tokio::test]
    async fn success_failure_and_unknown_users_look_alike() {
        let (_dir, store, _clock, auth) = world().await;
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let pw = |s: &str| Secret::new(s.to_string());
        assert!(matches!(auth.login(&store, ip, "Alice@Example.test", &pw("right")).await, Ok(Login::Success(_))));
        let wrong = auth.login(&store, ip, "alice@example.test", &pw("wrong")).await.unwrap();
        assert!(matches!(wrong, Login::Failure(d) if d == Duration::from_secs(1)));
        let unknown = auth.login(&store, ip, "nobody@example.test", &pw("wrong")).await.unwrap();
        assert!(matches!(unknown, Login::Failure(d) if d == Duration::from_secs(2)), "{unknown:?}");
        let garbage = auth.login(&store, ip, "not an address", &pw("x")).await.unwrap();
        assert!(matches!(garbage, Login::Failure(d) if d == Duration::from_secs(4)));
    }

    #[tokio::test]
    async fn delays_grow_per_address_and_per_account_then_expire() {
        let (_dir, store, clock, auth) = world().await;
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let wrong = Secret::new("wrong".to_string());
        let mut delays = Vec::new();
        for _ in 0..5 {
            match auth.login(&store, a, "alice@example.test", &wrong).await.unwrap() {
                Login::Failure(d) => delays.push(d.as_secs()),
                Login::Success(_) => panic!("wrong password accepted"),
            }
        }
        assert_eq!(delays, [1, 2, 4, 8, 8], "doubling, capped");
        // Another address guessing the same account is slowed by the account's count.
        assert_eq!(auth.failure_delay(b, "alice@example.test"), Duration::from_secs(8));
        // An innocent address and user are not.
        assert_eq!(auth.failure_delay(b, "bob@example.test"), Duration::ZERO);
        clock.advance(WINDOW + Duration::from_secs(1));
        assert_eq!(auth.failure_delay(a, "alice@example.test"), Duration::ZERO, "forgotten after the window");
        // A success clears the slate.
        auth.login(&store, a, "alice@example.test", &wrong).await.unwrap();
        auth.login(&store, a, "alice@example.test", &Secret::new("right".into())).await.unwrap();
        assert_eq!(auth.failure_delay(a, "alice@example.test"), Duration::ZERO);
    }

    #[test]
    fn tables_stay_bounded() {
        let mut table = HashMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..(MAX_ENTRIES + 50) {
            bump(&mut table, i, now + Duration::from_millis(i as u64));
        }
        assert_eq!(table.len(), MAX_ENTRIES);
    }
}
