//! A test world: a temp store with domain example.test (alice, bob, an alias
//! and a catch-all domain), a fixed clock, seeded ids, and SMTP sessions over
//! `tokio::io::duplex`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::accounts::hash_password;
use mailroom_services::net::{ConnectionLimiter, Shutdown, ShutdownTrigger};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_smtp::SmtpContext;
use mailroom_store::{AliasSource, AnyStore, MailStore, MessageRecord, StoreOptions};
use mailroom_types::{Address, Domain, FixedClock, IdGenerator, Secret};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// 2026-11-22 05:55:56 UTC.
pub const NOW: u64 = 1_795_326_956;

pub struct World {
    pub _dir: tempfile::TempDir,
    pub store: AnyStore,
    pub clock: Arc<FixedClock>,
    pub trigger: ShutdownTrigger,
    pub shutdown: Shutdown,
    /// One generator for all sessions, as in the server: ids never repeat.
    pub ids: Arc<IdGenerator>,
}

impl World {
    pub async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let store = AnyStore::open(&StoreOptions::new(dir.path(), clock.clone())).await.unwrap();
        let hash = hash_password(&Secret::new("secret".into())).unwrap();
        for d in ["example.test", "catchall.test"] {
            store.add_domain(&Domain::parse(d).unwrap()).await.unwrap();
        }
        for u in ["alice@example.test", "bob@example.test", "postmaster@example.test"] {
            store.add_account(&Address::parse(u).unwrap(), &hash).await.unwrap();
        }
        let alias = |s: &str| AliasSource::parse(s).unwrap();
        let addr = |s: &str| Address::parse(s).unwrap();
        store.add_alias(&alias("team@example.test"), &addr("alice@example.test")).await.unwrap();
        store.add_alias(&alias("team@example.test"), &addr("bob@example.test")).await.unwrap();
        store.add_alias(&alias("@catchall.test"), &addr("bob@example.test")).await.unwrap();
        let (trigger, shutdown) = Shutdown::new();
        World { _dir: dir, store, clock, trigger, shutdown, ids: Arc::new(IdGenerator::new(0)) }
    }

    pub fn context(&self, options: &SessionOptions) -> Arc<SmtpContext> {
        Arc::new(SmtpContext {
            hostname: "mx.example.test".into(),
            limits: options.limits.clone(),
            command_timeout: options.command_timeout,
            data_timeout: options.data_timeout,
            store: self.store.clone(),
            clock: self.clock.clone(),
            ids: Arc::clone(&self.ids),
            connections: ConnectionLimiter::new(100, 100),
        })
    }

    /// Starts a session; the returned stream is the client's end.
    pub fn connect(&self, ctx: Arc<SmtpContext>) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let shutdown = self.shutdown.clone();
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let task = tokio::spawn(async move {
            let _ =
                mailroom_smtp::run_session(MaybeTls::Plain(server), peer, &ctx, shutdown, Security::Plain(None)).await;
        });
        (client, task)
    }

    /// The messages in an account's INBOX, with their raw bytes.
    pub async fn inbox(&self, user: &str) -> Vec<(MessageRecord, Vec<u8>)> {
        let account = self.store.account(&Address::parse(user).unwrap()).await.unwrap().unwrap();
        let inbox = self.store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
        let mut out = Vec::new();
        for m in self.store.messages(inbox.id).await.unwrap() {
            let mut raw = Vec::new();
            assert!(self.store.read_blob(&m.blob, &mut raw).await.unwrap(), "blob of uid {:?} present", m.uid);
            out.push((m, raw));
        }
        out
    }
}

#[derive(Clone)]
pub struct SessionOptions {
    pub limits: mailroom_smtp_proto::Limits,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            limits: mailroom_smtp_proto::Limits::default(),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}
