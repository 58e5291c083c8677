//! The `pop3` mode: a large mailbox read back over POP3.
//!
//! Each run fills alice's INBOX directly in the store (see
//! [`crate::mailbox`]) before the server starts, then:
//!
//! 1. idle sessions: after a short warm-up, reads the server's VmRSS, opens
//!    `--idle-sessions` connections that each read the greeting and stay
//!    unauthenticated (the maildrop lock allows one logged-in session per
//!    mailbox), waits, reads VmRSS again and reports the difference per
//!    session; then closes them. This comes first, while the server is
//!    fresh, so that buffers left from the RETR pass cannot hide the cost;
//! 2. one client logs in with USER/PASS (timed), sends STAT
//!    [`STAT_SAMPLES`] times one at a time (latency from write to reply)
//!    and checks count and octets against what was stored, then LIST and
//!    checks every size;
//! 3. RETR of every message on that connection, pipelined (CAPA
//!    PIPELINING) with `--window` commands outstanding, each response
//!    parsed fully: the `+OK n octets` line, the dot-unstuffed body up to
//!    the terminating `.`, its length checked against LIST's. Throughput is
//!    the sum of message sizes over the wall time of the whole mailbox;
//!    then the same strictly one command at a time (unless `--no-strict`);
//! 4. QUIT, and SIGTERM to the server.
//!
//! MB here is 10^6 octets (as the targets are stated); sizes given on the
//! command line take `k`/`m` suffixes as binary units, so `450MB` is
//! 450 MiB.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::mailbox::{self, Populated};
use crate::message::RECIPIENT;
use crate::server::{BenchServer, RssSampler, ServerSetup, wait_bounded};
use crate::stats::median;

/// How long the client waits for any one read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest status line accepted.
const MAX_STATUS_LINE: u64 = 4096;
/// STATs sent to measure its latency.
pub const STAT_SAMPLES: usize = 20;
/// The client's read buffer: large, so a big RETR takes few reads.
const READ_BUFFER: usize = 1024 * 1024;
/// Idle connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Connections opened and closed before the idle baseline is read.
const WARM_UP_SESSIONS: usize = 16;
/// How long the idle sessions sit before VmRSS is read again.
const IDLE_SETTLE: Duration = Duration::from_millis(1000);
/// The password the admin CLI gave alice.
const PASSWORD: &str = "bench-password";
/// Octets in an MB, as the targets count them.
const MB: f64 = 1_000_000.0;

/// Target: STAT answers in under this many milliseconds.
const TARGET_STAT_MS: f64 = 10.0;
/// Target: RETR streams at least this many MB/s.
const TARGET_RETR_MB_S: f64 = 500.0;
/// Target: an idle session costs under this many KiB.
const TARGET_IDLE_KIB: f64 = 64.0;

/// What a `pop3` run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Idle sessions to open.
    pub idle_sessions: usize,
    /// RETR commands outstanding at once in the pipelined pass.
    pub window: usize,
    /// Whether to also RETR strictly one at a time.
    pub strict: bool,
    /// Where to write `perf record` profiles of the pipelined RETR pass
    /// (`.runN` is appended).
    pub perf: Option<PathBuf>,
    /// The client part of a run must finish within this.
    pub limit: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Messages stored and their octets, and how long storing took.
    pub populate: Duration,
    /// Messages in the mailbox.
    pub messages: u64,
    /// Their total size.
    pub octets: u64,
    /// USER write to PASS reply.
    pub login: Duration,
    /// The first STAT after login.
    pub stat_first: Duration,
    /// Median of the STATs.
    pub stat_median: Duration,
    /// Slowest STAT.
    pub stat_max: Duration,
    /// Wall time of the pipelined RETR of every message.
    pub retr_pipelined: Duration,
    /// Wall time of the one-at-a-time RETR of every message.
    pub retr_strict: Option<Duration>,
    /// Peak VmRSS during the RETR passes, in KiB.
    pub retr_peak_kib: u64,
    /// Idle sessions opened, VmRSS before and after them, in KiB.
    pub idle: Option<IdleCost>,
    /// VmRSS right after start, in KiB.
    pub start_kib: u64,
    /// VmHWM before SIGTERM, in KiB.
    pub hwm_kib: u64,
    /// Time from SIGTERM to exit.
    pub shutdown: Duration,
}

