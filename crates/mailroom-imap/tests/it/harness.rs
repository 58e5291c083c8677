//! A test world: a temp store with domain example.test (alice and bob, both
//! with password "secret", each with INBOX, Sent, Drafts, Trash, Junk and
//! Archive), a fixed clock (so every UIDVALIDITY and INTERNALDATE is known
//! in advance), one authenticator with tiny failure delays shared by all
//! sessions, and IMAP sessions over `tokio::io::duplex`.
//!
//! UIDVALIDITY: a mailbox created at time T gets T, or the last value
//! handed out plus one. So alice's INBOX is `NOW` (1795326956), her Sent
//! `NOW + 1` ... Archive `NOW + 5`, and bob's INBOX `NOW + 6`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_imap::ImapContext;
use mailroom_services::accounts::hash_password;
use mailroom_services::auth::Authenticator;
use mailroom_services::message::header_cache;
use mailroom_services::net::{ConnectionLimiter, Shutdown, ShutdownTrigger};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_store::{AnyStore, FlagOp, MailStore, MailboxRecord, MessageRecord, NewMessage, StoreOptions};
use mailroom_types::{Address, Domain, FixedClock, Flags, IdGenerator, Secret};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// 2026-11-22 05:55:56 UTC: the clock's time, and alice's INBOX's
/// UIDVALIDITY.
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
    /// Blob ids, shared with the sessions (APPEND) as in the server.
    pub ids: Arc<IdGenerator>,
    /// Shared by all sessions, as in the server: throttling spans sessions.
    pub auth: Arc<Authenticator>,
    pub connections: Arc<ConnectionLimiter>,
    /// Limits of sessions opened from now on.
    pub limits: mailroom_imap_proto::Limits,
    /// Idle timeout of sessions opened from now on.
    pub idle_timeout: Duration,
    /// Client address of sessions opened from now on.
    pub peer: IpAddr,
    /// Whether sessions opened from now on are under TLS (as on `imaps`).
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
    /// Failed logins wait 1 ms, doubling up to 4 ms: throttling is real
    /// but the suite stays fast.
    pub async fn new() -> World {
        World::with_summaries(true).await
    }

    /// A world whose store keeps ENVELOPE summaries, as the server's does,
    /// or (`false`) none, as for messages stored by older versions.
    pub async fn with_summaries(summaries: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let mut options = StoreOptions::new(dir.path(), clock.clone());
        if summaries {
            options = options.with_summarizer(Arc::new(mailroom_imap_proto::message::envelope_summary));
        }
        let store = AnyStore::open(&options).await.unwrap();
        store.add_domain(&Domain::parse("example.test").unwrap()).await.unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let auth =
            Arc::new(Authenticator::new(clock.clone(), Duration::from_millis(1), Duration::from_millis(4)).unwrap());
        let world = World {
            _dir: dir,
            store,
            clock,
            trigger,
            shutdown,
            ids: Arc::new(IdGenerator::new(0)),
            auth,
            connections: ConnectionLimiter::new(100, 100),
            limits: mailroom_imap_proto::Limits::default(),
            idle_timeout: Duration::from_secs(600),
            peer: LOOPBACK,
            tls: false,
            sessions: Vec::new(),
        };
        for u in ["alice", "bob"] {
            world.add_account(u).await;
        }
        world
    }

    /// Creates an account (password "secret") with its default mailboxes.
    pub async fn add_account(&self, user: &str) {
        let hash = hash_password(&Secret::new(PASSWORD.into())).unwrap();
        self.store.add_account(&address(user), &hash).await.unwrap();
    }

    pub fn context(&self) -> ImapContext {
        ImapContext {
            hostname: "imap.example.test".into(),
            limits: self.limits.clone(),
            idle_timeout: self.idle_timeout,
            store: self.store.clone(),
            auth: Arc::clone(&self.auth),
            connections: Arc::clone(&self.connections),
            clock: self.clock.clone(),
            ids: Arc::clone(&self.ids),
        }
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
            let _ = mailroom_imap::run_session(MaybeTls::Plain(server), peer, &ctx, shutdown, security).await;
        });
        self.sessions.push(task);
        client
    }

    /// `user`'s mailbox `name`.
    pub async fn mailbox(&self, user: &str, name: &str) -> Result<MailboxRecord, String> {
        let account = self.store.account(&address(user)).await.unwrap().ok_or_else(|| format!("no account {user}"))?;
        self.store.mailbox(account.id, name).await.unwrap().ok_or_else(|| format!("{user} has no mailbox {name}"))
    }

    /// The messages of a mailbox, in UID order.
    pub async fn messages(&self, user: &str, name: &str) -> Result<Vec<MessageRecord>, String> {
        let mailbox = self.mailbox(user, name).await?;
        Ok(self.store.messages(mailbox.id).await.unwrap())
    }

    /// The `n`th message (1-based, in UID order) of a mailbox.
    async fn nth(&self, user: &str, name: &str, n: usize) -> Result<(MailboxRecord, MessageRecord), String> {
        let mailbox = self.mailbox(user, name).await?;
        let mut messages = self.store.messages(mailbox.id).await.unwrap();
        if n == 0 || n > messages.len() {
            return Err(format!("{user}'s {name} has no message {n}"));
        }
        let m = messages.swap_remove(n - 1);
        Ok((mailbox, m))
    }

    /// Stores `raw` through the real store (blob, then one delivery to every
    /// user's INBOX), as SMTP does, at the clock's time.
    pub async fn deliver(&self, users: &[&str], raw: &[u8]) {
        let now: SystemTime = mailroom_types::Clock::now(&*self.clock);
        let (content, size) = self.store.blobs().content(self.ids.blob_id(now), raw.to_vec()).unwrap();
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
        // The store broadcasts its change events before it replies, so every
        // session's change feed holds the arrival once this returns.
        self.store.deliver(&message, &accounts).await.unwrap();
    }

    /// Expunges the `n`th message of a mailbox through the store, as
    /// another front end (POP3, webmail) would.
    pub async fn expunge(&self, user: &str, name: &str, n: usize) -> Result<(), String> {
        let (mailbox, m) = self.nth(user, name, n).await?;
        let removed = self.store.expunge(mailbox.id, &[m.uid]).await.unwrap();
        if removed != [m.uid] {
            return Err(format!("expunge removed {removed:?}"));
        }
        Ok(())
    }

    /// Changes the flags of the `n`th message of a mailbox through the store.
    pub async fn store_flags(&self, user: &str, name: &str, n: usize, op: FlagOp, flags: Flags) -> Result<(), String> {
        let (mailbox, m) = self.nth(user, name, n).await?;
        self.store.store_flags(mailbox.id, &[m.uid], op, flags, &[], None).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
