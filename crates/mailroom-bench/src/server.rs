//! One `mailroom serve` process on a fresh data directory: finding or
//! building the binary, configuring it, starting it, sampling its memory,
//! stopping it with SIGTERM and counting what it stored.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use mailroom_store::{AccountRecord, AnyStore, MailStore, StoreOptions};
use mailroom_types::{Address, SystemClock};
use tempfile::TempDir;

use crate::message::RECIPIENT;

/// The local domain the benchmark creates.
pub const DOMAIN: &str = "example.test";
/// alice's password.
pub const PASSWORD: &str = "bench-password";
/// How long an admin command (`domain add`, `user add`) may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to print its listening line.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The `shutdown_grace` written into the configuration.
const SHUTDOWN_GRACE_SECS: u64 = 10;
/// How long after SIGTERM the server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(SHUTDOWN_GRACE_SECS + 20);
/// The server's self-signed certificate under its data directory
/// (`mailroom_services::tls::SELF_SIGNED_DIR` and `SELF_SIGNED_CERT`),
/// generated on its first start for its hostname and `localhost`.
const SELF_SIGNED_CERT: &str = "tls/self-signed-cert.pem";
/// The interval of RSS samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// The server binary to benchmark: `explicit` if given, else `mailroom` next
/// to this executable, built with `cargo build --release -p mailroom` when
/// missing.
pub fn locate_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--server {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let dir = exe.parent().context("this executable has no parent directory")?;
    let beside = dir.join("mailroom");
    if beside.is_file() {
        return Ok(beside);
    }
    // A debug build of the bench lives in target/debug; the release build
    // of the server lands in target/release, of the target directory this
    // executable is in or else of the workspace it was built from.
    let workspace_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let release = [dir.parent().map(|target| target.join("release")), Some(workspace_target.join("release"))]
        .into_iter()
        .flatten()
        .map(|d| d.join("mailroom"));
    println!("server binary not found at {}; running `cargo build --release -p mailroom`", beside.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(&cargo);
    build.args(["build", "--release", "-p", "mailroom"]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    if manifest.is_file() {
        build.arg("--manifest-path").arg(manifest);
    }
    let status = build.status().with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    ensure!(
        status.success(),
        "`cargo build --release -p mailroom` failed ({status}); pass --server PATH to use a built binary"
    );
    for candidate in std::iter::once(beside.clone()).chain(release) {
        if candidate.is_file() {
            return Ok(candidate.canonicalize().unwrap_or(candidate));
        }
    }
    bail!("`cargo build --release -p mailroom` succeeded but {} is still missing; pass --server PATH", beside.display())
}

/// What the benchmark needs to configure the server for.
#[derive(Debug, Clone)]
pub struct ServerSetup {
    /// The `mailroom` binary.
    pub binary: PathBuf,
    /// Where to create the temporary directory (`None`: the system default).
    pub parent_dir: Option<PathBuf>,
    /// Concurrent client connections, all from 127.0.0.1.
    pub connections: usize,
    /// The message size in octets.
    pub message_size: usize,
    /// Whether to listen for POP3 too (and wait for its listening line).
    pub pop3: bool,
    /// Whether to listen for IMAP too (and wait for its listening line).
    pub imap: bool,
    /// Whether to listen for submission too (and wait for its listening
    /// line).
    pub submission: bool,
    /// Whether to serve the webmail over plain HTTP too (and wait for its
    /// `webmail listening on http://ADDR/` line).
    pub http: bool,
    /// TOML appended to the generated configuration (tables of its own,
    /// such as `[submission]` or `[delivery.routes]`).
    pub extra_config: String,
}

impl ServerSetup {
    /// The SMTP listener only; a mode turns on what else it measures with
    /// struct update syntax (`ServerSetup { imap: true, ..ServerSetup::new(..) }`).
    pub fn new(binary: PathBuf, parent_dir: Option<PathBuf>, connections: usize, message_size: usize) -> ServerSetup {
        ServerSetup {
            binary,
            parent_dir,
            connections,
            message_size,
            pop3: false,
            imap: false,
            submission: false,
            http: false,
            extra_config: String::new(),
        }
    }
}

/// A configured data directory with the domain and alice added, whose
/// server is not started yet: the store may be filled directly meanwhile.
/// Dropping it removes the directory.
pub struct Prepared {
    binary: PathBuf,
    config: PathBuf,
    data_dir: PathBuf,
    pop3: bool,
    imap: bool,
    submission: bool,
    http: bool,
    dir: TempDir,
}

impl Prepared {
    /// The directory holding the server's database and blobs.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The temporary directory everything of this run lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A running (or stopped) server with its temporary directory. Dropping it
/// kills a server still running and removes the directory.
pub struct BenchServer {
    child: Child,
    addr: SocketAddr,
    pop3_addr: Option<SocketAddr>,
    imap_addr: Option<SocketAddr>,
    submission_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    /// What [`BenchServer::restart`] needs to start the same server again.
    binary: PathBuf,
    config: PathBuf,
    /// The listeners whose `PROTO listening on ADDR` lines are awaited.
    wanted: Vec<&'static str>,
    data_dir: PathBuf,
    stderr_log: PathBuf,
    stopped: bool,
    // Declared last so the directory outlives the process using it.
    dir: TempDir,
}

impl BenchServer {
    /// Creates a temporary directory with a configuration file, adds the
    /// domain and alice with the admin CLI, starts `serve` and waits for its
    /// `smtp listening on ADDR` line (and the `pop3` one when configured).
    pub fn start(setup: &ServerSetup) -> Result<BenchServer> {
        BenchServer::launch(BenchServer::prepare(setup)?)
    }

    /// Creates a temporary directory with a configuration file and adds the
    /// domain and alice with the admin CLI; the server is not started.
    pub fn prepare(setup: &ServerSetup) -> Result<Prepared> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("mailroom-bench-");
        let dir = match &setup.parent_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("cannot create a temporary directory")?;
        let data_dir = dir.path().join("data");
        let config = dir.path().join("mailroom.toml");
        // Room above the client's connections, so the limiter never refuses
        // one of them; and a size limit above the message size.
        let per_ip = setup.connections + 10;
        let max_size = (setup.message_size + 64 * 1024).max(25 * 1024 * 1024);
        let text = format!(
            "hostname = \"bench.test\"\n\
             data_dir = {}\n\
             shutdown_grace = \"{SHUTDOWN_GRACE_SECS}s\"\n\
             [listen]\n\
             smtp = \"127.0.0.1:0\"\n\
             {}\
             [limits]\n\
             max_connections = {}\n\
             max_connections_per_ip = {per_ip}\n\
             max_message_size = {max_size}\n\
             [log]\n\
             filter = \"warn\"\n\
             {AUTHENTICATION_OFF}\
             {}",
            toml_string(&data_dir.to_string_lossy()),
            listeners(setup),
            per_ip.max(1000),
            setup.extra_config,
        );
        std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;

        admin(&setup.binary, &config, dir.path(), &["domain", "add", DOMAIN], None)?;
        admin(
            &setup.binary,
            &config,
            dir.path(),
            &["user", "add", RECIPIENT, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )?;

        Ok(Prepared {
            binary: setup.binary.clone(),
            config,
            data_dir,
            pop3: setup.pop3,
            imap: setup.imap,
            submission: setup.submission,
            http: setup.http,
            dir,
        })
    }

    /// Starts `serve` on a prepared directory and waits for its listening
    /// lines.
    pub fn launch(prepared: Prepared) -> Result<BenchServer> {
        let Prepared { binary, config, data_dir, pop3, imap, submission, http, dir } = prepared;
        let stderr_log = dir.path().join("server.stderr");
        let (child, rx) = spawn_serve(&binary, &config, &stderr_log)?;
        let mut wanted = vec!["smtp"];
        if pop3 {
            wanted.push("pop3");
        }
        if imap {
            wanted.push("imap");
        }
        if submission {
            wanted.push("submission");
        }
        if http {
            wanted.push("http");
        }
        let mut server = BenchServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pop3_addr: None,
            imap_addr: None,
            submission_addr: None,
            http_addr: None,
            binary,
            config,
            wanted,
            data_dir,
            stderr_log,
            stopped: false,
            dir,
        };
        server.await_listening(&rx)?;
        Ok(server)
    }

    /// Stops the server (SIGTERM, as [`BenchServer::stop`]) if it is running
    /// and starts it again on the same data directory, so that a phase can
    /// begin with a fresh process (no caches or freed-but-kept memory left
    /// by an earlier phase) over the same stored mail. Returns how long the
    /// stop took. The listeners get new ephemeral ports.
    pub fn restart(&mut self) -> Result<Duration> {
        let shutdown = if self.stopped { Duration::ZERO } else { self.stop()? };
        let (child, rx) = spawn_serve(&self.binary, &self.config, &self.stderr_log)?;
        self.child = child;
        self.stopped = false;
        self.await_listening(&rx)?;
        Ok(shutdown)
    }

    /// Waits for the `PROTO listening on ADDR` line of every wanted listener
    /// and records the addresses.
    fn await_listening(&mut self, rx: &mpsc::Receiver<(&'static str, String)>) -> Result<()> {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let mut missing = self.wanted.clone();
        while !missing.is_empty() {
            let expected = format!("`{} listening on`", missing[0]);
            let (proto, line) = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(got) => got,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the server printed no {expected} line within {LISTEN_TIMEOUT:?}{}", self.stderr_tail())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    self.stopped = true;
                    bail!(
                        "the server exited ({}) without printing {expected}{}",
                        status.map_or_else(|| "unknown status".to_string(), |s| s.to_string()),
                        self.stderr_tail()
                    )
                }
            };
            let addr: SocketAddr = line.parse().with_context(|| format!("bad {proto} listening address {line:?}"))?;
            ensure!(addr.ip().is_loopback(), "the server listens for {proto} on {addr} instead of loopback");
            match proto {
                "pop3" => self.pop3_addr = Some(addr),
                "imap" => self.imap_addr = Some(addr),
                "submission" => self.submission_addr = Some(addr),
                "http" => self.http_addr = Some(addr),
                _ => self.addr = addr,
            }
            missing.retain(|m| *m != proto);
        }
        Ok(())
    }

    /// The IMAP listener's address, when IMAP was configured.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap_addr
    }

    /// The submission listener's address, when submission was configured.
    pub fn submission_addr(&self) -> Option<SocketAddr> {
        self.submission_addr
    }

    /// The webmail's plain HTTP listener's address, when configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The self-signed certificate the server generated on its first start
    /// (it presents it for STARTTLS, having no `[tls]` configured).
    pub fn self_signed_cert(&self) -> PathBuf {
        self.data_dir.join(SELF_SIGNED_CERT)
    }

    /// The POP3 listener's address, when POP3 was configured.
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.pop3_addr
    }

    /// The SMTP listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding the server's database and blobs.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The temporary directory everything of this run lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> Result<u64> {
        status_kib(self.pid(), field).with_context(|| format!("cannot read {field} of the server (pid {})", self.pid()))
    }

    /// Fails, with the exit status and the end of its stderr, if the server
    /// is no longer running.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("cannot check on the server")? {
            self.stopped = true;
            bail!("the server exited during the load ({status}){}", self.stderr_tail());
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for a graceful exit; returns how long it took.
    /// Kills the server if it is still running after a bound.
    pub fn stop(&mut self) -> Result<Duration> {
        let pid = self.pid().to_string();
        let start = Instant::now();
        let status =
            Command::new("kill").args(["-TERM", &pid]).status().context("cannot run `kill -TERM` on the server")?;
        ensure!(status.success(), "`kill -TERM {pid}` failed ({status})");
        let exit = wait_bounded(&mut self.child, STOP_TIMEOUT)?;
        self.stopped = true;
        let took = start.elapsed();
        match exit {
            None => {
                bail!("the server did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it{}", self.stderr_tail())
            }
            Some(status) if !status.success() => {
                eprintln!("WARNING: the server exited with {status} after SIGTERM{}", self.stderr_tail());
            }
            Some(_) => {}
        }
        Ok(took)
    }

    /// What the server wrote to stderr (its warnings and errors), if
    /// anything: `(line count, last lines)`.
    pub fn stderr_summary(&self) -> Option<(usize, String)> {
        let text = std::fs::read_to_string(&self.stderr_log).ok()?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return None;
        }
        let tail = lines[lines.len().saturating_sub(5)..].join("\n    ");
        Some((lines.len(), tail))
    }

    /// The last lines of the server's stderr, formatted to end an error.
    fn stderr_tail(&self) -> String {
        match self.stderr_summary() {
            Some((_, tail)) => format!("; server stderr ends with:\n    {tail}"),
            None => "; the server wrote nothing to stderr".to_string(),
        }
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if !self.stopped && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Inbound SPF, DKIM and DMARC checks ask DNS about every message: a
/// benchmark talks only to loopback, and measures the accept path itself.
const AUTHENTICATION_OFF: &str = "[authentication]\nspf = false\ndkim = false\ndmarc = false\n";

/// The `[listen]` lines beside `smtp` that `setup` asks for.
fn listeners(setup: &ServerSetup) -> String {
    let mut lines = String::new();
    if setup.pop3 {
        lines.push_str("pop3 = \"127.0.0.1:0\"\n");
    }
    if setup.imap {
        lines.push_str("imap = \"127.0.0.1:0\"\n");
    }
    if setup.submission {
        lines.push_str("submission = \"127.0.0.1:0\"\n");
    }
    if setup.http {
        lines.push_str("http = \"127.0.0.1:0\"\n");
    }
    lines
}

/// Starts `binary serve`, its stderr appended to `stderr_log` (so that a
/// restart keeps what the earlier process logged); the receiver gets each
/// `PROTO listening on ADDR` line it prints (for the webmail's
/// `webmail listening on http://ADDR/`, as `("http", ADDR)`).
fn spawn_serve(
    binary: &Path,
    config: &Path,
    stderr_log: &Path,
) -> Result<(Child, mpsc::Receiver<(&'static str, String)>)> {
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(stderr_log)
        .with_context(|| format!("cannot create {}", stderr_log.display()))?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start {} serve", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads until the server exits, so its stdout never blocks.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            for proto in ["smtp", "pop3", "imap", "submission"] {
                if let Some(addr) = line.strip_prefix(proto).and_then(|l| l.strip_prefix(" listening on ")) {
                    let _ = tx.send((proto, addr.to_string()));
                }
            }
            if let Some(addr) = line.strip_prefix("webmail listening on http://") {
                let _ = tx.send(("http", addr.trim_end_matches('/').to_string()));
            }
        }
    });
    Ok((child, rx))
}

