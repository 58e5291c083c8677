//! The outbound client against scripted servers, and once against the
//! real listener.
//!
//! A script is the conversation as the server sees it, in chasquid's
//! notation: `c -> LINE` is a line the client must send, exactly and
//! CRLF-terminated; `c <- LINE` is a line the server sends. `starttls`
//! runs the server side of the handshake; `lockstep` makes every later
//! `c <-` first check that the client has sent nothing it should have
//! waited with (no pipelining); `close` drops the connection. In a
//! `c <-` line, `\r\n` sends several lines in one write. After the
//! last line the server waits for the client to close, and fails if it
//! sent anything more. One script per connection the client makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::config::Config;
use mailroom_services::tls::{ListenerTls, TlsAcceptor};
use mailroom_smtp::client::tls::NO_TRUST_ANCHORS;
use mailroom_smtp::client::{
    ClientConfig, ClientError, Connection, Credentials, Envelope, RecipientOutcome, TlsPolicy,
};
use mailroom_types::Secret;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::harness::{SessionOptions, World};

const WAIT: Duration = Duration::from_secs(5);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A scripted server on a loopback port.
struct Fake {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Fake {
    async fn start(script: &str) -> Fake {
        Fake::serve(vec![script.to_owned()], None).await
    }

    /// Serves each script to one connection, in turn.
    async fn serve(scripts: Vec<String>, acceptor: Option<TlsAcceptor>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            for (i, script) in scripts.iter().enumerate() {
                let (tcp, _) = tokio::time::timeout(WAIT, listener.accept()).await.expect("client connects").unwrap();
                run_script(Box::new(tcp), script, acceptor.as_ref(), i).await;
            }
        });
        Fake { addr, task }
    }

    /// Waits for the server to finish its scripts, failing as it failed.
    async fn finish(self) {
        match tokio::time::timeout(WAIT, self.task).await.expect("server finishes") {
            Ok(()) => {}
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

async fn run_script(stream: Box<dyn Io>, script: &str, acceptor: Option<&TlsAcceptor>, connection: usize) {
    let mut io = BufReader::new(stream);
    let mut lockstep = false;
    for (n, line) in script.lines().map(str::trim_start).filter(|l| !l.is_empty()).enumerate() {
        let at = format!("connection {connection}, script line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("c ->") {
            let expect = rest.strip_prefix(' ').unwrap_or(rest);
            let mut got = Vec::new();
            tokio::time::timeout(WAIT, io.read_until(b'\n', &mut got)).await.expect(&at).unwrap();
            let got = String::from_utf8_lossy(&got);
            let got = got.strip_suffix("\r\n").unwrap_or_else(|| panic!("{at}: got {got:?}, not a CRLF line"));
            assert_eq!(got, expect, "{at}");
        } else if let Some(rest) = line.strip_prefix("c <-") {
            if lockstep {
                let early = io.buffer().to_vec();
                assert!(early.is_empty(), "{at}: client sent {:?} before this reply", String::from_utf8_lossy(&early));
                if let Ok(Ok(early)) = tokio::time::timeout(Duration::from_millis(30), io.fill_buf()).await {
                    assert!(early.is_empty(), "{at}: client sent {:?} early", String::from_utf8_lossy(early));
                }
            }
            let reply = format!("{}\r\n", rest.strip_prefix(' ').unwrap_or(rest).replace("\\r\\n", "\r\n"));
            io.get_mut().write_all(reply.as_bytes()).await.expect(&at);
        } else if line == "starttls" {
            assert!(io.buffer().is_empty(), "{at}: client sent data before the handshake");
            let acceptor = acceptor.expect("a TLS acceptor");
            let tls = acceptor.accept(io.into_inner()).await.expect(&at);
            io = BufReader::new(Box::new(tls));
        } else if line == "lockstep" {
            lockstep = true;
        } else if line == "close" {
            return;
        } else {
            panic!("{at}: not a script line");
        }
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, io.read_to_end(&mut rest)).await.expect("the client closes");
    assert!(
        rest.is_empty(),
        "connection {connection}: client sent {:?} after the script",
        String::from_utf8_lossy(&rest)
    );
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: WAIT,
        command_timeout: WAIT,
        data_timeout: WAIT,
        tls: TlsPolicy::Disabled,
        ..ClientConfig::new("client.test")
    }
}

fn envelope(sender: &str, recipients: &[&str]) -> Envelope {
    Envelope {
        sender: (!sender.is_empty()).then(|| sender.to_owned()),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
    }
}

/// Outcomes as `delivered|transient|permanent <reply>`.
fn summary(outcomes: &[RecipientOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            RecipientOutcome::Delivered(r) => format!("delivered {r}"),
            RecipientOutcome::Transient(r) => format!("transient {r}"),
            RecipientOutcome::Permanent(r) => format!("permanent {r}"),
        })
        .collect()
}

