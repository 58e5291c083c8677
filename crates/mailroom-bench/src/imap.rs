//! The `imap` mode: a large mailbox written and read over IMAP.
//!
//! Each run uses two fresh data directories:
//!
//! 1. **APPEND** (an empty store): one logged-in connection appends
//!    `--messages` messages of the `pop3` mode's mixed sizes (see
//!    [`crate::mailbox`]) to INBOX with non-synchronising literals
//!    (LITERAL+, `{n+}`), `--window` commands outstanding, so that the
//!    client never waits for a round trip between messages; then
//!    `--strict-messages` of them to another mailbox strictly one at a time
//!    with synchronising literals (`{n}`, the `+` awaited before the bytes),
//!    as a client without LITERAL+ would. Every APPEND must be answered
//!    `OK [APPENDUID v uid]` with distinct UIDs, and STATUS (MESSAGES) must
//!    count them all afterwards. The messages are generated before the
//!    clock starts, so the rate is the server's, not the generator's.
//! 2. **First access after loading**: the mailbox is stored directly (as in
//!    the `pop3` mode, with search words in known messages:
//!    [`Marks::SearchWords`]) before the server starts, so that the first
//!    SELECT meets a server that has never seen it. One connection then
//!    times SELECT INBOX (the first, then [`SELECT_CYCLES`] SELECT/UNSELECT
//!    cycles), `UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)` (the first, then
//!    [`REPEATS`] more), `UID FETCH 1:* (BODY.PEEK[])` of the whole mailbox
//!    once (every literal read and its length checked against RFC822.SIZE),
//!    and `UID SEARCH SUBJECT` / `UID SEARCH TEXT` for the marked words (the
//!    first, then [`REPEATS`] more), checking every result against what
//!    the generator stored.
//! 3. **Idle sessions**: the server is restarted on the same directory, so
//!    that nothing phase 2 allocated hides a session's cost. After a
//!    warm-up, VmRSS is read, `--idle-sessions` connections each LOGIN,
//!    SELECT INBOX and enter IDLE, and once they have settled VmRSS is read
//!    again: the difference per session is the cost of an idle client.
//!
//! Timings run from the command's write to its tagged completion read, so
//! they include reading (not parsing) every untagged response; responses
//! are parsed and checked after the clock stops. The targets are the
//! issue's, stated for the first access after loading, so the verdicts use
//! the first timings; the repeated medians are shown beside them.
//!
//! MB here is 10^6 octets (as the targets are stated); `--total-size`
//! takes `k`/`m` suffixes as binary units, so `450MB` is 450 MiB.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::mailbox::{self, Marks, Populated, SUBJECT_WORD, TEXT_WORD};
use crate::message::{RECIPIENT, rfc5322_date};
use crate::pop3::IdleCost;
use crate::server::{BenchServer, RssSampler, ServerSetup, cpu_of};
use crate::stats::median;

/// How long the client waits for any one read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest response line accepted (literals aside).
const MAX_LINE: u64 = 1024 * 1024;
/// The measuring connection's read buffer: large, so that a big literal
/// takes few reads.
const READ_BUFFER: usize = 1024 * 1024;
/// An idle session's read buffer: its responses are a few short lines.
const IDLE_READ_BUFFER: usize = 4096;
/// SELECT/UNSELECT cycles timed after the first SELECT.
pub const SELECT_CYCLES: usize = 20;
/// Repetitions of the FETCH ENVELOPE and SEARCH commands after the first.
pub const REPEATS: usize = 5;
/// Idle sessions being opened at once. A LOGIN is mostly a deliberately
/// slow password hash on the server's blocking pool, so more than the
/// cores gains nothing; and each hash in flight takes its own ~19 MiB,
/// which the allocator keeps per thread afterwards: a fixed cost of the
/// hashing threads, not of the sessions, that more concurrency inflates.
const CONNECT_CONCURRENCY: usize = 4;
/// Sessions opened (at the same concurrency) and closed before the idle
/// baseline is read, so that the server's first allocations for a
/// selected mailbox and its hashing threads' memory (see
/// [`CONNECT_CONCURRENCY`]) are in the baseline, not counted per session.
const WARM_UP_SESSIONS: usize = 16 * CONNECT_CONCURRENCY;
/// How long the idle sessions sit before VmRSS is read again.
const IDLE_SETTLE: Duration = Duration::from_millis(1500);
/// The password the admin CLI gave alice.
const PASSWORD: &str = "bench-password";
/// The mailbox the one-at-a-time APPENDs go to.
const STRICT_MAILBOX: &str = "Strict";
/// Octets in an MB, as the targets count them.
const MB: f64 = 1_000_000.0;

/// Target: APPEND over one connection, messages per second.
const TARGET_APPEND_MSG_S: f64 = 2000.0;
/// Target: SELECT of the large mailbox, milliseconds.
const TARGET_SELECT_MS: f64 = 8.0;
/// Target: `UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)`, milliseconds.
const TARGET_ENVELOPE_MS: f64 = 60.0;
/// Target: `UID FETCH 1:* (BODY.PEEK[])`, MB/s.
const TARGET_BODY_MB_S: f64 = 1500.0;
/// Target: `UID SEARCH SUBJECT`, milliseconds.
const TARGET_SUBJECT_MS: f64 = 10.0;
/// Target: `UID SEARCH TEXT`, milliseconds.
const TARGET_TEXT_MS: f64 = 250.0;
/// Target: an idle session (logged in, INBOX selected, in IDLE), KiB.
const TARGET_IDLE_KIB: f64 = 64.0;

/// What an `imap` run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// APPENDs outstanding at once in the LITERAL+ pass.
    pub window: usize,
    /// Messages appended one at a time with synchronising literals (0: skip).
    pub strict_messages: usize,
    /// Idle sessions to open (0: skip).
    pub idle_sessions: usize,
    /// Each phase's client part must finish within this.
    pub limit: Duration,
}

/// The messages every run appends, generated once: the same bytes each run.
pub struct Corpus {
    messages: Vec<Vec<u8>>,
    octets: u64,
}

impl Corpus {
    /// Generates one message of each size (with the search words, as the
    /// populated mailbox has them), on the blocking pool.
    pub async fn generate(sizes: &[usize]) -> Result<Corpus> {
        let sizes = sizes.to_vec();
        tokio::task::spawn_blocking(move || {
            let date = rfc5322_date(SystemTime::now());
            let count = sizes.len();
            let messages = sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| mailbox::marked_message(i, count, size, &date, Marks::SearchWords))
                .collect::<Result<Vec<_>>>()?;
            let octets = messages.iter().map(|m| m.len() as u64).sum();
            Ok(Corpus { messages, octets })
        })
        .await
        .context("the message generator panicked")?
    }
}

/// A timing taken once on first access, then again several times.
#[derive(Debug, Clone, Default)]
pub struct Repeated {
    /// The first, on a server that had not yet done it.
    pub first: Duration,
    /// The repetitions after it.
    pub again: Vec<Duration>,
}

impl Repeated {
    fn first_ms(&self) -> f64 {
        ms(self.first)
    }