/// Runs one admin subcommand of the server binary, bounded in time; its
/// output goes to files in `dir` and is shown on failure.
fn admin(binary: &Path, config: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<()> {
    let what = format!("mailroom {}", args.join(" "));
    let out_path = dir.join("admin.out");
    let out = File::create(&out_path).with_context(|| format!("cannot create {}", out_path.display()))?;
    let err = out.try_clone()?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run `{what}` ({})", binary.display()))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("no stdin pipe")?;
        pipe.write_all(input.as_bytes()).with_context(|| format!("cannot write to `{what}`"))?;
    }
    let status = wait_bounded(&mut child, ADMIN_TIMEOUT)?;
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        None => bail!("`{what}` did not finish within {ADMIN_TIMEOUT:?}; killed it. Output:\n{output}"),
        Some(s) if !s.success() => bail!("`{what}` failed ({s}):\n{output}"),
        Some(_) => Ok(()),
    }
}

/// Waits for a child to exit for at most `limit`; kills it and returns
/// `None` past that.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for a child process")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A field of `/proc/PID/status` in KiB; `None` if the process is gone or
/// the field absent.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU time of the threads process `pid` has now (`self`: this one), from
/// the first field of each `/proc/PID/task/TID/schedstat` (nanoseconds on
/// a CPU); zero where that is unavailable. Threads that have exited are not
/// counted.
pub fn cpu_of(pid: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// What the server and the host spent over a span of a run: the server's
/// CPU time, and the share of the host's CPU time the hypervisor took for
/// other guests (steal), which is what makes one run differ from the next
/// on a shared machine.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    server_cpu: Duration,
    host: HostTicks,
    pid: u32,
}