#[tokio::test]
async fn pipelined_delivery_dot_stuffs_and_reuses_the_connection() {
    // Without pipelining the client would wait for MAIL's reply, which
    // comes only after DATA: the test would time out.
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test greets client.test
         c <- 250-PIPELINING
         c <- 250-SIZE 1000000
         c <- 250-8BITMIME
         c <- 250 ENHANCEDSTATUSCODES
         c -> MAIL FROM:<alice@a.test> SIZE=38
         c -> RCPT TO:<bob@b.test>
         c -> RCPT TO:<carol@b.test>
         c -> DATA
         c <- 250 2.1.0 Ok
         c <- 250 2.1.5 Ok
         c <- 250 2.1.5 Ok
         c <- 354 End data with <CR><LF>.<CR><LF>
         c -> Subject: hi
         c ->
         c -> ..leading dot
         c -> ...
         c -> end
         c -> .
         c <- 250 2.0.0 Ok: queued as 1
         c -> MAIL FROM:<> SIZE=3
         c -> RCPT TO:<bob@b.test>
         c -> DATA
         c <- 250 2.1.0 Ok
         c <- 250 2.1.5 Ok
         c <- 354 go ahead
         c -> x
         c -> .
         c <- 250-2.0.0 Ok
         c <- 250 2.0.0 queued as 2
         c -> QUIT
         c <- 221 2.0.0 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    assert!(conn.extensions().pipelining && conn.extensions().enhanced_status_codes);
    assert_eq!(conn.extensions().size, Some(1_000_000));
    assert_eq!(conn.peer(), fake.addr);
    assert!(conn.tls().is_none());
    let message = b"Subject: hi\r\n\r\n.leading dot\r\n..\r\nend";
    let outcomes = conn.send(&envelope("alice@a.test", &["bob@b.test", "carol@b.test"]), message).await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 2.0.0 Ok: queued as 1"; 2]);
    assert!(conn.is_usable());
    let outcomes = conn.send(&envelope("", &["bob@b.test"]), b"x\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 2.0.0 Ok; queued as 2"]);
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn without_pipelining_commands_wait_for_replies() {
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250 8BITMIME
         lockstep
         c -> MAIL FROM:<alice@a.test> BODY=8BITMIME
         c <- 250 Ok
         c -> RCPT TO:<bob@b.test>
         c <- 250 Ok
         c -> RCPT TO:<carol@b.test>
         c <- 550 No such user
         c -> DATA
         c <- 354 go ahead
         c -> caf\u{e9}
         c -> .
         c <- 250 Ok
         c -> MAIL FROM:<alice@a.test>
         c <- 250 Ok
         c -> RCPT TO:<nobody@b.test>
         c <- 550 5.1.1 No such user
         c -> RSET
         c <- 250 Ok
         c -> QUIT
         c <- 221 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes =
        conn.send(&envelope("alice@a.test", &["bob@b.test", "carol@b.test"]), "caf\u{e9}\r\n".as_bytes()).await;
    assert_eq!(summary(&outcomes.unwrap()), ["delivered 250 Ok", "permanent 550 No such user"]);
    // Every recipient refused: no DATA, and RSET ends the transaction.
    let outcomes = conn.send(&envelope("alice@a.test", &["nobody@b.test"]), b"x\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["permanent 550 5.1.1 No such user"]);
    assert!(conn.is_usable());
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn chunking_sends_one_bdat_last_unstuffed() {
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250-PIPELINING
         c <- 250 CHUNKING
         c -> MAIL FROM:<alice@a.test>
         c -> RCPT TO:<bob@b.test>
         c <- 250 2.1.0 Ok
         c <- 250 2.1.5 Ok
         c -> BDAT 17 LAST
         c -> .dot
         c -> last line
         c <- 250 2.0.0 Ok
         c -> QUIT
         c <- 221 2.0.0 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes = conn.send(&envelope("alice@a.test", &["bob@b.test"]), b".dot\r\nlast line").await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 2.0.0 Ok"]);
    conn.quit().await;
    fake.finish().await;
}

const PIPELINING_EHLO: &str = "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250 PIPELINING";

#[tokio::test]
async fn each_recipient_gets_its_own_outcome() {
    let fake = Fake::start(&format!(
        "{PIPELINING_EHLO}
         c -> MAIL FROM:<alice@a.test>
         c -> RCPT TO:<ok@b.test>
         c -> RCPT TO:<later@b.test>
         c -> RCPT TO:<never@b.test>
         c -> DATA
         c <- 250 2.1.0 Ok
         c <- 250 2.1.5 Ok
         c <- 450 4.2.1 Mailbox busy
         c <- 550 5.1.1 No such user
         c <- 354 go ahead
         c -> hello
         c -> .
         c <- 250 2.0.0 Ok
         c -> QUIT
         c <- 221 Bye"
    ))
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let to = ["ok@b.test", "later@b.test", "never@b.test"];
    let outcomes = conn.send(&envelope("alice@a.test", &to), b"hello\r\n").await.unwrap();
    assert_eq!(
        summary(&outcomes),
        ["delivered 250 2.0.0 Ok", "transient 450 4.2.1 Mailbox busy", "permanent 550 5.1.1 No such user"]
    );
    assert!(outcomes[2].reply().is_permanent());
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn all_recipients_refused_sends_no_message() {
    // The server refuses the pipelined DATA; the transaction MAIL opened
    // is reset before the next message.
    let fake = Fake::start(&format!(
        "{PIPELINING_EHLO}
         c -> MAIL FROM:<alice@a.test>
         c -> RCPT TO:<x@b.test>
         c -> RCPT TO:<y@b.test>
         c -> DATA
         c <- 250 2.1.0 Ok
         c <- 550 5.1.1 No such user x
         c <- 450 4.2.1 Try later y
         c <- 554 5.5.1 No valid recipients
         c -> RSET
         c <- 250 2.0.0 Ok
         c -> MAIL FROM:<alice@a.test>
         c -> RCPT TO:<z@b.test>
         c -> DATA
         c <- 250 2.1.0 Ok
         c <- 550 5.1.1 No such user z
         c <- 354 a broken server says go ahead anyway
         c -> .
         c <- 554 5.5.1 No valid recipients
         c -> RSET
         c <- 250 2.0.0 Ok
         c -> QUIT
         c <- 221 Bye"
    ))
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes = conn.send(&envelope("alice@a.test", &["x@b.test", "y@b.test"]), b"secret\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["permanent 550 5.1.1 No such user x", "transient 450 4.2.1 Try later y"]);
    let outcomes = conn.send(&envelope("alice@a.test", &["z@b.test"]), b"secret\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["permanent 550 5.1.1 No such user z"]);
    assert!(conn.is_usable());
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn mail_refused_condemns_every_recipient_and_the_connection_lives_on() {
    let fake = Fake::start(&format!(
        "{PIPELINING_EHLO}
         c -> MAIL FROM:<spammer@a.test>
         c -> RCPT TO:<x@b.test>
         c -> RCPT TO:<y@b.test>
         c -> DATA
         c <- 550 5.7.1 Go away
         c <- 503 5.5.1 MAIL first
         c <- 503 5.5.1 MAIL first
         c <- 503 5.5.1 MAIL first
         c -> MAIL FROM:<alice@a.test>
         c -> RCPT TO:<x@b.test>
         c -> DATA
         c <- 451 4.3.0 Try again later
         c <- 503 5.5.1 MAIL first
         c <- 503 5.5.1 MAIL first
         c -> QUIT
         c <- 221 Bye"
    ))
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes = conn.send(&envelope("spammer@a.test", &["x@b.test", "y@b.test"]), b"m\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["permanent 550 5.7.1 Go away"; 2]);
    let outcomes = conn.send(&envelope("alice@a.test", &["x@b.test"]), b"m\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["transient 451 4.3.0 Try again later"]);
    assert!(conn.is_usable());
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn too_big_for_size_fails_without_sending() {
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250 SIZE 10
         c -> QUIT
         c <- 221 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes = conn.send(&envelope("a@a.test", &["x@b.test", "y@b.test"]), b"0123456789\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["permanent 552 5.3.4 message of 12 octets exceeds the server's limit of 10"; 2]);
    assert!(conn.is_usable());
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn addresses_the_server_cannot_take_fail_alone() {
    // No SMTPUTF8: the UTF-8 recipient fails here, the other goes; an
    // address with a line break never reaches the wire.
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250 mx.test
         c -> MAIL FROM:<a@a.test>
         c <- 250 Ok
         c -> RCPT TO:<x@b.test>
         c <- 250 Ok
         c -> DATA
         c <- 354 go
         c -> m
         c -> .
         c <- 250 Ok
         c -> QUIT
         c <- 221 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let to = ["j\u{f6}rg@b.test", "x@b.test", "y@b.test>\r\nRSET"];
    let outcomes = conn.send(&envelope("a@a.test", &to), b"m\r\n").await.unwrap();
    assert_eq!(
        summary(&outcomes),
        [
            "permanent 553 5.6.7 UTF-8 recipient address, and the server does not offer SMTPUTF8",
            "delivered 250 Ok",
            "permanent 553 5.1.3 malformed recipient address",
        ]
    );
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn smtputf8_is_asked_for_when_an_address_needs_it() {
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250 SMTPUTF8
         c -> MAIL FROM:<a@a.test> SMTPUTF8
         c <- 250 Ok
         c -> RCPT TO:<j\u{f6}rg@b.test>
         c <- 250 Ok
         c -> DATA
         c <- 354 go
         c -> m
         c -> .
         c <- 250 Ok
         c -> QUIT
         c <- 221 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let outcomes = conn.send(&envelope("a@a.test", &["j\u{f6}rg@b.test"]), b"m\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 Ok"]);
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn helo_after_ehlo_is_refused() {
    let fake = Fake::start(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 500 5.5.1 Command unrecognized
         c -> HELO client.test
         c <- 250 mx.test
         c -> MAIL FROM:<a@a.test>
         c <- 250 Ok
         c -> RCPT TO:<x@b.test>
         c <- 250 Ok
         c -> DATA
         c <- 354 go
         c -> m
         c -> .
         c <- 250 Ok
         c -> QUIT
         c <- 221 Bye",
    )
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    assert_eq!(conn.extensions(), &Default::default());
    let outcomes = conn.send(&envelope("a@a.test", &["x@b.test"]), b"m\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 Ok"]);
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn refusals_before_mail_are_permanent_only_when_5xx() {
    let fake = Fake::serve(
        vec![
            "c <- 554 5.7.1 No SMTP service here
             c -> QUIT"
                .into(),
            "c <- 220 mx.test
             c -> EHLO client.test
             c <- 550 no
             c -> HELO client.test
             c <- 550 still no"
                .into(),
            "c <- 421 4.3.2 Too busy".into(),
            "c <- 220 mx.test
             c -> EHLO client.test
             c <- 451 4.3.0 Later"
                .into(),
        ],
        None,
    )
    .await;
    let err = Connection::open(fake.addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(&err, ClientError::Greeting(r) if r.code == 554) && err.is_permanent(), "{err}");
    let err = Connection::open(fake.addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(&err, ClientError::Ehlo(r) if r.to_string() == "550 still no") && err.is_permanent(), "{err}");
    let err = Connection::open(fake.addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(&err, ClientError::Closed(r) if r.code == 421) && !err.is_permanent(), "{err}");
    let err = Connection::open(fake.addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(&err, ClientError::Ehlo(r) if r.code == 451) && !err.is_permanent(), "{err}");
    fake.finish().await;

    // Nobody listening.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = Connection::open(addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(err, ClientError::Connect(_)) && !err.is_permanent(), "{err}");
}

#[tokio::test]
async fn a_421_mid_transaction_defers_everyone_not_refused() {
    let fake = Fake::start(&format!(
        "{PIPELINING_EHLO}
         c -> MAIL FROM:<a@a.test>
         c -> RCPT TO:<gone@b.test>
         c -> RCPT TO:<x@b.test>
         c -> RCPT TO:<y@b.test>
         c -> DATA
         c <- 250 Ok
         c <- 550 5.1.1 No such user
         c <- 250 Ok
         c <- 421 4.3.2 Shutting down
         close"
    ))
    .await;
    let mut conn = Connection::open(fake.addr, "mx.test", &config()).await.unwrap();
    let to = ["gone@b.test", "x@b.test", "y@b.test"];
    let outcomes = conn.send(&envelope("a@a.test", &to), b"m\r\n").await.unwrap();
    assert_eq!(
        summary(&outcomes),
        ["permanent 550 5.1.1 No such user", "transient 421 4.3.2 Shutting down", "transient 421 4.3.2 Shutting down",]
    );
    assert!(!conn.is_usable());
    assert!(matches!(conn.send(&envelope("a@a.test", &["x@b.test"]), b"m\r\n").await, Err(ClientError::Unusable)));
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let fake = Fake::start(&format!(
        "{PIPELINING_EHLO}
         c -> MAIL FROM:<a@a.test>
         c -> RCPT TO:<x@b.test>
         c -> DATA"
    ))
    .await;
    let config = ClientConfig { command_timeout: Duration::from_millis(300), ..config() };
    let mut conn = Connection::open(fake.addr, "mx.test", &config).await.unwrap();
    let err = conn.send(&envelope("a@a.test", &["x@b.test"]), b"m\r\n").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout("MAIL")), "{err}");
    assert!(!err.is_permanent());
    assert!(!conn.is_usable());
    conn.quit().await; // just closes: no QUIT into a broken session
    fake.finish().await;
}

#[tokio::test]
async fn malformed_and_oversized_replies_are_protocol_errors() {
    let fake = Fake::serve(
        vec![
            "c <- 220 mx.test
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 251 mixed codes"
                .into(),
            "c <- 220 mx.test
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250-A
             c <- 250 B"
                .into(),
        ],
        None,
    )
    .await;
    let err = Connection::open(fake.addr, "mx.test", &config()).await.err().unwrap();
    assert!(matches!(&err, ClientError::Protocol(e) if e.contains("continues")), "{err}");
    let config = ClientConfig { max_reply_lines: 2, ..config() };
    let err = Connection::open(fake.addr, "mx.test", &config).await.err().unwrap();
    assert!(matches!(&err, ClientError::Protocol(e) if e.contains("2 lines")), "{err}");
    fake.finish().await;
}

/// A TLS acceptor with the server's self-signed certificate for
/// `localhost`, and that certificate as a trust anchor.
fn tls_identity(dir: &std::path::Path) -> (TlsAcceptor, Arc<rustls::RootCertStore>) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let config = Config { data_dir: dir.to_owned(), hostname: "localhost".into(), ..Config::default() };
    let acceptor = mailroom_services::tls::acceptor(&config).unwrap();
    let (cert, _) = mailroom_services::tls::identity_files(&config).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert).unwrap()).unwrap();
    (acceptor, Arc::new(roots))
}

fn starttls_script(after: &str) -> String {
    format!(
        "c <- 220 mx.test ESMTP
         c -> EHLO client.test
         c <- 250-mx.test
         c <- 250-PIPELINING
         c <- 250 STARTTLS
         c -> STARTTLS
         c <- 220 2.0.0 Ready to start TLS
         starttls
         c -> EHLO client.test
         {after}"
    )
}

#[tokio::test]
async fn opportunistic_starttls_upgrades_and_records_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, roots) = tls_identity(dir.path());
    let session = starttls_script(
        "c <- 250-mx.test
         c <- 250 PIPELINING
         c -> MAIL FROM:<a@a.test>
         c -> RCPT TO:<x@b.test>
         c -> DATA
         c <- 250 Ok
         c <- 250 Ok
         c <- 354 go
         c -> over TLS
         c -> .
         c <- 250 Ok
         c -> QUIT
         c <- 221 Bye",
    );
    let quit = starttls_script("c <- 250 mx.test\nc -> QUIT\nc <- 221 Bye");
    let fake = Fake::serve(vec![session, quit.clone(), quit], Some(acceptor)).await;
    let config = ClientConfig { tls: TlsPolicy::Opportunistic, ..config() };

    let mut conn = Connection::open(fake.addr, "localhost", &config).await.unwrap();
    let tls = conn.tls().expect("under TLS").clone();
    assert!(!tls.certificate_verified);
    assert_eq!(tls.verify_error.as_deref(), Some(NO_TRUST_ANCHORS));
    assert!(tls.protocol_version.starts_with("TLSv1_"), "{tls:?}");
    assert!(tls.cipher.starts_with("TLS"), "{tls:?}");
    assert!(!conn.extensions().starttls && conn.extensions().pipelining, "extensions from the second EHLO");
    let outcomes = conn.send(&envelope("a@a.test", &["x@b.test"]), b"over TLS\r\n").await.unwrap();
    assert_eq!(summary(&outcomes), ["delivered 250 Ok"]);
    conn.quit().await;

    // With the certificate as trust anchor it verifies, for its name only.
    let config = ClientConfig { roots: Some(roots), ..config };
    let conn = Connection::open(fake.addr, "localhost", &config).await.unwrap();
    assert_eq!(conn.tls().map(|t| (t.certificate_verified, t.verify_error.clone())), Some((true, None)));
    conn.quit().await;
    let conn = Connection::open(fake.addr, "mx.other.test", &config).await.unwrap();
    let tls = conn.tls().unwrap();
    assert!(
        !tls.certificate_verified && tls.verify_error.as_deref().is_some_and(|e| e.contains("not valid for")),
        "{tls:?}"
    );
    conn.quit().await;
    fake.finish().await;
}

#[tokio::test]
async fn failed_handshake_falls_back_to_plain_when_opportunistic() {
    let fake = Fake::serve(
        vec![
            "c <- 220 mx.test ESMTP
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250 STARTTLS
             c -> STARTTLS
             c <- 220 2.0.0 Ready to start TLS
             close"
                .into(),
            "c <- 220 mx.test ESMTP
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250 STARTTLS
             c -> QUIT
             c <- 221 Bye"
                .into(),
            // Plain text after the 220 (STARTTLS response injection).
            "c <- 220 mx.test ESMTP
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250 STARTTLS
             c -> STARTTLS
             c <- 220 2.0.0 Ready to start TLS\\r\\n250 injected
             close"
                .into(),
        ],
        None,
    )
    .await;
    let config = ClientConfig { tls: TlsPolicy::Opportunistic, ..config() };
    let conn = Connection::open(fake.addr, "mx.test", &config).await.unwrap();
    assert!(conn.tls().is_none());
    conn.quit().await;
    let err = Connection::open(fake.addr, "mx.test", &config).await.err().unwrap();
    assert!(matches!(&err, ClientError::Protocol(e) if e.contains("after the reply to STARTTLS")), "{err}");
    fake.finish().await;
}

#[tokio::test]
async fn required_tls_refuses_servers_without_it() {
    let fake = Fake::serve(
        vec![
            "c <- 220 mx.test ESMTP
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250 PIPELINING
             c -> QUIT"
                .into(),
            "c <- 220 mx.test ESMTP
             c -> EHLO client.test
             c <- 250-mx.test
             c <- 250 STARTTLS
             c -> STARTTLS
             c <- 454 4.7.0 TLS not available"
                .into(),
        ],
        None,
    )
    .await;
    let config = ClientConfig { tls: TlsPolicy::Required, ..config() };
    let err = Connection::open(fake.addr, "mx.test", &config).await.err().unwrap();
    assert!(matches!(err, ClientError::TlsRequired) && !err.is_permanent(), "{err}");
    let err = Connection::open(fake.addr, "mx.test", &config).await.err().unwrap();
    assert!(matches!(&err, ClientError::Tls(e) if e.contains("454")) && !err.is_permanent(), "{err}");
    fake.finish().await;
}

fn alice() -> Option<Credentials> {
    Some(Credentials { username: "alice".into(), password: Secret::new("secret".into()) })
}

#[tokio::test]
async fn auth_plain_after_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, _) = tls_identity(dir.path());
    let script = starttls_script(
        "c <- 250-smarthost.test
         c <- 250 AUTH LOGIN PLAIN
         c -> AUTH PLAIN AGFsaWNlAHNlY3JldA==
         c <- 235 2.7.0 Authentication successful
         c -> QUIT
         c <- 221 Bye",
    );
    let refused = starttls_script(
        "c <- 250-smarthost.test
         c <- 250 AUTH PLAIN
         c -> AUTH PLAIN AGFsaWNlAHNlY3JldA==
         c <- 535 5.7.8 Authentication credentials invalid
         c -> QUIT",
    );
    let fake = Fake::serve(vec![script, refused], Some(acceptor)).await;
    let config = ClientConfig { tls: TlsPolicy::Required, auth: alice(), ..config() };
    let conn = Connection::open(fake.addr, "localhost", &config).await.unwrap();
    assert!(conn.tls().is_some());
    conn.quit().await;
    let err = Connection::open(fake.addr, "localhost", &config).await.err().unwrap();
    assert!(matches!(&err, ClientError::Auth(r) if r.code == 535) && !err.is_permanent(), "{err}");
    fake.finish().await;
}

#[tokio::test]
async fn auth_login_when_plain_is_not_offered() {
    // In the clear: allowed only because the server is on loopback.
    let fake = Fake::serve(
        vec![
            "c <- 220 smarthost.test
             c -> EHLO client.test
             c <- 250-smarthost.test
             c <- 250 AUTH LOGIN
             c -> AUTH LOGIN
             c <- 334 VXNlcm5hbWU6
             c -> YWxpY2U=
             c <- 334 UGFzc3dvcmQ6
             c -> c2VjcmV0
             c <- 235 2.7.0 Ok
             c -> QUIT
             c <- 221 Bye"
                .into(),
            "c <- 220 smarthost.test
             c -> EHLO client.test
             c <- 250 smarthost.test
             c -> QUIT"
                .into(),
        ],
        None,
    )
    .await;
    let config = ClientConfig { auth: alice(), ..config() };
    let conn = Connection::open(fake.addr, "smarthost.test", &config).await.unwrap();
    conn.quit().await;
    let err = Connection::open(fake.addr, "smarthost.test", &config).await.err().unwrap();
    assert!(matches!(err, ClientError::AuthUnavailable), "{err}");
    fake.finish().await;
}

#[tokio::test]
async fn delivers_to_the_real_listener_over_starttls() {
    let mut world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, _) = tls_identity(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = world.context(&SessionOptions::default());
    let server = tokio::spawn(mailroom_smtp::serve(
        listener,
        ctx,
        ListenerTls::Plain(Some(acceptor)),
        world.shutdown.clone(),
        Duration::from_secs(1),
    ));

    let config = ClientConfig { tls: TlsPolicy::Required, ..config() };
    let mut conn = Connection::open(addr, "localhost", &config).await.unwrap();
    assert!(conn.tls().is_some());
    let message = b"Subject: via the client\r\n\r\n.a dotted line\r\nbody\r\n";
    for _ in 0..2 {
        let to = ["alice@example.test", "nobody@example.test", "bob@example.test"];
        let outcomes = conn.send(&envelope("sender@remote.test", &to), message).await.unwrap();
        let kinds: Vec<_> = outcomes
            .iter()
            .map(|o| match o {
                RecipientOutcome::Delivered(_) => "delivered",
                RecipientOutcome::Transient(_) => "transient",
                RecipientOutcome::Permanent(_) => "permanent",
            })
            .collect();
        assert_eq!(kinds, ["delivered", "permanent", "delivered"], "{outcomes:?}");
    }
    conn.quit().await;

    for user in ["alice@example.test", "bob@example.test"] {
        let inbox = world.inbox(user).await;
        assert_eq!(inbox.len(), 2);
        assert!(inbox[0].1.ends_with(message), "{}", String::from_utf8_lossy(&inbox[0].1));
    }
    world.trigger.trigger();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
}
