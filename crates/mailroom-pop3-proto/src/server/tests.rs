//! Table-driven script tests: bytes in, exact bytes out (style guide §3).
//!
//! `check(input, expected)` runs a script against a server with default
//! limits and plaintext allowed, and a driver that answers every decision
//! from a fake maildrop, writing `\n` for CRLF in both strings and leaving
//! out the greeting. Every script runs twice, fed whole and fed one byte at
//! a time, and both runs must agree exactly.

use super::*;
use crate::reply::Code;

const HOST: &str = "pop.test";
const GREETING: &str = "+OK pop.test POP3 server ready\r\n";

/// The fake maildrop: unique id and content; `None` is a message that
/// vanished after the snapshot. Message 4's size is what the snapshot says.
const MESSAGES: [(&str, Option<&str>); 4] = [
    ("uid-1", Some("Subject: one\r\n\r\nHello\r\n")),
    ("uid-2", Some("Subject: two\r\nX-Dots: yes\r\n\r\n.hidden\r\n.\r\nline 3\r\nline 4\r\n")),
    ("uid-3", Some("Subject: three\r\n\r\nno final newline")),
    ("uid-4", None),
];
const LOGIN: &str = "USER alice\nPASS secret\n";
const LOGIN_OK: &str = "+OK\n+OK Logged in, 4 messages (214 octets).\n";
const LIST_ALL: &str = "+OK 4 messages (214 octets)\n1 23\n2 57\n3 34\n4 100\n.\n";
const UIDL_ALL: &str = "+OK\n1 uid-1\n2 uid-2\n3 uid-3\n4 uid-4\n.\n";
const CAPA_PLAIN: &str = "+OK Capability list follows\nTOP\nUIDL\nUSER\nSASL PLAIN\nRESP-CODES\nAUTH-RESP-CODE\n\
                          PIPELINING\nEXPIRE NEVER\nIMPLEMENTATION Mailroom\n.\n";
const CAPA: &str = "+OK Capability list follows\nTOP\nUIDL\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nEXPIRE NEVER\n\
                    IMPLEMENTATION Mailroom\n.\n";
const DISALLOWED: &str = "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.\n";

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn snapshot() -> Vec<MaildropEntry> {
    MESSAGES
        .iter()
        .map(|(uid, content)| MaildropEntry { size: content.map_or(100, |c| c.len() as u64), uidl: uid.to_string() })
        .collect()
}

/// How the scripted driver answers decisions.
#[derive(Clone)]
struct Script {
    limits: Limits,
    allow_plaintext: bool,
    stls_available: bool,
    update_fails: bool,
    maildrop: Vec<MaildropEntry>,
}

/// What a script run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    output: String,
    /// Decision events, in order, with the password exposed.
    events: Vec<String>,
    closed: bool,
}

impl Script {
    fn new() -> Script {
        Script {
            limits: Limits::default(),
            allow_plaintext: true,
            stls_available: false,
            update_fails: false,
            maildrop: snapshot(),
        }
    }

    fn no_plaintext(mut self) -> Script {
        self.allow_plaintext = false;
        self
    }

    fn server(&self) -> Server {
        let config = ServerConfig {
            hostname: HOST.into(),
            limits: self.limits.clone(),
            allow_plaintext: self.allow_plaintext,
            stls_available: self.stls_available,
        };
        Server::new(config)
    }

    /// Runs `input` whole and byte by byte; both must give the same outcome.
    fn run(&self, input: &[u8]) -> Outcome {
        let whole = Driver::new(self.clone()).run([input]);
        let bytewise = Driver::new(self.clone()).run(input.chunks(1));
        assert_eq!(whole, bytewise, "feeding byte by byte changed the outcome");
        whole
    }
}

/// A minimal driver answering decisions from its script.
struct Driver {
    script: Script,
    server: Server,
    out: Vec<u8>,
    outcome: Outcome,
}

impl Driver {
    fn new(script: Script) -> Driver {
        let server = script.server();
        Driver {
            script,
            server,
            out: vec![],
            outcome: Outcome { output: String::new(), events: vec![], closed: false },
        }
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
        self.out.extend(self.server.take_output());
        self.outcome.output = String::from_utf8_lossy(&self.out).into_owned();
        self.outcome
    }

