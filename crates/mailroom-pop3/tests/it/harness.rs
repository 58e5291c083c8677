//! A test world: a temp store with domain example.test (alice and bob, both
//! with password "secret"), a fixed clock (so UIDVALIDITY and therefore
//! every UIDL is known in advance), one authenticator and one maildrop lock
//! table shared by all sessions, and POP3 sessions over `tokio::io::duplex`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_pop3::{MaildropLocks, Pop3Context};
use mailroom_services::accounts::hash_password;
use mailroom_services::auth::Authenticator;
use mailroom_services::message::header_cache;
use mailroom_services::net::{ConnectionLimiter, Shutdown, ShutdownTrigger};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_store::{AnyStore, MailStore, MailboxRecord, MessageRecord, NewMessage, StoreOptions};
use mailroom_types::{Address, Domain, FixedClock, Flags, IdGenerator, Secret};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// 2026-11-22 05:55:56 UTC (0x6b0283ec): alice's INBOX gets this
/// UIDVALIDITY, so her UIDLs start with `6b0283ec`.
pub const NOW: u64 = 1_795_326_956;

/// Every account's password.
pub const PASSWORD: &str = "secret";

/// A loopback client: cleartext passwords are allowed.
pub const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

pub struct World {
    pub _dir: tempfile::TempDir,
    pub store: AnyStore,
    pub clock: Arc<FixedClock>,
    pub trigger: ShutdownTrigger,
    pub shutdown: Shutdown,
    pub ids: IdGenerator,
    /// Shared by all sessions, as in the server: throttling spans sessions.
    pub auth: Arc<Authenticator>,
    /// Shared by all sessions, as in the server.
    pub locks: Arc<MaildropLocks>,
    pub connections: Arc<ConnectionLimiter>,
    /// Idle timeout of sessions opened from now on.
    pub idle_timeout: Duration,
    /// Client address of sessions opened from now on.
    pub peer: IpAddr,
    /// Whether sessions opened from now on are under TLS (as on `pop3s`).
    pub tls: bool,
    /// The session tasks, in the order they were opened.
    pub sessions: Vec<JoinHandle<()>>,
}

/// `alice` means `alice@example.test`; a full address is taken as is.
pub fn address(user: &str) -> Address {
    let full = if user.contains('@') { user.to_string() } else { format!("{user}@example.test") };
    Address::parse(&full).unwrap_or_else(|e| panic!("bad address {full:?}: {e}"))
}

impl World {
    pub async fn new() -> World {
        Self::with_delays(Duration::from_millis(50), Duration::from_millis(200)).await
    }

