//! Shared helpers: temp configurations, the `mailroom` binary as a child
//! process, a blocking SMTP client over `TcpStream`, external tools with
//! bounded run time, and checks of stored messages.
//!
//! Every wait here is bounded; nothing listens beyond loopback.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mailroom_services::config::Config;
use mailroom_store::{AnyStore, MailStore, MessageRecord, StoreOptions};
use mailroom_types::Address;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mailroom");

/// The hostname every test server announces.
pub const HOSTNAME: &str = "mx.example.test";

/// A temp directory holding `mailroom.toml` and `data/`.
pub struct TestConfig {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub data_dir: PathBuf,
}

/// Writes a configuration on an ephemeral loopback port with the given log
/// filter and grace period; `extra` is appended (use it for `[limits]`).
/// DNS goes to a closed loopback port (tests ask no real resolver), and
/// inbound checks are off, so stored copies compare byte for byte.
pub fn write_config(log_filter: &str, grace: &str, extra: &str) -> TestConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let path = dir.path().join("mailroom.toml");
    let text = format!(
        "hostname = \"{HOSTNAME}\"\ndata_dir = '{}'\nshutdown_grace = \"{grace}\"\n\n[listen]\nsmtp = \"127.0.0.1:0\"\n\n\
         [log]\nfilter = \"{log_filter}\"\nformat = \"json\"\n\n\
         [delivery]\ndns_server = \"127.0.0.1:9\"\n\n\
         [authentication]\nspf = false\ndkim = false\ndmarc = false\n\n{extra}\n",
        data_dir.display()
    );
    std::fs::write(&path, text).expect("write config");
    TestConfig { _dir: dir, path, data_dir }
}

/// True when `name` is an executable on `PATH`.
pub fn have_tool(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| {
        let p = dir.join(name);
        p.is_file()
            && std::fs::metadata(&p)
                .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
    })
}

/// Whether a test needing an external client may run: true when it is
/// installed; when it is missing, a loud skip outside CI and a failure under
/// CI (where `scripts/test` installs it).
pub fn require_tool(name: &str) -> bool {
    if have_tool(name) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed, but CI is set: scripts/test must install it");
    }
    eprintln!("SKIPPED: {name} not installed");
    false
}

/// Runs a command with `stdin`, killing it past `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output { status, stdout: out.join().expect("stdout reader"), stderr: err.join().expect("stderr reader") }
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Runs `mailroom --config CFG ARGS...` with `stdin`.
pub fn cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args).env_remove("MAILROOM_CONFIG");
    run_with_timeout(cmd, stdin.as_bytes(), Duration::from_secs(20))
}

/// Runs a CLI command that must succeed; returns its stdout.
pub fn cli_ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = cli(config, args, stdin);
    assert!(
        out.status.success(),
        "mailroom {args:?} failed with {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `mailroom serve` as a child process.
pub struct ServerProcess {
    child: Child,
    /// The bound SMTP address, from the `smtp listening on` line.
    pub addr: SocketAddr,
    /// Every stdout line before the listening line, in order.
    pub banner: Vec<String>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_lines: Receiver<String>,
    exited: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts `mailroom --config CFG serve ARGS...` and waits (bounded) until
    /// it reports its SMTP address.
    pub fn start(config: &Path, args: &[&str]) -> ServerProcess {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .args(args)
            .env_remove("MAILROOM_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailroom serve");
        let stdout = lines(child.stdout.take().expect("stdout"), None);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = lines(child.stderr.take().expect("stderr"), Some(Arc::clone(&stderr)));
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            banner: Vec::new(),
            stdout,
            stderr,
            stderr_lines,
            exited: None,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("smtp listening on ") {
                        server.addr = addr.trim().parse().expect("listening address");
                        return server;
                    }
                    server.banner.push(line);
                }
                Err(e) => {
                    let status = server.wait_exit(Duration::from_secs(1));
                    panic!(
                        "server did not report its address ({e:?}); status {status:?}; stdout {:?}; stderr {:?}",
                        server.banner,
                        server.stderr_text()
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM through kill(1).
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status:?}");
    }

    /// SIGKILL, and reap.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        self.exited = Some(self.child.wait().expect("wait for killed server"));
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return self.exited;
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for a stderr (log) line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        if self.stderr_text().contains(needle) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Forwards each line of `r` into a channel (and a shared log when given).
fn lines(r: impl Read + Send + 'static, log: Option<Arc<Mutex<Vec<String>>>>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if let Some(log) = &log {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
            }
            // Keep draining even when nobody listens, so the server never
            // blocks on (or fails writing to) a full pipe.
            let _ = tx.send(line);
        }
    });
    rx
}