    /// Handles events until the server needs input or closes.
    fn pump(&mut self) {
        loop {
            match self.server.next() {
                Event::NeedInput => break,
                Event::Close => {
                    self.outcome.closed = true;
                    break;
                }
                Event::Login { user, password } => {
                    self.outcome.events.push(format!("Login {user} {}", password.expose()));
                    match (user.as_str(), password.expose().as_str()) {
                        ("alice", "secret") => self.server.accept_login(self.script.maildrop.clone()),
                        ("busy", _) => self.server.reject_login(Reply::err(Some(Code::InUse), "Maildrop is locked.")),
                        _ => self.server.reject_login(Reply::err(Some(Code::Auth), "Authentication failed.")),
                    }
                }
                Event::Retrieve { msg, top_lines } => {
                    self.outcome.events.push(format!("Retrieve {msg} {top_lines:?}"));
                    match MESSAGES[msg - 1].1 {
                        Some(content) => self.server.message(content.as_bytes()),
                        None => self.server.message_unavailable(),
                    }
                }
                Event::StartTls => {
                    // The handshake is the driver's; here it always works.
                    self.outcome.events.push("StartTls".into());
                    self.server.tls_started();
                }
                Event::Update { deleted } => {
                    self.outcome.events.push(format!("Update {deleted:?}"));
                    if self.script.update_fails {
                        self.server.update_failed();
                    } else {
                        self.server.update_done(deleted.len());
                    }
                }
            }
        }
        self.out.extend(self.server.take_output());
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
    let expected = format!("{GREETING}{}", crlf(expected));
    assert_eq!(outcome.output, expected, "input: {:?}", String::from_utf8_lossy(input));
    outcome
}

/// Like [`check`], logged in as alice first.
fn check_logged_in(input: &str, expected: &str) -> Outcome {
    check(&format!("{LOGIN}{input}"), &format!("{LOGIN_OK}{expected}"))
}

#[test]
fn greeting_is_queued_at_start() {
    let mut s = Script::new().server();
    assert_eq!(s.output_len(), GREETING.len());
    assert_eq!(s.take_output(), GREETING.as_bytes());
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.take_output(), b"");
    assert_eq!(s.output_len(), 0);
    assert!(!s.is_authenticated());
}

#[test]
fn capa_in_each_state() {
    check("CAPA\n", CAPA_PLAIN);
    check("capa\n", CAPA_PLAIN);
    check_with(&Script::new().no_plaintext(), b"CAPA\r\n", CAPA);
    check_logged_in("CAPA\n", CAPA);
    check("CAPA x\n", "-ERR Invalid arguments.\n");
}

#[test]
fn user_pass_login() {
    let o = check(LOGIN, LOGIN_OK);
    assert_eq!(o.events, ["Login alice secret"]);
    // RFC 1939 §7: the password is the rest of the line, spaces included.
    let o = check("user bob\npass two  words \n", "+OK\n-ERR [AUTH] Authentication failed.\n");
    assert_eq!(o.events, ["Login bob two  words "]);
    // A second USER replaces the first.
    let o = check("USER bob\nUSER alice\nPASS secret\n", &format!("+OK\n{LOGIN_OK}"));
    assert_eq!(o.events, ["Login alice secret"]);
    let mut s = Script::new().server();
    s.feed(LOGIN.replace('\n', "\r\n").as_bytes());
    assert!(matches!(s.next(), Event::Login { .. }));
    assert!(!s.is_authenticated());
    s.accept_login(snapshot());
    assert!(s.is_authenticated());
}

#[test]
fn user_pass_failures() {
    for (input, expected) in [
        // USER answers +OK whatever the name, so names cannot be probed.
        ("USER nobody\nPASS secret\n", "+OK\n-ERR [AUTH] Authentication failed.\n"),
        ("USER alice\nPASS wrong\n", "+OK\n-ERR [AUTH] Authentication failed.\n"),
        ("USER busy\nPASS x\n", "+OK\n-ERR [IN-USE] Maildrop is locked.\n"),
        ("PASS secret\n", "-ERR No username given.\n"),
        // After a refused PASS a new USER is needed.
        ("USER alice\nPASS wrong\nPASS secret\n", "+OK\n-ERR [AUTH] Authentication failed.\n-ERR No username given.\n"),
        (
            "USER alice\nPASS wrong\nUSER alice\nPASS secret\nSTAT\n",
            "+OK\n-ERR [AUTH] Authentication failed.\n+OK\n+OK Logged in, 4 messages (214 octets).\n+OK 4 214\n",
        ),
        ("USER\n", "-ERR Invalid arguments.\n"),
        ("USER a b\n", "-ERR Invalid arguments.\n"),
        ("USER alice\nPASS\n", "+OK\n-ERR Invalid arguments.\n"),
        ("USER alice\nPASS \n", "+OK\n-ERR Invalid arguments.\n"),
    ] {
        check(input, expected);
    }
}

