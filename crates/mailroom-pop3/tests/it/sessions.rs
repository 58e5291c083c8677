//! Session tests that a transcript cannot express: elapsed time of failed
//! logins (throttling), a message larger than the driver's inline-read and
//! flush thresholds, and the summary `run_session` returns.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

use crate::harness::World;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal POP3 client over the duplex.
struct Client {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl Client {
    async fn open(stream: DuplexStream) -> Client {
        let (r, w) = tokio::io::split(stream);
        let mut c = Client { reader: BufReader::new(r), writer: w };
        let greeting = c.line().await;
        assert!(greeting.starts_with("+OK "), "greeting: {greeting:?}");
        c
    }

    async fn line(&mut self) -> String {
        let mut line = Vec::new();
        tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("reply in time")
            .expect("read");
        let text = String::from_utf8(line).expect("utf-8 reply");
        text.strip_suffix("\r\n").unwrap_or_else(|| panic!("reply not CRLF-terminated: {text:?}")).to_string()
    }

    async fn command(&mut self, line: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        self.line().await
    }

    /// The raw bytes of a multi-line response up to and including the
    /// terminating `.` CRLF.
    async fn multi_line(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_until(b'\n', &mut out))
                .await
                .expect("response in time")
                .expect("read");
            assert!(n > 0, "connection closed inside a multi-line response");
            if &out[start..] == b".\r\n" {
                return out;
            }
        }
    }

    async fn assert_closed(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_to_end(&mut rest)).await.expect("closed").unwrap();
        assert!(rest.is_empty(), "unread output: {:?}", String::from_utf8_lossy(&rest));
    }
}

/// What a client does with a multi-line response: drop the terminator and
/// undo the byte-stuffing (RFC 1939 §3).
fn unstuff(wire: &[u8]) -> Vec<u8> {
    let body = wire.strip_suffix(b".\r\n").expect("terminator");
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

async fn connect_from(world: &mut World, ip: IpAddr) -> Client {
    world.peer = ip;
    Client::open(world.connect()).await
}

/// Issue 3 §7: each wrong password is answered after a longer delay,
/// counted per client address and per account, for unknown users too; the
/// reply is the same. Only lower bounds are asserted (a loaded machine may
/// be slower, never faster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_with_growing_delays() {
    let mut world = World::with_delays(Duration::from_millis(50), Duration::from_millis(200)).await;
    let local = |n: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));

    // Failures from one address for alice: 50, 100, 200 ms, then capped
    // at 200 ms.
    let mut c = connect_from(&mut world, local(1)).await;
    for want in [50, 100, 200, 200] {
        assert_eq!(c.command("USER alice@example.test").await, "+OK");
        let t = Instant::now();
        assert_eq!(c.command("PASS wrong").await, "-ERR [AUTH] Authentication failed.");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(want), "failure answered after {took:?}, expected at least {want} ms");
    }

    // Per account: from another address, alice's next failure is still slow.
    let mut other = connect_from(&mut world, local(2)).await;
    assert_eq!(other.command("USER alice@example.test").await, "+OK");
    let t = Instant::now();
    assert_eq!(other.command("PASS wrong").await, "-ERR [AUTH] Authentication failed.");
    assert!(t.elapsed() >= Duration::from_millis(200), "per-account throttling: {:?}", t.elapsed());

    // Per address: from 127.0.0.1, another (unknown) user is slow as well,
    // with the same reply as a wrong password.
    assert_eq!(c.command("USER nobody@example.test").await, "+OK");
    let t = Instant::now();
    assert_eq!(c.command("PASS wrong").await, "-ERR [AUTH] Authentication failed.");
    assert!(t.elapsed() >= Duration::from_millis(200), "per-address throttling: {:?}", t.elapsed());

    // Unknown users grow their own delay from a fresh address.
    let mut fresh = connect_from(&mut world, local(3)).await;
    for want in [50, 100] {
        assert_eq!(fresh.command("USER ghost@example.test").await, "+OK");
        let t = Instant::now();
        assert_eq!(fresh.command("PASS secret").await, "-ERR [AUTH] Authentication failed.");
        assert!(t.elapsed() >= Duration::from_millis(want), "unknown user: {:?} < {want} ms", t.elapsed());
    }

    // The right password still works from a throttled address.
    assert_eq!(fresh.command("USER bob@example.test").await, "+OK");
    assert_eq!(fresh.command("PASS secret").await, "+OK Logged in, 0 messages (0 octets).");
    assert_eq!(fresh.command("QUIT").await, "+OK Logging out, 0 messages deleted.");
    fresh.assert_closed().await;
    assert_eq!(other.command("QUIT").await, "+OK Logging out.");
    assert_eq!(c.command("QUIT").await, "+OK Logging out.");
}

