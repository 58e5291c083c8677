//! The `outbound` mode: mail submitted by a logged-in user (STARTTLS, AUTH
//! PLAIN) for a remote domain, queued, and relayed by the queue runner to
//! Postfix's `smtp-sink` on loopback; timed from the first `MAIL` to the
//! moment the server's queue is empty again.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mailroom_store::MailStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::client::{self, Submission};
use crate::message::{MessageTemplate, RECIPIENT};
use crate::server::{self, BenchServer, PASSWORD, RssSampler, ServerSetup, cpu_of};
use crate::sink::SmtpSink;
use crate::stats::{Latency, median};

/// The user who submits: the account every run is prepared with.
const USER: &str = RECIPIENT;
/// The remote domain the messages are addressed to, routed to smtp-sink.
const REMOTE_DOMAIN: &str = "sink.test";
/// The remote recipient of every message.
const REMOTE_RECIPIENT: &str = "bob@sink.test";
/// A name the server's self-signed certificate holds (it is generated for
/// the configured hostname and `localhost`).
const CERT_NAME: &str = "localhost";
/// How often the queue is checked for being empty.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How the runs are made.
pub struct Options {
    /// Concurrent submission connections.
    pub connections: usize,
    /// Messages in total per run.
    pub messages: usize,
    /// Octets per message.
    pub size: usize,
    /// The smtp-sink binary.
    pub sink: std::path::PathBuf,
    /// Bound on the submission, and separately on the delivery that
    /// follows it.
    pub limit: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Messages answered 250 on the submission port.
    pub submitted: u64,
    /// Messages refused at any step.
    pub errors: u64,
    /// Messages never completed because their connection failed.
    pub unsent: u64,
    /// Octets per message.
    pub size: usize,
    /// From the first `MAIL` to the last 250.
    pub submit_time: Duration,
    /// Submission latency, `MAIL` write to 250 read.
    pub latency: Option<Latency>,
    /// Messages still queued when the last submission session ended.
    pub backlog: usize,
    /// From the first `MAIL` to the queue found empty.
    pub deliver_time: Duration,
    /// Messages smtp-sink counted, when its output could be read.
    pub sink_received: Option<u64>,
    /// SMTP sessions the queue runner opened to smtp-sink (same caveat):
    /// how well it reuses connections.
    pub sink_sessions: Option<u64>,
    /// The server's CPU time over the submission and delivery.
    pub server_cpu: Duration,
    /// This process's CPU time over the same span (client and TLS).
    pub client_cpu: Duration,
    /// The server's peak RSS in KiB (VmHWM, or the sampled peak if higher).
    pub peak_kib: u64,
    /// VmRSS once listening, before the load, in KiB.
    pub idle_kib: u64,
    /// Messages in alice's INBOX after the run: delivery status
    /// notifications, as nothing else is addressed to her.
    pub notices: u64,
    /// Time from SIGTERM to the server's exit.
    pub shutdown: Duration,
}

impl Report {
    /// Submitted messages per second, first `MAIL` to last 250.
    pub fn submit_rate(&self) -> f64 {
        self.submitted as f64 / self.submit_time.as_secs_f64().max(1e-9)
    }

    /// Delivered messages per second, first `MAIL` to an empty queue.
    pub fn deliver_rate(&self) -> f64 {
        self.submitted as f64 / self.deliver_time.as_secs_f64().max(1e-9)
    }