/// The memory idle sessions cost.
#[derive(Debug, Clone, Copy)]
pub struct IdleCost {
    /// Sessions open at the second reading.
    pub sessions: usize,
    /// VmRSS before opening them, in KiB.
    pub before_kib: u64,
    /// VmRSS with them open, in KiB.
    pub after_kib: u64,
}

impl IdleCost {
    /// KiB per session (negative growth counts as 0).
    pub fn per_session_kib(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.sessions.max(1) as f64
    }
}

impl Report {
    /// MB/s of message data for a RETR pass of `wall`.
    fn mb_s(&self, wall: Duration) -> f64 {
        self.octets as f64 / MB / wall.as_secs_f64().max(1e-9)
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// Prints the run's figures.
    pub fn print(&self, run: usize, runs: usize) {
        println!(
            "run {run}/{runs}: {} messages, {:.1} MB, stored in {:.2} s",
            self.messages,
            self.octets as f64 / MB,
            self.populate.as_secs_f64()
        );
        if let Some(idle) = self.idle {
            println!(
                "  idle sessions: {} unauthenticated, VmRSS {:.1} -> {:.1} MiB = {:.1} KiB/session (target < {TARGET_IDLE_KIB} KiB)",
                idle.sessions,
                idle.before_kib as f64 / 1024.0,
                idle.after_kib as f64 / 1024.0,
                idle.per_session_kib()
            );
        }
        println!(
            "  login (USER..PASS reply) {:.1} ms; STAT first {:.2} ms, median {:.2} ms, max {:.2} ms of {STAT_SAMPLES} (target < {TARGET_STAT_MS} ms)",
            Self::ms(self.login),
            Self::ms(self.stat_first),
            Self::ms(self.stat_median),
            Self::ms(self.stat_max)
        );
        println!(
            "  RETR all, pipelined: {:.3} s = {:.1} MB/s (target >= {TARGET_RETR_MB_S} MB/s)",
            self.retr_pipelined.as_secs_f64(),
            self.mb_s(self.retr_pipelined)
        );
        if let Some(strict) = self.retr_strict {
            println!("  RETR all, one at a time: {:.3} s = {:.1} MB/s", strict.as_secs_f64(), self.mb_s(strict));
        }
        println!(
            "  server RSS: {:.1} MiB at start, peak during RETR {:.1} MiB, VmHWM {:.1} MiB; exited {:.3} s after SIGTERM",
            self.start_kib as f64 / 1024.0,
            self.retr_peak_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0,
            self.shutdown.as_secs_f64()
        );
    }
}

/// Prints one row per run, the medians, and the medians against the targets.
pub fn print_summary(reports: &[Report]) {
    const COLUMNS: usize = 7;
    println!(
        "{:<8}{:>11}{:>10}{:>10}{:>12}{:>12}{:>12}{:>10}",
        "run", "populate s", "login ms", "STAT ms", "RETR MB/s", "strict MB/s", "idle KiB/s.", "HWM MiB"
    );
    let cols = |r: &Report| -> [Option<f64>; COLUMNS] {
        [
            Some(r.populate.as_secs_f64()),
            Some(Report::ms(r.login)),
            Some(Report::ms(r.stat_median)),
            Some(r.mb_s(r.retr_pipelined)),
            r.retr_strict.map(|d| r.mb_s(d)),
            r.idle.map(|i| i.per_session_kib()),
            Some(r.hwm_kib as f64 / 1024.0),
        ]
    };
    let row = |label: &str, c: &[Option<f64>; COLUMNS]| {
        let f = |v: Option<f64>, width: usize, prec: usize| match v {
            Some(v) => format!("{v:>width$.prec$}"),
            None => format!("{:>width$}", "-"),
        };
        println!(
            "{label:<8}{}{}{}{}{}{}{}",
            f(c[0], 11, 2),
            f(c[1], 10, 1),
            f(c[2], 10, 2),
            f(c[3], 12, 1),
            f(c[4], 12, 1),
            f(c[5], 12, 1),
            f(c[6], 10, 1)
        );
    };
    let all: Vec<[Option<f64>; COLUMNS]> = reports.iter().map(cols).collect();
    for (i, c) in all.iter().enumerate() {
        row(&(i + 1).to_string(), c);
    }
    let mut med = [None; COLUMNS];
    for (k, m) in med.iter_mut().enumerate() {
        *m = median(all.iter().filter_map(|c| c[k]));
    }
    if reports.len() > 1 {
        row("median", &med);
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("targets (on the medians):");
    if let Some(stat) = med[2] {
        println!("  STAT {stat:.2} ms, target < {TARGET_STAT_MS} ms: {}", verdict(stat < TARGET_STAT_MS));
    }
    if let Some(retr) = med[3] {
        println!("  RETR {retr:.1} MB/s, target >= {TARGET_RETR_MB_S} MB/s: {}", verdict(retr >= TARGET_RETR_MB_S));
    }
    match med[5] {
        Some(idle) => println!(
            "  idle {idle:.1} KiB/session, target < {TARGET_IDLE_KIB} KiB: {}",
            verdict(idle < TARGET_IDLE_KIB)
        ),
        None => println!("  idle: not measured (--idle-sessions 0)"),
    }
}

/// One run: populate, start, measure, stop. Returns the server too, so that
/// its directory outlives every run (see `main`).
pub async fn run(setup: &ServerSetup, options: &Options, sizes: &[usize], run: usize) -> Result<(Report, BenchServer)> {
    let prepared = BenchServer::prepare(setup)?;
    if run == 1 {
        let fs = crate::server::filesystem_type(prepared.dir()).unwrap_or_else(|| "unknown".to_string());
        println!("data directory: {} (filesystem {fs})", prepared.dir().display());
    }
    let populated = mailbox::populate(prepared.data_dir(), sizes).await?;
    let mut server = BenchServer::launch(prepared)?;
    let addr = server.pop3_addr().context("the server has no POP3 listener")?;
    let start_kib = server.status_kib("VmRSS")?;

    let perf = options.perf.as_ref().map(|p| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".run{run}"));
        p.with_file_name(name)
    });
    let measured = timeout(options.limit, measure(&server, addr, options, perf.as_deref(), &populated)).await;
    let alive = server.ensure_running();
    let measured = match (measured, alive) {
        (Ok(Ok(m)), Ok(())) => m,
        (Ok(Err(e)), _) => return Err(e),
        (Err(_), _) => bail!("the run did not finish within {:?} (raise --timeout)", options.limit),
        (Ok(Ok(_)), Err(e)) => return Err(e),
    };
    let hwm_kib = server.status_kib("VmHWM")?;
    let shutdown = server.stop()?;
    if let Some((count, tail)) = server.stderr_summary() {
        eprintln!("note: the server logged {count} line(s) at warn or above; the last:\n    {tail}");
    }
    let report = Report {
        populate: populated.took,
        messages: populated.count,
        octets: populated.octets,
        login: measured.login,
        stat_first: measured.stats[0],
        stat_median: measured.stat_median(),
        stat_max: measured.stats.iter().copied().max().unwrap_or_default(),
        retr_pipelined: measured.pipelined,
        retr_strict: measured.strict,
        retr_peak_kib: measured.retr_peak_kib,
        idle: measured.idle,
        start_kib,
        hwm_kib,
        shutdown,
    };
    Ok((report, server))
}