/// One SMTP reply: the code and the text of every line.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of the last line (after the code and separator).
    pub fn text(&self) -> &str {
        self.lines.last().map(|l| l.get(4..).unwrap_or("")).unwrap_or("")
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines.join(" | "))
    }
}

/// A blocking SMTP client over a TCP stream, with read/write timeouts.
pub struct SmtpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl SmtpClient {
    /// Connects (bounded) without reading the greeting.
    pub fn connect(addr: SocketAddr) -> io::Result<SmtpClient> {
        Self::connect_with_timeout(addr, Duration::from_secs(10))
    }

    /// Connects with `read_timeout` for replies.
    pub fn connect_with_timeout(addr: SocketAddr, read_timeout: Duration) -> io::Result<SmtpClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(SmtpClient { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    /// Connects, expects 220, sends EHLO and expects 250.
    pub fn open(addr: SocketAddr) -> SmtpClient {
        let mut c = SmtpClient::connect(addr).expect("connect");
        let greeting = c.read_reply().expect("greeting");
        assert_eq!(greeting.code, 220, "greeting: {greeting}");
        let ehlo = c.command("EHLO client.test").expect("EHLO");
        assert_eq!(ehlo.code, 250, "EHLO: {ehlo}");
        c
    }

    /// Changes the reply timeout.
    pub fn set_read_timeout(&self, t: Duration) {
        self.writer.set_read_timeout(Some(t)).expect("set_read_timeout");
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = self.reader.read_until(b'\n', &mut raw)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed after {lines:?}")));
            }
            let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_string();
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad reply line {line:?}")))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Sends one command line and reads its reply.
    pub fn command(&mut self, line: &str) -> io::Result<Reply> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.read_reply()
    }

    /// Reads until the server closes; true when it did within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Dot-stuffs `message` (which must end with CRLF) and appends the end-of-data line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    assert!(message.ends_with(b"\r\n"), "message must end with CRLF");
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Opens the store of a (stopped or running) server's data directory.
pub async fn open_store(data_dir: &Path) -> AnyStore {
    AnyStore::open(&StoreOptions::new(data_dir, mailroom::system_clock())).await.expect("open store")
}

/// The messages of `user`'s INBOX with their blob bytes (a missing blob panics).
pub async fn inbox(store: &AnyStore, user: &str) -> Vec<(MessageRecord, Vec<u8>)> {
    let address = Address::parse(user).expect("address");
    let account = store.account(&address).await.expect("account lookup").unwrap_or_else(|| panic!("no account {user}"));
    let mailbox = store.mailbox(account.id, "INBOX").await.expect("mailbox lookup").expect("INBOX exists");
    let mut out = Vec::new();
    for m in store.messages(mailbox.id).await.expect("messages") {
        let mut raw = Vec::new();
        let present = store
            .read_blob(&m.blob, &mut raw)
            .await
            .unwrap_or_else(|e| panic!("message uid {:?} references an unreadable blob {:?}: {e}", m.uid, m.blob));
        assert!(present, "message uid {:?} references a missing blob {:?}", m.uid, m.blob);
        out.push((m, raw));
    }
    out
}

/// The trace headers the server prepended, and the bytes after them.
pub struct Traced<'a> {
    pub return_path: String,
    /// The `Received:` field unfolded (continuation lines joined with one space).
    pub received: String,
    pub rest: &'a [u8],
}

/// Splits `Return-Path:` and one `Received:` field off the top of `raw`.
pub fn split_trace(raw: &[u8]) -> Traced<'_> {
    let mut pos = 0;
    let next_line = |pos: &mut usize| -> &[u8] {
        let rest = &raw[*pos..];
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap_or_else(|| panic!("no CRLF in {:?}", show(rest)));
        *pos += end + 2;
        &rest[..end]
    };
    let first = String::from_utf8(next_line(&mut pos).to_vec()).expect("utf-8 Return-Path");
    let return_path = first
        .strip_prefix("Return-Path: ")
        .unwrap_or_else(|| panic!("first line is not Return-Path: {first:?} in {:?}", show(raw)))
        .to_string();
    let second = String::from_utf8(next_line(&mut pos).to_vec()).expect("utf-8 Received");
    assert!(second.starts_with("Received: "), "second line is not Received: {second:?}");
    let mut received = second;
    while raw[pos..].starts_with(b"\t") || raw[pos..].starts_with(b" ") {
        let cont = String::from_utf8(next_line(&mut pos).to_vec()).expect("utf-8 Received");
        received.push(' ');
        received.push_str(cont.trim_start());
    }
    Traced { return_path, received, rest: &raw[pos..] }
}