#[test]
fn plaintext_is_refused_until_allowed() {
    let script = Script::new().no_plaintext();
    for (input, expected) in [
        ("USER alice\nPASS secret\n", format!("{DISALLOWED}{DISALLOWED}")),
        ("AUTH\n", DISALLOWED.to_string()),
        ("AUTH PLAIN\n", DISALLOWED.to_string()),
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==\n", DISALLOWED.to_string()),
        // Only plaintext mechanisms are refused for that reason.
        ("AUTH CRAM-MD5\n", "-ERR Unsupported authentication mechanism.\n".to_string()),
        ("STAT\nQUIT\n", "-ERR Not logged in.\n+OK Logging out.\n".to_string()),
    ] {
        let o = check_with(&script, crlf(input).as_bytes(), &expected);
        assert_eq!(o.events, Vec::<String>::new());
    }
}

#[test]
fn auth_plain() {
    for (input, expected, events) in [
        ("AUTH\n", "+OK\nPLAIN\n.\n", &[][..]),
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==\n", "+OK Logged in, 4 messages (214 octets).\n", &["Login alice secret"][..]),
        ("auth plain AGFsaWNlAHNlY3JldA==\n", "+OK Logged in, 4 messages (214 octets).\n", &["Login alice secret"]),
        // An authorization identity equal to the user is fine.
        ("AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0\n", "+OK Logged in, 4 messages (214 octets).\n", &["Login alice secret"]),
        (
            "AUTH PLAIN\nAGFsaWNlAHNlY3JldA==\n",
            "+ \n+OK Logged in, 4 messages (214 octets).\n",
            &["Login alice secret"],
        ),
        ("AUTH PLAIN AGFsaWNlAHdyb25n\n", "-ERR [AUTH] Authentication failed.\n", &["Login alice wrong"]),
        ("AUTH PLAIN AGJ1c3kAc2VjcmV0\n", "-ERR [IN-USE] Maildrop is locked.\n", &["Login busy secret"]),
        ("AUTH PLAIN\n*\nNOOP\n", "+ \n-ERR Authentication aborted.\n-ERR Not logged in.\n", &[]),
        ("AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\n", "-ERR [AUTH] Authorization identity not supported.\n", &[]),
        ("AUTH PLAIN\nYm9iAGFsaWNlAHNlY3JldA==\n", "+ \n-ERR [AUTH] Authorization identity not supported.\n", &[]),
        ("AUTH PLAIN !!!!\n", "-ERR [AUTH] Invalid authentication data.\n", &[]),
        ("AUTH PLAIN\n!!!!\n", "+ \n-ERR [AUTH] Invalid authentication data.\n", &[]),
        // RFC 5034 §4: "=" is an empty initial response; PLAIN needs more.
        ("AUTH PLAIN =\n", "-ERR [AUTH] Invalid authentication data.\n", &[]),
        ("AUTH PLAIN\n\n", "+ \n-ERR [AUTH] Invalid authentication data.\n", &[]),
        // Only one NUL; an empty user; an empty password.
        ("AUTH PLAIN YWxpY2UAc2VjcmV0\n", "-ERR [AUTH] Invalid authentication data.\n", &[]),
        ("AUTH PLAIN AABzZWNyZXQ=\n", "-ERR [AUTH] Invalid authentication data.\n", &[]),
        ("AUTH PLAIN AGFsaWNlAA==\n", "-ERR [AUTH] Invalid authentication data.\n", &[]),
        ("AUTH CRAM-MD5\n", "-ERR Unsupported authentication mechanism.\n", &[]),
        ("AUTH PLAIN a b\n", "-ERR Invalid arguments.\n", &[]),
        // A CR inside the response ends the exchange.
        ("AUTH PLAIN\nAGFs\raWNl\nNOOP\n", "+ \n-ERR Invalid line.\n-ERR Not logged in.\n", &[]),
    ] {
        let o = check(input, expected);
        assert_eq!(o.events, events, "input: {input:?}");
    }
    // The response line is not a command, even when it looks like one.
    check("AUTH PLAIN\nQUIT\nQUIT\n", "+ \n-ERR [AUTH] Invalid authentication data.\n+OK Logging out.\n");
}

