//! The composition root: turns a [`Config`] into a store, services and
//! listeners, and runs them until shutdown. The `mailroom` binary is a thin
//! command line over this; tests start servers through it in-process.
//!
//! Only this crate reads the wall clock, the environment and signals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mailroom_imap::ImapContext;
use mailroom_pop3::{MaildropLocks, Pop3Context};
use mailroom_services::auth::Authenticator;
use mailroom_services::authenticate::InboundChecks;
use mailroom_services::config::Config;
use mailroom_services::dkim::DkimKeys;
use mailroom_services::net::{ConnectionLimiter, Shutdown, ShutdownTrigger};
use mailroom_services::submission::{Outbound, RateLimiter};
use mailroom_services::tls::ListenerTls;
use mailroom_smtp::{QueueRunner, Role, SmtpContext, SubmissionPolicy};
use mailroom_store::{AnyStore, MailStore, StoreOptions};
use mailroom_types::{Clock, IdGenerator, SystemClock};
use mailroom_web::WebContext;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::info;

/// Opens the store named by the configuration.
pub async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AnyStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    // IMAP's ENVELOPE is computed once per message, when it is stored.
    let options = StoreOptions::new(config.data_dir.clone(), clock)
        .with_summarizer(Arc::new(mailroom_imap_proto::message::envelope_summary));
    AnyStore::open(&options).await.with_context(|| format!("cannot open the store in {}", config.data_dir.display()))
}

/// Held while a server runs: an exclusive lock on `data_dir/serve.lock`, so
/// two servers never share one data directory (the blob sweep at start
/// relies on that). The operating system releases it when the process
/// ends, however it ends.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Takes the data directory for a serving process, then deletes the blobs
/// a crash left written but never committed (they were invisible, but
/// took space). Admin commands do not take the lock: they write no blobs.
pub async fn claim_data_dir(config: &Config, store: &AnyStore) -> anyhow::Result<DataDirLock> {
    let path = config.data_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!("another mailroom serve is using data_dir {}", config.data_dir.display())
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // A crash can only have left blobs in the newest shards (one per hour).
    let swept = store.sweep_orphan_blobs(2).await.context("cannot sweep orphaned message files")?;
    if swept > 0 {
        info!(swept, "freed message files and pack regions nothing references");
    }
    Ok(DataDirLock { _file: file })
}

/// A running server: its bound addresses and the handle to stop it.
pub struct Running {
    /// The address the `smtp` listener is bound to, if enabled.
    pub smtp: Option<std::net::SocketAddr>,
    /// The address the `pop3` listener is bound to, if enabled.
    pub pop3: Option<std::net::SocketAddr>,
    /// The address the `imap` listener is bound to, if enabled.
    pub imap: Option<std::net::SocketAddr>,
    /// The address the `imaps` listener (implicit TLS) is bound to.
    pub imaps: Option<std::net::SocketAddr>,
    /// The address the `pop3s` listener (implicit TLS) is bound to.
    pub pop3s: Option<std::net::SocketAddr>,
    /// The address the `submission` listener (STARTTLS) is bound to.
    pub submission: Option<std::net::SocketAddr>,
    /// The address the `submissions` listener (implicit TLS) is bound to.
    pub submissions: Option<std::net::SocketAddr>,
    /// The address the webmail's `http` listener is bound to.
    pub http: Option<std::net::SocketAddr>,
    /// The address the webmail's `https` listener is bound to.
    pub https: Option<std::net::SocketAddr>,
    trigger: ShutdownTrigger,
    tasks: JoinSet<()>,
}

