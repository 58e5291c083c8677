//! Table-driven script tests: bytes in, exact bytes out (style guide §3).
//!
//! `check(input, expected)` runs a script against a server with default
//! limits and a driver that accepts everything, writing `\n` for CRLF in
//! both strings and leaving out the greeting. Every script runs twice, fed
//! whole and fed one byte at a time, and both runs must agree exactly.

use super::*;
use crate::reply::EnhancedCode;

const HOST: &str = "mx.test";
const GREETING: &str = "220 mx.test ESMTP Mailroom\r\n";
const EHLO: &str = "250-mx.test\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250-SMTPUTF8\n250 CHUNKING\n";
/// EHLO, MAIL and RCPT accepted, ready for DATA or BDAT.
const OPEN: &str = "EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\n";
const OPEN_OK: &str = "250-mx.test\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250-SMTPUTF8\n250 CHUNKING\n250 2.1.0 Ok\n250 2.1.5 Ok\n";

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn reply(code: u16, e: (u8, u16, u16), text: &str) -> Reply {
    Reply::new(code, Some(EnhancedCode(e.0, e.1, e.2)), text)
}

/// How the scripted driver answers decisions.
#[derive(Clone)]
struct Script {
    limits: Limits,
    reject_mail: Option<Reply>,
    /// Recipients (as written in the address) to reject, with the reply.
    reject_rcpt: Vec<(String, Reply)>,
    reject_data: Option<Reply>,
    /// The reply for MessageEnd; default `250 2.0.0 Ok: queued as N`.
    complete: Option<Reply>,
    /// Whether STARTTLS is offered; the scripted handshake always works.
    starttls: bool,
    /// `ServerConfig::auth_available` and `auth_required`.
    auth_available: bool,
    auth_required: bool,
    /// Whether AUTH becomes available once TLS is on (the driver's
    /// `set_auth_available` after `tls_started`).
    auth_after_tls: bool,
}

/// What a script run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    output: String,
    messages: Vec<String>,
    aborted: usize,
    closed: bool,
    /// Decision events, in order, for tests that look at them.
    decisions: Vec<String>,
    /// `Server::authenticated` at the end.
    authenticated: Option<String>,
}

impl Script {
    fn new() -> Script {
        Script {
            limits: Limits::default(),
            reject_mail: None,
            reject_rcpt: vec![],
            reject_data: None,
            complete: None,
            starttls: false,
            auth_available: false,
            auth_required: false,
            auth_after_tls: false,
        }
    }

    /// AUTH available (and, with `required`, a submission listener).
    fn auth(mut self, available: bool, required: bool) -> Script {
        self.auth_available = available;
        self.auth_required = required;
        self
    }

    fn limits(mut self, f: impl FnOnce(&mut Limits)) -> Script {
        f(&mut self.limits);
        self
    }

    fn reject_rcpt(mut self, addr: &str, r: Reply) -> Script {
        self.reject_rcpt.push((addr.to_string(), r));
        self
    }

    fn server(&self) -> Server {
        Server::new(ServerConfig {
            hostname: HOST.into(),
            limits: self.limits.clone(),
            starttls_available: self.starttls,
            auth_available: self.auth_available,
            auth_required: self.auth_required,
        })
    }

    /// Runs `input` whole and byte by byte; both must give the same outcome.
    fn run(&self, input: &[u8]) -> Outcome {
        let whole = Driver::new(self.clone()).run([input]);
        let bytewise = Driver::new(self.clone()).run(input.chunks(1));
        assert_eq!(whole, bytewise, "feeding byte by byte changed the outcome");
        whole
    }
}

/// A minimal driver: answers decisions from its script, stores messages.
struct Driver {
    script: Script,
    server: Server,
    out: Vec<u8>,
    current: Vec<u8>,
    outcome: Outcome,
}

impl Driver {
    fn new(script: Script) -> Driver {
        let server = script.server();
        let outcome = Outcome {
            output: String::new(),
            messages: vec![],
            aborted: 0,
            closed: false,
            decisions: vec![],
            authenticated: None,
        };
        Driver { script, server, out: vec![], current: vec![], outcome }
    }

    fn run<'a>(mut self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        self.pump();
        for chunk in chunks {
            if self.outcome.closed {
                break;
            }
            self.server.feed(chunk);
            self.pump();
        }
        self.finish()
    }

    fn finish(mut self) -> Outcome {
        self.out.extend(self.server.take_output());
        self.outcome.output = String::from_utf8_lossy(&self.out).into_owned();
        self.outcome.authenticated = self.server.authenticated().map(str::to_string);
        self.outcome
    }

    /// Handles events until the server needs input or closes.
    fn pump(&mut self) {
        loop {
            let event = self.server.next();
            match &event {
                Event::NeedInput => break,
                Event::Close => {
                    self.outcome.closed = true;
                    break;
                }
                Event::Data(bytes) => self.current.extend_from_slice(bytes),
                Event::MessageAborted => {
                    self.current.clear();
                    self.outcome.aborted += 1;
                }
                _ => self.decide(event),
            }
        }
        self.out.extend(self.server.take_output());
    }

    fn decide(&mut self, event: Event) {
        self.outcome.decisions.push(format!("{event:?}"));
        let refusal = match &event {
            Event::Mail { .. } => self.script.reject_mail.clone(),
            Event::Rcpt { forward_path: ForwardPath::Address(a), .. } => {
                self.script.reject_rcpt.iter().find(|(r, _)| *r == a.to_string()).map(|(_, r)| r.clone())
            }
            Event::Rcpt { .. } => None,
            Event::DataStart => {
                self.current.clear();
                self.script.reject_data.clone()
            }
            Event::StartTls => {
                self.server.tls_started();
                return self.server.set_auth_available(self.script.auth_after_tls);
            }
            // The scripted account store knows one password.
            Event::Auth { password, .. } => {
                (password.expose() != "secret").then(|| reply(535, (5, 7, 8), "Authentication credentials invalid"))
            }
            Event::MessageEnd => {
                let message = String::from_utf8_lossy(&mem::take(&mut self.current)).into_owned();
                self.outcome.messages.push(message);
                let n = self.outcome.messages.len();
                let r = self
                    .script
                    .complete
                    .clone()
                    .unwrap_or_else(|| reply(250, (2, 0, 0), &format!("Ok: queued as {n}")));
                return self.server.complete(r);
            }
            _ => unreachable!("not a decision: {event:?}"),
        };
        match refusal {
            Some(r) => self.server.reject(r),
            None => self.server.accept(),
        }
    }
}

/// Runs `input` (with `\n` meaning CRLF) with default settings and checks
/// the output after the greeting (with `\n` meaning CRLF).
fn check(input: &str, expected: &str) -> Outcome {
    check_with(&Script::new(), crlf(input).as_bytes(), expected)
}

/// Like [`check`] but with raw input bytes and a given script.
fn check_with(script: &Script, input: &[u8], expected: &str) -> Outcome {
    let outcome = script.run(input);
    let size = format!("250-SIZE {}", script.limits.max_message_size);
    let expected = format!("{GREETING}{}", crlf(expected).replace("250-SIZE 26214400", &size));
    assert_eq!(outcome.output, expected, "input: {:?}", String::from_utf8_lossy(input));
    outcome
}

#[test]
fn greeting_is_queued_at_start() {
    let mut s = Script::new().server();
    assert_eq!(s.take_output(), GREETING.as_bytes());
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.take_output(), b"");
}