/// What the client phases measured.
struct Measured {
    idle: Option<IdleCost>,
    login: Duration,
    stats: Vec<Duration>,
    pipelined: Duration,
    strict: Option<Duration>,
    retr_peak_kib: u64,
}

impl Measured {
    fn stat_median(&self) -> Duration {
        let secs = median(self.stats.iter().map(Duration::as_secs_f64)).unwrap_or(0.0);
        Duration::from_secs_f64(secs)
    }
}

/// The client phases of a run.
async fn measure(
    server: &BenchServer,
    addr: SocketAddr,
    options: &Options,
    perf: Option<&Path>,
    populated: &Populated,
) -> Result<Measured> {
    let idle = if options.idle_sessions > 0 {
        Some(idle_sessions(server, addr, options.idle_sessions).await.context("idle sessions")?)
    } else {
        None
    };

    let mut conn = Pop3Conn::connect(addr).await?;
    let capa = conn.command_multi("CAPA").await.context("CAPA")?;
    let pipelining = capa.split(|&b| b == b'\n').any(|l| l.trim_ascii().eq_ignore_ascii_case(b"PIPELINING"));
    ensure!(pipelining || options.window == 1, "the server does not advertise PIPELINING; use --window 1");

    let started = Instant::now();
    conn.command(&format!("USER {RECIPIENT}")).await.context("USER")?;
    conn.command(&format!("PASS {PASSWORD}")).await.context("PASS")?;
    let login = started.elapsed();

    let mut stats = Vec::with_capacity(STAT_SAMPLES);
    for _ in 0..STAT_SAMPLES {
        let started = Instant::now();
        let line = conn.command("STAT").await.context("STAT")?;
        stats.push(started.elapsed());
        let (count, octets) = parse_stat(&line)?;
        ensure!(
            (count, octets) == (populated.count, populated.octets),
            "STAT says {count} messages of {octets} octets; {} of {} were stored",
            populated.count,
            populated.octets
        );
    }

    let list = conn.command_multi("LIST").await.context("LIST")?;
    let sizes = parse_list(&list, populated.count)?;
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    ensure!(sorted == populated.sorted_sizes, "LIST's sizes differ from the sizes stored");

    let sampler = RssSampler::start(server.pid());
    let perf = match perf {
        Some(path) => Some(Perf::start(path, server.pid())?),
        None => None,
    };
    let pipelined = conn.retrieve_all(&sizes, options.window).await.context("pipelined RETR");
    if let Some(perf) = perf {
        perf.finish()?;
    }
    let pipelined = pipelined?;
    let strict =
        if options.strict { Some(conn.retrieve_all(&sizes, 1).await.context("one-at-a-time RETR")?) } else { None };
    let retr_peak_kib = sampler.finish()?.peak_kib;

    conn.command("QUIT").await.context("QUIT")?;
    Ok(Measured { idle, login, stats, pipelined, strict, retr_peak_kib })
}