impl Running {
    /// Begins graceful shutdown and waits until every listener has finished.
    pub async fn stop(mut self) {
        self.trigger.trigger();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Binds every configured listener and starts serving.
pub async fn start(config: Arc<Config>, store: AnyStore, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    let (trigger, shutdown) = Shutdown::new();
    let connections = ConnectionLimiter::new(config.limits.max_connections, config.limits.max_connections_per_ip);
    let salt = getrandom::u64().context("no randomness for ids")?;
    let ids = Arc::new(IdGenerator::new(salt));
    let mut tasks = JoinSet::new();
    let grace: Duration = config.shutdown_grace.0;
    // The TLS identity (generated the first time when none is configured),
    // for the implicit-TLS listeners and STARTTLS.
    let acceptor = mailroom_services::tls::acceptor(&config).context("cannot set up TLS")?;
    // DKIM keys sign submitted mail and notices; `mailroom dkim generate`
    // writes them, and they are read once, here.
    let dkim = Arc::new(DkimKeys::load(&config.data_dir).context("cannot load the DKIM keys")?);
    for key in dkim.iter() {
        tracing::info!(domain = %key.domain(), selector = key.selector(), algorithm = %key.algorithm(), "DKIM key loaded");
    }
    let auth = Arc::new(
        Authenticator::new(Arc::clone(&clock), config.auth.failure_delay.0, config.auth.failure_delay_max.0)
            .context("cannot set up password checks")?,
    );

    // One resolver and cache for delivery and for checking inbound mail.
    let resolver = resolver(&config)?;
    // Inbound checks run on the MTA role only: submission carries mail
    // from logged-in users.
    let inbound = Arc::new(InboundChecks::new(&resolver, config.authentication));
    let smtp_context = |role: Role| {
        let inbound = matches!(role, Role::Mta).then(|| Arc::clone(&inbound));
        Arc::new(SmtpContext {
            hostname: config.hostname.clone(),
            limits: smtp_limits(&config),
            command_timeout: config.limits.command_timeout.0,
            data_timeout: config.limits.data_timeout.0,
            store: store.clone(),
            clock: Arc::clone(&clock),
            ids: Arc::clone(&ids),
            connections: Arc::clone(&connections),
            role,
            inbound,
        })
    };
    let mut smtp = None;
    if let Some(addr) = config.listen.smtp {
        let (listener, local) = bind("smtp", addr).await?;
        smtp = Some(local);
        // STARTTLS on port 25 (RFC 3207): opportunistic for other servers.
        let tls = ListenerTls::Plain(Some(acceptor.clone()));
        tasks.spawn(mailroom_smtp::serve(listener, smtp_context(Role::Mta), tls, shutdown.clone(), grace));
    }

    // Submission: 587 with STARTTLS, 465 with implicit TLS (RFC 8314); both
    // feed the queue, whose runner delivers to other domains.
    let outbound = Outbound::new(store.clone());
    // One sending rate per user, whether they send on 587, 465 or the web.
    let rate =
        Arc::new(RateLimiter::new(config.submission.rate_limit, config.submission.rate_period.0, Arc::clone(&clock)));
    let policy = Arc::new(SubmissionPolicy {
        auth: Arc::clone(&auth),
        rate: Arc::clone(&rate),
        outbound: outbound.clone(),
        dkim: Arc::clone(&dkim),
    });
    let (mut submission, mut submissions) = (None, None);
    let plain = ListenerTls::Plain(Some(acceptor.clone()));
    let implicit = ListenerTls::Implicit(acceptor.clone());
    for (key, addr, tls, bound) in [
        ("submission", config.listen.submission, plain, &mut submission),
        ("submissions", config.listen.submissions, implicit, &mut submissions),
    ] {
        if let Some(addr) = addr {
            let (listener, local) = bind(key, addr).await?;
            *bound = Some(local);
            let ctx = smtp_context(Role::Submission(Arc::clone(&policy)));
            tasks.spawn(mailroom_smtp::serve(listener, ctx, tls, shutdown.clone(), grace));
        }
    }
    let (mut http, mut https) = (None, None);
    if config.listen.http.is_some() || config.listen.https.is_some() {
        let app = mailroom_web::App::new(WebContext {
            hostname: config.hostname.clone(),
            store: store.clone(),
            auth: Arc::clone(&auth),
            clock: Arc::clone(&clock),
            ids: Arc::clone(&ids),
            outbound: outbound.clone(),
            rate,
            dkim: Arc::clone(&dkim),
            config: config.web.clone(),
            max_message_size: config.limits.max_message_size.0,
            shutdown: shutdown.clone(),
        });
        let plain = ListenerTls::Plain(None);
        let implicit = ListenerTls::Implicit(acceptor.clone());
        for (key, addr, tls, bound) in
            [("http", config.listen.http, plain, &mut http), ("https", config.listen.https, implicit, &mut https)]
        {
            if let Some(addr) = addr {
                let (listener, local) = bind(key, addr).await?;
                *bound = Some(local);
                let (app, connections) = (Arc::clone(&app), Arc::clone(&connections));
                tasks.spawn(mailroom_web::serve(listener, app, connections, tls, shutdown.clone(), grace));
            }
        }
    }
    let runner =
        QueueRunner::new(store.clone(), &config, Arc::clone(&clock), Arc::clone(&ids), resolver, outbound.wake(), dkim);
    tasks.spawn(runner.run(shutdown.clone(), grace));

    let (mut pop3, mut pop3s) = (None, None);
    if config.listen.pop3.is_some() || config.listen.pop3s.is_some() {
        let ctx = Arc::new(Pop3Context {
            hostname: config.hostname.clone(),
            limits: mailroom_pop3_proto::Limits::default(),
            idle_timeout: config.limits.pop3_idle_timeout.0,
            store: store.clone(),
            auth: Arc::clone(&auth),
            locks: MaildropLocks::new(),
            connections: Arc::clone(&connections),
        });
        let plain = ListenerTls::Plain(Some(acceptor.clone()));
        let implicit = ListenerTls::Implicit(acceptor.clone());
        for (key, addr, tls, bound) in
            [("pop3", config.listen.pop3, plain, &mut pop3), ("pop3s", config.listen.pop3s, implicit, &mut pop3s)]
        {
            if let Some(addr) = addr {
                let (listener, local) = bind(key, addr).await?;
                *bound = Some(local);
                tasks.spawn(mailroom_pop3::serve(listener, Arc::clone(&ctx), tls, shutdown.clone(), grace));
            }
        }
    }

    let (mut imap, mut imaps) = (None, None);
    if config.listen.imap.is_some() || config.listen.imaps.is_some() {
        let ctx = Arc::new(ImapContext {
            hostname: config.hostname.clone(),
            limits: mailroom_imap_proto::Limits {
                max_message_size: config.limits.max_message_size.0,
                ..mailroom_imap_proto::Limits::default()
            },
            idle_timeout: config.limits.imap_idle_timeout.0,
            store: store.clone(),
            auth: Arc::clone(&auth),
            connections: Arc::clone(&connections),
            clock: Arc::clone(&clock),
            ids: Arc::clone(&ids),
        });
        let plain = ListenerTls::Plain(Some(acceptor.clone()));
        let implicit = ListenerTls::Implicit(acceptor.clone());
        for (key, addr, tls, bound) in
            [("imap", config.listen.imap, plain, &mut imap), ("imaps", config.listen.imaps, implicit, &mut imaps)]
        {
            if let Some(addr) = addr {
                let (listener, local) = bind(key, addr).await?;
                *bound = Some(local);
                tasks.spawn(mailroom_imap::serve(listener, Arc::clone(&ctx), tls, shutdown.clone(), grace));
            }
        }
    }
    Ok(Running { smtp, pop3, imap, imaps, pop3s, submission, submissions, http, https, trigger, tasks })
}

/// The resolver delivery uses: `delivery.dns_server`, else the system's.
/// A machine without a resolver configuration still serves (local mail
/// needs no DNS); its remote deliveries wait, logged, until one exists.
fn resolver(config: &Config) -> anyhow::Result<mailroom_services::dns::Resolver> {
    use mailroom_services::dns::Resolver;
    const TIMEOUT: Duration = Duration::from_secs(10);
    match (config.delivery.dns_server, Resolver::new(config.delivery.dns_server, TIMEOUT)) {
        (_, Ok(resolver)) => Ok(resolver),
        (Some(_), Err(e)) => Err(e).context("delivery.dns_server: cannot set up DNS resolution"),
        (None, Err(e)) => {
            tracing::warn!(error = %e, "no system DNS configuration; using 127.0.0.1:53 for delivery lookups");
            Resolver::new(Some(std::net::SocketAddr::from(([127, 0, 0, 1], 53))), TIMEOUT)
                .context("cannot set up DNS resolution")
        }
    }
}

/// Binds the listener named `key` in `[listen]`.
async fn bind(key: &str, addr: std::net::SocketAddr) -> anyhow::Result<(TcpListener, std::net::SocketAddr)> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("listen.{key}: cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    info!(listener = key, addr = %local, "listening");
    Ok((listener, local))
}

/// The protocol limits of the SMTP state machine, from `[limits]`.
pub fn smtp_limits(config: &Config) -> mailroom_smtp_proto::Limits {
    mailroom_smtp_proto::Limits {
        max_command_line: config.limits.max_command_line,
        max_text_line: config.limits.max_text_line,
        max_message_size: config.limits.max_message_size.0,
        max_recipients: config.limits.max_recipients,
    }
}

/// The wall clock, for the binary.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