    /// Server CPU per delivered message, in microseconds.
    pub fn cpu_per_message_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / (self.submitted.max(1) as f64)
    }

    /// Whether the run went wrong: refused or unsent messages, a bounce or
    /// delay notice, or smtp-sink counting fewer messages than were sent.
    pub fn failure(&self) -> Option<String> {
        if self.errors + self.unsent > 0 {
            return Some(format!("{} refused and {} unsent at submission", self.errors, self.unsent));
        }
        if self.notices > 0 {
            return Some(format!("{} delivery notice(s) (bounces or delay warnings) in {USER}'s INBOX", self.notices));
        }
        match self.sink_received {
            Some(n) if n < self.submitted => Some(format!("smtp-sink received {n} of {} messages", self.submitted)),
            _ => None,
        }
    }

    /// Prints the run's figures.
    pub fn print(&self, run: usize, runs: usize) {
        println!(
            "run {run}/{runs}: {} submitted, {} errors, {} unsent; submission {:.3} s = {:.1} msg/s; \
             all delivered after {:.3} s = {:.1} msg/s ({:.2} MiB/s) end to end",
            self.submitted,
            self.errors,
            self.unsent,
            self.submit_time.as_secs_f64(),
            self.submit_rate(),
            self.deliver_time.as_secs_f64(),
            self.deliver_rate(),
            self.deliver_rate() * self.size as f64 / (1024.0 * 1024.0)
        );
        if let Some(l) = self.latency {
            println!(
                "  submission latency (MAIL write to 250 read): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50, l.p90, l.p99, l.max
            );
        }
        let sink = match (self.sink_received, self.sink_sessions) {
            (Some(m), Some(s)) => {
                format!("{m} messages over {s} connections ({:.1} per connection)", m as f64 / s.max(1) as f64)
            }
            _ => "unknown (no counter output)".to_string(),
        };
        println!("  queued when submission ended: {}; smtp-sink received {sink}", self.backlog);
        println!(
            "  server CPU {:.2} s ({:.0} us/message, {:.0}% of one core over the run); client CPU {:.2} s",
            self.server_cpu.as_secs_f64(),
            self.cpu_per_message_us(),
            100.0 * self.server_cpu.as_secs_f64() / self.deliver_time.as_secs_f64().max(1e-9),
            self.client_cpu.as_secs_f64()
        );
        println!(
            "  server RSS: peak {:.1} MiB, idle {:.1} MiB; delivery notices in {USER}'s INBOX: {}; \
             server exited {:.3} s after SIGTERM",
            self.peak_kib as f64 / 1024.0,
            self.idle_kib as f64 / 1024.0,
            self.notices,
            self.shutdown.as_secs_f64()
        );
    }
}

/// The configuration the mode adds: no submission rate limit, and the
/// remote domain routed to the sink.
fn extra_config(sink: std::net::SocketAddr) -> String {
    format!(
        "[submission]\n\
         rate_limit = 0\n\
         [delivery]\n\
         tls = \"opportunistic\"\n\
         [delivery.routes]\n\
         \"{REMOTE_DOMAIN}\" = [\"{sink}\"]\n"
    )
}

/// One run: a fresh server and smtp-sink, the submission load, then the
/// wait for an empty queue.
pub async fn run(base: &ServerSetup, options: &Options, run: usize) -> Result<(Report, BenchServer)> {
    let template = Arc::new(MessageTemplate::addressed(options.size, run, USER, REMOTE_RECIPIENT)?);
    let sink_addr = free_loopback_port()?;
    let setup = ServerSetup { submission: true, extra_config: extra_config(sink_addr), ..base.clone() };
    let prepared = BenchServer::prepare(&setup)?;
    let mut sink = SmtpSink::start(&options.sink, sink_addr, prepared.dir())?;
    let mut server = BenchServer::launch(prepared)?;
    crate::describe_dir(&server, run);
    let addr = server.submission_addr().context("the server printed no submission address")?;
    let tls = tls_connector(&server.self_signed_cert())?;
    let server_name = ServerName::try_from(CERT_NAME).context("bad certificate name")?;
    let (store, _) = server::open_recipient(server.data_dir()).await?;

    let idle_kib = server.status_kib("VmRSS")?;
    let sampler = RssSampler::start(server.pid());
    let pid = server.pid().to_string();
    let (server_before, client_before) = (cpu_of(&pid), cpu_of("self"));
    let load = client::Load {
        addr,
        connections: options.connections,
        messages: options.messages,
        limit: options.limit,
        submission: Some(Submission { tls, server_name, username: USER.to_string(), password: PASSWORD.to_string() }),
    };
    let outcome = client::run(&load, Arc::clone(&template)).await;
    let backlog = store.queue_entries(None).await.context("cannot list the queue")?.len();
    let drained = match &outcome {
        Ok(_) => wait_for_empty_queue(&store, options.limit).await,
        Err(_) => Ok(Instant::now()),
    };
    let server_cpu = cpu_of(&pid).saturating_sub(server_before);
    let client_cpu = cpu_of("self").saturating_sub(client_before);
    let samples = sampler.finish()?;
    server.ensure_running()?;
    let mut outcome = outcome?;
    let drained = drained?;
    drop(store);
    let sink_counts = sink.stop()?;
    let end = crate::finish(&mut server).await?;

    let first_mail = outcome.first_mail.context("no MAIL was sent")?;
    let report = Report {
        submitted: outcome.accepted,
        errors: outcome.errors,
        unsent: outcome.unsent,
        size: template.size(),
        submit_time: outcome.transfer_time().unwrap_or_default(),
        latency: Latency::of(&mut outcome.latencies),
        backlog,
        deliver_time: drained.saturating_duration_since(first_mail),
        sink_received: sink_counts.map(|c| c.messages),
        sink_sessions: sink_counts.map(|c| c.sessions),
        server_cpu,
        client_cpu,
        peak_kib: end.hwm_kib.max(samples.peak_kib),
        idle_kib,
        notices: end.stored,
        shutdown: end.shutdown,
    };
    Ok((report, server))
}