#[test]
fn quit_in_authorization_closes() {
    let o = check("QUIT\nNOOP\n", "+OK Logging out.\n");
    assert!(o.closed);
    assert!(o.events.is_empty());
    check("quit now\n", "-ERR Invalid arguments.\n");
    let mut s = Script::new().server();
    s.feed(b"QUIT\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.next(), Event::Close);
    assert!(s.is_closed());
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.buffered_len(), 0);
}

#[test]
fn transaction_commands_need_login() {
    for command in ["STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1", "RETR x", "TOP 1 1", "DELE 1", "NOOP", "RSET"]
    {
        check(&format!("{command}\n"), "-ERR Not logged in.\n");
    }
}

#[test]
fn login_commands_after_login() {
    for command in ["USER alice", "PASS secret", "AUTH", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN"] {
        check_logged_in(&format!("{command}\n"), "-ERR Already logged in.\n");
    }
}

#[test]
fn unknown_commands() {
    for input in ["FOO\n", "\n", "APOP alice 0123\n", " STAT\n", "RETRX 1\n"] {
        check(input, "-ERR Unknown command.\n");
        check_logged_in(input, "-ERR Unknown command.\n");
    }
    check_with(&Script::new(), b"ST\xffAT\r\n", "-ERR Unknown command.\n");
}

#[test]
fn listings() {
    for (input, expected) in [
        ("STAT\n", "+OK 4 214\n"),
        ("LIST\n", LIST_ALL),
        ("list  \n", LIST_ALL),
        ("LIST 2\n", "+OK 2 57\n"),
        ("LIST  2 \n", "+OK 2 57\n"),
        ("UIDL\n", UIDL_ALL),
        ("UIDL 3\n", "+OK 3 uid-3\n"),
        ("NOOP\n", "+OK\n"),
        ("RSET\n", "+OK 4 messages (214 octets)\n"),
    ] {
        check_logged_in(input, expected);
    }
}

#[test]
fn an_empty_maildrop() {
    let mut script = Script::new();
    script.maildrop.clear();
    let input = crlf(&format!("{LOGIN}STAT\nLIST\nUIDL\nRETR 1\nQUIT\n"));
    let o = check_with(
        &script,
        input.as_bytes(),
        "+OK\n+OK Logged in, 0 messages (0 octets).\n+OK 0 0\n+OK 0 messages (0 octets)\n.\n+OK\n.\n\
         -ERR No such message.\n+OK Logging out, 0 messages deleted.\n",
    );
    assert_eq!(o.events, ["Login alice secret", "Update []"]);
}

#[test]
fn retr_sends_the_message_byte_stuffed() {
    let o = check_logged_in("RETR 1\n", "+OK 23 octets\nSubject: one\n\nHello\n.\n");
    assert_eq!(o.events, ["Login alice secret", "Retrieve 1 None"]);
    // RFC 1939 §3: lines starting with "." get another, including a line
    // that is only ".".
    check_logged_in("RETR 2\n", "+OK 57 octets\nSubject: two\nX-Dots: yes\n\n..hidden\n..\nline 3\nline 4\n.\n");
    // A last line without CRLF gets one before the terminator.
    check_logged_in("RETR 3\n", "+OK 36 octets\nSubject: three\n\nno final newline\n.\n");
    let o = check_logged_in("RETR 4\nSTAT\n", "-ERR Message 4 no longer exists.\n+OK 4 214\n");
    assert_eq!(o.events, ["Login alice secret", "Retrieve 4 None"]);
}

