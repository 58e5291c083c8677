//! The built-in load generator: concurrent pipelining SMTP sessions, many
//! messages per connection, timing each message from its `MAIL` write to
//! the `250` after its final `.`. Sessions are plain (the MTA port), or
//! submission sessions: STARTTLS (RFC 3207), then AUTH PLAIN (RFC 4954).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use rustls::pki_types::ServerName;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::message::MessageTemplate;

/// How long the client waits for any one reply or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest reply line the client accepts.
const MAX_REPLY_LINE: u64 = 4096;
/// The most lines a multi-line reply may have.
const MAX_REPLY_LINES: usize = 100;
/// Read and write buffer sizes of a session.
const READ_BUFFER: usize = 16 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;

/// A session's stream with its read and write buffers; both can be taken
/// off again for STARTTLS.
type Buffered<S> = BufReader<BufWriter<S>>;

/// Buffers `stream` for a session.
fn buffered<S: AsyncRead + AsyncWrite>(stream: S) -> Buffered<S> {
    BufReader::with_capacity(READ_BUFFER, BufWriter::with_capacity(WRITE_BUFFER, stream))
}

/// What the load generator needs.
#[derive(Clone)]
pub struct Load {
    /// The server's SMTP (or submission) address.
    pub addr: SocketAddr,
    /// Concurrent connections.
    pub connections: usize,
    /// Messages in total, split evenly over the connections.
    pub messages: usize,
    /// The whole load must finish within this.
    pub limit: Duration,
    /// `None`: plain sessions, as to an MTA. Some: STARTTLS and AUTH first.
    pub submission: Option<Submission>,
}

/// How a submission session protects itself and logs in.
#[derive(Clone)]
pub struct Submission {
    /// The TLS client, trusting the server's certificate.
    pub tls: TlsConnector,
    /// The name the server's certificate must hold.
    pub server_name: ServerName<'static>,
    /// The AUTH PLAIN user name.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// What the load generator measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages answered with 2xx after the final `.`.
    pub accepted: u64,
    /// Messages that got a negative reply at any step.
    pub errors: u64,
    /// Messages never completed because their connection failed.
    pub unsent: u64,
    /// Latency of each accepted message.
    pub latencies: Vec<Duration>,
    /// From the first connection attempt to the last connection's end.
    pub wall: Duration,
    /// When the first `MAIL` was written, on any connection.
    pub first_mail: Option<Instant>,
    /// When the last 2xx to a final `.` was read, on any connection.
    pub last_accept: Option<Instant>,
}

impl Outcome {
    /// From the first `MAIL` to the last accepted message: the time the
    /// messages themselves took, without connection set-up (TLS, AUTH)
    /// and QUIT.
    pub fn transfer_time(&self) -> Option<Duration> {
        Some(self.last_accept?.saturating_duration_since(self.first_mail?))
    }
}

/// Runs the load and waits for every connection to end.
pub async fn run(load: &Load, template: Arc<MessageTemplate>) -> Result<Outcome> {
    ensure!(load.connections > 0 && load.messages > 0, "need at least one connection and one message");
    let connections = load.connections.min(load.messages);
    let problems = Arc::new(Problems::default());
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in 0..connections {
        let count = load.messages / connections + usize::from(conn < load.messages % connections);
        let template = Arc::clone(&template);
        let problems = Arc::clone(&problems);
        let (addr, submission) = (load.addr, load.submission.clone());
        tasks.spawn(async move { connection(addr, submission, conn, count, &template, &problems).await });
    }
    let mut outcome = Outcome { latencies: Vec::with_capacity(load.messages), ..Outcome::default() };
    let joined = timeout(load.limit, async {
        while let Some(done) = tasks.join_next().await {
            let done = done.context("a client task panicked")?;
            outcome.accepted += done.accepted;
            outcome.errors += done.errors;
            outcome.unsent += done.unsent;
            outcome.latencies.extend(done.latencies);
            outcome.first_mail = earliest(outcome.first_mail, done.first_mail);
            outcome.last_accept = outcome.last_accept.max(done.last_accept);
        }
        anyhow::Ok(())
    })
    .await;
    match joined {
        Ok(result) => result?,
        Err(_) => {
            tasks.abort_all();
            bail!("the load did not finish within {:?} (raise --timeout)", load.limit);
        }
    }
    outcome.wall = start.elapsed();
    Ok(outcome)
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The problems already reported, so that each kind is printed once.
#[derive(Default)]
struct Problems(Mutex<HashSet<String>>);

impl Problems {
    /// Prints `detail` unless a problem of this `kind` was printed already.
    fn note(&self, kind: String, detail: &str) {
        let first = self.0.lock().map(|mut seen| seen.insert(kind)).unwrap_or(true);
        if first {
            eprintln!("client error (printed once per kind): {detail}");
        }
    }
}

/// What one connection achieved.
#[derive(Default)]
struct ConnOutcome {
    accepted: u64,
    errors: u64,
    unsent: u64,
    latencies: Vec<Duration>,
    first_mail: Option<Instant>,
    last_accept: Option<Instant>,
}

/// One connection sending `count` messages; a connection failure leaves the
/// rest of its messages unsent.
async fn connection(
    addr: SocketAddr,
    submission: Option<Submission>,
    conn: usize,
    count: usize,
    template: &MessageTemplate,
    problems: &Problems,
) -> ConnOutcome {
    let mut out = ConnOutcome { latencies: Vec::with_capacity(count), ..ConnOutcome::default() };
    let job = Job { conn, count, template, problems };
    if let Err(e) = session(addr, submission.as_ref(), &job, &mut out).await {
        let kind = format!("connection: {}", e.root_cause());
        problems.note(kind, &format!("connection {conn}: {e:#}"));
    }
    out.unsent = count as u64 - out.accepted - out.errors;
    out
}

/// What one connection is to send.
struct Job<'a> {
    conn: usize,
    count: usize,
    template: &'a MessageTemplate,
    problems: &'a Problems,
}

