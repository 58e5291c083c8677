//! The queue runner: claims due recipients from the store, hands each
//! message to a destination's connections, and reports every outcome.
//!
//! ```text
//! store ──claim_due──> runner ──dispatch──> destination (one per domain)
//!                                             │ up to N connection workers,
//!                                             │ each delivering message after
//!                                             │ message over one connection
//!                                             v
//!                           settle: report_attempt (+ DSN) ──> store
//! ```
//!
//! Implementation notes:
//! - A claim counts the attempt and leases the recipients before anyone
//!   dials (see `MailStore::claim_due`); the runner also remembers what is
//!   in flight, so a lease that runs out under a slow destination never
//!   puts one recipient on two connections.
//! - Work in memory is bounded: at most [`MAX_IN_FLIGHT`] messages are
//!   claimed and not yet settled; connections are bounded in all and per
//!   destination by the `[queue]` config.
//! - A destination that cannot be reached fails everything waiting for it
//!   with the same error at once, instead of dialling once per message:
//!   its last worker that fails to connect takes what waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mailroom_services::config::{Config, TlsMode};
use mailroom_services::dkim::DkimKeys;
use mailroom_services::dns::Resolver;
use mailroom_services::net::Shutdown;
use mailroom_store::{AnyStore, AttemptReport, MailStore, QueueEntry, QueuedRecipient, RecipientId, RecipientUpdate};
use mailroom_types::{Clock, IdGenerator, Secret};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::client::{ClientConfig, Connection, Credentials, Envelope, RecipientOutcome, TlsPolicy};
use crate::notice;
use crate::route::{NoRoute, Router, Target};

/// How long claimed recipients are leased to this runner.
const LEASE: Duration = Duration::from_secs(30 * 60);
/// Messages claimed and not yet settled, at most.
const MAX_IN_FLIGHT: usize = 1024;
/// Recipients claimed at once.
const CLAIM_BATCH: usize = 256;
/// How long a worker keeps its connection open waiting for more mail to
/// its destination (Postfix's connection cache keeps one 2 s by default):
/// mail arriving a little at a time still shares connections.
const LINGER: Duration = Duration::from_secs(2);

/// What one attempt did for one recipient.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Delivered, or failed for now, or failed for good.
    pub(crate) kind: OutcomeKind,
    /// RFC 3463 status.
    pub(crate) status: (u8, u16, u16),
    /// The remote reply or the local error.
    pub(crate) text: String,
    /// The server that answered, if one did.
    pub(crate) remote: Option<String>,
}

/// The three ways an attempt ends for a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutcomeKind {
    /// 2xx.
    Delivered,
    /// 4xx, or no connection: retry.
    Transient,
    /// 5xx: bounce.
    Permanent,
}

/// One claimed message's recipients in one domain.
struct Delivery {
    entry: Arc<QueueEntry>,
    recipients: Vec<QueuedRecipient>,
    /// Its place among the [`MAX_IN_FLIGHT`]; `None` only if the bound was
    /// reached regardless (a claim takes no more recipients than there are
    /// free places, and each part has at least one).
    _slot: Option<OwnedSemaphorePermit>,
}

/// One destination (a recipient domain): what waits for it and the
/// workers delivering it.
#[derive(Default)]
struct Destination {
    state: Mutex<DestState>,
    /// Wakes a lingering worker when a delivery is queued.
    ready: Notify,
}

#[derive(Default)]
struct DestState {
    pending: VecDeque<Delivery>,
    /// Workers alive, connected or connecting.
    workers: usize,
    /// Workers lingering with a connection, waiting for more.
    idle: usize,
}

impl Destination {
    fn lock(&self) -> std::sync::MutexGuard<'_, DestState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything the runner's tasks share.
pub(crate) struct Inner {
    pub(crate) store: AnyStore,
    pub(crate) hostname: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) retry_schedule: Vec<Duration>,
    pub(crate) max_age: Duration,
    pub(crate) delay_warning: Option<Duration>,
    /// Signs the notices (their From: is MAILER-DAEMON@hostname).
    pub(crate) dkim: Arc<DkimKeys>,
    per_destination: usize,
    poll_interval: Duration,
    direct: ClientConfig,
    smarthost: ClientConfig,
    router: Router,
    wake: Arc<Notify>,
    connections: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    in_flight: Mutex<HashSet<RecipientId>>,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
}