#[test]
fn top_sends_headers_and_some_lines() {
    for (input, expected) in [
        ("TOP 2 0\n", "+OK 29 octets\nSubject: two\nX-Dots: yes\n\n.\n"),
        ("TOP 2 1\n", "+OK 38 octets\nSubject: two\nX-Dots: yes\n\n..hidden\n.\n"),
        ("TOP 2 2\n", "+OK 41 octets\nSubject: two\nX-Dots: yes\n\n..hidden\n..\n.\n"),
        ("TOP 2 100\n", "+OK 57 octets\nSubject: two\nX-Dots: yes\n\n..hidden\n..\nline 3\nline 4\n.\n"),
        ("top 1 0\n", "+OK 16 octets\nSubject: one\n\n.\n"),
        ("TOP 3 1\n", "+OK 36 octets\nSubject: three\n\nno final newline\n.\n"),
        ("TOP 4 1\n", "-ERR Message 4 no longer exists.\n"),
    ] {
        check_logged_in(input, expected);
    }
    let o = check_logged_in("TOP 1 5\n", "+OK 23 octets\nSubject: one\n\nHello\n.\n");
    assert_eq!(o.events, ["Login alice secret", "Retrieve 1 Some(5)"]);
}

#[test]
fn a_message_that_is_all_headers() {
    let mut s = Script::new().server();
    s.feed(b"USER alice\r\nPASS secret\r\nTOP 1 0\r\n");
    assert!(matches!(s.next(), Event::Login { .. }));
    s.accept_login(snapshot());
    assert_eq!(s.next(), Event::Retrieve { msg: 1, top_lines: Some(0) });
    s.message(b"A: 1\r\n.B: 2\r\n");
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(out.ends_with("+OK 13 octets\r\nA: 1\r\n..B: 2\r\n.\r\n"), "{out:?}");
}

#[test]
fn message_number_errors() {
    for (input, expected) in [
        ("RETR\n", "-ERR Invalid arguments.\n"),
        ("RETR 1 2\n", "-ERR Invalid arguments.\n"),
        ("RETR x\n", "-ERR Invalid message number.\n"),
        ("RETR 0\n", "-ERR Invalid message number.\n"),
        ("RETR -1\n", "-ERR Invalid message number.\n"),
        ("RETR 5\n", "-ERR No such message.\n"),
        ("RETR 99999999999999999999999\n", "-ERR No such message.\n"),
        ("DELE\n", "-ERR Invalid arguments.\n"),
        ("DELE 0\n", "-ERR Invalid message number.\n"),
        ("DELE 5\n", "-ERR No such message.\n"),
        ("TOP\n", "-ERR Invalid arguments.\n"),
        ("TOP 1\n", "-ERR Invalid arguments.\n"),
        ("TOP 1 2 3\n", "-ERR Invalid arguments.\n"),
        ("TOP x 1\n", "-ERR Invalid message number.\n"),
        ("TOP 1 x\n", "-ERR Invalid number of lines.\n"),
        ("TOP 1 -1\n", "-ERR Invalid number of lines.\n"),
        ("TOP 5 0\n", "-ERR No such message.\n"),
        ("LIST 0\n", "-ERR Invalid message number.\n"),
        ("LIST 5\n", "-ERR No such message.\n"),
        ("LIST 1 2\n", "-ERR Invalid arguments.\n"),
        ("UIDL x\n", "-ERR Invalid message number.\n"),
        ("UIDL 5\n", "-ERR No such message.\n"),
        ("STAT 1\n", "-ERR Invalid arguments.\n"),
        ("NOOP 1\n", "-ERR Invalid arguments.\n"),
        ("RSET 1\n", "-ERR Invalid arguments.\n"),
        ("QUIT 1\n", "-ERR Invalid arguments.\n"),
    ] {
        let o = check_logged_in(input, expected);
        assert_eq!(o.events, ["Login alice secret"], "input: {input:?}");
    }
}

#[test]
fn deleted_messages_are_invisible() {
    let o = check_logged_in(
        "DELE 2\nSTAT\nLIST\nLIST 2\nUIDL\nUIDL 2\nRETR 2\nTOP 2 0\nDELE 2\nLIST 3\n",
        "+OK Marked to be deleted.\n+OK 3 157\n+OK 3 messages (157 octets)\n1 23\n3 34\n4 100\n.\n\
         -ERR Message is deleted.\n+OK\n1 uid-1\n3 uid-3\n4 uid-4\n.\n-ERR Message is deleted.\n\
         -ERR Message is deleted.\n-ERR Message is deleted.\n-ERR Message is deleted.\n+OK 3 34\n",
    );
    assert_eq!(o.events, ["Login alice secret"]);
}