    /// A world whose failed logins wait `base`, doubling up to `max`.
    pub async fn with_delays(base: Duration, max: Duration) -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let store = AnyStore::open(&StoreOptions::new(dir.path(), clock.clone())).await.unwrap();
        let hash = hash_password(&Secret::new(PASSWORD.into())).unwrap();
        store.add_domain(&Domain::parse("example.test").unwrap()).await.unwrap();
        for u in ["alice", "bob"] {
            store.add_account(&address(u), &hash).await.unwrap();
        }
        let (trigger, shutdown) = Shutdown::new();
        let auth = Arc::new(Authenticator::new(clock.clone(), base, max).unwrap());
        World {
            _dir: dir,
            store,
            clock,
            trigger,
            shutdown,
            ids: IdGenerator::new(0),
            auth,
            locks: MaildropLocks::new(),
            connections: ConnectionLimiter::new(100, 100),
            idle_timeout: Duration::from_secs(600),
            peer: LOOPBACK,
            tls: false,
            sessions: Vec::new(),
        }
    }

    pub fn context(&self) -> Arc<Pop3Context> {
        Arc::new(Pop3Context {
            hostname: "pop.example.test".into(),
            limits: mailroom_pop3_proto::Limits::default(),
            idle_timeout: self.idle_timeout,
            store: self.store.clone(),
            auth: Arc::clone(&self.auth),
            locks: Arc::clone(&self.locks),
            connections: Arc::clone(&self.connections),
        })
    }

    /// Starts a session from the current peer; returns the client's end.
    pub fn connect(&mut self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(1 << 20);
        let ctx = self.context();
        let shutdown = self.shutdown.clone();
        let peer = SocketAddr::new(self.peer, 40000 + self.sessions.len() as u16);
        let tls = self.tls;
        let task = tokio::spawn(async move {
            let security = if tls { Security::Tls } else { Security::Plain(None) };
            let _ = mailroom_pop3::run_session(MaybeTls::Plain(server), peer, &ctx, shutdown, security).await;
        });
        self.sessions.push(task);
        client
    }

    pub async fn inbox_record(&self, user: &str) -> MailboxRecord {
        let account = self.store.account(&address(user)).await.unwrap().unwrap_or_else(|| panic!("no account {user}"));
        self.store.mailbox(account.id, "INBOX").await.unwrap().expect("INBOX")
    }

    /// The messages in an account's INBOX, with their raw bytes.
    pub async fn inbox(&self, user: &str) -> Vec<(MessageRecord, Vec<u8>)> {
        let inbox = self.inbox_record(user).await;
        let mut out = Vec::new();
        for m in self.store.messages(inbox.id).await.unwrap() {
            let mut raw = Vec::new();
            assert!(self.store.read_blob(&m.blob, &mut raw).await.unwrap(), "blob of uid {:?} present", m.uid);
            out.push((m, raw));
        }
        out
    }

    /// Stores `raw` through the real store (blob, then one delivery to every
    /// user), as SMTP does, so sizes and UIDs are real.
    pub async fn deliver(&self, users: &[&str], raw: &[u8]) {
        let now: SystemTime = mailroom_types::Clock::now(&*self.clock);
        let (content, size) = self.store.blobs().content(self.ids.blob_id(now), raw.to_vec()).unwrap();
        // The store completes an unterminated last line.
        let expected = if raw.is_empty() || raw.ends_with(b"\r\n") { raw.len() } else { raw.len() + 2 };
        assert_eq!(size, expected as u64);
        let message = NewMessage {
            content,
            size,
            internal_date: now,
            flags: Flags::empty(),
            keywords: Vec::new(),
            headers: header_cache(raw),
        };
        let mut accounts = Vec::new();
        for u in users {
            accounts.push(self.store.account(&address(u)).await.unwrap().expect("account").id);
        }
        self.store.deliver(&message, &accounts).await.unwrap();
    }

    /// Expunges the `n`th message (1-based) of `user`'s INBOX as IMAP would,
    /// and returns once the store has told every session about it.
    pub async fn expunge(&self, user: &str, n: usize) -> Result<(), String> {
        let inbox = self.inbox_record(user).await;
        let messages = self.store.messages(inbox.id).await.unwrap();
        let m = messages.get(n - 1).ok_or_else(|| format!("{user} has no message {n}"))?;
        let mut events = self.store.subscribe();
        let removed = self.store.expunge(inbox.id, &[m.uid]).await.unwrap();
        if removed != [m.uid] {
            return Err(format!("expunge removed {removed:?}"));
        }
        // The store replies before it broadcasts the change: wait for the
        // broadcast so the session has certainly been told.
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.recv().await {
                    Ok(e) if e.mailbox == inbox.id => return,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("change events: {e}"),
                }
            }
        })
        .await
        .map_err(|_| "no change event after expunge".to_string())
    }

    /// Waits (bounded) until no session holds `user`'s maildrop lock.
    pub async fn wait_unlocked(&self, user: &str) -> Result<(), String> {
        let inbox = self.inbox_record(user).await;
        for _ in 0..500 {
            if self.locks.lock(inbox.id).is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("{user}'s maildrop is still locked after 5 s"))
    }
}