    fn median_ms(&self) -> Option<f64> {
        median(self.again.iter().map(|d| ms(*d)))
    }
}

/// One APPEND pass.
#[derive(Debug, Clone, Copy)]
pub struct AppendPass {
    /// Messages appended (each answered `OK [APPENDUID ...]`).
    pub messages: u64,
    /// Their octets.
    pub octets: u64,
    /// From the first write to the last tagged completion.
    pub wall: Duration,
}

impl AppendPass {
    fn msg_s(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn mb_s(&self) -> f64 {
        self.octets as f64 / MB / self.wall.as_secs_f64().max(1e-9)
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The LITERAL+ pass.
    pub append: AppendPass,
    /// The one-at-a-time pass, unless skipped.
    pub strict: Option<AppendPass>,
    /// The APPEND server's VmHWM before it was stopped, in KiB.
    pub append_hwm_kib: u64,
    /// How long storing the mailbox directly took.
    pub populate: Duration,
    /// Messages in the populated mailbox.
    pub messages: u64,
    /// Their octets.
    pub octets: u64,
    /// LOGIN write to its tagged OK.
    pub login: Duration,
    /// SELECT INBOX.
    pub select: Repeated,
    /// `UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)`.
    pub envelope: Repeated,
    /// `UID FETCH 1:* (BODY.PEEK[])` of the whole mailbox.
    pub bodies: Duration,
    /// This client's CPU time during it: near the wall time, the client
    /// (not the server) would be the limit.
    pub bodies_client_cpu: Duration,
    /// Server CPU time during it: what the host's speed of the moment
    /// affects least.
    pub bodies_server_cpu: Duration,
    /// `UID SEARCH SUBJECT` and its result count.
    pub subject: Repeated,
    pub subject_hits: usize,
    /// `UID SEARCH TEXT` and its result count.
    pub text: Repeated,
    pub text_hits: usize,
    /// Peak VmRSS during the first-access phase, in KiB.
    pub access_peak_kib: u64,
    /// The idle sessions' cost, unless skipped.
    pub idle: Option<IdleCost>,
    /// How long opening the idle sessions took.
    pub idle_open: Duration,
    /// The server's threads before and with the idle sessions: growth is
    /// the blocking pool, whose password-hash memory VmRSS also counts.
    pub idle_threads: (u64, u64),
    /// VmHWM of the restarted server before it was stopped, in KiB.
    pub hwm_kib: u64,
}

impl Report {
    fn body_mb_s(&self) -> f64 {
        self.octets as f64 / MB / self.bodies.as_secs_f64().max(1e-9)
    }

    /// Prints the run's figures, each beside its target.
    pub fn print(&self, run: usize, runs: usize) {
        let a = &self.append;
        println!(
            "run {run}/{runs}: APPEND {} messages, {:.1} MB, LITERAL+ window: {:.3} s = {:.1} msg/s, {:.1} MB/s (target >= {TARGET_APPEND_MSG_S} msg/s); every one OK [APPENDUID], STATUS MESSAGES {}",
            a.messages,
            a.octets as f64 / MB,
            a.wall.as_secs_f64(),
            a.msg_s(),
            a.mb_s(),
            a.messages
        );
        if let Some(s) = &self.strict {
            println!(
                "  APPEND {} messages, {:.1} MB, one at a time, synchronising literals: {:.3} s = {:.1} msg/s, {:.1} MB/s; STATUS MESSAGES {}",
                s.messages,
                s.octets as f64 / MB,
                s.wall.as_secs_f64(),
                s.msg_s(),
                s.mb_s(),
                s.messages
            );
        }
        println!("  APPEND server VmHWM {:.1} MiB", self.append_hwm_kib as f64 / 1024.0);
        println!(
            "  first access: {} messages, {:.1} MB stored directly in {:.2} s; LOGIN {:.1} ms",
            self.messages,
            self.octets as f64 / MB,
            self.populate.as_secs_f64(),
            ms(self.login)
        );
        print_repeated("SELECT INBOX", &self.select, SELECT_CYCLES, TARGET_SELECT_MS, "");
        print_repeated(
            "UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)",
            &self.envelope,
            REPEATS,
            TARGET_ENVELOPE_MS,
            &format!(", {} responses checked", self.messages),
        );
        println!(
            "  UID FETCH 1:* (BODY.PEEK[]): {:.3} s = {:.1} MB/s (target >= {TARGET_BODY_MB_S} MB/s), {} literals checked; client CPU {:.0}% of it; server CPU {:.0} ms ({:.0} MB per server CPU-second)",
            self.bodies.as_secs_f64(),
            self.body_mb_s(),
            self.messages,
            100.0 * self.bodies_client_cpu.as_secs_f64() / self.bodies.as_secs_f64().max(1e-9),
            self.bodies_server_cpu.as_secs_f64() * 1e3,
            self.octets as f64 / 1e6 / self.bodies_server_cpu.as_secs_f64().max(1e-9),
        );
        print_repeated(
            &format!("UID SEARCH SUBJECT {SUBJECT_WORD}"),
            &self.subject,
            REPEATS,
            TARGET_SUBJECT_MS,
            &format!(", {} hits as stored", self.subject_hits),
        );
        print_repeated(
            &format!("UID SEARCH TEXT {TEXT_WORD}"),
            &self.text,
            REPEATS,
            TARGET_TEXT_MS,
            &format!(", {} hits as stored", self.text_hits),
        );
        println!("  server peak VmRSS during first access {:.1} MiB", self.access_peak_kib as f64 / 1024.0);
        if let Some(idle) = self.idle {
            println!(
                "  idle sessions (restarted server): {} LOGIN+SELECT+IDLE opened in {:.2} s, VmRSS {:.1} -> {:.1} MiB = {:.1} KiB/session (target < {TARGET_IDLE_KIB} KiB); server threads {} -> {}",
                idle.sessions,
                self.idle_open.as_secs_f64(),
                idle.before_kib as f64 / 1024.0,
                idle.after_kib as f64 / 1024.0,
                idle.per_session_kib(),
                self.idle_threads.0,
                self.idle_threads.1
            );
        }
        let which = if self.idle.is_some() { "restarted server" } else { "first-access server" };
        println!("  {which} VmHWM {:.1} MiB", self.hwm_kib as f64 / 1024.0);
    }
}

/// Prints one timed command: first, median of the repetitions, target.
fn print_repeated(what: &str, timing: &Repeated, repeats: usize, target_ms: f64, extra: &str) {
    println!(
        "  {what}: first {:.2} ms, median {:.2} ms of {repeats} more (target < {target_ms} ms){extra}",
        timing.first_ms(),
        timing.median_ms().unwrap_or(f64::NAN)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The summary table's columns.
type Column = crate::stats::Column<Report>;

/// Every column of the summary table.
const COLUMNS: &[Column] = &[
    ("APPEND/s", 10, 0, |r| Some(r.append.msg_s())),
    ("APP MB/s", 10, 1, |r| Some(r.append.mb_s())),
    ("strict/s", 10, 0, |r| r.strict.map(|s| s.msg_s())),
    ("SEL 1st", 9, 2, |r| Some(r.select.first_ms())),
    ("SEL med", 9, 2, |r| r.select.median_ms()),
    ("ENV 1st", 9, 1, |r| Some(r.envelope.first_ms())),
    ("ENV med", 9, 1, |r| r.envelope.median_ms()),
    ("BODY MB/s", 11, 1, |r| Some(r.body_mb_s())),
    ("SUBJ 1st", 10, 2, |r| Some(r.subject.first_ms())),
    ("SUBJ med", 10, 2, |r| r.subject.median_ms()),
    ("TEXT 1st", 10, 1, |r| Some(r.text.first_ms())),
    ("TEXT med", 10, 1, |r| r.text.median_ms()),
    ("idle KiB", 10, 1, |r| r.idle.map(|i| i.per_session_kib())),
];

/// Prints one row per run, the medians, and the targets met or not.
pub fn print_summary(reports: &[Report]) {
    let med = crate::stats::print_table(
        COLUMNS,
        reports,
        "(SEL/ENV/SUBJ/TEXT in ms: first access, and median of the repetitions; idle KiB per session)",
    );
    print_targets(&med);
}

/// The targets section, on the medians over runs (`med`, in [`COLUMNS`]
/// order).
fn print_targets(med: &[Option<f64>]) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let at_most = |name: &str, first: Option<f64>, again: Option<f64>, target: f64, unit: &str| {
        let Some(first) = first else { return };
        let again = again.map_or_else(String::new, |a| format!(" (repeated: {a:.2} {unit})"));
        println!("  {name} {first:.2} {unit}{again}, target < {target} {unit}: {}", verdict(first < target));
    };
    println!("targets (first access, median over runs):");
    if let Some(rate) = med[0] {
        println!(
            "  APPEND {rate:.0} msg/s over one connection, target >= {TARGET_APPEND_MSG_S} msg/s: {}",
            verdict(rate >= TARGET_APPEND_MSG_S)
        );
    }
    at_most("SELECT", med[3], med[4], TARGET_SELECT_MS, "ms");
    at_most("UID FETCH (FLAGS RFC822.SIZE ENVELOPE)", med[5], med[6], TARGET_ENVELOPE_MS, "ms");
    if let Some(rate) = med[7] {
        println!(
            "  UID FETCH (BODY.PEEK[]) {rate:.1} MB/s, target >= {TARGET_BODY_MB_S} MB/s: {}",
            verdict(rate >= TARGET_BODY_MB_S)
        );
    }
    at_most("UID SEARCH SUBJECT", med[8], med[9], TARGET_SUBJECT_MS, "ms");
    at_most("UID SEARCH TEXT", med[10], med[11], TARGET_TEXT_MS, "ms");
    match med[12] {
        Some(idle) => println!(
            "  idle session {idle:.1} KiB, target < {TARGET_IDLE_KIB} KiB: {}",
            verdict(idle < TARGET_IDLE_KIB)
        ),
        None => println!("  idle sessions: not measured (--idle-sessions 0)"),
    }
}

/// One run: the APPEND phase on one fresh directory, the first-access and
/// idle phases on another. Returns the servers too, so that their
/// directories outlive every run (see `main`).
pub async fn run(
    setup: &ServerSetup,
    options: &Options,
    sizes: &[usize],
    corpus: &Corpus,
    run: usize,
) -> Result<(Report, Vec<BenchServer>)> {
    let (appended, append_server) = append_phase(setup, options, corpus, run).await.context("APPEND phase")?;
    let prepared = BenchServer::prepare(setup)?;
    let populated = mailbox::populate_marked(prepared.data_dir(), sizes, Marks::SearchWords).await?;
    let mut server = BenchServer::launch(prepared)?;
    let access = within(options.limit, first_access(&server, &populated)).await;
    server.ensure_running()?;
    let access = access.context("first-access phase")?;
    let (idle, idle_open, idle_threads) = if options.idle_sessions > 0 {
        server.restart().context("restarting the server for the idle sessions")?;
        let idle = within(options.limit, idle_sessions(&server, options.idle_sessions)).await;
        server.ensure_running()?;
        let (cost, took, threads) = idle.context("idle-session phase")?;
        (Some(cost), took, threads)
    } else {
        (None, Duration::ZERO, (0, 0))
    };
    let hwm_kib = stop(&mut server)?;
    let report = Report {
        append: appended.append,
        strict: appended.strict,
        append_hwm_kib: appended.hwm_kib,
        populate: populated.took,
        messages: populated.count,
        octets: populated.octets,
        login: access.login,
        select: access.select,
        envelope: access.envelope,
        bodies: access.bodies,
        bodies_client_cpu: access.bodies_client_cpu,
        bodies_server_cpu: access.bodies_server_cpu,
        subject: access.subject,
        subject_hits: access.subject_hits,
        text: access.text,
        text_hits: access.text_hits,
        access_peak_kib: access.peak_kib,
        idle,
        idle_open,
        idle_threads,
        hwm_kib,
    };
    Ok((report, vec![append_server, server]))
}

/// Runs a client phase within `limit`.
async fn within<T>(limit: Duration, phase: impl Future<Output = Result<T>>) -> Result<T> {
    match timeout(limit, phase).await {
        Ok(result) => result,
        Err(_) => bail!("the phase did not finish within {limit:?} (raise --timeout)"),
    }
}

/// Reads VmHWM, stops the server and shows what it logged.
fn stop(server: &mut BenchServer) -> Result<u64> {
    let hwm_kib = server.status_kib("VmHWM")?;
    server.stop()?;
    if let Some((count, tail)) = server.stderr_summary() {
        eprintln!("note: the server logged {count} line(s) at warn or above; the last:\n    {tail}");
    }
    Ok(hwm_kib)
}

/// What the APPEND phase measured.
struct Appended {
    append: AppendPass,
    strict: Option<AppendPass>,
    hwm_kib: u64,
}

/// Starts a server on an empty store and appends the corpus to INBOX
/// (LITERAL+, windowed), then part of it to [`STRICT_MAILBOX`] one at a
/// time; checks the counts with STATUS.
async fn append_phase(
    setup: &ServerSetup,
    options: &Options,
    corpus: &Corpus,
    run: usize,
) -> Result<(Appended, BenchServer)> {
    let mut server = BenchServer::start(setup)?;
    if run == 1 {
        let fs = crate::server::filesystem_type(server.dir()).unwrap_or_else(|| "unknown".to_string());
        println!("data directory: {} (filesystem {fs})", server.dir().display());
    }
    let addr = server.imap_addr().context("the server has no IMAP listener")?;
    let passes = within(options.limit, append_passes(addr, options, corpus)).await;
    server.ensure_running()?;
    let (append, strict) = passes?;
    ensure!(append.octets == corpus.octets, "appended {} octets of {}", append.octets, corpus.octets);
    let hwm_kib = stop(&mut server)?;
    Ok((Appended { append, strict, hwm_kib }, server))
}

/// The APPEND passes over one connection.
async fn append_passes(
    addr: SocketAddr,
    options: &Options,
    corpus: &Corpus,
) -> Result<(AppendPass, Option<AppendPass>)> {
    let mut conn = ImapConn::connect(addr, READ_BUFFER).await?;
    conn.login().await?;
    let append = conn.append_windowed("INBOX", &corpus.messages, options.window).await?;
    let strict = if options.strict_messages > 0 {
        conn.simple(&format!("CREATE {STRICT_MAILBOX}")).await?;
        let some = &corpus.messages[..options.strict_messages.min(corpus.messages.len())];
        Some(conn.append_strict(STRICT_MAILBOX, some).await?)
    } else {
        None
    };
    conn.simple("LOGOUT").await?;
    Ok((append, strict))
}

/// What the first-access phase measured.
struct Access {
    login: Duration,
    select: Repeated,
    envelope: Repeated,
    bodies: Duration,
    bodies_client_cpu: Duration,
    /// CPU time the server spent on it, all threads.
    bodies_server_cpu: Duration,
    subject: Repeated,
    subject_hits: usize,
    text: Repeated,
    text_hits: usize,
    peak_kib: u64,
}

/// The first-access phase on the populated server.
async fn first_access(server: &BenchServer, populated: &Populated) -> Result<Access> {
    let addr = server.imap_addr().context("the server has no IMAP listener")?;
    let sampler = RssSampler::start(server.pid());
    let mut conn = ImapConn::connect(addr, READ_BUFFER).await?;
    let started = Instant::now();
    conn.login().await?;
    let login = started.elapsed();

    let select = time_select(&mut conn, populated.count).await.context("SELECT")?;
    let (envelope, catalogue) = time_envelopes(&mut conn, populated).await.context("FETCH ENVELOPE")?;
    let server_pid = server.pid().to_string();
    let (cpu_before, server_before) = (client_cpu(), cpu_of(&server_pid));
    let bodies = conn.fetch_bodies(&catalogue, populated.octets).await.context("FETCH BODY.PEEK[]")?;
    let bodies_client_cpu = client_cpu().saturating_sub(cpu_before);
    let bodies_server_cpu = cpu_of(&server_pid).saturating_sub(server_before);
    let count = populated.count as usize;
    let subject_query = format!("UID SEARCH SUBJECT {SUBJECT_WORD}");
    let (subject, subject_uids) = time_search(&mut conn, &subject_query).await?;
    ensure!(
        subject_uids == catalogue.subject_uids,
        "{subject_query} found {} messages; {} subjects in ENVELOPE have the word",
        subject_uids.len(),
        catalogue.subject_uids.len()
    );
    ensure!(subject_uids.len() == Marks::SearchWords.subject_count(count), "{subject_query}: wrong count");
    let text_query = format!("UID SEARCH TEXT {TEXT_WORD}");
    let (text, text_uids) = time_search(&mut conn, &text_query).await?;
    let expected = Marks::SearchWords.text_count(count);
    ensure!(text_uids.len() == expected, "{text_query} found {} messages; {expected} were stored", text_uids.len());
    conn.simple("LOGOUT").await?;
    let peak_kib = sampler.finish()?.peak_kib;
    Ok(Access {
        login,
        select,
        envelope,
        bodies,
        bodies_client_cpu,
        bodies_server_cpu,
        subject,
        subject_hits: subject_uids.len(),
        text,
        text_hits: text_uids.len(),
        peak_kib,
    })
}

/// The first SELECT INBOX, then [`SELECT_CYCLES`] timed SELECTs each
/// followed by UNSELECT; every one must report `count` messages. Leaves
/// INBOX selected.
async fn time_select(conn: &mut ImapConn, count: u64) -> Result<Repeated> {
    let mut timing = Repeated { first: conn.select_inbox(count).await?, again: Vec::new() };
    for _ in 0..SELECT_CYCLES {
        conn.simple("UNSELECT").await?;
        timing.again.push(conn.select_inbox(count).await?);
    }
    Ok(timing)
}

/// What the ENVELOPE fetch told about every message.
#[derive(Debug, Default)]
struct Catalogue {
    /// RFC822.SIZE by UID.
    sizes: HashMap<u32, u64>,
    /// UIDs whose ENVELOPE subject contains [`SUBJECT_WORD`], ascending.
    subject_uids: Vec<u32>,
}

/// Times `UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)` once and [`REPEATS`]
/// more times, checking each answer.
async fn time_envelopes(conn: &mut ImapConn, populated: &Populated) -> Result<(Repeated, Catalogue)> {
    let mut timing = Repeated::default();
    let mut catalogue = Catalogue::default();
    for i in 0..=REPEATS {
        let started = Instant::now();
        let responses = conn.collect("UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)").await?;
        let took = started.elapsed();
        if i == 0 {
            timing.first = took;
        } else {
            timing.again.push(took);
        }
        catalogue = catalogue_of(&responses, populated)?;
    }
    Ok((timing, catalogue))
}

/// Checks an ENVELOPE fetch: one FETCH per message in sequence order, each
/// with UID, FLAGS, RFC822.SIZE and a 10-field ENVELOPE; distinct UIDs;
/// the sizes those stored.
fn catalogue_of(responses: &[Response], populated: &Populated) -> Result<Catalogue> {
    let mut catalogue = Catalogue::default();
    for (i, response) in responses.iter().enumerate() {
        let fetch = Fetch::parse(response)?.with_context(|| format!("not a FETCH: {}", response.show()))?;
        ensure!(fetch.seq as usize == i + 1, "FETCH {} where {} was expected", fetch.seq, i + 1);
        let uid = fetch.number("UID")?;
        let size = fetch.number("RFC822.SIZE")?;
        ensure!(matches!(fetch.item("FLAGS"), Some(Value::List(_))), "FETCH {uid}: no FLAGS list");
        let Some(Value::List(envelope)) = fetch.item("ENVELOPE") else { bail!("FETCH {uid}: no ENVELOPE") };
        ensure!(envelope.len() == 10, "FETCH {uid}: an ENVELOPE of {} fields", envelope.len());
        let subject = envelope[1].string(response).with_context(|| format!("FETCH {uid}: no subject"))?;
        if contains_word(&subject, SUBJECT_WORD) {
            catalogue.subject_uids.push(uid as u32);
        }
        ensure!(catalogue.sizes.insert(uid as u32, size).is_none(), "UID {uid} twice");
    }
    ensure!(
        catalogue.sizes.len() as u64 == populated.count,
        "FETCH answered for {} messages; {} were stored",
        catalogue.sizes.len(),
        populated.count
    );
    let mut sizes: Vec<u64> = catalogue.sizes.values().copied().collect();
    sizes.sort_unstable();
    ensure!(sizes == populated.sorted_sizes, "RFC822.SIZE values differ from the sizes stored");
    catalogue.subject_uids.sort_unstable();
    Ok(catalogue)
}

/// Whether `text` contains `word`, ignoring ASCII case.
fn contains_word(text: &[u8], word: &str) -> bool {
    text.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
}

/// Times a `UID SEARCH` once and [`REPEATS`] more times; returns the UIDs
/// found (the same every time).
async fn time_search(conn: &mut ImapConn, query: &str) -> Result<(Repeated, Vec<u32>)> {
    let mut timing = Repeated::default();
    let mut found = None;
    for i in 0..=REPEATS {
        let started = Instant::now();
        let responses = conn.collect(query).await.with_context(|| query.to_string())?;
        let took = started.elapsed();
        if i == 0 {
            timing.first = took;
        } else {
            timing.again.push(took);
        }
        let uids = search_result(&responses).with_context(|| query.to_string())?;
        ensure!(found.as_ref().is_none_or(|f| *f == uids), "{query}: a different result when repeated");
        found = Some(uids);
    }
    Ok((timing, found.unwrap_or_default()))
}

/// The UIDs of the `* SEARCH` response, ascending.
fn search_result(responses: &[Response]) -> Result<Vec<u32>> {
    let mut found = None;
    for r in responses {
        if let Some(rest) = r.text.strip_prefix(b"* SEARCH") {
            ensure!(found.is_none(), "two SEARCH responses");
            let text = std::str::from_utf8(rest).context("SEARCH response is not UTF-8")?;
            let uids = text.split_ascii_whitespace().map(str::parse::<u32>).collect::<Result<Vec<_>, _>>();
            found = Some(uids.with_context(|| format!("malformed SEARCH response {}", r.show()))?);
        }
    }
    let mut uids = found.context("no SEARCH response")?;
    uids.sort_unstable();
    Ok(uids)
}

/// Opens `count` sessions in IDLE on the (restarted) server and measures
/// what they cost; returns the cost, how long opening them took and the
/// server's thread count before and with them.
async fn idle_sessions(server: &BenchServer, count: usize) -> Result<(IdleCost, Duration, (u64, u64))> {
    let addr = server.imap_addr().context("the server has no IMAP listener")?;
    let messages = server_messages(addr).await?;
    drop(open_idle(addr, WARM_UP_SESSIONS.min(count), messages).await.context("warm-up sessions")?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_kib = server.status_kib("VmRSS")?;
    let threads_before = threads(server.pid())?;
    let started = Instant::now();
    let sessions = open_idle(addr, count, messages).await.context("idle sessions")?;
    let open = started.elapsed();
    tokio::time::sleep(IDLE_SETTLE).await;
    let after_kib = server.status_kib("VmRSS")?;
    let threads_after = threads(server.pid())?;
    // Every session must still be open and quiet: a closed one would make
    // the per-session figure meaningless.
    for (i, s) in sessions.iter().enumerate() {
        s.ensure_quiet().with_context(|| format!("idle session {i}"))?;
    }
    drop(sessions);
    Ok((IdleCost { sessions: count, before_kib, after_kib }, open, (threads_before, threads_after)))
}

/// This process's CPU time so far: the sum over its threads of the first
/// field of `/proc/self/task/TID/schedstat` (nanoseconds on a CPU); zero
/// where that is unavailable.
fn client_cpu() -> Duration {
    cpu_of("self")
}

/// The `Threads:` count of `/proc/PID/status`.
fn threads(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read the status of the server (pid {pid})"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").and_then(|n| n.trim().parse().ok()))
        .context("no Threads: line in the server's status")
}

/// The INBOX message count, from STATUS on a session of its own.
async fn server_messages(addr: SocketAddr) -> Result<u64> {
    let mut conn = ImapConn::connect(addr, IDLE_READ_BUFFER).await?;
    conn.login().await?;
    let count = conn.status_messages("INBOX").await?;
    conn.simple("LOGOUT").await?;
    Ok(count)
}

/// Opens `count` sessions, [`CONNECT_CONCURRENCY`] at a time, each logged
/// in with INBOX (of `messages` messages) selected and in IDLE.
async fn open_idle(addr: SocketAddr, count: usize, messages: u64) -> Result<Vec<ImapConn>> {
    let mut open = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while open.len() < count {
        while started < count && tasks.len() < CONNECT_CONCURRENCY {
            started += 1;
            tasks.spawn(async move {
                let mut conn = ImapConn::connect(addr, IDLE_READ_BUFFER).await?;
                conn.login().await?;
                conn.select_inbox(messages).await?;
                conn.idle().await?;
                anyhow::Ok(conn)
            });
        }
        let Some(done) = tasks.join_next().await else { break };
        let conn = done.context("a connecting task panicked")?.with_context(|| format!("session {}", open.len()))?;
        open.push(conn);
    }
    Ok(open)
}

/// One IMAP client connection.
struct ImapConn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    /// The number of the next tag.
    next_tag: u32,
}

impl ImapConn {
    /// Connects and reads the `* OK` greeting.
    async fn connect(addr: SocketAddr, buffer: usize) -> Result<ImapConn> {
        ensure!(addr.ip().is_loopback(), "refusing to connect to {addr}: loopback only");
        let stream =
            bounded("connect", TcpStream::connect(addr)).await?.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let (read, write) = stream.into_split();
        let mut conn = ImapConn { r: BufReader::with_capacity(buffer, read), w: write, next_tag: 1 };
        let greeting = read_response(&mut conn.r, Keep::All).await.context("reading the greeting")?;
        ensure!(greeting.text.starts_with(b"* OK"), "greeting: {}", greeting.show());
        Ok(conn)
    }

