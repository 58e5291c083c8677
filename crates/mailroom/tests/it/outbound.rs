//! Mail out, end to end: two servers for two domains on their own loopback
//! addresses, found through MX records a real dnsmasq serves; submission
//! with swaks (STARTTLS + AUTH); delivery, retries across a restart, and
//! bounces.
//!
//! Everything listens on loopback; every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use mailroom_services::config::Config;
use mailroom_store::MailStore;
use mailroom_testkit::dnsmasq::{Dnsmasq, Record};

use crate::common::{InProcess, cli_ok, inbox, require_tool, run_with_timeout, show};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@other.test";

fn pw(user: &str) -> String {
    format!("pw-{user}")
}

/// Port 25 on both addresses when `prefer_25` and this process may bind
/// it (as the story has it; one test only, as tests run in parallel), else
/// one free port both addresses share.
fn mx_port(a: Ipv4Addr, b: Ipv4Addr, prefer_25: bool) -> u16 {
    let first = if prefer_25 { 25 } else { 0 };
    for port in std::iter::once(first).chain((0..50).map(|_| 0)) {
        let Ok(first) = TcpListener::bind((a, port)) else { continue };
        let port = first.local_addr().expect("bound").port();
        if TcpListener::bind((b, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both {a} and {b}");
}

/// A server for `domain` whose MTA listener is `mx`, resolving through
/// `dns`, with `users`.
fn server(domain: &str, host: &str, mx: SocketAddr, dns: SocketAddr, users: &[&str]) -> InProcess {
    InProcess::start_domain(domain, users, |c: &mut Config| {
        c.hostname = host.into();
        c.listen.smtp = Some(mx);
        c.delivery.dns_server = Some(dns);
        c.delivery.port = mx.port();
        c.queue.poll_interval = mailroom_services::config::HumanDuration(Duration::from_millis(200));
    })
}

/// Submits with swaks over STARTTLS with AUTH PLAIN; swaks' transcript.
fn swaks(addr: SocketAddr, user: &str, from: &str, to: &str, subject: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", &addr.ip().to_string(), "--port", &addr.port().to_string()])
        .args(["--tls", "--auth", "PLAIN", "--auth-user", user, "--auth-password", &pw(user)])
        .args(["--from", from, "--to", to, "--header", &format!("Subject: {subject}")])
        .args(["--body", "Hello from the other side.", "--timeout", "20"])
        .args(extra);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "swaks failed: {text}\n{}", show(&out.stderr));
    text
}

/// Waits (bounded) until `user` of `server` has `n` messages in INBOX.
fn wait_inbox(server: &InProcess, user: &str, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = server.rt.block_on(inbox(&server.store, user));
        if messages.len() >= n {
            assert_eq!(messages.len(), n, "{user} got more messages than expected");
            return messages.into_iter().map(|(_, raw)| raw).collect();
        }
        assert!(Instant::now() < deadline, "{user} has {} of {n} messages", messages.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until the queue of `server` satisfies `done`.
fn wait_queue(server: &InProcess, what: &str, done: impl Fn(&[mailroom_store::QueueEntry]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queue = server.rt.block_on(server.store.queue_entries(None)).expect("queue");
        if done(&queue) {
            return;
        }
        assert!(Instant::now() < deadline, "queue never {what}: {queue:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn curl(args: &[&str]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "20"]).args(args);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(30));
    assert!(out.status.success(), "curl {args:?} failed: {}", show(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct TwoDomains {
    _dns: Dnsmasq,
    a: InProcess,
    b: InProcess,
}

fn two_domains(prefer_25: bool) -> Option<TwoDomains> {
    if !require_tool("swaks") || !require_tool("curl") {
        return None;
    }
    let (ip_a, ip_b) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let port = mx_port(ip_a, ip_b, prefer_25);
    let records = [
        Record::Mx { domain: "example.test".into(), host: "mx.example.test".into(), preference: 10 },
        Record::A { host: "mx.example.test".into(), ip: ip_a },
        Record::Mx { domain: "other.test".into(), host: "mx.other.test".into(), preference: 10 },
        Record::A { host: "mx.other.test".into(), ip: ip_b },
    ];
    let dns = match Dnsmasq::start(&records).expect("start dnsmasq") {
        Some(dns) => dns,
        None if std::env::var_os("CI").is_some() => panic!("dnsmasq is not installed, but CI is set"),
        None => {
            eprintln!("SKIPPED: dnsmasq not installed");
            return None;
        }
    };
    let a = server("example.test", "mx.example.test", SocketAddr::from((ip_a, port)), dns.addr(), &[ALICE]);
    let b = server("other.test", "mx.other.test", SocketAddr::from((ip_b, port)), dns.addr(), &[BOB]);
    Some(TwoDomains { _dns: dns, a, b })
}

/// The seeds' story: alice submits to her server, which finds bob's server
/// by MX and delivers; bob reads over IMAP and POP3 and replies the same
/// way.
#[test]
fn mail_crosses_domains_by_mx() {
    let Some(t) = two_domains(true) else { return };
    let out = swaks(t.a.submission_addr(), ALICE, ALICE, BOB, "across", &[]);
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    assert!(out.contains("235 2.7.0"), "AUTH succeeded under TLS: {out}");
    let got = wait_inbox(&t.b, BOB, 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.starts_with("Return-Path: <alice@example.test>\r\nReceived: from mx.example.test"), "{text}");
    assert!(text.contains("Subject: across\r\n") && text.contains("Hello from the other side."), "{text}");
    assert!(text.contains("with ESMTPSA id"), "the submission is recorded: {text}");
    assert_eq!(text.matches("Return-Path:").count(), 1, "only the final delivery adds Return-Path: {text}");
    wait_queue(&t.a, "emptied", |q| q.is_empty());

    // Bob reads it with real clients.
    let user = format!("{BOB}:{}", pw(BOB));
    let imap = curl(&["--user", &user, &format!("imap://{}/INBOX;UID=1", t.b.imap_addr())]);
    assert!(imap.contains("Subject: across"), "{imap}");
    let pop = curl(&["--user", &user, &format!("pop3://{}/1", t.b.pop3_addr())]);
    assert!(pop.contains("Subject: across"), "{pop}");

    // And replies through his own server.
    let out = swaks(t.b.submission_addr(), BOB, BOB, ALICE, "Re: across", &[]);
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let got = wait_inbox(&t.a, ALICE, 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: Re: across"));
}

/// A recipient the remote server refuses: alice gets a DSN naming it and
/// quoting the reply; a message with the null sender gets none.
#[test]
fn permanent_failures_bounce_to_the_sender() {
    let Some(t) = two_domains(false) else { return };
    swaks(t.a.submission_addr(), ALICE, ALICE, "nobody@other.test", "doomed", &[]);
    let got = wait_inbox(&t.a, ALICE, 1);
    let dsn = String::from_utf8_lossy(&got[0]);
    assert!(dsn.contains("Content-Type: multipart/report"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; nobody@other.test"), "{dsn}");
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("550 5.1.1 <nobody@other.test>: Recipient address rejected: User unknown"), "{dsn}");
    assert!(dsn.contains("Subject: doomed"), "the original headers are quoted: {dsn}");
    wait_queue(&t.a, "emptied", |q| q.is_empty());

    // The null sender: the failure is final, and nobody is told.
    swaks(t.a.submission_addr(), ALICE, "<>", "nobody@other.test", "null sender", &["--h-From", ALICE]);
    wait_queue(&t.a, "emptied", |q| q.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wait_inbox(&t.a, ALICE, 1).len(), 1, "no DSN for a null-sender message");
}

/// The destination is down: the message waits with the error recorded; a
/// restart loses nothing; once the destination is up, `mailroom queue
/// retry` delivers it exactly once.
#[test]
fn retries_survive_a_restart() {
    if !require_tool("swaks") {
        return;
    }
    // A port nothing listens on yet: bound, then released.
    let down = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let mut a = InProcess::start_domain("example.test", &[ALICE], |c: &mut Config| {
        c.delivery.routes.insert("other.test".into(), vec![down.into()]);
        c.queue.poll_interval = mailroom_services::config::HumanDuration(Duration::from_millis(200));
    });
    let out = swaks(a.submission_addr(), ALICE, ALICE, BOB, "patience", &[]);
    let id = out
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .map(|s| s.trim().to_owned())
        .expect("queue id in swaks output");
    wait_queue(&a, "recorded the failed attempt", |q| {
        q.len() == 1 && q[0].recipients[0].attempts == 1 && !q[0].recipients[0].last_reply.is_empty()
    });
    let config = a.cli_config();
    let show = cli_ok(&config, &["queue", "show", &id], "");
    assert!(show.contains("recipient: bob@other.test") && show.contains("attempts: 1"), "{show}");
    assert!(show.contains(&down.to_string()), "the connection error names the destination: {show}");
    let list = cli_ok(&config, &["queue", "list"], "");
    assert!(list.contains(&id) && list.contains(BOB), "{list}");

    a.restart();
    let b = InProcess::start_domain("other.test", &[BOB], |c: &mut Config| c.listen.smtp = Some(down));
    let retried = cli_ok(&config, &["queue", "retry", &id], "");
    assert_eq!(retried.trim(), "1 recipient(s) due now");
    wait_inbox(&b, BOB, 1);
    wait_queue(&a, "emptied", |q| q.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wait_inbox(&b, BOB, 1).len(), 1, "delivered once");
    assert!(cli_ok(&config, &["queue", "list"], "").contains("queue is empty"));
}

/// Runs swaks against `addr` with `args`; its transcript, whatever the
/// outcome.
fn swaks_at(addr: SocketAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", &addr.ip().to_string(), "--port", &addr.port().to_string()]);
    cmd.args(args).args(["--timeout", "20", "--body", "x"]);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(30));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Implicit TLS on `submissions` (RFC 8314) with swaks `--tlsc`; no relay
/// without a login on any listener; no forged sender with one.
#[test]
fn submission_listeners_refuse_relaying_and_forgery() {
    if !require_tool("swaks") {
        return;
    }
    let a = InProcess::start_domain("example.test", &[ALICE, "bob@example.test"], |_| {});
    let password = pw(ALICE);
    let login = ["--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", password.as_str()];

    let out = swaks_at(a.submissions_addr(), &[&["--tlsc"], &login[..], &["--from", ALICE, "--to", BOB]].concat());
    assert!(out.contains("=== TLS started") && out.contains("250 2.0.0 Ok: queued as"), "{out}");

    // No login: no relay, on either port.
    let out = swaks_at(a.submission_addr(), &["--tls", "--from", ALICE, "--to", BOB]);
    assert!(out.contains("530 5.7.0 Authentication required"), "{out}");
    let out = swaks_at(a.addr, &["--from", ALICE, "--to", BOB]);
    assert!(out.contains("554 5.7.1 <bob@other.test>: Relay access denied"), "{out}");

    // A login does not make another user's address yours.
    let forged = [&["--tls"], &login[..], &["--from", ALICE, "--to", BOB, "--h-From", "bob@example.test"]].concat();
    let out = swaks_at(a.submission_addr(), &forged);
    assert!(out.contains("553 5.7.1 <bob@example.test>: From: address rejected"), "{out}");
    let forged = [&["--tls"], &login[..], &["--from", "bob@example.test", "--to", BOB]].concat();
    let out = swaks_at(a.submission_addr(), &forged);
    assert!(out.contains("553 5.7.1 <bob@example.test>: Sender address rejected"), "{out}");
}

/// The server as started checks mail on port 25: the stored copy carries
/// this host's Authentication-Results (the answers come from a dnsmasq that
/// knows none of the names), and a forged one claiming this host is gone.
#[test]
fn port_25_mail_is_checked_by_default() {
    let dns = match Dnsmasq::start(&[Record::a("unrelated.test", Ipv4Addr::LOCALHOST)]).expect("start dnsmasq") {
        Some(dns) => dns,
        None if std::env::var_os("CI").is_some() => panic!("dnsmasq is not installed, but CI is set"),
        None => {
            eprintln!("SKIPPED: dnsmasq not installed");
            return;
        }
    };
    let server = InProcess::start_with(|c: &mut Config| {
        c.authentication = mailroom_services::config::AuthenticationConfig::default();
        c.delivery.dns_server = Some(dns.addr());
    });
    let message =
        b"Authentication-Results: mx.example.test; dkim=pass\r\nFrom: carol@other.test\r\nSubject: checked\r\n\r\nHi.\r\n";
    crate::common::send_mail(server.addr, "carol@other.test", ALICE, message);
    let got = wait_inbox(&server, ALICE, 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert_eq!(text.matches("Authentication-Results:").count(), 1, "{text}");
    assert!(text.contains("Authentication-Results: mx.example.test;"), "{text}");
    assert!(!text.contains("dkim=pass"), "the forged result is gone: {text}");
    assert!(text.contains("spf=") && text.contains("dmarc="), "{text}");
}