/// `/proc/stat`'s first line: all CPU ticks, and those stolen.
#[derive(Debug, Clone, Copy, Default)]
struct HostTicks {
    total: u64,
    steal: u64,
}

impl HostTicks {
    fn now() -> HostTicks {
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return HostTicks::default() };
        let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return HostTicks::default() };
        // user nice system idle iowait irq softirq steal guest guest_nice;
        // guest time is already counted in user and nice.
        let ticks: Vec<u64> = line.split_whitespace().skip(1).take(8).filter_map(|t| t.parse().ok()).collect();
        HostTicks { total: ticks.iter().sum(), steal: ticks.get(7).copied().unwrap_or(0) }
    }
}

/// [`Usage::since`]: the figures of one span.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// The server's CPU time, all threads.
    pub server_cpu: Duration,
    /// Percent of the host's CPU time stolen by the hypervisor.
    pub steal_pct: f64,
}

impl Usage {
    /// Starts a span for server `pid`.
    pub fn start(pid: u32) -> Usage {
        Usage { server_cpu: cpu_of(&pid.to_string()), host: HostTicks::now(), pid }
    }

    /// What was spent since [`Usage::start`]; call it before the server
    /// stops, as an exited server's CPU time is gone.
    pub fn since(&self) -> Spent {
        let host = HostTicks::now();
        let total = host.total.saturating_sub(self.host.total);
        let steal = host.steal.saturating_sub(self.host.steal);
        Spent {
            server_cpu: cpu_of(&self.pid.to_string()).saturating_sub(self.server_cpu),
            steal_pct: if total == 0 { 0.0 } else { 100.0 * steal as f64 / total as f64 },
        }
    }
}