    /// A fresh tag.
    fn tag(&mut self) -> String {
        let tag = format!("A{:05}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        bounded("write", self.w.write_all(bytes)).await?.context("cannot write to the server")
    }

    /// Sends `command` and reads up to its tagged OK; returns the untagged
    /// responses, literals kept.
    async fn collect(&mut self, command: &str) -> Result<Vec<Response>> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let mut untagged = Vec::new();
        self.complete(&tag, Keep::All, |r| {
            untagged.push(r);
            Ok(())
        })
        .await
        .with_context(|| first_words(command))?;
        Ok(untagged)
    }

    /// Sends `command` and reads up to its tagged OK, ignoring untagged
    /// responses.
    async fn simple(&mut self, command: &str) -> Result<Response> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.complete(&tag, Keep::All, |_| Ok(())).await.with_context(|| first_words(command))
    }

    /// Reads responses up to the tagged one of `tag`, handing every untagged
    /// one to `untagged`; fails unless it is OK, and on a continuation
    /// request or another tag.
    async fn complete(
        &mut self,
        tag: &str,
        keep: Keep,
        mut untagged: impl FnMut(Response) -> Result<()>,
    ) -> Result<Response> {
        loop {
            let response = read_response(&mut self.r, keep).await?;
            match response.kind(tag) {
                Kind::Untagged => untagged(response)?,
                Kind::Tagged(true) => return Ok(response),
                Kind::Tagged(false) => bail!("{}", response.show()),
                Kind::Continuation => bail!("unexpected continuation request: {}", response.show()),
                Kind::Other => bail!("a response with an unexpected tag: {}", response.show()),
            }
        }
    }