/// The SMTP dialogue of one connection: plain, or upgraded with STARTTLS
/// and authenticated first.
async fn session(
    addr: SocketAddr,
    submission: Option<&Submission>,
    job: &Job<'_>,
    out: &mut ConnOutcome,
) -> Result<()> {
    let stream =
        bounded("connect", TcpStream::connect(addr)).await?.with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let mut plain = buffered(stream);
    let greeting = read_reply(&mut plain).await.context("reading the greeting")?;
    ensure!(greeting.code == 220, "greeting: {greeting}");
    let ehlo = say_ehlo(&mut plain).await?;
    let Some(submission) = submission else {
        return transactions(&mut plain, &ehlo, job, out).await;
    };

    ensure!(ehlo.has_extension("STARTTLS"), "the server does not advertise STARTTLS: {ehlo}");
    send(&mut plain, &[b"STARTTLS\r\n"]).await?;
    let ready = read_reply(&mut plain).await.context("reading the STARTTLS reply")?;
    ensure!(ready.code == 220, "STARTTLS: {ready}");
    // Anything buffered past the 220 would have been injected before the
    // handshake (RFC 3207 §6): refuse it rather than read it as TLS data.
    ensure!(plain.buffer().is_empty(), "the server sent data after its STARTTLS reply");
    // Every send flushes, so the write buffer is empty too.
    let tcp = plain.into_inner().into_inner();
    let tls = bounded("TLS handshake", submission.tls.connect(submission.server_name.clone(), tcp))
        .await?
        .context("TLS handshake")?;
    let mut secure = buffered(tls);
    let ehlo = say_ehlo(&mut secure).await?;
    ensure!(ehlo.has_extension("AUTH"), "the server offers no AUTH after STARTTLS: {ehlo}");
    let plain_auth = format!("\0{}\0{}", submission.username, submission.password);
    let token = base64::engine::general_purpose::STANDARD.encode(plain_auth);
    send(&mut secure, &[b"AUTH PLAIN ", token.as_bytes(), b"\r\n"]).await?;
    let auth = read_reply(&mut secure).await.context("reading the AUTH reply")?;
    ensure!(auth.code == 235, "AUTH PLAIN as {}: {auth}", submission.username);
    transactions(&mut secure, &ehlo, job, out).await
}

/// Sends EHLO and reads its reply, which must be positive.
async fn say_ehlo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut Buffered<S>) -> Result<Reply> {
    send(s, &[b"EHLO client.bench.test\r\n"]).await?;
    let ehlo = read_reply(s).await.context("reading the EHLO reply")?;
    ensure!(ehlo.code == 250, "EHLO: {ehlo}");
    Ok(ehlo)
}