/// A message above the driver's 1 MiB inline-read and 256 KiB flush
/// thresholds, with many dot lines and a lone "." line, comes back byte
/// for byte; STAT, LIST and the RETR line agree on its size; TOP of it
/// works; and the session summary counts what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_message_round_trips_and_summary_counts() {
    let world = World::new().await;
    let mut big = b"Subject: big\r\nFrom: bob@example.test\r\n\r\n".to_vec();
    let lines: [&[u8]; 5] = [b"an ordinary line of text\r\n", b".\r\n", b"..two\r\n", b".x\r\n", b"\r\n"];
    let mut i = 0;
    while big.len() < 3 << 19 {
        big.extend_from_slice(lines[i % lines.len()]);
        i += 1;
    }
    big.extend_from_slice(b"last\r\n");
    let small = b"Subject: small\r\n\r\n.\r\n".to_vec();
    world.deliver(&["alice"], &big).await;
    world.deliver(&["alice"], &small).await;
    let total = big.len() + small.len();

    let (client, server) = tokio::io::duplex(64 * 1024);
    let ctx = world.context();
    let shutdown = world.shutdown.clone();
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let session = tokio::spawn(async move {
        mailroom_pop3::run_session(
            mailroom_services::tls::MaybeTls::Plain(server),
            peer,
            &ctx,
            shutdown,
            mailroom_services::tls::Security::Plain(None),
        )
        .await
    });
    let mut c = Client::open(client).await;
    assert_eq!(c.command("USER alice@example.test").await, "+OK");
    assert_eq!(c.command("PASS secret").await, format!("+OK Logged in, 2 messages ({total} octets)."));
    assert_eq!(c.command("STAT").await, format!("+OK 2 {total}"));
    assert_eq!(c.command("LIST 1").await, format!("+OK 1 {}", big.len()));

    // Pipelined: RETR 1, RETR 2, TOP 1 0, RETR 1 in one write.
    c.writer.write_all(b"RETR 1\r\nRETR 2\r\nTOP 1 0\r\nRETR 1\r\n").await.unwrap();
    for (what, want) in [("RETR 1", &big[..]), ("RETR 2", &small[..]), ("TOP 1 0", &big[..40]), ("RETR 1", &big[..])] {
        assert_eq!(c.line().await, format!("+OK {} octets", want.len()), "{what}");
        let wire = c.multi_line().await;
        let got = unstuff(&wire);
        assert!(got == want, "{what}: {} octets back, {} expected; differ at {:?}", got.len(), want.len(), {
            got.iter().zip(want).position(|(a, b)| a != b)
        });
    }
    assert_eq!(c.command("DELE 2").await, "+OK Marked to be deleted.");
    assert_eq!(c.command("QUIT").await, "+OK Logging out, 1 messages deleted.");
    c.assert_closed().await;
    let summary = session.await.unwrap().expect("session ends cleanly");
    assert_eq!((summary.retrieved, summary.deleted), (4, 1));
    let inbox = world.inbox("alice").await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].1 == big, "the big message is still stored intact");
}
