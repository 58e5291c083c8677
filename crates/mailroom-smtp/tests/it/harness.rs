//! A test world: a temp store with domain example.test (alice, bob, an alias
//! and a catch-all domain), a fixed clock, seeded ids, and SMTP sessions over
//! `tokio::io::duplex`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::accounts::hash_password;
use mailroom_services::auth::Authenticator;
use mailroom_services::authenticate::InboundChecks;
use mailroom_services::dkim::DkimKeys;
use mailroom_services::net::{ConnectionLimiter, Shutdown, ShutdownTrigger};
use mailroom_services::submission::{Outbound, RateLimiter};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_smtp::{Role, SmtpContext, SubmissionPolicy};
use mailroom_store::{AliasSource, AnyStore, MailStore, MessageRecord, QueueEntry, StoreOptions};
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
    /// The submission role's policy, shared by its sessions as in the
    /// server (so the rate limit counts across connections).
    pub policy: Option<Arc<SubmissionPolicy>>,
    /// DKIM keys for the submission policy and the queue runner: none
    /// unless a test sets some before either is made.
    pub dkim: Arc<DkimKeys>,
    /// The MTA role's SPF, DKIM and DMARC checks: none unless a test sets
    /// them, so transcripts keep their exact stored bytes.
    pub inbound: Option<Arc<InboundChecks>>,
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
        World {
            _dir: dir,
            store,
            clock,
            trigger,
            shutdown,
            ids: Arc::new(IdGenerator::new(0)),
            policy: None,
            dkim: Arc::new(DkimKeys::empty()),
            inbound: None,
        }
    }

    /// The submission policy, made on first use with `rate_limit` messages
    /// per hour; failed logins are answered without delay.
    pub fn policy(&mut self, rate_limit: u32) -> Arc<SubmissionPolicy> {
        let clock = self.clock.clone();
        let store = self.store.clone();
        let dkim = Arc::clone(&self.dkim);
        Arc::clone(self.policy.get_or_insert_with(|| {
            let auth = Authenticator::new(clock.clone(), Duration::ZERO, Duration::ZERO).unwrap();
            Arc::new(SubmissionPolicy {
                auth: Arc::new(auth),
                rate: Arc::new(RateLimiter::new(rate_limit, Duration::from_secs(3600), clock)),
                outbound: Outbound::new(store),
                dkim,
            })
        }))
    }

    /// The outbound queue, oldest first.
    pub async fn queue(&self) -> Vec<QueueEntry> {
        self.store.queue_entries(None).await.unwrap()
    }

    pub fn context(&mut self, options: &SessionOptions) -> Arc<SmtpContext> {
        let role = if options.submission { Role::Submission(self.policy(options.rate_limit)) } else { Role::Mta };
        Arc::new(SmtpContext {
            hostname: "mx.example.test".into(),
            limits: options.limits.clone(),
            command_timeout: options.command_timeout,
            data_timeout: options.data_timeout,
            store: self.store.clone(),
            clock: self.clock.clone(),
            ids: Arc::clone(&self.ids),
            connections: ConnectionLimiter::new(100, 100),
            inbound: if options.submission { None } else { self.inbound.clone() },
            role,
        })
    }

    /// Starts a session; the returned stream is the client's end. With
    /// `tls`, the session believes it runs under TLS already (as on an
    /// implicit-TLS listener); the peer is never loopback, so passwords
    /// need that.
    pub fn connect(&self, ctx: Arc<SmtpContext>, tls: bool) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let shutdown = self.shutdown.clone();
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let security = if tls { Security::Tls } else { Security::Plain(None) };
        let task = tokio::spawn(async move {
            let _ = mailroom_smtp::run_session(MaybeTls::Plain(server), peer, &ctx, shutdown, security).await;
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
    /// A submission listener rather than the MTA.
    pub submission: bool,
    /// Sessions under TLS from the start.
    pub tls: bool,
    /// Messages per hour per user, for the submission policy.
    pub rate_limit: u32,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            limits: mailroom_smtp_proto::Limits::default(),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            submission: false,
            tls: false,
            rate_limit: 100,
        }
    }
}