    /// LOGIN as alice.
    async fn login(&mut self) -> Result<()> {
        self.simple(&format!("LOGIN \"{RECIPIENT}\" \"{PASSWORD}\"")).await?;
        Ok(())
    }

    /// SELECT INBOX, checked to hold `count` messages; returns the time from
    /// the write to the tagged OK.
    async fn select_inbox(&mut self, count: u64) -> Result<Duration> {
        let started = Instant::now();
        let responses = self.collect("SELECT INBOX").await?;
        let took = started.elapsed();
        let exists = format!("* {count} EXISTS");
        ensure!(
            responses.iter().any(|r| r.text == exists.as_bytes()),
            "SELECT INBOX did not say `{exists}`: {}",
            responses.iter().map(Response::show).collect::<Vec<_>>().join(" | ")
        );
        Ok(took)
    }

    /// `STATUS mailbox (MESSAGES)`.
    async fn status_messages(&mut self, mailbox: &str) -> Result<u64> {
        let responses = self.collect(&format!("STATUS {mailbox} (MESSAGES)")).await?;
        for r in &responses {
            let Some(rest) = r.text.strip_prefix(b"* STATUS ") else { continue };
            let mut p = Parser::new(rest);
            let _name = p.value()?;
            let Value::List(items) = p.value()? else { bail!("malformed STATUS {}", r.show()) };
            for pair in items.chunks(2) {
                if let [Value::Atom(name), value] = pair
                    && name.eq_ignore_ascii_case(b"MESSAGES")
                {
                    return value.number();
                }
            }
        }
        bail!("no STATUS MESSAGES response for {mailbox}")
    }