#[test]
fn helo_and_ehlo() {
    check("HELO c.test\n", "250 mx.test\n");
    check("EHLO c.test\n", EHLO);
    check("ehlo [192.0.2.1]\nhelo c.test\n", &format!("{EHLO}250 mx.test\n"));
    let mut s = Script::new().server();
    s.feed(b"EHLO c.test\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!((s.helo(), s.is_extended()), (Some("c.test"), true));
    s.feed(b"HELO other.test\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!((s.helo(), s.is_extended()), (Some("other.test"), false));
}

#[test]
fn ehlo_advertises_the_configured_size() {
    let script = Script::new().limits(|l| l.max_message_size = 1000);
    check_with(&script, b"EHLO c.test\r\n", &EHLO.replace("26214400", "1000"));
}

#[test]
fn a_whole_transaction_with_data() {
    let o = check(
        &format!("{OPEN}DATA\nSubject: hi\n\nhello\n.\nQUIT\n"),
        &format!("{OPEN_OK}354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok: queued as 1\n221 2.0.0 Bye\n"),
    );
    assert_eq!(o.messages, [crlf("Subject: hi\n\nhello\n")]);
    assert!(o.closed);
    assert_eq!(
        o.decisions,
        [
            "Mail { reverse_path: Address(Address(a@x.test)), params: MailParams { size: None, body: None, smtputf8: false, auth: None } }",
            "Rcpt { forward_path: Address(Address(b@y.test)), params: RcptParams }",
            "DataStart",
            "MessageEnd"
        ]
    );
}

#[test]
fn simple_commands() {
    for (input, expected) in [
        ("RSET\n", "250 2.0.0 Ok\n"),
        ("NOOP\n", "250 2.0.0 Ok\n"),
        ("noop with text\n", "250 2.0.0 Ok\n"),
        ("VRFY bob\n", "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\n"),
        ("EXPN staff\n", "502 5.5.1 Error: EXPN not supported\n"),
        ("HELP\n", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT\n"),
        ("HELP DATA\n", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT\n"),
        ("STARTTLS\n", "502 5.5.1 Error: command not implemented\n"),
        ("AUTH PLAIN AGJvYgBzZWNyZXQ=\n", "503 5.5.1 Error: authentication not enabled\n"),
        ("FOO\n", "500 5.5.2 Error: command not recognized\n"),
        ("\n", "500 5.5.2 Error: command not recognized\n"),
        ("QUIT\n", "221 2.0.0 Bye\n"),
    ] {
        check(input, expected);
    }
}

#[test]
fn quit_closes_and_ignores_what_follows() {
    let o = check("QUIT\nNOOP\n", "221 2.0.0 Bye\n");
    assert!(o.closed);
    let mut s = Script::new().server();
    s.feed(b"QUIT\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.next(), Event::Close);
    assert!(s.is_closed());
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next(), Event::Close);
}

#[test]
fn bad_syntax() {
    let mail = format!("{EHLO}250 2.1.0 Ok\n");
    for (input, prefix, expected) in [
        ("HELO\n", "", "501 5.5.4 Syntax: HELO hostname\n"),
        ("EHLO\n", "", "501 5.5.4 Syntax: EHLO hostname\n"),
        ("EHLO c.test\nMAIL\n", EHLO, "501 5.5.4 Syntax: MAIL FROM:<address>\n"),
        ("EHLO c.test\nMAIL FROM:a@x.test\n", EHLO, "501 5.5.4 Syntax: MAIL FROM:<address>\n"),
        ("EHLO c.test\nMAIL FROM:<a@@x.test>\n", EHLO, "501 5.1.7 Bad sender address syntax\n"),
        ("EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT\n", &mail, "501 5.5.4 Syntax: RCPT TO:<address>\n"),
        ("EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b>\n", &mail, "501 5.1.3 Bad recipient address syntax\n"),
        ("EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<>\n", &mail, "501 5.1.3 Bad recipient address syntax\n"),
        ("VRFY\n", "", "501 5.5.4 Syntax: VRFY address\n"),
        ("DATA now\n", "", "501 5.5.4 Syntax: DATA\n"),
        ("RSET all\n", "", "501 5.5.4 Syntax: RSET\n"),
        ("QUIT now\n", "", "501 5.5.4 Syntax: QUIT\n"),
        ("BDAT ten\n", "", "501 5.5.4 Syntax: BDAT size [LAST]\n"),
    ] {
        check(input, &format!("{prefix}{expected}"));
    }
}

#[test]
fn wrong_sequence() {
    let mail = format!("{EHLO}250 2.1.0 Ok\n");
    let open = format!("{OPEN}MAIL FROM:<a@x.test>\n");
    for (input, prefix, expected) in [
        ("MAIL FROM:<a@x.test>\n", "", "503 5.5.1 Error: send HELO/EHLO first\n"),
        ("RCPT TO:<b@y.test>\n", "", "503 5.5.1 Error: send HELO/EHLO first\n"),
        ("DATA\n", "", "503 5.5.1 Error: send HELO/EHLO first\n"),
        ("EHLO c.test\nRCPT TO:<b@y.test>\n", EHLO, "503 5.5.1 Error: need MAIL command\n"),
        ("EHLO c.test\nDATA\n", EHLO, "503 5.5.1 Error: need MAIL command\n"),
        (&open, OPEN_OK, "503 5.5.1 Error: nested MAIL command\n"),
        ("EHLO c.test\nMAIL FROM:<a@x.test>\nDATA\n", &mail, "554 5.5.1 Error: no valid recipients\n"),
    ] {
        check(input, &format!("{prefix}{expected}"));
    }
}

#[test]
fn helo_ehlo_and_rset_reset_the_transaction() {
    for reset in ["RSET", "EHLO c.test", "HELO c.test"] {
        let o = check(
            &format!("EHLO c.test\nMAIL FROM:<a@x.test>\n{reset}\nRCPT TO:<b@y.test>\n"),
            &format!(
                "{EHLO}250 2.1.0 Ok\n{}503 5.5.1 Error: need MAIL command\n",
                match reset {
                    "RSET" => "250 2.0.0 Ok\n",
                    "EHLO c.test" => EHLO,
                    _ => "250 mx.test\n",
                }
            ),
        );
        assert_eq!(o.aborted, 0, "no message was in progress");
    }
}

#[test]
fn many_transactions_per_connection() {
    let o = check(
        &format!("{OPEN}DATA\none\n.\nMAIL FROM:<>\nRCPT TO:<c@y.test>\nDATA\ntwo\n.\n"),
        &format!(
            "{OPEN_OK}354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok: queued as 1\n\
             250 2.1.0 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok: queued as 2\n"
        ),
    );
    assert_eq!(o.messages, ["one\r\n", "two\r\n"]);
}

#[test]
fn driver_rejections() {
    let no = reply(550, (5, 7, 1), "No");
    let mut script = Script::new();
    script.reject_mail = Some(no.clone());
    // A rejected MAIL starts no transaction.
    check_with(
        &script,
        crlf("EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\n").as_bytes(),
        &format!("{EHLO}550 5.7.1 No\n503 5.5.1 Error: need MAIL command\n"),
    );
    // A rejected RCPT is not counted.
    let script = Script::new().reject_rcpt("b@y.test", no.clone());
    check_with(
        &script,
        crlf(&format!("{OPEN}DATA\n")).as_bytes(),
        &OPEN_OK.replace("250 2.1.5 Ok\n", "550 5.7.1 No\n554 5.5.1 Error: no valid recipients\n"),
    );
    // A rejected DataStart resets the transaction.
    let mut script = Script::new();
    script.reject_data = Some(reply(451, (4, 3, 0), "Try later"));
    check_with(
        &script,
        crlf(&format!("{OPEN}DATA\nRCPT TO:<b@y.test>\n")).as_bytes(),
        &format!("{OPEN_OK}451 4.3.0 Try later\n503 5.5.1 Error: need MAIL command\n"),
    );
    // A failed MessageEnd also ends the transaction.
    let mut script = Script::new();
    script.complete = Some(reply(451, (4, 3, 0), "Store down"));
    check_with(
        &script,
        crlf(&format!("{OPEN}DATA\nx\n.\nRCPT TO:<b@y.test>\n")).as_bytes(),
        &format!(
            "{OPEN_OK}354 End data with <CR><LF>.<CR><LF>\n451 4.3.0 Store down\n503 5.5.1 Error: need MAIL command\n"
        ),
    );
}

#[test]
fn mail_parameters() {
    let mail = |params: &str| format!("EHLO c.test\nMAIL FROM:<a@x.test>{params}\n");
    for (params, expected) in [
        (" SIZE=26214400", "250 2.1.0 Ok\n"),
        (" SIZE=26214401", "552 5.3.4 Error: message file too big\n"),
        (" SIZE=99999999999999999999999", "552 5.3.4 Error: message file too big\n"),
        (" BODY=8BITMIME", "250 2.1.0 Ok\n"),
        (" body=7bit", "250 2.1.0 Ok\n"),
        (" BODY=BINARYMIME", "555 5.5.4 Unsupported option: BODY=BINARYMIME\n"),
        (" SMTPUTF8", "250 2.1.0 Ok\n"),
        (" AUTH=<>", "555 5.5.4 Unsupported option: AUTH\n"),
        (" SIZE=x", "501 5.5.4 Bad SIZE parameter syntax\n"),
    ] {
        check(&mail(params), &format!("{EHLO}{expected}"));
    }
}

#[test]
fn no_parameters_after_helo() {
    for (params, name) in [(" SIZE=10", "SIZE"), (" BODY=8BITMIME", "BODY"), (" SMTPUTF8", "SMTPUTF8")] {
        check(
            &format!("HELO c.test\nMAIL FROM:<a@x.test>{params}\n"),
            &format!("250 mx.test\n555 5.5.4 Unsupported option: {name}\n"),
        );
    }
    check(
        "HELO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test> NOTIFY=NEVER\nRCPT TO:<b@y.test>\n",
        "250 mx.test\n250 2.1.0 Ok\n555 5.5.4 Unsupported option: NOTIFY\n250 2.1.5 Ok\n",
    );
}

#[test]
fn transaction_accessors() {
    let mut s = Script::new().server();
    s.feed(b"EHLO c.test\r\nMAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8\r\n");
    assert!(matches!(s.next(), Event::Mail { .. }));
    assert!(!s.transaction_smtputf8(), "no transaction until accepted");
    s.accept();
    assert_eq!(s.next(), Event::NeedInput);
    assert!(s.transaction_smtputf8());
    assert_eq!(s.transaction_body(), Some(Body::EightBitMime));
    s.feed(b"RSET\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert!(!s.transaction_smtputf8());
    assert_eq!(s.transaction_body(), None);
}

#[test]
fn postmaster_without_domain() {
    let mut s = Script::new().server();
    s.feed(b"EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<postMASTER>\r\n");
    assert!(matches!(s.next(), Event::Mail { reverse_path: ReversePath::Null, .. }));
    s.accept();
    assert_eq!(s.next(), Event::Rcpt { forward_path: ForwardPath::Postmaster, params: RcptParams {} });
}

#[test]
fn a_pending_decision_is_returned_again() {
    let mut s = Script::new().server();
    s.feed(b"EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nNOOP\r\n");
    let first = s.next();
    assert!(matches!(first, Event::Mail { .. }));
    assert_eq!(s.next(), first);
    s.accept();
    assert_eq!(s.next(), Event::NeedInput);
    assert!(String::from_utf8(s.take_output()).unwrap().ends_with("250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"));
}

#[test]
fn recipient_limit() {
    let rcpts = |n: usize| (0..n).map(|i| format!("RCPT TO:<r{i}@y.test>\n")).collect::<String>();
    let oks = |n: usize| "250 2.1.5 Ok\n".repeat(n);
    let head = "EHLO c.test\nMAIL FROM:<a@x.test>\n";
    let head_ok = format!("{EHLO}250 2.1.0 Ok\n");
    check(&format!("{head}{}", rcpts(100)), &format!("{head_ok}{}", oks(100)));
    check(&format!("{head}{}", rcpts(101)), &format!("{head_ok}{}452 4.5.3 Error: too many recipients\n", oks(100)));
    // A rejected recipient does not count toward the limit.
    let script = Script::new().reject_rcpt("r0@y.test", reply(550, (5, 1, 1), "No such user"));
    check_with(
        &script,
        crlf(&format!("{head}{}", rcpts(101))).as_bytes(),
        &format!("{head_ok}550 5.1.1 No such user\n{}", oks(100)),
    );
}

#[test]
fn smtputf8_is_required_for_utf8_addresses() {
    for (input, expected) in [
        ("MAIL FROM:<jöran@bücher.test>\n", "553 5.6.7 Error: SMTPUTF8 required for non-ASCII address\n"),
        ("MAIL FROM:<jöran@bücher.test> SMTPUTF8\n", "250 2.1.0 Ok\n"),
        (
            "MAIL FROM:<a@x.test>\nRCPT TO:<jöran@bücher.test>\n",
            "250 2.1.0 Ok\n553 5.6.7 Error: SMTPUTF8 required for non-ASCII address\n",
        ),
        ("MAIL FROM:<a@x.test> SMTPUTF8\nRCPT TO:<jöran@bücher.test>\n", "250 2.1.0 Ok\n250 2.1.5 Ok\n"),
    ] {
        check(&format!("EHLO c.test\n{input}"), &format!("{EHLO}{expected}"));
    }
    let input = b"EHLO c.test\r\nMAIL FROM:<\xe9@x.test>\r\nNOOP\r\n";
    check_with(
        &Script::new(),
        input,
        &format!("{EHLO}500 5.5.2 Error: command line is not valid UTF-8\n250 2.0.0 Ok\n"),
    );
}

#[test]
fn command_lines_end_in_crlf_only() {
    for input in [&b"NOOP\n"[..], b"NO\rOP\r\n", b"NOOP\r\r\n", b"\n"] {
        let mut full = input.to_vec();
        full.extend_from_slice(b"NOOP\r\n");
        check_with(&Script::new(), &full, "500 5.5.2 Error: bare <CR> or <LF> received\n250 2.0.0 Ok\n");
    }
}

#[test]
fn command_line_limit() {
    // RFC 5321 §4.5.3.1.4: 512 octets including CRLF.
    let line = |total: usize| format!("NOOP {}\n", "x".repeat(total - 7));
    assert_eq!(crlf(&line(512)).len(), 512);
    check(&line(512), "250 2.0.0 Ok\n");
    check(&format!("{}NOOP\n", line(513)), "500 5.5.2 Error: line too long\n250 2.0.0 Ok\n");
    check(&format!("{}NOOP\n", line(5000)), "500 5.5.2 Error: line too long\n250 2.0.0 Ok\n");
    let script = Script::new().limits(|l| l.max_command_line = 20);
    check_with(
        &script,
        crlf(&format!("{}{}", line(20), line(21))).as_bytes(),
        "250 2.0.0 Ok\n500 5.5.2 Error: line too long\n",
    );
}

#[test]
fn buffer_stays_bounded_without_newlines() {
    let chunk = vec![b'a'; 64 * 1024];
    let mut s = Script::new().server();
    s.take_output();
    for _ in 0..160 {
        s.feed(&chunk);
        assert_eq!(s.next(), Event::NeedInput);
        assert!(s.buffered_len() <= 512, "buffered {}", s.buffered_len());
    }
    s.feed(b"aaa\r\nNOOP\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.take_output(), b"500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    // One 10 MB feed is dropped as soon as it is looked at.
    let mut s = Script::new().server();
    s.feed(&vec![b'a'; 10 * 1024 * 1024]);
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.buffered_len(), 0);
}

#[test]
fn pipelined_transaction_in_one_feed() {
    let input = format!("{OPEN}RCPT TO:<c@y.test>\nDATA\nhello\n.\nQUIT\n");
    let mut s = Script::new().server();
    s.feed(crlf(&input).as_bytes());
    let mut events = vec![];
    loop {
        let e = s.next();
        events.push(format!("{e:?}"));
        match e {
            Event::Mail { .. } | Event::Rcpt { .. } | Event::DataStart => s.accept(),
            Event::MessageEnd => s.complete(reply(250, (2, 0, 0), "Ok: queued as 1")),
            Event::Close => break,
            Event::NeedInput => panic!("all input was there"),
            _ => {}
        }
    }
    assert_eq!(events.len(), 7, "{events:?}");
    let output = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(
        output,
        crlf(&format!(
            "220 mx.test ESMTP Mailroom\n{OPEN_OK}250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok: queued as 1\n221 2.0.0 Bye\n"
        ))
    );
}

const DATA_OK: &str = "354 End data with <CR><LF>.<CR><LF>\n";

/// Runs a DATA transaction whose content is `content` (raw) and returns
/// the outcome after checking that the reply to the message is `expected`.
fn check_data(script: &Script, content: &[u8], expected: &str) -> Outcome {
    let mut input = crlf(&format!("{OPEN}DATA\n")).into_bytes();
    input.extend_from_slice(content);
    input.extend_from_slice(b"NOOP\r\n");
    let o = check_with(script, &input, &format!("{OPEN_OK}{DATA_OK}{expected}250 2.0.0 Ok\n"));
    assert_eq!(o.messages.len() + o.aborted, 1, "exactly one message outcome");
    o
}

#[test]
fn data_dot_unstuffing() {
    let o = check_data(&Script::new(), b"..x\r\n..\r\n.\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, [".x\r\n.\r\n"]);
    let o = check_data(&Script::new(), b".\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, [""]);
    let o = check_data(&Script::new(), b"a\r\n\r\n.\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, ["a\r\n\r\n"]);
}

#[test]
fn data_text_line_limit() {
    // RFC 5321 §4.5.3.1.6: 1000 octets including CRLF; the stuffed dot is
    // not counted.
    let line = |n: usize| format!("{}\r\n", "x".repeat(n - 2));
    let o = check_data(&Script::new(), format!("{}.\r\n", line(1000)).as_bytes(), "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages[0].len(), 1000);
    let stuffed = format!(".{}.\r\n", line(1000));
    check_data(&Script::new(), stuffed.as_bytes(), "250 2.0.0 Ok: queued as 1\n");
    let o = check_data(
        &Script::new(),
        format!("{}.\r\n", line(1001)).as_bytes(),
        "554 5.6.0 Error: message line longer than 1000 octets\n",
    );
    assert_eq!(o.aborted, 1);
}

#[test]
fn data_size_limit() {
    let script = Script::new().limits(|l| l.max_message_size = 20);
    let o = check_data(&script, b"123456789012345678\r\n.\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages[0].len(), 20);
    let o = check_data(&script, b"1234567890123456789\r\n.\r\n", "552 5.3.4 Error: message file too big\n");
    assert_eq!((o.aborted, o.messages.len()), (1, 0));
    // A big message is read to its end, whatever it contains.
    let big = format!("{}\r\nQUIT\r\n.\r\n", "y".repeat(100));
    check_data(&script, big.as_bytes(), "552 5.3.4 Error: message file too big\n");
}

#[test]
fn data_bare_cr_or_lf_is_refused() {
    for content in [&b"a\nb\r\n.\r\n"[..], b"a\rb\r\n.\r\n", b"a\r\r\n.\r\n", b"\n.\r\n.\r\n"] {
        let o = check_data(&Script::new(), content, "554 5.6.0 Error: bare <CR> or <LF> in message data\n");
        assert_eq!((o.aborted, o.messages.len()), (1, 0), "{content:?}");
    }
}

#[test]
fn smuggling_never_ends_data() {
    // CVE-2023-51764: only <CRLF>.<CRLF> ends DATA; everything after these
    // sequences is content of the first message, which is then refused.
    for pattern in ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r.\r\n", "\r\n.\r\r\n", "\r\n\n.\r\n"] {
        let smuggled = format!(
            "{OPEN}DATA\r\nSubject: a\r\n\r\nhello{pattern}MAIL FROM:<evil@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nevil\r\n.\r\nQUIT\r\n"
        )
        .replace(OPEN, &crlf(OPEN));
        let o = check_with(
            &Script::new(),
            smuggled.as_bytes(),
            &format!("{OPEN_OK}{DATA_OK}554 5.6.0 Error: bare <CR> or <LF> in message data\n221 2.0.0 Bye\n"),
        );
        assert!(o.messages.is_empty(), "{pattern:?}");
        assert_eq!(o.aborted, 1, "{pattern:?}");
        assert_eq!(o.decisions.iter().filter(|d| d.starts_with("Mail")).count(), 1, "{pattern:?}");
    }
}

#[test]
fn is_receiving_data_during_content() {
    let mut s = Script::new().server();
    s.feed(crlf(&format!("{OPEN}DATA\n")).as_bytes());
    for _ in 0..3 {
        assert!(!s.is_receiving_data());
        s.next();
        s.accept();
    }
    assert!(s.is_receiving_data());
    s.feed(b"x\r\n.\r\n");
    assert_eq!(s.next(), Event::Data(b"x\r\n".to_vec()));
    assert_eq!(s.next(), Event::MessageEnd);
    assert!(!s.is_receiving_data());
}

fn bdat(input: &str, expected: &str) -> Outcome {
    check_with(&Script::new(), format!("{}{input}", crlf(OPEN)).as_bytes(), &format!("{OPEN_OK}{expected}"))
}

#[test]
fn bdat_single_and_multiple_chunks() {
    let o = bdat("BDAT 7 LAST\r\nhello\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, ["hello\r\n"]);
    let o = bdat("BDAT 3\r\nabcBDAT 4 LAST\r\nde\r\n", "250 2.0.0 3 octets received\n250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, ["abcde\r\n"]);
    let o = bdat("bdat 0 last\r\n", "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, [""]);
    let o = bdat(
        "BDAT 2\r\nabBDAT 0\r\nBDAT 0 LAST\r\n",
        "250 2.0.0 2 octets received\n250 2.0.0 0 octets received\n250 2.0.0 Ok: queued as 1\n",
    );
    assert_eq!(o.messages, ["ab"]);
}

#[test]
fn bdat_content_is_raw_and_never_commands() {
    let chunk = "..x\r\n.\r\nQUIT\r\n";
    let o = bdat(&format!("BDAT {} LAST\r\n{chunk}NOOP\r\n", chunk.len()), "250 2.0.0 Ok: queued as 1\n250 2.0.0 Ok\n");
    assert_eq!(o.messages, [chunk]);
    // A CRLF may be split between chunks.
    let o = bdat("BDAT 2\r\na\rBDAT 2 LAST\r\n\nb", "250 2.0.0 2 octets received\n250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, ["a\r\nb"]);
}

#[test]
fn bdat_split_across_feeds() {
    let input = format!("{}BDAT 10 LAST\r\n0123456789QUIT\r\n", crlf(OPEN));
    let script = Script::new();
    for cut in [1, 20, 60, input.len() - 17, input.len() - 8, input.len() - 7] {
        let (a, b) = input.as_bytes().split_at(cut);
        let o = Driver::new(script.clone()).run([a, b]);
        assert_eq!(o.messages, ["0123456789"], "cut at {cut}");
        assert!(o.output.ends_with("250 2.0.0 Ok: queued as 1\r\n221 2.0.0 Bye\r\n"));
    }
}

#[test]
fn bdat_refusals_still_consume_the_chunk() {
    for (input, expected) in [
        ("BDAT 4\r\nNOOPNOOP\r\n", "503 5.5.1 Error: send HELO/EHLO first\n250 2.0.0 Ok\n"),
        (
            "EHLO c.test\r\nBDAT 4 LAST\r\nQUITNOOP\r\n",
            &format!("{EHLO}503 5.5.1 Error: need MAIL command\n250 2.0.0 Ok\n"),
        ),
        (
            "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nBDAT 4\r\nQUITNOOP\r\n",
            &format!("{EHLO}250 2.1.0 Ok\n554 5.5.1 Error: no valid recipients\n250 2.0.0 Ok\n"),
        ),
        ("BDAT 4 FIRST\r\nNOOP\r\n", "501 5.5.4 Syntax: BDAT size [LAST]\n250 2.0.0 Ok\n"),
    ] {
        check_with(&Script::new(), input.as_bytes(), expected);
    }
    let mut script = Script::new();
    script.reject_data = Some(reply(452, (4, 3, 1), "Insufficient storage"));
    check_with(
        &script,
        format!("{}BDAT 4 LAST\r\nQUITRCPT TO:<b@y.test>\r\n", crlf(OPEN)).as_bytes(),
        &format!("{OPEN_OK}452 4.3.1 Insufficient storage\n503 5.5.1 Error: need MAIL command\n"),
    );
}

#[test]
fn data_after_bdat_is_refused() {
    bdat("BDAT 1\r\naDATA\r\n", "250 2.0.0 1 octets received\n503 5.5.1 Error: DATA not allowed after BDAT\n");
}

#[test]
fn bdat_refused_content() {
    let o = bdat(
        "BDAT 3\r\na\nbBDAT 1 LAST\r\nx",
        "554 5.6.0 Error: bare <CR> or <LF> in message data\n503 5.5.1 Error: need MAIL command\n",
    );
    assert_eq!((o.aborted, o.messages.len()), (1, 0));
    let o = bdat("BDAT 2 LAST\r\na\r", "554 5.6.0 Error: bare <CR> or <LF> in message data\n");
    assert_eq!(o.aborted, 1);
    let long = "x".repeat(999);
    let o = bdat(&format!("BDAT 1001 LAST\r\n{long}\r\n"), "554 5.6.0 Error: message line longer than 1000 octets\n");
    assert_eq!(o.aborted, 1);
    let o = bdat(&format!("BDAT 1000 LAST\r\n{}\r\n", &long[1..]), "250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages.len(), 1);
}

#[test]
fn bdat_size_limit() {
    let script = Script::new().limits(|l| l.max_message_size = 10);
    let run = |input: &str, expected: &str| {
        check_with(&script, format!("{}{input}", crlf(OPEN)).as_bytes(), &format!("{OPEN_OK}{expected}"))
    };
    let o = run("BDAT 6\r\n123456BDAT 4 LAST\r\n7890", "250 2.0.0 6 octets received\n250 2.0.0 Ok: queued as 1\n");
    assert_eq!(o.messages, ["1234567890"]);
    let o = run(
        "BDAT 6\r\n123456BDAT 5 LAST\r\n78901NOOP\r\n",
        "250 2.0.0 6 octets received\n552 5.3.4 Error: message file too big\n250 2.0.0 Ok\n",
    );
    assert_eq!((o.aborted, o.messages.len()), (1, 0));
}

#[test]
fn rset_or_ehlo_between_chunks_aborts() {
    let o = bdat(
        "BDAT 3\r\nabcRSET\r\nRCPT TO:<b@y.test>\r\n",
        "250 2.0.0 3 octets received\n250 2.0.0 Ok\n503 5.5.1 Error: need MAIL command\n",
    );
    assert_eq!((o.aborted, o.messages.len()), (1, 0));
    let o = bdat("BDAT 3\r\nabcEHLO c.test\r\n", &format!("250 2.0.0 3 octets received\n{EHLO}"));
    assert_eq!(o.aborted, 1);
    let o = bdat("BDAT 3\r\nabcQUIT\r\n", "250 2.0.0 3 octets received\n221 2.0.0 Bye\n");
    assert_eq!((o.aborted, o.closed), (1, true));
}

#[test]
fn shutdown_lets_data_in_progress_complete() {
    let mut s = Script::new().server();
    s.feed(crlf(&format!("{OPEN}DATA\nhello\n")).as_bytes());
    for _ in 0..3 {
        s.next();
        s.accept();
    }
    assert_eq!(s.next(), Event::Data(b"hello\r\n".to_vec()));
    assert_eq!(s.next(), Event::NeedInput);
    s.set_shutting_down();
    s.feed(b"more\r\n.\r\nNOOP\r\n");
    assert_eq!(s.next(), Event::Data(b"more\r\n".to_vec()));
    assert_eq!(s.next(), Event::MessageEnd);
    s.complete(reply(250, (2, 0, 0), "Ok: queued as 1"));
    assert_eq!(s.next(), Event::Close);
    let output = String::from_utf8(s.take_output()).unwrap();
    assert!(output.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 1\r\n421 4.3.2 mx.test Service shutting down\r\n"), "{output}");
}

#[test]
fn shutdown_answers_the_next_line_with_421() {
    for input in [&b"NOOP\r\n"[..], b"BAD\n", &[b'x'; 600]] {
        let mut s = Script::new().server();
        s.take_output();
        s.set_shutting_down();
        s.feed(input);
        assert_eq!(s.next(), Event::Close);
        assert_eq!(s.take_output(), b"421 4.3.2 mx.test Service shutting down\r\n");
    }
    // Between BDAT chunks the message is aborted first.
    let mut s = Script::new().server();
    s.feed(crlf(OPEN).as_bytes());
    s.feed(b"BDAT 1\r\nx");
    for _ in 0..3 {
        s.next();
        s.accept();
    }
    assert_eq!(s.next(), Event::Data(b"x".to_vec()));
    assert_eq!(s.next(), Event::NeedInput);
    s.set_shutting_down();
    s.feed(b"BDAT 1 LAST\r\ny");
    assert_eq!(s.next(), Event::MessageAborted);
    assert_eq!(s.next(), Event::Close);
}

#[test]
fn close_with_sends_the_reply_and_closes() {
    let mut s = Script::new().server();
    s.feed(b"EHLO c.test\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    s.take_output();
    s.close_with(reply(421, (4, 4, 2), "mx.test Idle timeout"));
    assert!(s.is_closed());
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.take_output(), b"421 4.4.2 mx.test Idle timeout\r\n");
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.take_output(), b"");
}

#[test]
fn limits_default_to_the_rfc_minimums() {
    let l = Limits::default();
    assert_eq!(
        (l.max_command_line, l.max_text_line, l.max_message_size, l.max_recipients),
        (512, 1000, 26_214_400, 100)
    );
}

/// RFC 3207: STARTTLS is offered in EHLO when the driver can do TLS; it
/// needs EHLO first and no transaction; what came with it is dropped, and
/// afterwards the session starts over (EHLO again, no STARTTLS offered).
/// Fed in two packets, as the network delivers them around a handshake.
#[test]
fn starttls_resets_the_session_and_drops_what_came_with_it() {
    let mut script = Script::new();
    script.starttls = true;
    let ehlo = |tls: &str| {
        format!(
            "250-{HOST}\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250-SMTPUTF8\n{tls}"
        )
    };
    let first =
        crlf("STARTTLS\nEHLO c.test\nMAIL FROM:<a@x.test>\nSTARTTLS\nRSET\nSTARTTLS\nMAIL FROM:<injected@x.test>\n");
    let second = crlf("MAIL FROM:<a@x.test>\nEHLO c.test\nSTARTTLS\nQUIT\n");
    let outcome = Driver::new(script.clone()).run([first.as_bytes(), second.as_bytes()]);
    let expected = format!(
        "{GREETING}{}",
        crlf(&format!(
            "503 5.5.1 Error: send EHLO first\n{}\
             250 2.1.0 Ok\n503 5.5.1 Error: MAIL transaction in progress\n250 2.0.0 Ok\n\
             220 2.0.0 Ready to start TLS\n\
             503 5.5.1 Error: send HELO/EHLO first\n{}\
             502 5.5.1 Error: command not implemented\n221 2.0.0 Bye\n",
            ehlo("250-CHUNKING\n250 STARTTLS\n"),
            ehlo("250 CHUNKING\n"),
        ))
    );
    assert_eq!(outcome.output, expected);
    assert!(!outcome.decisions.iter().any(|d| d.contains("injected")), "{:?}", outcome.decisions);

    // Not offered: EHLO does not list it and STARTTLS is not implemented.
    let outcome = Script::new().run(crlf("EHLO c.test\nSTARTTLS\n").as_bytes());
    assert!(!outcome.output.contains("STARTTLS"));
    assert!(outcome.output.ends_with("502 5.5.1 Error: command not implemented\r\n"));
}

const EHLO_AUTH: &str = "250-mx.test\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250-SMTPUTF8\n250-CHUNKING\n250 AUTH PLAIN LOGIN\n";
/// `\0bob\0secret`, the scripted store's one good login.
const PLAIN_BOB: &str = "AGJvYgBzZWNyZXQ=";
/// `\0bob\0wrong`.
const PLAIN_WRONG: &str = "AGJvYgB3cm9uZw==";
const AUTH_OK: &str = "235 2.7.0 Authentication successful\n";
const BOB_PLAIN: &str = "Auth { mechanism: Plain, authzid: \"\", username: \"bob\", password: Secret(<redacted>) }";

/// A submission listener after TLS: AUTH available and required.
fn submission() -> Script {
    Script::new().auth(true, true)
}

/// Runs `input` (with `\n` meaning CRLF) after EHLO on `script`'s server
/// and checks the output after the EHLO reply.
fn auth_check(script: &Script, input: &str, expected: &str) -> Outcome {
    let ehlo = if script.auth_available { EHLO_AUTH } else { EHLO };
    check_with(script, crlf(&format!("EHLO c.test\n{input}")).as_bytes(), &format!("{ehlo}{expected}"))
}

/// RFC 4954 §3: AUTH is listed only where it may be used.
#[test]
fn auth_is_advertised_only_when_available() {
    check_with(&Script::new().auth(true, false), b"EHLO c.test\r\n", EHLO_AUTH);
    check_with(&submission(), b"EHLO c.test\r\n", EHLO_AUTH);
    check_with(&Script::new().auth(false, true), b"EHLO c.test\r\n", EHLO);
    check_with(&Script::new(), b"EHLO c.test\r\n", EHLO);
}

#[test]
fn plain_with_initial_response() {
    let o = auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_BOB}\nMAIL FROM:<a@x.test>\n"),
        &format!("{AUTH_OK}250 2.1.0 Ok\n"),
    );
    assert_eq!(o.authenticated.as_deref(), Some("bob"));
    assert_eq!(o.decisions[0], BOB_PLAIN);
    // The mechanism name is case-insensitive; an authzid is passed on.
    let o = auth_check(&submission(), "auth plain YWRtaW4AYm9iAHNlY3JldA==\n", AUTH_OK);
    assert_eq!(o.decisions[0], BOB_PLAIN.replace("authzid: \"\"", "authzid: \"admin\""));
}

/// RFC 4954 §4: without an initial response (or with `=`, an empty one)
/// the server sends an empty 334 challenge for PLAIN's message.
#[test]
fn plain_after_a_challenge() {
    for command in ["AUTH PLAIN", "AUTH Plain =", "AUTH PLAIN  "] {
        let o = auth_check(&submission(), &format!("{command}\n{PLAIN_BOB}\n"), &format!("334 \n{AUTH_OK}"));
        assert_eq!(o.authenticated.as_deref(), Some("bob"), "{command}");
        assert_eq!(o.decisions, [BOB_PLAIN]);
    }
}

/// LOGIN asks `Username:` and `Password:`; an initial response is the
/// user name.
#[test]
fn login_both_ways() {
    let login = BOB_PLAIN.replace("Plain", "Login");
    for (input, expected) in [
        ("AUTH LOGIN\nYm9i\nc2VjcmV0\n", "334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n"),
        ("AUTH login =\nYm9i\nc2VjcmV0\n", "334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n"),
        ("AUTH LOGIN Ym9i\nc2VjcmV0\n", "334 UGFzc3dvcmQ6\n"),
    ] {
        let o = auth_check(&submission(), input, &format!("{expected}{AUTH_OK}"));
        assert_eq!(o.authenticated.as_deref(), Some("bob"), "{input}");
        assert_eq!(o.decisions, [login.as_str()]);
    }
}

/// RFC 4954 §4: `*` cancels the exchange at any step.
#[test]
fn star_cancels_the_exchange() {
    for (input, challenges) in [
        ("AUTH PLAIN\n*\n", "334 \n"),
        ("AUTH LOGIN\n*\n", "334 VXNlcm5hbWU6\n"),
        ("AUTH LOGIN Ym9i\n*\n", "334 UGFzc3dvcmQ6\n"),
    ] {
        let o = auth_check(
            &submission(),
            &format!("{input}NOOP\nMAIL FROM:<a@x.test>\n"),
            &format!("{challenges}501 5.0.0 Authentication aborted\n250 2.0.0 Ok\n530 5.7.0 Authentication required\n"),
        );
        assert_eq!(o.authenticated, None);
        assert!(o.decisions.is_empty(), "{:?}", o.decisions);
    }
}

#[test]
fn bad_base64_ends_the_exchange() {
    let bad = "501 5.5.2 Error: invalid base64 data\n";
    for (input, challenges) in [
        ("AUTH PLAIN AGJvYgBzZWNyZXQ\n", ""),
        ("AUTH PLAIN AGJvYgBz ZWNyZXQ=\n", "501 5.5.4 Syntax: AUTH mechanism\n"),
        ("AUTH PLAIN\nAGJvYgBzZWNyZXQ=x\n", "334 \n"),
        // `=` stands for empty only as an initial response.
        ("AUTH PLAIN\n=\n", "334 \n"),
        ("AUTH LOGIN\nYm9i!\n", "334 VXNlcm5hbWU6\n"),
        ("AUTH LOGIN Ym9i\nc2VjcmV0 \n", "334 UGFzc3dvcmQ6\n"),
    ] {
        let expected =
            if challenges.starts_with("501") { challenges.to_string() } else { format!("{challenges}{bad}") };
        let o = auth_check(&submission(), &format!("{input}NOOP\n"), &format!("{expected}250 2.0.0 Ok\n"));
        assert!(o.decisions.is_empty(), "{input}");
    }
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, in UTF-8.
#[test]
fn malformed_or_non_utf8_credentials() {
    let malformed = "501 5.5.2 Error: malformed authentication response\n";
    let not_utf8 = "501 5.5.2 Error: credentials are not valid UTF-8\n";
    for (input, expected) in [
        // `bob\0secret`: one NUL.
        ("AUTH PLAIN Ym9iAHNlY3JldA==\n".to_string(), malformed.to_string()),
        // An empty response after the challenge.
        ("AUTH PLAIN\n\n".to_string(), format!("334 \n{malformed}")),
        ("AUTH PLAIN AGL/YgBzZWNyZXQ=\n".to_string(), not_utf8.to_string()),
        ("AUTH LOGIN /w==\n".to_string(), not_utf8.to_string()),
        ("AUTH LOGIN Ym9i\n/w==\n".to_string(), format!("334 UGFzc3dvcmQ6\n{not_utf8}")),
    ] {
        let o = auth_check(&submission(), &format!("{input}NOOP\n"), &format!("{expected}250 2.0.0 Ok\n"));
        assert!(o.decisions.is_empty(), "{input}");
        assert_eq!(o.authenticated, None);
    }
}

#[test]
fn unknown_mechanism_is_504() {
    auth_check(
        &submission(),
        &format!("AUTH CRAM-MD5\nAUTH X {PLAIN_BOB}\nNOOP\n"),
        "504 5.5.4 Unrecognized authentication type\n504 5.5.4 Unrecognized authentication type\n250 2.0.0 Ok\n",
    );
}

/// RFC 4954 §6: a submission listener before TLS answers 538 (and MAIL
/// 530); where AUTH is not offered at all, Postfix's 503.
#[test]
fn auth_where_not_available() {
    auth_check(
        &Script::new().auth(false, true),
        &format!("AUTH PLAIN {PLAIN_BOB}\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\n"),
        "538 5.7.11 Encryption required for requested authentication mechanism\n\
         530 5.7.0 Authentication required\n503 5.5.1 Error: need MAIL command\n",
    );
    auth_check(
        &Script::new(),
        &format!("AUTH PLAIN {PLAIN_BOB}\nAUTH LOGIN\nMAIL FROM:<a@x.test>\n"),
        "503 5.5.1 Error: authentication not enabled\n503 5.5.1 Error: authentication not enabled\n250 2.1.0 Ok\n",
    );
}

/// RFC 4954 §6 (RFC 6409 §4.3): submission needs AUTH before MAIL.
#[test]
fn mail_before_auth_is_530_when_required() {
    auth_check(
        &submission(),
        &format!("MAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\nAUTH PLAIN {PLAIN_BOB}\n{}", &OPEN[12..]),
        &format!(
            "530 5.7.0 Authentication required\n503 5.5.1 Error: need MAIL command\n{AUTH_OK}250 2.1.0 Ok\n250 2.1.5 Ok\n"
        ),
    );
    // Not required: MAIL works without AUTH, even where AUTH is offered.
    auth_check(&Script::new().auth(true, false), "MAIL FROM:<a@x.test>\n", "250 2.1.0 Ok\n");
}

/// A rejected AUTH leaves the session unauthenticated, and the client may
/// try again.
#[test]
fn rejected_auth_can_be_retried() {
    let o = auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_WRONG}\nMAIL FROM:<a@x.test>\nAUTH PLAIN\n{PLAIN_BOB}\nMAIL FROM:<a@x.test>\n"),
        &format!(
            "535 5.7.8 Authentication credentials invalid\n530 5.7.0 Authentication required\n334 \n{AUTH_OK}250 2.1.0 Ok\n"
        ),
    );
    assert_eq!(o.authenticated.as_deref(), Some("bob"));
    assert_eq!(o.decisions.len(), 3);
    let o = auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_WRONG}\n"),
        "535 5.7.8 Authentication credentials invalid\n",
    );
    assert_eq!(o.authenticated, None);
}

/// RFC 4954 §4: one successful AUTH per session; RSET, HELO and EHLO keep
/// it (as Postfix does).
#[test]
fn authentication_outlives_rset_and_ehlo() {
    let o = auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_BOB}\nAUTH LOGIN\nRSET\nEHLO c.test\nHELO c.test\nMAIL FROM:<a@x.test>\n"),
        &format!(
            "{AUTH_OK}503 5.5.1 Error: already authenticated\n250 2.0.0 Ok\n{EHLO_AUTH}250 mx.test\n250 2.1.0 Ok\n"
        ),
    );
    assert_eq!(o.authenticated.as_deref(), Some("bob"));
    auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_BOB}\nEHLO c.test\nAUTH PLAIN {PLAIN_BOB}\n"),
        &format!("{AUTH_OK}{EHLO_AUTH}503 5.5.1 Error: already authenticated\n"),
    );
}

/// RFC 4954 §4: no AUTH during a mail transaction.
#[test]
fn auth_during_a_transaction_is_503() {
    let o = auth_check(
        &Script::new().auth(true, false),
        &format!("MAIL FROM:<a@x.test>\nAUTH PLAIN {PLAIN_BOB}\nRSET\nAUTH PLAIN {PLAIN_BOB}\n"),
        &format!("250 2.1.0 Ok\n503 5.5.1 Error: MAIL transaction in progress\n250 2.0.0 Ok\n{AUTH_OK}"),
    );
    assert_eq!(o.decisions.len(), 2, "Mail, then Auth after RSET");
}

/// RFC 4954 §3: AUTH is an ESMTP extension, so EHLO comes first.
#[test]
fn auth_before_ehlo_is_503() {
    let script = submission();
    check_with(
        &script,
        crlf(&format!("AUTH PLAIN {PLAIN_BOB}\nHELO c.test\nAUTH PLAIN {PLAIN_BOB}\n")).as_bytes(),
        "503 5.5.1 Error: send EHLO first\n250 mx.test\n503 5.5.1 Error: send EHLO first\n",
    );
}

/// RFC 4954 §4: response lines up to 12288 octets; a longer one ends the
/// exchange with 500 and is skipped as it arrives, never buffered.
#[test]
fn sasl_response_line_limit() {
    // 12288 `A`s decode to NULs: a complete line, but not a PLAIN message.
    check_with(
        &submission(),
        crlf(&format!("EHLO c.test\nAUTH PLAIN\n{}\nNOOP\n", "A".repeat(12288))).as_bytes(),
        &format!("{EHLO_AUTH}334 \n501 5.5.2 Error: malformed authentication response\n250 2.0.0 Ok\n"),
    );
    for len in [12289, 100_000] {
        check_with(
            &submission(),
            crlf(&format!("EHLO c.test\nAUTH PLAIN\n{}\nNOOP\n", "A".repeat(len))).as_bytes(),
            &format!("{EHLO_AUTH}334 \n500 5.5.6 Authentication exchange line is too long\n250 2.0.0 Ok\n"),
        );
    }
    let mut s = submission().server();
    s.feed(b"EHLO c.test\r\nAUTH LOGIN\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    for _ in 0..40 {
        s.feed(&[b'A'; 64 * 1024]);
        assert_eq!(s.next(), Event::NeedInput);
        assert!(s.buffered_len() <= 12290, "buffered {}", s.buffered_len());
    }
    s.feed(b"AAAA\r\nNOOP\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    let output = String::from_utf8(s.take_output()).unwrap();
    assert!(
        output.ends_with("334 VXNlcm5hbWU6\r\n500 5.5.6 Authentication exchange line is too long\r\n250 2.0.0 Ok\r\n"),
        "{output}"
    );
}

/// RFC 2920: what follows AUTH in the same packet waits until the
/// exchange is decided, and a waiting Auth decision stops the loop.
#[test]
fn pipelined_auth_and_mail_are_handled_in_order() {
    let mut s = submission().server();
    s.feed(format!("EHLO c.test\r\nAUTH PLAIN {PLAIN_BOB}\r\nMAIL FROM:<a@b>\r\n").as_bytes());
    let auth = s.next();
    assert_eq!(format!("{auth:?}"), BOB_PLAIN);
    let Event::Auth { mechanism, ref authzid, ref username, ref password } = auth else { panic!() };
    assert_eq!((mechanism, authzid.as_str(), username.as_str()), (Mechanism::Plain, "", "bob"));
    assert_eq!(password.expose(), "secret");
    // Asked again before answering: the same decision, nothing consumed.
    assert_eq!(s.next(), auth);
    assert_eq!(s.authenticated(), None);
    assert!(String::from_utf8(s.take_output()).unwrap().ends_with("250 AUTH PLAIN LOGIN\r\n"));
    s.accept();
    assert!(matches!(s.next(), Event::Mail { .. }));
    assert_eq!(s.authenticated(), Some("bob"));
    s.accept();
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.take_output(), crlf(&format!("{AUTH_OK}250 2.1.0 Ok\n")).as_bytes());

    // The same with LOGIN's lines all sent at once, and fed byte by byte.
    auth_check(
        &submission(),
        "AUTH LOGIN\nYm9i\nc2VjcmV0\nMAIL FROM:<a@x.test>\nQUIT\n",
        &format!("334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n{AUTH_OK}250 2.1.0 Ok\n221 2.0.0 Bye\n"),
    );
    // A rejected AUTH: the MAIL after it is refused.
    auth_check(
        &submission(),
        &format!("AUTH PLAIN {PLAIN_WRONG}\nMAIL FROM:<a@x.test>\n"),
        "535 5.7.8 Authentication credentials invalid\n530 5.7.0 Authentication required\n",
    );
}

/// The driver makes AUTH available once TLS is on; STARTTLS's reset
/// forgets an earlier authentication (RFC 3207 §4.2).
#[test]
fn auth_becomes_available_after_starttls() {
    let mut script = Script::new().auth(false, true);
    script.starttls = true;
    script.auth_after_tls = true;
    let first = crlf(&format!("EHLO c.test\nAUTH PLAIN {PLAIN_BOB}\nSTARTTLS\n"));
    let second = crlf(&format!("EHLO c.test\nAUTH PLAIN {PLAIN_BOB}\nMAIL FROM:<a@x.test>\n"));
    let o = Driver::new(script).run([first.as_bytes(), second.as_bytes()]);
    let expected = format!(
        "{GREETING}{}",
        crlf(&format!(
            "{}250 STARTTLS\n538 5.7.11 Encryption required for requested authentication mechanism\n\
             220 2.0.0 Ready to start TLS\n{EHLO_AUTH}{AUTH_OK}250 2.1.0 Ok\n",
            EHLO.replace("250 CHUNKING", "250-CHUNKING")
        ))
    );
    assert_eq!(o.output, expected);
    assert_eq!(o.authenticated.as_deref(), Some("bob"));

    // Authenticated before STARTTLS (say, on loopback): forgotten after.
    let mut script = Script::new().auth(true, false);
    script.starttls = true;
    let first = crlf(&format!("EHLO c.test\nAUTH PLAIN {PLAIN_BOB}\nSTARTTLS\n"));
    let second = crlf("EHLO c.test\nAUTH LOGIN\n");
    let o = Driver::new(script).run([first.as_bytes(), second.as_bytes()]);
    assert_eq!(o.authenticated, None);
    assert!(o.output.ends_with("220 2.0.0 Ready to start TLS\r\n250-mx.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n503 5.5.1 Error: authentication not enabled\r\n"), "{}", o.output);
}

/// RFC 4954 §5: MAIL's AUTH= parameter, where AUTH is offered.
#[test]
fn mail_auth_parameter() {
    let o = auth_check(
        &submission(),
        &format!(
            "AUTH PLAIN {PLAIN_BOB}\nMAIL FROM:<a@x.test> AUTH=<>\nRSET\nMAIL FROM:<a@x.test> AUTH=bob+2Bx@x.test\n"
        ),
        &format!("{AUTH_OK}250 2.1.0 Ok\n250 2.0.0 Ok\n250 2.1.0 Ok\n"),
    );
    assert!(o.decisions[1].contains("auth: Some(\"<>\")"), "{}", o.decisions[1]);
    assert!(o.decisions[2].contains("auth: Some(\"bob+x@x.test\")"), "{}", o.decisions[2]);
    auth_check(&submission(), "MAIL FROM:<a@x.test> AUTH=<>\n", "530 5.7.0 Authentication required\n");
    auth_check(
        &Script::new().auth(true, false),
        "MAIL FROM:<a@x.test> AUTH=a+zz\nMAIL FROM:<a@x.test> FOO=1\n",
        "501 5.5.4 Bad AUTH parameter syntax\n555 5.5.4 Unsupported option: FOO\n",
    );
    // After HELO, no extension parameters at all (RFC 1869 §4.2).
    check_with(
        &Script::new().auth(true, false),
        b"HELO c.test\r\nMAIL FROM:<a@x.test> AUTH=<>\r\n",
        "250 mx.test\n555 5.5.4 Unsupported option: AUTH\n",
    );
}

/// RFC 5321 §2.3.8 holds for response lines: a bare LF or CR ends the
/// exchange.
#[test]
fn sasl_lines_end_in_crlf_only() {
    for line in [&b"AGJvYgBzZWNyZXQ=\n"[..], b"AGJvYgBz\rZWNyZXQ=\r\n"] {
        let mut input = b"EHLO c.test\r\nAUTH PLAIN\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"NOOP\r\n");
        let o = check_with(
            &submission(),
            &input,
            &format!("{EHLO_AUTH}334 \n500 5.5.2 Error: bare <CR> or <LF> received\n250 2.0.0 Ok\n"),
        );
        assert!(o.decisions.is_empty());
    }
}

/// A SASL response line during a graceful shutdown gets the 421 too.
#[test]
fn shutdown_during_an_auth_exchange() {
    let mut s = submission().server();
    s.feed(b"EHLO c.test\r\nAUTH LOGIN\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    s.take_output();
    s.set_shutting_down();
    s.feed(b"Ym9i\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.take_output(), b"421 4.3.2 mx.test Service shutting down\r\n");
}

/// Credentials never show in the events' `Debug` (style guide §7).
#[test]
fn passwords_never_reach_debug_output() {
    let o = auth_check(&submission(), "AUTH LOGIN Ym9i\nc2VjcmV0\n", &format!("334 UGFzc3dvcmQ6\n{AUTH_OK}"));
    assert!(!o.decisions.concat().contains("secret"), "{:?}", o.decisions);
    let mut s = submission().server();
    s.feed(format!("EHLO c.test\r\nAUTH PLAIN {PLAIN_BOB}\r\n").as_bytes());
    assert!(matches!(s.next(), Event::Auth { .. }));
    assert!(!format!("{s:?}").contains("secret"), "{s:?}");
}