/// Checks one delivered copy: the record's size is the blob length, the
/// trace headers are on top and right, and `original` follows byte for byte.
pub fn assert_delivered(
    record: &MessageRecord,
    raw: &[u8],
    return_path: &str,
    recipient: &str,
    protocol: &str,
    original: &[u8],
) {
    assert_eq!(record.size, raw.len() as u64, "record size must equal the blob length");
    let t = split_trace(raw);
    assert_eq!(t.return_path, format!("<{return_path}>"));
    let by = format!(" by {HOSTNAME} (Mailroom) with {protocol} id ");
    assert!(t.received.starts_with("Received: from "), "{}", t.received);
    assert!(t.received.contains(&by), "Received lacks {by:?}: {}", t.received);
    assert!(t.received.contains(&format!(" for <{recipient}>; ")), "Received lacks the recipient: {}", t.received);
    assert!(t.received.contains("([127.0.0.1])"), "Received lacks the peer literal: {}", t.received);
    assert!(t.received.ends_with(" +0000"), "Received lacks an RFC 5322 date: {}", t.received);
    if t.rest != original {
        panic!(
            "stored message differs from the original:\nstored:   {:?}\noriginal: {:?}",
            show(t.rest),
            show(original)
        );
    }
}

/// Bytes for failure messages.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A server started in-process through `mailroom::start` on a temp data
/// directory, with domain example.test and accounts alice, bob and jörg.
pub struct InProcess {
    pub rt: tokio::runtime::Runtime,
    running: Option<mailroom::Running>,
    pub store: AnyStore,
    pub addr: SocketAddr,
    config: Arc<Config>,
    _dir: tempfile::TempDir,
}

/// The accounts every in-process server has.
pub const USERS: [&str; 3] = ["alice@example.test", "bob@example.test", "jörg@example.test"];

impl InProcess {
    pub fn start() -> InProcess {
        Self::start_with(|_| {})
    }

    /// Starts with the test defaults changed by `adjust`.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> InProcess {
        Self::start_domain("example.test", &USERS, adjust)
    }

    /// Starts a server for `domain` with `users` (password `pw-USER`),
    /// every listener on an ephemeral loopback port unless `adjust` says
    /// otherwise.
    pub fn start_domain(domain: &str, users: &[&str], adjust: impl FnOnce(&mut Config)) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            hostname: HOSTNAME.into(),
            data_dir: dir.path().join("data"),
            shutdown_grace: mailroom_services::config::HumanDuration(Duration::from_secs(2)),
            ..Config::default()
        };
        // Every listener on an ephemeral port: tests run in parallel, and a
        // default fixed port (pop3 1110) would collide between them.
        let any = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let l = &mut config.listen;
        (l.smtp, l.pop3, l.imap, l.imaps, l.pop3s, l.submission, l.submissions) = (any, any, any, any, any, any, any);
        l.http = any;
        // Nothing here may ask a real resolver: a closed loopback port.
        config.delivery.dns_server = Some(SocketAddr::from(([127, 0, 0, 1], 9)));
        // Nor check senders: delivered copies are compared byte for byte.
        // (Tests of the checks are in mailroom-smtp, with dnsmasq.)
        config.authentication =
            mailroom_services::config::AuthenticationConfig { spf: false, dkim: false, dmarc: false };
        adjust(&mut config);
        config.validate(Path::new("(test)")).expect("valid test config");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let clock = mailroom::system_clock();
        let store = rt.block_on(mailroom::open_store(&config, Arc::clone(&clock))).expect("open store");
        rt.block_on(async {
            let admin = mailroom_services::accounts::Admin::new(&store);
            admin.add_domain(domain).await.expect("add domain");
            for user in users {
                let password = mailroom_types::Secret::new(format!("pw-{user}"));
                admin.add_user(user, &password).await.unwrap_or_else(|e| panic!("add {user}: {e}"));
            }
        });
        let config = Arc::new(config);
        let running =
            rt.block_on(mailroom::start(Arc::clone(&config), store.clone(), clock)).expect("start the server");
        let addr = running.smtp.expect("smtp listener bound");
        InProcess { rt, running: Some(running), store, addr, config, _dir: dir }
    }

    /// Stops the server and starts it again on the same data (and the
    /// same configuration; ephemeral ports change).
    pub fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            self.rt.block_on(running.stop());
        }
        let clock = mailroom::system_clock();
        self.store = self.rt.block_on(mailroom::open_store(&self.config, Arc::clone(&clock))).expect("reopen store");
        let running = self
            .rt
            .block_on(mailroom::start(Arc::clone(&self.config), self.store.clone(), clock))
            .expect("restart the server");
        self.addr = running.smtp.expect("smtp listener bound");
        self.running = Some(running);
    }

    /// A configuration file naming this server's data directory, for the
    /// admin commands (`mailroom --config F queue ...`).
    pub fn cli_config(&self) -> PathBuf {
        let path = self._dir.path().join("cli.toml");
        let text = format!(
            "hostname = \"{}\"\ndata_dir = '{}'\n[listen]\n[log]\nfilter = \"warn\"\n",
            self.config.hostname,
            self.config.data_dir.display()
        );
        std::fs::write(&path, text).expect("write cli config");
        path
    }

    /// The bound webmail (plain HTTP) address.
    pub fn http_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.http).expect("http listener bound")
    }

    /// The bound webmail HTTPS address (start with `listen.https` set).
    pub fn https_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.https).expect("https listener bound")
    }

    /// The bound submission (STARTTLS) address.
    pub fn submission_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.submission).expect("submission listener bound")
    }

    /// The bound submissions (implicit TLS) address.
    pub fn submissions_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.submissions).expect("submissions listener bound")
    }

    /// `user`'s INBOX with blob bytes.
    pub fn inbox(&self, user: &str) -> Vec<(MessageRecord, Vec<u8>)> {
        self.rt.block_on(inbox(&self.store, user))
    }

    /// The bound POP3 address (start with `listen.pop3` set, e.g. to port 0).
    pub fn pop3_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.pop3).expect("pop3 listener bound")
    }

    /// The bound IMAP address (start with `listen.imap` set, e.g. to port 0).
    pub fn imap_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.imap).expect("imap listener bound")
    }

    /// The bound IMAP-over-TLS address.
    pub fn imaps_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.imaps).expect("imaps listener bound")
    }

    /// The bound POP3-over-TLS address.
    pub fn pop3s_addr(&self) -> SocketAddr {
        self.running.as_ref().and_then(|r| r.pop3s).expect("pop3s listener bound")
    }

    /// The self-signed certificate the server generated (PEM), to verify
    /// its TLS listeners against.
    pub fn certificate(&self) -> PathBuf {
        self._dir
            .path()
            .join("data")
            .join(mailroom_services::tls::SELF_SIGNED_DIR)
            .join(mailroom_services::tls::SELF_SIGNED_CERT)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let stopped =
                self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), running.stop()).await });
            if stopped.is_err() && !thread::panicking() {
                panic!("in-process server did not stop within 10 s");
            }
        }
    }
}