/// Opens `count` unauthenticated sessions and measures what they cost.
async fn idle_sessions(server: &BenchServer, addr: SocketAddr, count: usize) -> Result<IdleCost> {
    // Warm-up: first-connection allocations are not a per-session cost.
    drop(open_sessions(addr, WARM_UP_SESSIONS.min(count)).await?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_kib = server.status_kib("VmRSS")?;
    let sessions = open_sessions(addr, count).await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let after_kib = server.status_kib("VmRSS")?;
    // Every session must still be open and unanswered: a refused or closed
    // one would make the per-session figure meaningless.
    for (i, s) in sessions.iter().enumerate() {
        let mut probe = [0u8; 1];
        match s.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(0) => bail!("idle session {i} was closed by the server"),
            Ok(_) => bail!("idle session {i} received unexpected data"),
            Err(e) => bail!("idle session {i}: {e}"),
        }
    }
    drop(sessions);
    // Let the server notice the closes before the next phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(IdleCost { sessions: count, before_kib, after_kib })
}

/// Opens `count` connections, each having read a positive greeting.
async fn open_sessions(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>> {
    let mut open = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while open.len() < count {
        while started < count && tasks.len() < CONNECT_CONCURRENCY {
            started += 1;
            tasks.spawn(async move {
                let mut stream = bounded("connect", TcpStream::connect(addr))
                    .await?
                    .with_context(|| format!("cannot connect to {addr}"))?;
                let mut r = BufReader::new(&mut stream);
                let greeting = read_status(&mut r).await.context("reading the greeting")?;
                ensure!(r.buffer().is_empty(), "data after the greeting");
                drop(r);
                ensure!(greeting.starts_with("+OK"), "greeting: {greeting}");
                anyhow::Ok(stream)
            });
        }
        let Some(done) = tasks.join_next().await else { break };
        let stream = done.context("a connecting task panicked")?.with_context(|| format!("session {}", open.len()))?;
        open.push(stream);
    }
    Ok(open)
}

/// One POP3 client connection.
struct Pop3Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    /// Reused for each message's unstuffed body.
    body: Vec<u8>,
}