/// The outbound queue's delivery loop.
#[derive(Clone)]
pub struct QueueRunner {
    inner: Arc<Inner>,
}

impl QueueRunner {
    /// A runner for the store's queue, configured by `config`'s `[queue]`
    /// and `[delivery]`, woken by `wake` when mail is queued; `dkim` signs
    /// the notices it sends.
    pub fn new(
        store: AnyStore,
        config: &Config,
        clock: Arc<dyn Clock>,
        ids: Arc<IdGenerator>,
        resolver: Resolver,
        wake: Arc<Notify>,
        dkim: Arc<DkimKeys>,
    ) -> QueueRunner {
        let d = &config.delivery;
        let q = &config.queue;
        let client = |tls: TlsMode, auth: Option<Credentials>| ClientConfig {
            helo: config.hostname.clone(),
            connect_timeout: d.connect_timeout.0,
            command_timeout: d.command_timeout.0,
            data_timeout: d.command_timeout.0 * 2,
            tls: match tls {
                TlsMode::Disabled => TlsPolicy::Disabled,
                TlsMode::Opportunistic => TlsPolicy::Opportunistic,
                TlsMode::Required => TlsPolicy::Required,
            },
            auth,
            ..ClientConfig::default()
        };
        let smarthost = d.smarthost.as_ref();
        let credentials = smarthost.and_then(|s| {
            Some(Credentials { username: s.username.clone()?, password: Secret::new(s.password.clone()?) })
        });
        let inner = Inner {
            store,
            hostname: config.hostname.clone(),
            clock,
            ids,
            retry_schedule: q.retry_schedule.iter().map(|d| d.0).collect(),
            max_age: q.max_age.0,
            delay_warning: Some(q.delay_warning.0).filter(|d| !d.is_zero()),
            dkim,
            per_destination: q.max_connections_per_destination,
            poll_interval: q.poll_interval.0,
            direct: client(d.tls, None),
            smarthost: client(smarthost.map_or(TlsMode::Required, |s| s.tls), credentials),
            router: Router::new(resolver, &d.routes, smarthost.map(|s| s.address.clone()), d.port),
            wake,
            connections: Arc::new(Semaphore::new(q.max_connections)),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            in_flight: Mutex::default(),
            destinations: Mutex::default(),
        };
        QueueRunner { inner: Arc::new(inner) }
    }

    /// Runs until `shutdown`: claims what is due, delivers it, sleeps
    /// until the next due time, a wake-up or the poll interval. Then it
    /// gives the deliveries under way up to `grace` to finish; any still
    /// running are left to their leases.
    pub async fn run(self, mut shutdown: Shutdown, grace: Duration) {
        let inner = self.inner;
        info!("queue runner started");
        loop {
            if shutdown.is_triggered() {
                break;
            }
            let free = inner.slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // Wait for a slot without holding it.
                tokio::select! {
                    p = Arc::clone(&inner.slots).acquire_owned() => drop(p),
                    _ = shutdown.triggered() => break,
                }
                continue;
            }
            let now = inner.clock.now();
            let claimed = match inner.store.claim_due(now, LEASE, free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!(error = %e, "cannot claim queued mail");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                let sleep = inner.sleep_time(now).await;
                tokio::select! {
                    _ = tokio::time::sleep(sleep) => {}
                    _ = inner.wake.notified() => {}
                    _ = shutdown.triggered() => break,
                }
                continue;
            }
            for entry in claimed {
                Inner::dispatch(&inner, entry);
            }
        }
        let settled = tokio::time::timeout(grace, inner.slots.acquire_many(MAX_IN_FLIGHT as u32)).await;
        if settled.is_err() {
            warn!("queue runner stopped with deliveries under way; their leases bring them back");
        } else {
            info!("queue runner stopped");
        }
    }
}