/// Sends `message` (CRLF line ends) from `from` to `to` over SMTP DATA at
/// `addr`, expecting every reply to succeed.
pub fn send_mail(addr: SocketAddr, from: &str, to: &str, message: &[u8]) {
    let mut c = SmtpClient::open(addr);
    let utf8 = if to.is_ascii() && from.is_ascii() { "" } else { " SMTPUTF8" };
    let r = c.command(&format!("MAIL FROM:<{from}>{utf8}")).expect("MAIL");
    assert_eq!(r.code, 250, "MAIL: {r}");
    let r = c.command(&format!("RCPT TO:<{to}>")).expect("RCPT");
    assert_eq!(r.code, 250, "RCPT: {r}");
    let r = c.command("DATA").expect("DATA");
    assert_eq!(r.code, 354, "DATA: {r}");
    c.send(&dot_stuff(message)).expect("send data");
    let r = c.read_reply().expect("end of data");
    assert_eq!(r.code, 250, "end of data: {r}");
    assert_eq!(c.command("QUIT").expect("QUIT").code, 221);
}

/// The messages of `user`'s mailbox `name` with their blob bytes, in UID
/// order; `None` when the mailbox does not exist.
pub async fn mailbox_messages(store: &AnyStore, user: &str, name: &str) -> Option<Vec<(MessageRecord, Vec<u8>)>> {
    let address = Address::parse(user).expect("address");
    let account = store.account(&address).await.expect("account lookup").unwrap_or_else(|| panic!("no account {user}"));
    let mailbox = store.mailbox(account.id, name).await.expect("mailbox lookup")?;
    let mut out = Vec::new();
    for m in store.messages(mailbox.id).await.expect("messages") {
        let mut raw = Vec::new();
        let present = store.read_blob(&m.blob, &mut raw).await.expect("read blob");
        assert!(present, "message uid {:?} in {name} references a missing blob {:?}", m.uid, m.blob);
        out.push((m, raw));
    }
    Some(out)
}

/// Three messages with the awkward cases: lines that start with a dot, a
/// line that is only a dot, one that is only two dots, 8-bit UTF-8; distinct
/// subjects for SEARCH.
pub fn awkward_messages() -> Vec<Vec<u8>> {
    vec![
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: first\r\n\r\n\
          line one\r\n.leading dot\r\n.\r\n..\r\n...three\r\nlast line\r\n"
            .to_vec(),
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: second\r\n\r\nshort\r\n".to_vec(),
        "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: third\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße ✓ 日本語\r\n.\r\nend\r\n"
            .as_bytes()
            .to_vec(),
    ]
}