#[test]
fn rset_unmarks_everything() {
    check_logged_in(
        "DELE 1\nDELE 4\nRSET\nSTAT\nLIST 1\nQUIT\n",
        "+OK Marked to be deleted.\n+OK Marked to be deleted.\n+OK 4 messages (214 octets)\n+OK 4 214\n+OK 1 23\n\
         +OK Logging out, 0 messages deleted.\n",
    );
}

#[test]
fn quit_enters_update_with_the_marked_messages() {
    let o = check_logged_in(
        "DELE 3\nDELE 1\nQUIT\nNOOP\n",
        "+OK Marked to be deleted.\n+OK Marked to be deleted.\n+OK Logging out, 2 messages deleted.\n",
    );
    assert_eq!(o.events, ["Login alice secret", "Update [1, 3]"]);
    assert!(o.closed);
    let o = check_logged_in("QUIT\n", "+OK Logging out, 0 messages deleted.\n");
    assert_eq!(o.events, ["Login alice secret", "Update []"]);
    let mut script = Script::new();
    script.update_fails = true;
    let input = crlf(&format!("{LOGIN}DELE 1\nQUIT\n"));
    let expected =
        format!("{LOGIN_OK}+OK Marked to be deleted.\n-ERR [SYS/TEMP] Deleting messages failed, none were deleted.\n");
    let o = check_with(&script, input.as_bytes(), &expected);
    assert!(o.closed);
    let mut s = Script::new().server();
    s.feed(crlf(&format!("{LOGIN}QUIT\n")).as_bytes());
    assert!(matches!(s.next(), Event::Login { .. }));
    s.accept_login(snapshot());
    assert_eq!(s.next(), Event::Update { deleted: vec![] });
    assert!(s.is_authenticated());
    s.update_done(0);
    assert_eq!(s.next(), Event::Close);
}

#[test]
fn a_pending_decision_repeats_and_blocks_input() {
    let mut s = Script::new().server();
    s.feed(b"USER alice\r\nPASS secret\r\nSTAT\r\n");
    let login = Event::Login { user: "alice".into(), password: Secret::new("secret".into()) };
    assert_eq!(s.next(), login);
    assert_eq!(s.next(), login);
    // The Debug form never shows the password.
    assert!(!format!("{login:?}").contains("secret"));
    s.accept_login(snapshot());
    assert_eq!(s.next(), Event::NeedInput);
    assert!(String::from_utf8(s.take_output()).unwrap().ends_with("+OK 4 214\r\n"));
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let o = check(
        &format!("{LOGIN}LIST\nUIDL\nRETR 1\nDELE 1\nRETR 1\nSTAT\nQUIT\n"),
        &format!(
            "{LOGIN_OK}{LIST_ALL}{UIDL_ALL}+OK 23 octets\nSubject: one\n\nHello\n.\n+OK Marked to be deleted.\n\
             -ERR Message is deleted.\n+OK 3 191\n+OK Logging out, 1 messages deleted.\n"
        ),
    );
    assert_eq!(o.events, ["Login alice secret", "Retrieve 1 None", "Update [1]"]);
}

#[test]
fn line_ends() {
    // A bare LF ends a line too.
    check_with(
        &Script::new(),
        b"USER alice\nPASS secret\nSTAT\n",
        "+OK\n+OK Logged in, 4 messages (214 octets).\n+OK 4 214\n",
    );
    // A CR anywhere but before the LF is refused.
    check_with(&Script::new(), b"ST\rAT\r\nQUIT\r\n", "-ERR Invalid line.\n+OK Logging out.\n");
    check_with(&Script::new(), b"QUIT\r\r\nQUIT\r\n", "-ERR Invalid line.\n+OK Logging out.\n");
    check_with(&Script::new(), b"\r\n\n", "-ERR Unknown command.\n-ERR Unknown command.\n");
}