/// The peak of the samples an [`RssSampler`] took.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssSamples {
    /// The highest VmRSS seen, in KiB.
    pub peak_kib: u64,
    /// How many samples were taken.
    pub count: u64,
}

/// Samples a process's VmRSS every [`SAMPLE_INTERVAL`] on its own thread.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RssSamples>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = RssSamples::default();
            while !flag.load(Ordering::Relaxed) {
                let Some(kib) = status_kib(pid, "VmRSS") else { break };
                samples.peak_kib = samples.peak_kib.max(kib);
                samples.count += 1;
                std::thread::sleep(SAMPLE_INTERVAL);
            }
            samples
        });
        RssSampler { stop, thread }
    }

    /// Stops sampling and returns the peak.
    pub fn finish(self) -> Result<RssSamples> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow!("the RSS sampler thread panicked"))
    }
}

/// Opens the store in `data_dir` directly (the server must not be running)
/// and finds alice's account.
pub async fn open_recipient(data_dir: &Path) -> Result<(AnyStore, AccountRecord)> {
    // As the server opens it, so stored messages carry what it keeps.
    let options = StoreOptions::new(data_dir, Arc::new(SystemClock))
        .with_summarizer(Arc::new(mailroom_imap_proto::message::envelope_summary));
    let store =
        AnyStore::open(&options).await.with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let address = Address::parse(RECIPIENT).with_context(|| format!("bad address {RECIPIENT}"))?;
    let account = store
        .account(&address)
        .await
        .context("cannot look up the account")?
        .with_context(|| format!("account {RECIPIENT} is missing from the store"))?;
    Ok((store, account))
}

/// Counts the messages in alice's INBOX, opening the store directly. Call
/// only once the server has exited.
pub async fn stored_count(data_dir: &Path) -> Result<u64> {
    let (store, account) = open_recipient(data_dir).await?;
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await
        .context("cannot look up the INBOX")?
        .with_context(|| format!("{RECIPIENT} has no INBOX"))?;
    let messages = store.messages(inbox.id).await.context("cannot list the INBOX")?;
    Ok(messages.len() as u64)
}

/// The filesystem type holding `path`, from `/proc/mounts` (longest mount
/// point that is a prefix of it).
pub fn filesystem_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?;
            path.starts_with(&mount_point).then(|| (mount_point.len(), fs_type.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type)
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"/tmp/a"b\c"#), r#""/tmp/a\"b\\c""#);
    }

    #[test]
    fn own_status_is_readable() {
        let rss = status_kib(std::process::id(), "VmRSS").unwrap();
        assert!(rss > 0);
        assert!(status_kib(std::process::id(), "VmNoSuchField").is_none());
    }

    #[test]
    fn filesystem_of_root() {
        assert!(filesystem_type(Path::new("/")).is_some());
    }
}