    /// Enters IDLE: sends it and waits for the continuation request.
    async fn idle(&mut self) -> Result<()> {
        let tag = self.tag();
        self.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        loop {
            let response = read_response(&mut self.r, Keep::All).await.context("IDLE")?;
            match response.kind(&tag) {
                Kind::Continuation => return Ok(()),
                Kind::Untagged => {}
                _ => bail!("IDLE: {}", response.show()),
            }
        }
    }

    /// Fails unless the connection is open with nothing to read: an idle
    /// session must not have been closed or sent anything.
    fn ensure_quiet(&self) -> Result<()> {
        ensure!(self.r.buffer().is_empty(), "unexpected data from the server");
        let mut probe = [0u8; 1];
        match self.r.get_ref().try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Ok(0) => bail!("closed by the server"),
            Ok(_) => bail!("unexpected data from the server"),
            Err(e) => bail!("{e}"),
        }
    }

    /// Appends every message to `mailbox` with non-synchronising literals,
    /// `window` commands outstanding; checks each `OK [APPENDUID]` and the
    /// count with STATUS afterwards.
    async fn append_windowed(&mut self, mailbox: &str, messages: &[Vec<u8>], window: usize) -> Result<AppendPass> {
        let started = Instant::now();
        let mut outstanding = VecDeque::with_capacity(window);
        let mut uids = Vec::with_capacity(messages.len());
        let mut sent = 0;
        while uids.len() < messages.len() {
            while sent < messages.len() && outstanding.len() < window {
                let tag = self.tag();
                let message = &messages[sent];
                self.send(format!("{tag} APPEND {mailbox} {{{}+}}\r\n", message.len()).as_bytes()).await?;
                self.send(message).await?;
                self.send(b"\r\n").await?;
                outstanding.push_back(tag);
                sent += 1;
            }
            let tag = outstanding.pop_front().context("no APPEND outstanding")?;
            let done = self.complete(&tag, Keep::All, |_| Ok(())).await;
            let done = done.with_context(|| format!("APPEND of message {}", uids.len() + 1))?;
            uids.push(append_uid(&done)?);
        }
        let wall = started.elapsed();
        self.check_appended(mailbox, uids, messages).await?;
        Ok(AppendPass { messages: messages.len() as u64, octets: total(messages), wall })
    }

    /// Appends every message to `mailbox` one at a time with synchronising
    /// literals: the command, the server's `+`, then the bytes.
    async fn append_strict(&mut self, mailbox: &str, messages: &[Vec<u8>]) -> Result<AppendPass> {
        let started = Instant::now();
        let mut uids = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let tag = self.tag();
            self.send(format!("{tag} APPEND {mailbox} {{{}}}\r\n", message.len()).as_bytes()).await?;
            let go = read_response(&mut self.r, Keep::All).await?;
            ensure!(go.kind(&tag) == Kind::Continuation, "APPEND of message {}: {}", i + 1, go.show());
            self.send(message).await?;
            self.send(b"\r\n").await?;
            let done = self.complete(&tag, Keep::All, |_| Ok(())).await;
            uids.push(append_uid(&done.with_context(|| format!("APPEND of message {}", i + 1))?)?);
        }
        let wall = started.elapsed();
        self.check_appended(mailbox, uids, messages).await?;
        Ok(AppendPass { messages: messages.len() as u64, octets: total(messages), wall })
    }

    /// Every APPEND got its own UID under one UIDVALIDITY, and STATUS
    /// counts them all.
    async fn check_appended(&mut self, mailbox: &str, uids: Vec<(u64, u64)>, messages: &[Vec<u8>]) -> Result<()> {
        let validity = uids.first().map(|u| u.0);
        ensure!(uids.iter().all(|u| Some(u.0) == validity), "APPENDUID's UIDVALIDITY changed during the pass");
        let mut distinct: Vec<u64> = uids.iter().map(|u| u.1).collect();
        distinct.sort_unstable();
        distinct.dedup();
        ensure!(distinct.len() == messages.len(), "{} distinct UIDs for {} APPENDs", distinct.len(), messages.len());
        let count = self.status_messages(mailbox).await?;
        ensure!(count == messages.len() as u64, "STATUS {mailbox} says {count} messages; {} appended", messages.len());
        Ok(())
    }

    /// `UID FETCH 1:* (BODY.PEEK[])`, every literal read and its length
    /// checked against the message's RFC822.SIZE; returns the wall time.
    async fn fetch_bodies(&mut self, catalogue: &Catalogue, octets: u64) -> Result<Duration> {
        let started = Instant::now();
        let tag = self.tag();
        self.send(format!("{tag} UID FETCH 1:* (BODY.PEEK[])\r\n").as_bytes()).await?;
        let mut seen = 0usize;
        let mut read = 0u64;
        self.complete(&tag, Keep::None, |r| {
            read += check_body(&r, catalogue)?;
            seen += 1;
            Ok(())
        })
        .await?;
        let wall = started.elapsed();
        ensure!(seen == catalogue.sizes.len(), "{seen} FETCH responses for {} messages", catalogue.sizes.len());
        ensure!(read == octets, "{read} octets of bodies read; {octets} were stored");
        Ok(wall)
    }
}