impl Pop3Conn {
    /// Connects and reads the greeting.
    async fn connect(addr: SocketAddr) -> Result<Pop3Conn> {
        let stream =
            bounded("connect", TcpStream::connect(addr)).await?.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let (read, write) = stream.into_split();
        let mut conn = Pop3Conn {
            r: BufReader::with_capacity(READ_BUFFER, read),
            w: write,
            body: Vec::with_capacity(mailbox::MAX_MESSAGE + 4096),
        };
        let greeting = read_status(&mut conn.r).await.context("reading the greeting")?;
        ensure!(greeting.starts_with("+OK"), "greeting: {greeting}");
        Ok(conn)
    }

    /// Sends a command and reads its `+OK` line (an `-ERR` fails).
    async fn command(&mut self, command: &str) -> Result<String> {
        self.send(format!("{command}\r\n").as_bytes()).await?;
        let line = read_status(&mut self.r).await?;
        ensure!(line.starts_with("+OK"), "{}: {line}", command.split(' ').next().unwrap_or(command));
        Ok(line)
    }

    /// Sends a command with a multi-line answer; returns the unstuffed body.
    async fn command_multi(&mut self, command: &str) -> Result<Vec<u8>> {
        self.command(command).await?;
        let mut body = Vec::new();
        read_multi_line(&mut self.r, &mut body).await?;
        Ok(body)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        bounded("write", self.w.write_all(bytes)).await?.context("cannot write to the server")
    }

    /// RETRs messages 1..=sizes.len() with up to `window` commands
    /// outstanding, checking each; returns the wall time.
    async fn retrieve_all(&mut self, sizes: &[u64], window: usize) -> Result<Duration> {
        let started = Instant::now();
        let count = sizes.len();
        let mut next = 1;
        let mut first = String::new();
        while next <= count && next <= window {
            first.push_str(&format!("RETR {next}\r\n"));
            next += 1;
        }
        self.send(first.as_bytes()).await?;
        for (i, &size) in sizes.iter().enumerate() {
            let msg = i + 1;
            let line = read_status(&mut self.r).await.with_context(|| format!("RETR {msg}"))?;
            ensure!(line.starts_with("+OK"), "RETR {msg}: {line}");
            if next <= count {
                self.send(format!("RETR {next}\r\n").as_bytes()).await?;
                next += 1;
            }
            let announced = line.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok());
            ensure!(announced == Some(size), "RETR {msg}: {line:?}, but LIST said {size} octets");
            self.body.clear();
            read_multi_line(&mut self.r, &mut self.body).await.with_context(|| format!("RETR {msg}"))?;
            ensure!(
                self.body.len() as u64 == size,
                "RETR {msg}: {} octets after unstuffing, LIST said {size}",
                self.body.len()
            );
            ensure!(self.body.ends_with(b"\r\n"), "RETR {msg}: the message does not end with CRLF");
        }
        Ok(started.elapsed())
    }
}