/// The connection's messages, then QUIT: per message `MAIL`, `RCPT` and
/// `DATA` in one write (RFC 2920), the text, and the reply to its `.`.
async fn transactions<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Buffered<S>,
    ehlo: &Reply,
    job: &Job<'_>,
    out: &mut ConnOutcome,
) -> Result<()> {
    let Job { conn, count, template, problems } = *job;
    ensure!(ehlo.has_extension("PIPELINING"), "the server does not advertise PIPELINING: {ehlo}");
    let envelope = format!("MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n", template.sender(), template.recipient());
    for seq in 0..count {
        let started = Instant::now();
        out.first_mail.get_or_insert(started);
        send(s, &[envelope.as_bytes()]).await?;
        let mail = read_reply(s).await.context("reading the MAIL reply")?;
        let rcpt = read_reply(s).await.context("reading the RCPT reply")?;
        let data = read_reply(s).await.context("reading the DATA reply")?;
        let mut refused = [("MAIL", &mail), ("RCPT", &rcpt)].into_iter().find(|(_, reply)| !reply.is_positive());
        if data.code / 100 == 3 {
            let header = template.header(conn, seq);
            send(s, &[&header, template.wire_body(), b".\r\n"]).await?;
            let end = read_reply(s).await.context("reading the reply to the final dot")?;
            if refused.is_none() && end.code / 100 == 2 {
                out.accepted += 1;
                out.latencies.push(started.elapsed());
                out.last_accept = Some(Instant::now());
            } else {
                out.errors += 1;
                let (step, reply) = refused.take().unwrap_or(("end of data", &end));
                problems.note(format!("{step} {}", reply.code), &format!("{step}: {reply}"));
            }
            ensure!(end.code != 421, "the server is closing the connection: {end}");
        } else {
            out.errors += 1;
            let (step, reply) = refused.unwrap_or(("DATA", &data));
            problems.note(format!("{step} {}", reply.code), &format!("{step}: {reply}"));
            ensure!(data.code != 421, "the server is closing the connection: {data}");
            // The transaction may still be open (DATA refused after a good
            // MAIL): reset it before the next message.
            send(s, &[b"RSET\r\n"]).await?;
            let rset = read_reply(s).await.context("reading the RSET reply")?;
            ensure!(rset.code == 250, "RSET: {rset}");
        }
        for reply in [&mail, &rcpt] {
            ensure!(reply.code != 421, "the server is closing the connection: {reply}");
        }
    }

    send(s, &[b"QUIT\r\n"]).await?;
    let bye = read_reply(s).await.context("reading the QUIT reply")?;
    if bye.code != 221 {
        problems.note(format!("QUIT {}", bye.code), &format!("QUIT: {bye}"));
    }
    Ok(())
}

/// Writes the parts and flushes them, bounded by [`IO_TIMEOUT`].
async fn send<W: AsyncWrite + Unpin>(w: &mut W, parts: &[&[u8]]) -> Result<()> {
    bounded("write", async {
        for part in parts {
            w.write_all(part).await?;
        }
        w.flush().await
    })
    .await?
    .context("cannot write to the server")
}

/// Runs `f` bounded by [`IO_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    match timeout(IO_TIMEOUT, f).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("{what} timed out after {IO_TIMEOUT:?}"),
    }
}

/// An SMTP reply: its code and text lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text after the code and separator, one entry per line.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx or 3xx.
    fn is_positive(&self) -> bool {
        matches!(self.code / 100, 2 | 3)
    }

    /// Whether an EHLO reply advertises `keyword` (case-insensitive).
    fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Reads one (possibly multi-line) reply, bounded in time and size.
pub async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Reply> {
    bounded("waiting for a reply", async {
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut *r).take(MAX_REPLY_LINE).read_until(b'\n', &mut buf).await?;
            ensure!(n > 0, "the server closed the connection");
            ensure!(buf.ends_with(b"\n"), "reply line longer than {MAX_REPLY_LINE} octets or cut short");
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("malformed reply line {line:?}"))?;
            let sep = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_string());
            match sep {
                Some(b'-') => ensure!(lines.len() < MAX_REPLY_LINES, "reply longer than {MAX_REPLY_LINES} lines"),
                Some(b' ') | None => return Ok(Reply { code, lines }),
                Some(_) => bail!("malformed reply line {line:?}"),
            }
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(text: &str) -> Result<Reply> {
        let mut r = BufReader::new(text.as_bytes());
        read_reply(&mut r).await
    }

    #[tokio::test]
    async fn replies() {
        let ehlo = parse("250-bench.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n").await.unwrap();
        assert_eq!(ehlo.code, 250);
        assert!(ehlo.has_extension("pipelining"));
        assert!(ehlo.has_extension("SIZE"));
        assert!(!ehlo.has_extension("bench.test"));
        let queued = parse("250 2.0.0 Ok: queued as 1\r\n").await.unwrap();
        assert_eq!(queued.lines, ["2.0.0 Ok: queued as 1"]);
        assert!(parse("354 go ahead\r\n").await.unwrap().is_positive());
        assert!(!parse("451 4.3.0 later\r\n").await.unwrap().is_positive());
        assert!(parse("").await.is_err());
        assert!(parse("25x oops\r\n").await.is_err());
        assert!(parse("250-cut short").await.is_err());
    }
}