/// One BODY[] FETCH response: its literal must have the message's size and
/// end with CRLF. Returns the size.
fn check_body(response: &Response, catalogue: &Catalogue) -> Result<u64> {
    let fetch = Fetch::parse(response)?.with_context(|| format!("not a FETCH: {}", response.show()))?;
    let uid = fetch.number("UID")? as u32;
    let Some(Value::Literal(k)) = fetch.item("BODY[]") else { bail!("FETCH of UID {uid}: no BODY[] literal") };
    let literal = &response.literals[*k];
    let expected = catalogue.sizes.get(&uid).with_context(|| format!("BODY[] of unknown UID {uid}"))?;
    ensure!(literal.len == *expected, "BODY[] of UID {uid} has {} octets; RFC822.SIZE said {expected}", literal.len);
    ensure!(literal.tail == *b"\r\n", "BODY[] of UID {uid} does not end with CRLF");
    Ok(literal.len)
}

/// `[APPENDUID validity uid]` of a tagged OK.
fn append_uid(done: &Response) -> Result<(u64, u64)> {
    let text = String::from_utf8_lossy(&done.text);
    let code = text.split_once("[APPENDUID ").and_then(|(_, rest)| rest.split_once(']')).map(|(code, _)| code);
    let mut numbers = code.into_iter().flat_map(str::split_ascii_whitespace).map(str::parse::<u64>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(validity)), Some(Ok(uid)), None) => Ok((validity, uid)),
        _ => bail!("APPEND answered without APPENDUID: {text}"),
    }
}