/// A loopback address whose port is free now (smtp-sink binds it next; a
/// process taking it meanwhile makes the sink's start fail visibly).
fn free_loopback_port() -> Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free loopback port for smtp-sink")
}

/// A TLS client trusting exactly the certificate in `cert` (PEM).
fn tls_connector(cert: &Path) -> Result<TlsConnector> {
    let der = CertificateDer::from_pem_file(cert)
        .with_context(|| format!("cannot read the server's certificate {}", cert.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).context("the server's certificate is not a usable trust anchor")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Polls the queue every [`POLL_INTERVAL`] until no recipient is pending
/// (delivered or failed: a failure shows as a notice in alice's INBOX);
/// returns when it was found empty. `next_queue_due` is a single `MIN`
/// over pending recipients, so polling costs the server next to nothing,
/// unlike listing thousands of entries 50 times a second.
async fn wait_for_empty_queue(store: &mailroom_store::AnyStore, limit: Duration) -> Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let pending = store.next_queue_due().await.context("cannot read the queue")?;
        let now = Instant::now();
        if pending.is_none() {
            let left = store.queue_entries(None).await.context("cannot list the queue")?;
            ensure!(left.is_empty(), "the queue has no pending recipient but still lists {} entries", left.len());
            return Ok(now);
        }
        if now >= deadline {
            let left = store.queue_entries(None).await.context("cannot list the queue")?;
            let example = left
                .iter()
                .flat_map(|e| &e.recipients)
                .find(|r| !r.last_reply.is_empty())
                .map_or_else(String::new, |r| format!("; a last reply: {}", r.last_reply));
            bail!("{} message(s) still queued {limit:?} after submission ended (raise --timeout){example}", left.len());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Prints one row per run and the median of every column.
pub fn print_summary(reports: &[Report]) {
    println!(
        "{:<8}{:>10}{:>8}{:>10}{:>10}{:>9}{:>9}{:>10}{:>10}{:>10}{:>10}{:>9}{:>9}",
        "run",
        "submitted",
        "errors",
        "submit s",
        "submit/s",
        "p50 ms",
        "p99 ms",
        "deliver s",
        "e2e msg/s",
        "CPU s",
        "RSS MiB",
        "sink",
        "notices"
    );
    let cols = |r: &Report| -> [Option<f64>; 12] {
        [
            Some(r.submitted as f64),
            Some((r.errors + r.unsent) as f64),
            Some(r.submit_time.as_secs_f64()),
            Some(r.submit_rate()),
            r.latency.map(|l| l.p50),
            r.latency.map(|l| l.p99),
            Some(r.deliver_time.as_secs_f64()),
            Some(r.deliver_rate()),
            Some(r.server_cpu.as_secs_f64()),
            Some(r.peak_kib as f64 / 1024.0),
            r.sink_received.map(|n| n as f64),
            Some(r.notices as f64),
        ]
    };
    const FORMAT: [(usize, usize); 12] =
        [(10, 0), (8, 0), (10, 3), (10, 1), (9, 2), (9, 2), (10, 3), (10, 1), (10, 2), (10, 1), (9, 0), (9, 0)];
    let row = |label: &str, c: &[Option<f64>; 12]| {
        let mut line = format!("{label:<8}");
        for (v, (width, prec)) in c.iter().zip(FORMAT) {
            match v {
                Some(v) => line.push_str(&format!("{v:>width$.prec$}")),
                None => line.push_str(&format!("{:>width$}", "-")),
            }
        }
        println!("{line}");
    };
    let all: Vec<[Option<f64>; 12]> = reports.iter().map(cols).collect();
    for (i, c) in all.iter().enumerate() {
        row(&(i + 1).to_string(), c);
    }
    if reports.len() > 1 {
        let mut med = [None; 12];
        for (k, m) in med.iter_mut().enumerate() {
            *m = median(all.iter().filter_map(|c| c[k]));
        }
        row("median", &med);
    }
}