#[test]
fn command_line_limit_is_255_with_crlf() {
    let name = |n: usize| "a".repeat(n);
    // "USER " + name + CRLF: 248 octets of name make 255.
    check(&format!("USER {}\nQUIT\n", name(248)), "+OK\n+OK Logging out.\n");
    check(&format!("USER {}\nQUIT\n", name(249)), "-ERR Line too long.\n+OK Logging out.\n");
    // With a bare LF the same 255 octets hold one more character.
    check_with(&Script::new(), format!("USER {}\nQUIT\n", name(249)).as_bytes(), "+OK\n+OK Logging out.\n");
    check_with(
        &Script::new(),
        format!("USER {}\nQUIT\n", name(250)).as_bytes(),
        "-ERR Line too long.\n+OK Logging out.\n",
    );
    // A long line is answered once, and its rest is never taken for
    // commands.
    check(&format!("{}QUIT\nNOOP\n", name(1000)), "-ERR Line too long.\n-ERR Not logged in.\n");
    let limits = Limits { max_command_line: 10, max_sasl_line: 20 };
    let script = Script { limits, ..Script::new() };
    check_with(&script, b"USER abc\r\nUSER abcd\r\nQUIT\r\n", "+OK\n-ERR Line too long.\n+OK Logging out.\n");
}

#[test]
fn sasl_line_limit_is_8192_with_crlf() {
    // 8190 octets of (invalid) base64 plus CRLF fit; one more does not.
    check(
        &format!("AUTH PLAIN\n{}\nQUIT\n", "A".repeat(8190)),
        "+ \n-ERR [AUTH] Invalid authentication data.\n+OK Logging out.\n",
    );
    check(&format!("AUTH PLAIN\n{}\nQUIT\n", "A".repeat(8191)), "+ \n-ERR Line too long.\n+OK Logging out.\n");
    // The longer limit is only for the response, not for commands.
    check(&format!("AUTH PLAIN {}\nQUIT\n", "A".repeat(300)), "-ERR Line too long.\n+OK Logging out.\n");
}

#[test]
fn ten_megabytes_without_a_line_end_stay_bounded() {
    let flood = vec![b'x'; 10 * 1024 * 1024];
    let bound = Limits::default().max_sasl_line + 1;
    // In one feed.
    let mut s = Script::new().server();
    s.take_output();
    s.feed(&flood);
    assert!(s.buffered_len() <= bound, "{}", s.buffered_len());
    assert_eq!(s.next(), Event::NeedInput);
    s.feed(b"\r\nQUIT\r\n");
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.take_output(), b"-ERR Line too long.\r\n+OK Logging out.\r\n");
    // In 64 KiB reads, with the driver calling next() in between.
    let mut s = Script::new().server();
    s.take_output();
    for chunk in flood.chunks(64 * 1024) {
        s.feed(chunk);
        assert!(s.buffered_len() <= bound, "{}", s.buffered_len());
        assert_eq!(s.next(), Event::NeedInput);
        assert!(s.buffered_len() <= bound);
    }
    s.feed(b"\r\nCAPA\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert_eq!(s.take_output(), format!("-ERR Line too long.\r\n{}", crlf(CAPA_PLAIN)).as_bytes());
    // While a decision is pending nothing is read, and the flood is still
    // cut to one line's limit.
    let mut s = Script::new().server();
    s.feed(b"USER alice\r\nPASS secret\r\n");
    assert!(matches!(s.next(), Event::Login { .. }));
    s.feed(&flood);
    s.feed(&flood);
    assert!(s.buffered_len() <= bound + 50, "{}", s.buffered_len());
    s.accept_login(snapshot());
    s.feed(b"\nSTAT\r\n");
    assert_eq!(s.next(), Event::NeedInput);
    assert!(String::from_utf8(s.take_output()).unwrap().ends_with("-ERR Line too long.\r\n+OK 4 214\r\n"));
}

#[test]
fn close_with_ends_the_session_in_any_state() {
    let mut s = Script::new().server();
    s.close_with(Reply::err(None, "Disconnected for inactivity."));
    assert_eq!(s.next(), Event::Close);
    assert!(s.take_output().ends_with(b"-ERR Disconnected for inactivity.\r\n"));
    // With a decision pending and input buffered: both are dropped.
    let mut s = Script::new().server();
    s.feed(crlf(&format!("{LOGIN}RETR 1\nSTAT\n")).as_bytes());
    assert!(matches!(s.next(), Event::Login { .. }));
    s.accept_login(snapshot());
    assert_eq!(s.next(), Event::Retrieve { msg: 1, top_lines: None });
    s.take_output();
    s.close_with(Reply::err(Some(Code::SysTemp), "Server shutting down."));
    assert_eq!(s.next(), Event::Close);
    assert_eq!(s.take_output(), b"-ERR [SYS/TEMP] Server shutting down.\r\n");
    assert!(s.is_closed());
    assert_eq!(s.buffered_len(), 0);
}