fn total(messages: &[Vec<u8>]) -> u64 {
    messages.iter().map(|m| m.len() as u64).sum()
}

/// A command's first two words, to name it in errors without a password.
fn first_words(command: &str) -> String {
    command.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// Runs `f` bounded by [`IO_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    match timeout(IO_TIMEOUT, f).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("{what} timed out after {IO_TIMEOUT:?}"),
    }
}

/// Which literal contents a read keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    /// Every literal's bytes (short ones: envelopes, headers).
    All,
    /// Only lengths and last two octets: message bodies are counted and
    /// checked as they stream through, never copied.
    None,
}

/// One server response as read: its lines joined, each literal's `{n}`
/// left in place and the CRLF after it removed, the final CRLF removed.
#[derive(Debug, Default)]
struct Response {
    text: Vec<u8>,
    literals: Vec<Literal>,
}

/// A literal of a response.
#[derive(Debug, Default)]
struct Literal {
    len: u64,
    /// Its bytes, when kept.
    data: Option<Vec<u8>>,
    /// Its last two octets (for a CRLF check).
    tail: [u8; 2],
}

/// What a response is, relative to the tag awaited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Untagged,
    /// The awaited tag's completion: whether it is OK.
    Tagged(bool),
    Continuation,
    /// Another tag's.
    Other,
}

impl Response {
    fn kind(&self, tag: &str) -> Kind {
        if self.text.starts_with(b"* ") {
            Kind::Untagged
        } else if self.text.starts_with(b"+") {
            Kind::Continuation
        } else if let Some(rest) = self.text.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) {
            Kind::Tagged(rest.starts_with(b"OK"))
        } else {
            Kind::Other
        }
    }

    /// The text for an error message, shortened.
    fn show(&self) -> String {
        let text = String::from_utf8_lossy(&self.text);
        match text.char_indices().nth(200) {
            Some((at, _)) => format!("{}...", &text[..at]),
            None => text.into_owned(),
        }
    }
}

/// Reads one whole response: lines, and after a line ending with `{n}` the
/// literal of n octets and the rest of the response.
async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R, keep: Keep) -> Result<Response> {
    let mut response = Response::default();
    loop {
        let start = response.text.len();
        let limit = MAX_LINE.saturating_sub(start as u64).max(1);
        let n = bounded("waiting for a response", (&mut *r).take(limit).read_until(b'\n', &mut response.text))
            .await?
            .context("cannot read from the server")?;
        ensure!(n > 0, "the server closed the connection");
        ensure!(response.text.ends_with(b"\r\n"), "a response line longer than {MAX_LINE} octets, or cut short");
        response.text.truncate(response.text.len() - 2);
        let Some(len) = literal_length(&response.text[start..]) else { return Ok(response) };
        let literal = read_literal(r, len, keep).await?;
        response.literals.push(literal);
    }
}

/// The length of the literal announced at the end of a line (`{n}`).
fn literal_length(line: &[u8]) -> Option<u64> {
    let open = line.strip_suffix(b"}")?;
    let at = open.iter().rposition(|&b| b == b'{')?;
    let digits = &open[at + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads a literal of `len` octets straight from the buffer.
async fn read_literal<R: AsyncBufRead + Unpin>(r: &mut R, len: u64, keep: Keep) -> Result<Literal> {
    let mut literal = Literal { len, data: None, tail: [0; 2] };
    let mut data = match keep {
        Keep::All => Some(Vec::with_capacity(len.min(MAX_LINE) as usize)),
        Keep::None => None,
    };
    let mut left = len;
    while left > 0 {
        let chunk = bounded("reading a literal", r.fill_buf()).await?.context("cannot read from the server")?;
        ensure!(!chunk.is_empty(), "the server closed the connection inside a literal");
        let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let piece = &chunk[..take];
        match piece {
            [.., a, b] => literal.tail = [*a, *b],
            [b] => literal.tail = [literal.tail[1], *b],
            [] => {}
        }
        if let Some(data) = &mut data {
            data.extend_from_slice(piece);
        }
        r.consume(take);
        left -= take as u64;
    }
    literal.data = data;
    Ok(literal)
}

/// A parsed value of a response.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    /// An atom, number or NIL (section brackets included: `BODY[]`).
    Atom(&'a [u8]),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// The response's literal of this index.
    Literal(usize),
    List(Vec<Value<'a>>),
}

impl Value<'_> {
    fn number(&self) -> Result<u64> {
        match self {
            Value::Atom(a) => std::str::from_utf8(a).ok().and_then(|s| s.parse().ok()),
            _ => None,
        }
        .with_context(|| format!("not a number: {self:?}"))
    }

    /// A string value (quoted or literal, NIL as empty) of `response`.
    fn string(&self, response: &Response) -> Result<Vec<u8>> {
        match self {
            Value::Quoted(s) => Ok(s.clone()),
            Value::Atom(a) if a.eq_ignore_ascii_case(b"NIL") => Ok(Vec::new()),
            Value::Literal(k) => {
                let literal = response.literals.get(*k).context("a literal that was not read")?;
                literal.data.clone().context("a literal that was not kept")
            }
            other => bail!("not a string: {other:?}"),
        }
    }
}

/// A recursive-descent parser of response values.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    /// Literals met so far: the next one's index.
    literals: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8]) -> Parser<'a> {
        Parser { s, at: 0, literals: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// The next value, after any spaces.
    fn value(&mut self) -> Result<Value<'a>> {
        self.skip_spaces();
        match self.peek() {
            None => bail!("a value expected at the end"),
            Some(b'(') => self.list(),
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b')') => bail!("an unexpected `)` at {}", self.at),
            Some(_) => self.atom(),
        }
    }

    fn list(&mut self) -> Result<Value<'a>> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                Some(b')') => {
                    self.at += 1;
                    return Ok(Value::List(items));
                }
                None => bail!("an unterminated list"),
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn quoted(&mut self) -> Result<Value<'a>> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => bail!("an unterminated quoted string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Value::Quoted(out));
                }
                Some(b'\\') => {
                    out.push(*self.s.get(self.at + 1).context("a quoted string ends with `\\`")?);
                    self.at += 2;
                }
                Some(b) => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Value<'a>> {
        let end = self.s[self.at..].iter().position(|&b| b == b'}').context("an unterminated literal length")?;
        self.at += end + 1;
        let index = self.literals;
        self.literals += 1;
        Ok(Value::Literal(index))
    }

    /// Up to a space or parenthesis, taking `[...]` whole (so that
    /// `BODY[HEADER.FIELDS (A B)]` is one atom).
    fn atom(&mut self) -> Result<Value<'a>> {
        let start = self.at;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b' ' | b'(' | b')' if depth == 0 => break,
                _ => {}
            }
            self.at += 1;
        }
        ensure!(self.at > start, "an empty atom at {start}");
        Ok(Value::Atom(&self.s[start..self.at]))
    }
}