/// Reads one status line, bounded in time and length, without its CRLF.
async fn read_status<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = bounded("waiting for a reply", (&mut *r).take(MAX_STATUS_LINE).read_until(b'\n', &mut buf)).await??;
    ensure!(n > 0, "the server closed the connection");
    ensure!(buf.ends_with(b"\n"), "status line longer than {MAX_STATUS_LINE} octets or cut short");
    let line = String::from_utf8_lossy(&buf);
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads a multi-line body up to its terminating `.` line, appending it
/// to `out` with the byte-stuffing removed (RFC 1939 §3).
async fn read_multi_line<R: AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> Result<()> {
    let mut unstuffer = Unstuffer::default();
    loop {
        let chunk = bounded("reading a multi-line response", r.fill_buf()).await??;
        ensure!(!chunk.is_empty(), "the server closed the connection inside a multi-line response");
        let (used, done) = unstuffer.feed(chunk, out);
        r.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// Where the unstuffer is within a line.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum LineState {
    /// At the start of a line.
    #[default]
    Start,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Middle,
}

/// A resumable parser of a dot-stuffed multi-line body.
#[derive(Debug, Default)]
struct Unstuffer {
    state: LineState,
}

impl Unstuffer {
    /// Consumes bytes of `chunk`, appending content to `out`; returns how
    /// many were consumed and whether the terminating `.CRLF` was among
    /// them (bytes after it are left alone).
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < chunk.len() {
            match self.state {
                LineState::Start => {
                    if chunk[i] == b'.' {
                        self.state = LineState::Dot;
                        i += 1;
                    } else {
                        self.state = LineState::Middle;
                    }
                }
                LineState::Dot => {
                    if chunk[i] == b'\r' {
                        self.state = LineState::DotCr;
                        i += 1;
                    } else {
                        // A stuffed dot: dropped; the rest is content.
                        self.state = LineState::Middle;
                    }
                }
                LineState::DotCr => {
                    if chunk[i] == b'\n' {
                        self.state = LineState::Start;
                        return (i + 1, true);
                    }
                    // `.` CR inside a line: the dot was stuffing.
                    out.push(b'\r');
                    self.state = LineState::Middle;
                }
                LineState::Middle => match chunk[i..].iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        out.extend_from_slice(&chunk[i..=i + p]);
                        i += p + 1;
                        self.state = LineState::Start;
                    }
                    None => {
                        out.extend_from_slice(&chunk[i..]);
                        i = chunk.len();
                    }
                },
            }
        }
        (i, false)
    }
}

/// `+OK count octets`.
fn parse_stat(line: &str) -> Result<(u64, u64)> {
    let mut words = line.split_whitespace().skip(1);
    let mut number = || words.next().and_then(|w| w.parse::<u64>().ok());
    match (number(), number()) {
        (Some(count), Some(octets)) => Ok((count, octets)),
        _ => bail!("malformed STAT reply {line:?}"),
    }
}

/// LIST's `n size` lines, checked to number 1..=count in order.
fn parse_list(body: &[u8], count: u64) -> Result<Vec<u64>> {
    let text = std::str::from_utf8(body).context("LIST is not UTF-8")?;
    let mut sizes = Vec::with_capacity(count as usize);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(n), Some(size)) = (words.next(), words.next()) else { bail!("malformed LIST line {line:?}") };
        let n: u64 = n.parse().with_context(|| format!("malformed LIST line {line:?}"))?;
        ensure!(n == sizes.len() as u64 + 1, "LIST line {line:?} out of order");
        sizes.push(size.parse().with_context(|| format!("malformed LIST line {line:?}"))?);
    }
    ensure!(sizes.len() as u64 == count, "LIST has {} messages, {count} were stored", sizes.len());
    Ok(sizes)
}