#[test]
fn unique_ids_cannot_break_the_stream() {
    let mut script = Script::new();
    script.maildrop = vec![MaildropEntry { size: 1, uidl: "a b\r\n.c\u{e9}".into() }];
    let input = crlf(&format!("{LOGIN}UIDL\nUIDL 1\n"));
    check_with(
        &script,
        input.as_bytes(),
        "+OK\n+OK Logged in, 1 messages (1 octets).\n+OK\n1 a_b__.c_\n.\n+OK 1 a_b__.c_\n",
    );
}

#[test]
fn a_large_retr_streams_through() {
    let mut s = Script::new().server();
    s.feed(crlf(&format!("{LOGIN}RETR 1\n")).as_bytes());
    assert!(matches!(s.next(), Event::Login { .. }));
    s.accept_login(snapshot());
    assert!(matches!(s.next(), Event::Retrieve { .. }));
    s.take_output();
    let content = ".\r\n".repeat(100_000);
    s.message(content.as_bytes());
    assert_eq!(s.output_len(), "+OK 300000 octets\r\n".len() + 400_000 + 3);
}

#[test]
fn clear_output_keeps_a_bounded_buffer() {
    let script = Script::new();
    let mut server = script.server();
    assert!(server.output().starts_with(b"+OK "), "the greeting waits in the output");
    server.clear_output();
    assert!(server.output().is_empty());
    server.feed(b"USER alice\r\nPASS secret\r\nRETR 1\r\n");
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(998).repeat(3000).replace("xx", "x\r\n"));
    loop {
        match server.next() {
            Event::Login { .. } => server.accept_login(script.maildrop.clone()),
            Event::Retrieve { .. } => server.message(big.as_bytes()),
            _ => break,
        }
    }
    assert!(server.output().len() > KEEP_OUTPUT_CAPACITY, "a large RETR fills the buffer");
    server.clear_output();
    assert!(server.output().is_empty());
    // The buffer is reused but not pinned at its peak size.
    assert!(server.output.capacity() <= KEEP_OUTPUT_CAPACITY);
}

/// RFC 2595 §4: STLS is offered before login when the driver can do TLS;
/// what came with it is dropped, and afterwards passwords are welcome and
/// STLS is no longer offered. Input is fed in two packets, as the network
/// would deliver it: the first with the STLS and an injected command, the
/// second after the handshake.
#[test]
fn stls_upgrades_and_drops_what_came_with_it() {
    let mut script = Script::new().no_plaintext();
    script.stls_available = true;
    let outcome = Driver::new(script.clone())
        .run([&b"CAPA\r\nSTLS\r\nUSER injected\r\n"[..], b"CAPA\r\nUSER alice\r\nPASS secret\r\n"]);
    let expected = format!(
        "{GREETING}{}",
        crlf(
            "+OK Capability list follows\nTOP\nUIDL\nSTLS\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nEXPIRE NEVER\n\
             IMPLEMENTATION Mailroom\n.\n\
             +OK Begin TLS negotiation now.\n\
             +OK Capability list follows\nTOP\nUIDL\nUSER\nSASL PLAIN\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\n\
             EXPIRE NEVER\nIMPLEMENTATION Mailroom\n.\n\
             +OK\n\
             +OK Logged in, 4 messages (214 octets).\n"
        )
    );
    assert_eq!(outcome.output, expected);
    assert_eq!(outcome.events, ["StartTls", "Login alice secret"], "the injected USER never ran");

    // Not offered: refused, and the session goes on in the clear.
    check_with(&Script::new(), b"STLS\r\n", "-ERR STLS is not available.\n");
    // Only before login (RFC 2595 §4).
    script.allow_plaintext = true;
    let outcome = script.run(b"USER alice\r\nPASS secret\r\nSTLS\r\n");
    assert!(outcome.output.ends_with("-ERR Already logged in.\r\n"), "{}", outcome.output);
}