/// A `* n FETCH (...)` response's items.
struct Fetch<'a> {
    seq: u64,
    items: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Fetch<'a> {
    /// The FETCH of a response, `None` if it is another response.
    fn parse(response: &'a Response) -> Result<Option<Fetch<'a>>> {
        let Some(rest) = response.text.strip_prefix(b"* ") else { return Ok(None) };
        let mut p = Parser::new(rest);
        let Value::Atom(seq) = p.value()? else { return Ok(None) };
        let Ok(Value::Atom(name)) = p.value() else { return Ok(None) };
        if !name.eq_ignore_ascii_case(b"FETCH") {
            return Ok(None);
        }
        let seq = Value::Atom(seq).number()?;
        let Value::List(values) = p.value()? else { bail!("a FETCH without a list: {}", response.show()) };
        ensure!(values.len() % 2 == 0, "an odd FETCH list: {}", response.show());
        let mut items = Vec::with_capacity(values.len() / 2);
        let mut values = values.into_iter();
        while let (Some(name), Some(value)) = (values.next(), values.next()) {
            let Value::Atom(name) = name else { bail!("a FETCH item name that is not an atom: {}", response.show()) };
            items.push((name, value));
        }
        Ok(Some(Fetch { seq, items }))
    }

    fn item(&self, name: &str) -> Option<&Value<'a>> {
        self.items.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    fn number(&self, name: &str) -> Result<u64> {
        self.item(name).with_context(|| format!("FETCH {} without {name}", self.seq))?.number()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn responses(wire: &[u8], keep: Keep, buffer: usize) -> Vec<Response> {
        let mut r = BufReader::with_capacity(buffer, wire);
        let mut out = Vec::new();
        while !r.buffer().is_empty() || !r.get_ref().is_empty() {
            out.push(read_response(&mut r, keep).await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn literals_are_read_in_any_buffer_size() {
        let wire =
            b"* 1 FETCH (UID 7 BODY[] {12}\r\nSubject: x\r\n)\r\n* 2 FETCH (UID 9 BODY[] {0}\r\n)\r\nA1 OK done\r\n";
        for buffer in [1, 2, 5, 64] {
            let got = responses(wire, Keep::None, buffer).await;
            assert_eq!(got.len(), 3, "buffer {buffer}");
            assert_eq!(got[0].text, b"* 1 FETCH (UID 7 BODY[] {12})");
            assert_eq!((got[0].literals[0].len, got[0].literals[0].tail), (12, *b"\r\n"));
            assert!(got[0].literals[0].data.is_none());
            assert_eq!(got[1].literals[0].len, 0);
            assert_eq!(got[2].kind("A1"), Kind::Tagged(true));
            let kept = responses(wire, Keep::All, buffer).await;
            assert_eq!(kept[0].literals[0].data.as_deref(), Some(&b"Subject: x\r\n"[..]));
        }
    }

    #[tokio::test]
    async fn a_closed_connection_or_overlong_line_fails() {
        assert!(read_response(&mut &b"* OK half"[..], Keep::All).await.is_err());
        assert!(read_response(&mut &b"* 1 FETCH (BODY[] {10}\r\nshort"[..], Keep::All).await.is_err());
    }

    #[test]
    fn kinds() {
        let r = |t: &[u8]| Response { text: t.to_vec(), literals: Vec::new() };
        assert_eq!(r(b"* 3 EXISTS").kind("A1"), Kind::Untagged);
        assert_eq!(r(b"+ idling").kind("A1"), Kind::Continuation);
        assert_eq!(r(b"A1 NO [TRYCREATE] no").kind("A1"), Kind::Tagged(false));
        assert_eq!(r(b"A12 OK x").kind("A1"), Kind::Other);
    }

    #[test]
    fn fetch_items_and_envelope() {
        let response = Response {
            text: br#"* 4 FETCH (UID 17 FLAGS (\Seen) RFC822.SIZE 2048 ENVELOPE ("d" {9} (("A \"B\"" NIL "a" "b.c")) NIL NIL NIL NIL NIL NIL "<m>") BODY[HEADER.FIELDS (A B)] NIL)"#.to_vec(),
            literals: vec![Literal { len: 9, data: Some(b"milestone".to_vec()), tail: *b"ne" }],
        };
        let fetch = Fetch::parse(&response).unwrap().unwrap();
        assert_eq!((fetch.seq, fetch.number("uid").unwrap(), fetch.number("RFC822.SIZE").unwrap()), (4, 17, 2048));
        let Some(Value::List(envelope)) = fetch.item("ENVELOPE") else { panic!() };
        assert_eq!(envelope.len(), 10);
        assert_eq!(envelope[1].string(&response).unwrap(), b"milestone");
        let Value::List(from) = &envelope[2] else { panic!() };
        let Value::List(address) = &from[0] else { panic!() };
        assert_eq!(address[0], Value::Quoted(b"A \"B\"".to_vec()));
        assert_eq!(fetch.item("BODY[HEADER.FIELDS (A B)]"), Some(&Value::Atom(b"NIL")));
        let other = Response { text: b"* 3 EXISTS".to_vec(), literals: Vec::new() };
        assert!(Fetch::parse(&other).unwrap().is_none());
    }

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {2048}"), Some(2048));
        assert_eq!(literal_length(b"* OK {x}"), None);
        assert_eq!(literal_length(b"* OK }"), None);
        assert_eq!(literal_length(b"* OK fine"), None);
    }

    #[test]
    fn search_and_appenduid() {
        let r = |t: &[u8]| Response { text: t.to_vec(), literals: Vec::new() };
        assert_eq!(search_result(&[r(b"* SEARCH 9 2 40")]).unwrap(), [2, 9, 40]);
        assert_eq!(search_result(&[r(b"* SEARCH")]).unwrap(), Vec::<u32>::new());
        assert!(search_result(&[r(b"* 3 EXISTS")]).is_err());
        assert_eq!(append_uid(&r(b"A1 OK [APPENDUID 1795326956 3] APPEND completed")).unwrap(), (1795326956, 3));
        assert!(append_uid(&r(b"A1 OK APPEND completed")).is_err());
    }
}