impl Inner {
    /// How long to sleep when nothing is due: until the next due time, but
    /// no longer than the poll interval (another process may make work due).
    async fn sleep_time(&self, now: SystemTime) -> Duration {
        match self.store.next_queue_due().await {
            Ok(Some(due)) => due.duration_since(now).unwrap_or(Duration::from_millis(50)).min(self.poll_interval),
            Ok(None) => self.poll_interval,
            Err(e) => {
                warn!(error = %e, "cannot read the queue schedule");
                self.poll_interval
            }
        }
        .max(Duration::from_millis(50))
    }

    /// Splits a claimed entry by recipient domain and queues each part at
    /// its destination, starting a connection worker when allowed.
    fn dispatch(this: &Arc<Inner>, mut entry: QueueEntry) {
        let recipients = std::mem::take(&mut entry.recipients);
        let recipients: Vec<QueuedRecipient> = {
            let mut in_flight = this.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            recipients.into_iter().filter(|r| in_flight.insert(r.id)).collect()
        };
        let entry = Arc::new(entry);
        let mut by_domain: Vec<(String, Vec<QueuedRecipient>)> = Vec::new();
        for r in recipients {
            let domain = r.address.domain().as_str().to_ascii_lowercase();
            match by_domain.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) => list.push(r),
                None => by_domain.push((domain, vec![r])),
            }
        }
        for (domain, recipients) in by_domain {
            let slot = Arc::clone(&this.slots).try_acquire_owned().ok();
            let delivery = Delivery { entry: Arc::clone(&entry), recipients, _slot: slot };
            let dest = {
                let mut map = this.destinations.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() > 1000 {
                    map.retain(|_, d| {
                        let d = d.lock();
                        d.workers > 0 || !d.pending.is_empty()
                    });
                }
                Arc::clone(map.entry(domain.clone()).or_default())
            };
            let spawn = {
                let mut state = dest.lock();
                state.pending.push_back(delivery);
                // A lingering worker takes it; more are started while the
                // backlog outgrows the idle ones, up to the limit.
                let spawn = state.workers < this.per_destination && state.idle < state.pending.len();
                if spawn {
                    state.workers += 1;
                }
                spawn
            };
            dest.ready.notify_one();
            if spawn {
                let this = Arc::clone(this);
                tokio::spawn(async move { this.worker(domain, dest).await });
            }
        }
    }

    /// The next delivery: at once, or within [`LINGER`] while `connected`;
    /// `None` retires the worker (decided under the lock `dispatch` pushes
    /// under, so no delivery is ever left without a worker).
    async fn next(dest: &Destination, connected: bool) -> Option<Delivery> {
        loop {
            {
                let mut state = dest.lock();
                if let Some(d) = state.pending.pop_front() {
                    return Some(d);
                }
                if !connected {
                    state.workers -= 1;
                    return None;
                }
                state.idle += 1;
            }
            let woken = tokio::time::timeout(LINGER, dest.ready.notified()).await.is_ok();
            let mut state = dest.lock();
            state.idle -= 1;
            if !woken && state.pending.is_empty() {
                state.workers -= 1;
                return None;
            }
        }
    }

    /// Retires a worker that could not connect. While others are still
    /// connected they carry on with what waits; the last one takes it all,
    /// to fail it with its error (the destination is down).
    fn retire(dest: &Destination) -> VecDeque<Delivery> {
        let mut state = dest.lock();
        state.workers -= 1;
        if state.workers == 0 { std::mem::take(&mut state.pending) } else { VecDeque::new() }
    }

    /// One connection's life: deliver message after message to `domain`.
    async fn worker(self: Arc<Self>, domain: String, dest: Arc<Destination>) {
        let Ok(_permit) = Arc::clone(&self.connections).acquire_owned().await else { return };
        let mut conn: Option<(Connection, Target)> = None;
        while let Some(delivery) = Self::next(&dest, conn.as_ref().is_some_and(|(c, _)| c.is_usable())).await {
            if conn.as_ref().is_none_or(|(c, _)| !c.is_usable()) {
                match self.connect(&domain).await {
                    Ok(c) => conn = Some(c),
                    Err(failure) => {
                        self.settle_all(&delivery, &failure).await;
                        for d in Self::retire(&dest) {
                            self.settle_all(&d, &failure).await;
                        }
                        return;
                    }
                }
            }
            let Some((c, target)) = conn.as_mut() else { continue };
            let outcomes = self.send(c, target, &delivery).await;
            self.settle(&delivery, outcomes).await;
        }
        if let Some((c, _)) = conn {
            c.quit().await;
        }
    }

    /// Opens a connection to the first of `domain`'s servers that answers.
    async fn connect(&self, domain: &str) -> Result<(Connection, Target), Outcome> {
        let targets = self.router.targets(domain).await.map_err(|NoRoute { permanent, status, text }| Outcome {
            kind: if permanent { OutcomeKind::Permanent } else { OutcomeKind::Transient },
            status,
            text,
            remote: None,
        })?;
        let mut errors = Vec::new();
        let mut all_permanent = true;
        for target in targets {
            let config = if target.smarthost { &self.smarthost } else { &self.direct };
            match Connection::open(target.addr, &target.name, config).await {
                Ok(c) => {
                    debug!(%domain, host = %target.name, addr = %target.addr, tls = c.tls().is_some(), "connected");
                    return Ok((c, target));
                }
                Err(e) => {
                    info!(%domain, host = %target.name, addr = %target.addr, error = %e, "cannot deliver here");
                    all_permanent &= e.is_permanent();
                    errors.push(format!("{}[{}]: {e}", target.name, target.addr));
                }
            }
        }
        let permanent = all_permanent && !errors.is_empty();
        Err(Outcome {
            kind: if permanent { OutcomeKind::Permanent } else { OutcomeKind::Transient },
            status: if permanent { (5, 4, 0) } else { (4, 4, 1) },
            text: errors.join("; "),
            remote: None,
        })
    }

    /// One transaction; every recipient gets an outcome.
    async fn send(&self, c: &mut Connection, target: &Target, delivery: &Delivery) -> Vec<Outcome> {
        let entry = &delivery.entry;
        let mut bytes = Vec::new();
        let transient = |text: String| Outcome { kind: OutcomeKind::Transient, status: (4, 3, 0), text, remote: None };
        match self.store.read_blob(&entry.blob, &mut bytes).await {
            Ok(true) => {}
            Ok(false) => return vec![transient("message bytes missing".into()); delivery.recipients.len()],
            Err(e) => return vec![transient(format!("cannot read message: {e}")); delivery.recipients.len()],
        }
        let envelope = Envelope {
            sender: entry.sender.as_ref().map(ToString::to_string),
            recipients: delivery.recipients.iter().map(|r| r.address.to_string()).collect(),
        };
        let host = format!("{}[{}]", target.name, target.addr.ip());
        match c.send(&envelope, without_return_path(&bytes)).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|o| {
                    let (kind, reply, default) = match o {
                        RecipientOutcome::Delivered(r) => (OutcomeKind::Delivered, r, (2, 0, 0)),
                        RecipientOutcome::Transient(r) => (OutcomeKind::Transient, r, (4, 0, 0)),
                        RecipientOutcome::Permanent(r) => (OutcomeKind::Permanent, r, (5, 0, 0)),
                    };
                    Outcome {
                        kind,
                        status: reply.enhanced.unwrap_or(default),
                        text: format!("{host} said: {reply}"),
                        remote: Some(target.name.clone()),
                    }
                })
                .collect(),
            Err(e) => vec![
                Outcome {
                    kind: OutcomeKind::Transient,
                    status: (4, 4, 2),
                    text: format!("{host}: {e}"),
                    remote: Some(target.name.clone()),
                };
                delivery.recipients.len()
            ],
        }
    }

    async fn settle_all(&self, delivery: &Delivery, failure: &Outcome) {
        self.settle(delivery, vec![failure.clone(); delivery.recipients.len()]).await;
    }

    /// Decides each recipient's next state, builds the DSN the outcome
    /// calls for, and reports both in one transaction.
    async fn settle(&self, delivery: &Delivery, outcomes: Vec<Outcome>) {
        let now = self.clock.now();
        let entry = &delivery.entry;
        let age = now.duration_since(entry.created).unwrap_or_default();
        let warn_now = self.delay_warning.is_some_and(|w| age >= w);
        let mut updates = Vec::with_capacity(outcomes.len());
        let mut failed = Vec::new();
        let mut delayed = Vec::new();
        for (r, o) in delivery.recipients.iter().zip(outcomes) {
            let update = match o.kind {
                OutcomeKind::Delivered => {
                    info!(queue_id = %entry.id, to = %r.address, reply = %o.text, "delivered");
                    RecipientUpdate::Delivered { reply: o.text.clone() }
                }
                OutcomeKind::Permanent => {
                    info!(queue_id = %entry.id, to = %r.address, reply = %o.text, "bounced");
                    failed.push((r.clone(), o.clone()));
                    RecipientUpdate::Failed { reply: o.text.clone() }
                }
                OutcomeKind::Transient if age >= self.max_age => {
                    info!(queue_id = %entry.id, to = %r.address, reply = %o.text, "expired");
                    let text = format!("delivery time expired; last error: {}", o.text);
                    failed.push((r.clone(), Outcome { text: text.clone(), ..o.clone() }));
                    RecipientUpdate::Failed { reply: text }
                }
                OutcomeKind::Transient => {
                    let at = (now + self.retry_wait(r.attempts)).min(entry.created + self.max_age);
                    let warned = r.warned || warn_now;
                    if warn_now && !r.warned {
                        delayed.push((r.clone(), o.clone(), at));
                    }
                    info!(queue_id = %entry.id, to = %r.address, reply = %o.text, "deferred");
                    RecipientUpdate::Retry { at, reply: o.text.clone(), warned }
                }
            };
            updates.push((r.id, update));
        }
        let notice = match notice::for_outcome(self, entry, &failed, &delayed, now).await {
            Ok(notice) => notice,
            Err(e) => {
                // Without its notice the report would lose the bounce; the
                // lease brings the recipients back later instead.
                warn!(queue_id = %entry.id, error = %e, "cannot build the delivery notice");
                self.release(delivery);
                return;
            }
        };
        let report = AttemptReport { entry: entry.id.clone(), updates, notice };
        if let Err(e) = self.store.report_attempt(&report).await {
            warn!(queue_id = %entry.id, error = %e, "cannot record the delivery attempt");
        } else if report.notice.is_some() {
            self.wake.notify_one();
        }
        self.release(delivery);
    }

    fn release(&self, delivery: &Delivery) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for r in &delivery.recipients {
            in_flight.remove(&r.id);
        }
    }

    /// The wait after the `attempts`-th attempt, stretched by up to a tenth.
    fn retry_wait(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.retry_schedule.len().saturating_sub(1));
        let base = self.retry_schedule.get(i).copied().unwrap_or(Duration::from_secs(300));
        let jitter = RandomState::new().hash_one(attempts) % 1000;
        base + base.mul_f64(jitter as f64 / 10_000.0)
    }
}

/// The message as it leaves: without the `Return-Path:` that local
/// delivery added at its top (RFC 5321 §4.4: only the final delivery
/// adds one).
fn without_return_path(bytes: &[u8]) -> &[u8] {
    const NAME: &[u8] = b"return-path:";
    if bytes.len() < NAME.len() || !bytes[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return bytes;
    }
    let mut at = 0;
    while let Some(i) = memchr_crlf(&bytes[at..]) {
        at += i + 2;
        if !matches!(bytes.get(at), Some(b' ' | b'\t')) {
            return &bytes[at..];
        }
    }
    bytes
}

fn memchr_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_removed_with_its_folds() {
        assert_eq!(without_return_path(b"Return-Path: <a@b>\r\nSubject: x\r\n"), b"Subject: x\r\n");
        assert_eq!(without_return_path(b"return-path: <a@b>\r\n\t\r\nX: y\r\n"), b"X: y\r\n");
        assert_eq!(without_return_path(b"Subject: x\r\n"), b"Subject: x\r\n");
    }
}