/// Runs `f` bounded by [`IO_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    match timeout(IO_TIMEOUT, f).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("{what} timed out after {IO_TIMEOUT:?}"),
    }
}

/// `perf record -g` attached to the server for the pipelined RETR pass.
struct Perf {
    child: Child,
    output: PathBuf,
}

impl Perf {
    /// How long perf may take to write its data after SIGINT.
    const STOP_TIMEOUT: Duration = Duration::from_secs(60);

    fn start(path: &Path, pid: u32) -> Result<Perf> {
        let mut log_path = path.as_os_str().to_os_string();
        log_path.push(".log");
        let log_path = PathBuf::from(log_path);
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new("perf")
            .args(["record", "-g", "-F", "2999", "-p", &pid.to_string(), "-o"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot run `perf record` (is perf installed?)")?;
        // Let it attach before the measured pass starts.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Perf { child, output: path.to_path_buf() })
    }

    fn finish(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().context("cannot run `kill -INT` on perf")?;
        ensure!(status.success(), "`kill -INT {pid}` failed ({status})");
        match wait_bounded(&mut self.child, Self::STOP_TIMEOUT)? {
            Some(_) => println!(
                "  perf profile of the server during pipelined RETR: {} (perf report -i {} --no-children)",
                self.output.display(),
                self.output.display()
            ),
            None => eprintln!("WARNING: perf did not finish within {:?}; killed it", Self::STOP_TIMEOUT),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff_in_pieces(wire: &[u8], piece: usize) -> (Vec<u8>, usize) {
        let mut u = Unstuffer::default();
        let mut out = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let end = (at + piece).min(wire.len());
            let (used, done) = u.feed(&wire[at..end], &mut out);
            at += used;
            if done {
                return (out, at);
            }
        }
        panic!("no terminator");
    }

    #[test]
    fn unstuffing_in_any_pieces() {
        let wire = b"Subject: x\r\n\r\n..hidden\r\n..\r\n.\rodd\r\nend\r\n.\r\n+OK next";
        for piece in 1..wire.len() {
            let (out, used) = unstuff_in_pieces(wire, piece);
            assert_eq!(out, b"Subject: x\r\n\r\n.hidden\r\n.\r\n\rodd\r\nend\r\n", "piece {piece}");
            assert_eq!(&wire[used..], b"+OK next");
        }
        let (out, used) = unstuff_in_pieces(b".\r\n", 3);
        assert!(out.is_empty());
        assert_eq!(used, 3);
    }

    #[test]
    fn unstuffing_inverts_stuffing() {
        let text = crate::mailbox::message(5, 10, 20_000, "d").unwrap();
        let mut wire = crate::message::dot_stuff(&text);
        wire.extend_from_slice(b".\r\n");
        assert_eq!(unstuff_in_pieces(&wire, 4096).0, text);
    }

    #[test]
    fn stat_and_list() {
        assert_eq!(parse_stat("+OK 2 320").unwrap(), (2, 320));
        assert!(parse_stat("+OK two").is_err());
        assert_eq!(parse_list(b"1 120\r\n2 200\r\n", 2).unwrap(), [120, 200]);
        assert!(parse_list(b"2 120\r\n", 1).is_err());
        assert!(parse_list(b"1 120\r\n", 2).is_err());
    }

    #[tokio::test]
    async fn multi_line_reader_leaves_the_next_reply() {
        let mut r = BufReader::with_capacity(7, &b"a\r\n..b\r\n.\r\n+OK 1 octets\r\n"[..]);
        let mut out = Vec::new();
        read_multi_line(&mut r, &mut out).await.unwrap();
        assert_eq!(out, b"a\r\n.b\r\n");
        assert_eq!(read_status(&mut r).await.unwrap(), "+OK 1 octets");
    }
}
