//! Table-driven script tests: bytes in, exact bytes out (style guide §3).
//!
//! `check(input, expected)` runs a script against a server with default
//! limits and plaintext allowed, and a scripted driver, writing `\n` for
//! CRLF in both strings and leaving out the greeting. Every script runs
//! fed whole and fed one byte at a time, and both runs must agree exactly,
//! which covers a literal or line split at every byte boundary.

use super::*;

const HOST: &str = "imap.test";
const LOGIN: &str = "a LOGIN alice secret\n";
const LOGIN_OK: &str = "a OK [CAPABILITY IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS \
                        MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE QRESYNC \
                        BINARY STATUS=SIZE WITHIN] Logged in\n";

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// How the scripted driver runs.
#[derive(Clone)]
struct Script {
    config: ServerConfig,
}

/// What a script run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    output: String,
    /// Decision and notice events, in order.
    events: Vec<String>,
    closed: bool,
}

impl Script {
    fn new() -> Script {
        Script {
            config: ServerConfig {
                hostname: HOST.into(),
                limits: Limits::default(),
                allow_plaintext: true,
                starttls_available: false,
            },
        }
    }

    fn no_plaintext(mut self) -> Script {
        self.config.allow_plaintext = false;
        self
    }

    fn starttls(mut self) -> Script {
        self.config.starttls_available = true;
        self
    }

    fn limits(mut self, f: impl FnOnce(&mut Limits)) -> Script {
        f(&mut self.config.limits);
        self
    }

    /// Runs `input` whole and byte by byte; both must give the same
    /// outcome.
    fn run(&self, input: &[u8]) -> Outcome {
        let whole = self.run_chunks(std::iter::once(input));
        let bytewise = self.run_chunks(input.chunks(1));
        assert_eq!(whole, bytewise, "fed whole vs byte by byte");
        whole
    }

    fn run_chunks<'a>(&self, chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
        let mut server = Server::new(self.config.clone());
        let mut events = Vec::new();
        let mut output = server.take_output();
        let mut chunks = chunks.peekable();
        let drive = |server: &mut Server, events: &mut Vec<String>| loop {
            match server.next() {
                Event::NeedInput | Event::Close => break,
                Event::Login { tag, user, password } => {
                    events.push(format!("login {tag} {user} {}", password.expose()));
                    if password.expose() == "secret" { server.accept_login() } else { server.reject_login() }
                }
                Event::Command { tag, command } => {
                    events.push(format!("{tag} {command:?}"));
                    answer(server, command);
                }
                Event::StartTls => {
                    events.push("starttls".into());
                    server.tls_started();
                }
                Event::IdleStarted { tag } => events.push(format!("idle {tag}")),
                Event::IdleDone { tag } => events.push(format!("done {tag}")),
                Event::Waiting => panic!("waiting"),
                Event::Settle => panic!("the scripted driver defers nothing"),
            }
        };
        while let Some(chunk) = chunks.next() {
            server.feed(chunk);
            drive(&mut server, &mut events);
            if chunks.peek().is_none() {
                break;
            }
        }
        drive(&mut server, &mut events);
        output.extend(server.take_output());
        let greeting_end = output.windows(2).position(|w| w == b"\r\n").map_or(0, |i| i + 2);
        Outcome {
            output: String::from_utf8_lossy(&output[greeting_end..]).into_owned(),
            events,
            closed: server.is_closed(),
        }
    }
}

/// The scripted driver's answers.
fn answer(server: &mut Server, command: Command) {
    match command {
        Command::Select { mailbox, read_only, .. } if mailbox == "INBOX" => {
            response::exists(server.output_mut(), 3);
            let code = if read_only { Code::ReadOnly } else { Code::ReadWrite };
            server.respond_ok(Some(code), "SELECT completed");
        }
        Command::Select { .. } => server.respond_no(Some(Code::NonExistent), "No such mailbox"),
        Command::Fetch { uid: false, set, .. } if set.max_value() > Some(3) => {
            server.respond_bad(None, "No such message")
        }
        other => server.respond_ok(None, &format!("{} completed", other.name())),
    }
}

/// Runs a script and checks the output (without the greeting).
fn check(script: &Script, input: &str, expected: &str) -> Outcome {
    let outcome = script.run(crlf(input).as_bytes());
    assert_eq!(outcome.output, crlf(expected), "input: {input:?}");
    outcome
}

#[test]
fn greeting_names_the_capabilities() {
    let server = Server::new(Script::new().config);
    assert_eq!(
        String::from_utf8_lossy(server.output()),
        "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ID ENABLE AUTH=PLAIN] imap.test ready\r\n"
    );
    let server = Server::new(Script::new().no_plaintext().starttls().config);
    assert_eq!(
        String::from_utf8_lossy(server.output()),
        "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED SASL-IR LITERAL+ ID ENABLE] imap.test ready\r\n"
    );
}

#[test]
fn capability_noop_logout_before_login() {
    let outcome = check(
        &Script::new(),
        "c1 CAPABILITY\nc2 noop\nc3 LOGOUT\nc4 NOOP\n",
        "* CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ID ENABLE AUTH=PLAIN\nc1 OK CAPABILITY completed\n\
         c2 OK NOOP completed\n* BYE Logging out\nc3 OK LOGOUT completed\n",
    );
    assert!(outcome.closed);
}

#[test]
fn login_accepted_and_refused() {
    let caps = capability::after_login().join(" ");
    let outcome = check(
        &Script::new(),
        &format!("{LOGIN}b CAPABILITY\n"),
        &format!("{LOGIN_OK}* CAPABILITY {caps}\nb OK CAPABILITY completed\n"),
    );
    assert_eq!(outcome.events, vec!["login a alice secret"]);
    check(
        &Script::new(),
        "a LOGIN alice wrong\nb LOGIN \"alice\" {6}\nsecret\n",
        &format!(
            "a NO [AUTHENTICATIONFAILED] Authentication failed\n+ Ready for literal data\n{}",
            LOGIN_OK.replacen("a OK", "b OK", 1)
        ),
    );
    // RFC 9051 §6.2.3: LOGINDISABLED means no password in the clear.
    check(
        &Script::new().no_plaintext(),
        "a LOGIN alice secret\nb AUTHENTICATE PLAIN\n",
        "a NO [PRIVACYREQUIRED] Use TLS before sending a password\n\
         b NO [PRIVACYREQUIRED] Use TLS before sending a password\n",
    );
    check(
        &Script::new(),
        &format!("{LOGIN}b LOGIN alice secret\n"),
        &format!("{LOGIN_OK}b BAD Already authenticated\n"),
    );
}

#[test]
fn authenticate_plain() {
    // "\0alice\0secret"
    let ir = "AGFsaWNlAHNlY3JldA==";
    let ok = |tag: &str| LOGIN_OK.replacen("a OK", &format!("{tag} OK"), 1);
    // RFC 4959: the initial response on the command line.
    let outcome = check(&Script::new(), &format!("s AUTHENTICATE PLAIN {ir}\n"), &ok("s"));
    assert_eq!(outcome.events, vec!["login s alice secret"]);
    // RFC 9051 §6.2.2: an empty challenge, then the response.
    check(&Script::new(), &format!("s authenticate plain\n{ir}\n"), &format!("+ \n{}", ok("s")));
    check(
        &Script::new(),
        "s AUTHENTICATE PLAIN\n*\nt NOOP\n",
        "+ \ns BAD Authentication cancelled\nt OK NOOP completed\n",
    );
    check(&Script::new(), "s AUTHENTICATE PLAIN\n!!!\n", "+ \ns BAD Invalid base64 in authentication response\n");
    // "bob\0alice\0secret": another authorization identity.
    check(
        &Script::new(),
        "s AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldA==\n",
        "s NO [AUTHORIZATIONFAILED] Cannot act as another user\n",
    );
    check(&Script::new(), "s AUTHENTICATE PLAIN =\n", "s BAD Invalid PLAIN authentication data\n");
    check(&Script::new(), "s AUTHENTICATE CRAM-MD5\n", "s NO [CANNOT] Unsupported authentication mechanism\n");
    // "\0alice\0wrong"
    check(
        &Script::new(),
        "s AUTHENTICATE PLAIN AGFsaWNlAHdyb25n\n",
        "s NO [AUTHENTICATIONFAILED] Authentication failed\n",
    );
}

#[test]
fn commands_in_the_wrong_state_are_bad() {
    check(
        &Script::new(),
        "1 SELECT INBOX\n2 FETCH 1 FLAGS\n3 ENABLE CONDSTORE\n4 IDLE\n5 NAMESPACE\n",
        "1 BAD Log in first\n2 BAD Log in first\n3 BAD Log in first\n4 BAD Log in first\n5 BAD Log in first\n",
    );
    check(
        &Script::new(),
        &format!("{LOGIN}2 FETCH 1 FLAGS\n3 CLOSE\n4 UID SEARCH ALL\n5 EXPUNGE\n"),
        &format!(
            "{LOGIN_OK}2 BAD No mailbox selected\n3 BAD No mailbox selected\n4 BAD No mailbox selected\n\
             5 BAD No mailbox selected\n"
        ),
    );
    check(
        &Script::new(),
        &format!("{LOGIN}2 SELECT INBOX\n3 ENABLE CONDSTORE\n"),
        &format!(
            "{LOGIN_OK}* 3 EXISTS\n2 OK [READ-WRITE] SELECT completed\n3 BAD ENABLE is only valid before SELECT\n"
        ),
    );
}

#[test]
fn bad_syntax_keeps_the_session() {
    check(
        &Script::new(),
        "1 FROB\n2 LOGIN\n+x NOOP\n3\n\n4 NOOP\n",
        "1 BAD Unknown command FROB\n2 BAD Invalid arguments to LOGIN\n* BAD Invalid tag\n\
         3 BAD Missing command\n* BAD Empty command line\n4 OK NOOP completed\n",
    );
    check(
        &Script::new(),
        &format!("{LOGIN}2 SELECT INBOX\n3 FETCH 1:x FLAGS\n4 STORE 1 +FLAGS (\\Recent\n5 NOOP\n"),
        &format!(
            "{LOGIN_OK}* 3 EXISTS\n2 OK [READ-WRITE] SELECT completed\n3 BAD Invalid arguments to FETCH\n\
             4 BAD Invalid arguments to STORE\n5 OK NOOP completed\n"
        ),
    );
}

#[test]
fn select_examine_close_unselect_move_states() {
    let outcome = check(
        &Script::new(),
        &format!(
            "{LOGIN}2 SELECT INBOX\n3 EXAMINE INBOX\n4 STORE 1 +FLAGS (\\Seen)\n5 SELECT Missing\n6 FETCH 1 UID\n\
             7 SELECT INBOX\n8 CLOSE\n9 SELECT INBOX\n10 UNSELECT\n11 FETCH 1 UID\n"
        ),
        &format!(
            "{LOGIN_OK}* 3 EXISTS\n2 OK [READ-WRITE] SELECT completed\n* OK [CLOSED] Previous mailbox closed\n\
             * 3 EXISTS\n3 OK [READ-ONLY] SELECT completed\n4 NO Mailbox is read-only\n\
             * OK [CLOSED] Previous mailbox closed\n5 NO [NONEXISTENT] No such mailbox\n6 BAD No mailbox selected\n\
             * 3 EXISTS\n7 OK [READ-WRITE] SELECT completed\n8 OK CLOSE completed\n* 3 EXISTS\n\
             9 OK [READ-WRITE] SELECT completed\n10 OK UNSELECT completed\n11 BAD No mailbox selected\n"
        ),
    );
    assert_eq!(outcome.events.len(), 8, "{:?}", outcome.events);
}

#[test]
fn pipelined_commands_wait_for_each_answer() {
    let outcome = check(
        &Script::new(),
        &format!("{LOGIN}2 SELECT INBOX\n3 FETCH 1:2 (FLAGS)\n4 FETCH 9 FLAGS\n5 LOGOUT\n6 NOOP\n"),
        &format!(
            "{LOGIN_OK}* 3 EXISTS\n2 OK [READ-WRITE] SELECT completed\n3 OK FETCH completed\n\
             4 BAD No such message\n* BYE Logging out\n5 OK LOGOUT completed\n"
        ),
    );
    assert!(outcome.closed);
}

#[test]
fn enable_tracks_extensions() {
    let script = Script::new();
    let mut server = Server::new(script.config.clone());
    server.feed(crlf(LOGIN).as_bytes());
    assert!(matches!(server.next(), Event::Login { .. }));
    server.accept_login();
    server.clear_output();
    server.feed(b"e1 ENABLE QRESYNC foo\r\ne2 ENABLE CONDSTORE UTF8=ACCEPT IMAP4rev2\r\n");
    assert!(matches!(server.next(), Event::NeedInput));
    assert_eq!(
        String::from_utf8_lossy(server.output()),
        "* ENABLED QRESYNC\r\ne1 OK ENABLE completed\r\n* ENABLED UTF8=ACCEPT IMAP4rev2\r\ne2 OK ENABLE completed\r\n"
    );
    assert!(
        server.condstore_enabled() && server.qresync_enabled() && server.imap4rev2_enabled() && server.utf8_names()
    );
}

#[test]
fn condstore_is_enabled_by_use() {
    let script = Script::new();
    let mut server = Server::new(script.config.clone());
    server.feed(crlf(&format!("{LOGIN}s SELECT INBOX (CONDSTORE)\n")).as_bytes());
    assert!(matches!(server.next(), Event::Login { .. }));
    server.accept_login();
    assert!(!server.condstore_enabled());
    let Event::Command { command: Command::Select { condstore: true, .. }, .. } = server.next() else { panic!() };
    assert!(server.condstore_enabled());
}

#[test]
fn qresync_needs_enable() {
    check(
        &Script::new(),
        &format!("{LOGIN}2 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\n"),
        &format!("{LOGIN_OK}2 BAD ENABLE QRESYNC first\n"),
    );
    let outcome = check(
        &Script::new(),
        &format!(
            "{LOGIN}e ENABLE QRESYNC\n2 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\n\
             3 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\n4 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)\n"
        ),
        &format!(
            "{LOGIN_OK}* ENABLED QRESYNC\ne OK ENABLE completed\n* 3 EXISTS\n2 OK [READ-WRITE] SELECT completed\n\
             3 OK UID FETCH completed\n4 BAD VANISHED needs UID FETCH with CHANGEDSINCE\n"
        ),
    );
    assert!(outcome.events[1].contains("known_uids: Some"), "{:?}", outcome.events);
}

#[test]
fn idle_until_done() {
    let outcome = check(
        &Script::new(),
        &format!("{LOGIN}i IDLE\ndone\nj IDLE\nNOOP\nk NOOP\n"),
        &format!("{LOGIN_OK}+ idling\ni OK IDLE terminated\n+ idling\nj BAD Expected DONE\nk OK NOOP completed\n"),
    );
    assert_eq!(outcome.events[1..5], ["idle i", "done i", "idle j", "done j"]);
}

#[test]
fn namespace_is_answered_by_the_server() {
    check(
        &Script::new(),
        &format!("{LOGIN}n NAMESPACE\n"),
        &format!("{LOGIN_OK}* NAMESPACE ((\"\" \"/\")) NIL NIL\nn OK NAMESPACE completed\n"),
    );
}

#[test]
fn synchronizing_and_non_synchronizing_literals() {
    let outcome = check(
        &Script::new(),
        &format!("{LOGIN}p APPEND saved-messages (\\Seen) {{12}}\nHello\nWorld\nq APPEND x {{3+}}\nabc\n"),
        &format!("{LOGIN_OK}+ Ready for literal data\np OK APPEND completed\nq OK APPEND completed\n"),
    );
    assert!(outcome.events[1].contains("message: [72, 101, 108, 108, 111, 13, 10, 87, 111, 114, 108, 100]"));
    assert!(outcome.events[2].contains("message: [97, 98, 99]"));
    // A literal followed by more arguments, and a zero-length literal.
    check(
        &Script::new(),
        &format!("{LOGIN}r RENAME {{3+}}\nold {{0}}\n\n"),
        &format!("{LOGIN_OK}+ Ready for literal data\nr OK RENAME completed\n"),
    );
    let outcome = check(
        &Script::new(),
        &format!("{LOGIN}r RENAME {{3+}}\nold {{3}}\nnew\n"),
        &format!("{LOGIN_OK}+ Ready for literal data\nr OK RENAME completed\n"),
    );
    assert!(outcome.events[1].contains("from: \"old\", to: \"new\""));
}

#[test]
fn literals_over_the_limit_are_refused_before_reading() {
    let small = Script::new().limits(|l| {
        l.max_command_size = 100;
        l.max_message_size = 10;
    });
    // A synchronizing literal gets no continuation (RFC 9051 §4.3).
    check(
        &small,
        &format!("{LOGIN}p APPEND x {{200}}\nq NOOP\n"),
        &format!("{LOGIN_OK}p NO [TOOBIG] Message too large\nq OK NOOP completed\n"),
    );
    check(&small, "l LOGIN {101}\nq NOOP\n", "l BAD [TOOBIG] Literal too large\nq OK NOOP completed\n");
    // RFC 7888 §4: a non-synchronizing one is read, dropped, refused.
    let data = "x".repeat(150);
    check(
        &small,
        &format!("{LOGIN}p APPEND x {{150+}}\n{data}\nq NOOP\n"),
        &format!("{LOGIN_OK}p NO [TOOBIG] Message too large\nq OK NOOP completed\n"),
    );
    // A refused command with a later literal: non-synchronizing ones are
    // dropped too, a synchronizing one ends it.
    check(
        &small,
        &format!("l LOGIN {{150+}}\n{data} {{2+}}\nab\nm LOGIN {{150+}}\n{data} {{2}}\nq NOOP\n"),
        "l BAD [TOOBIG] Literal too large\nm BAD [TOOBIG] Literal too large\nq OK NOOP completed\n",
    );
    // Within the limits all is well; the message limit is APPEND's only.
    check(&small, &format!("{LOGIN}p APPEND x {{10+}}\n0123456789\n"), &format!("{LOGIN_OK}p OK APPEND completed\n"));
}

#[test]
fn over_long_lines_are_refused_and_skipped() {
    let small = Script::new().limits(|l| {
        l.max_line = 24;
        l.max_sasl_line = 10;
    });
    check(&small, "a1 NOOP NOOP NOOP NOOP NOOP\nb NOOP\n", "a1 BAD Command line too long\nb OK NOOP completed\n");
    check(
        &small,
        "s AUTHENTICATE PLAIN\nAAAAAAAAAAAAAAAAAAAAAAAAA\nb NOOP\n",
        "+ \ns BAD Line too long\nb OK NOOP completed\n",
    );
}

#[test]
fn input_stays_bounded() {
    let script = Script::new().limits(|l| l.max_line = 100);
    let mut server = Server::new(script.config);
    for _ in 0..1000 {
        server.feed(&[b'x'; 64]);
        assert!(matches!(server.next(), Event::NeedInput));
        assert!(server.buffered_len() < 100 + 64);
    }
    server.feed(b"\r\nb NOOP\r\n");
    assert!(matches!(server.next(), Event::NeedInput));
    assert!(
        String::from_utf8_lossy(server.output()).ends_with("* BAD Command line too long\r\nb OK NOOP completed\r\n")
    );
}

#[test]
fn starttls_drops_pipelined_input() {
    let script = Script::new().no_plaintext().starttls();
    let outcome = check(&script, "t STARTTLS\n", "t OK Begin TLS negotiation now\n");
    assert_eq!(outcome.events, vec!["starttls"]);
    let mut server = Server::new(script.config);
    server.feed(b"t STARTTLS\r\nx LOGIN alice secret\r\n");
    assert!(matches!(server.next(), Event::StartTls));
    assert!(matches!(server.next(), Event::Waiting));
    server.tls_started();
    server.clear_output();
    assert!(matches!(server.next(), Event::NeedInput));
    assert_eq!(server.output(), b"");
    server.feed(b"c CAPABILITY\r\n");
    server.next();
    assert_eq!(
        String::from_utf8_lossy(server.output()),
        "* CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ID ENABLE AUTH=PLAIN\r\nc OK CAPABILITY completed\r\n"
    );
    check(&Script::new(), "t STARTTLS\n", "t BAD STARTTLS is not available\n");
}

#[test]
fn close_with_says_bye() {
    let mut server = Server::new(Script::new().config);
    server.clear_output();
    server.close_with("Autologout; idle for too long");
    assert!(matches!(server.next(), Event::Close));
    assert_eq!(server.output(), b"* BYE Autologout; idle for too long\r\n");
}

#[test]
fn id_and_noop_reach_the_driver_after_login() {
    let outcome = check(
        &Script::new(),
        &format!("i ID (\"name\" \"sodr\" \"version\" NIL)\n{LOGIN}n NOOP\n"),
        &format!("i OK ID completed\n{LOGIN_OK}n OK NOOP completed\n"),
    );
    assert_eq!(outcome.events[0], "i Id { params: Some([(\"name\", Some(\"sodr\")), (\"version\", None)]) }");
    assert_eq!(outcome.events[2], "n Noop");
}

#[test]
fn deferred_commands_hold_the_next_one_until_completed() {
    let mut s = Server::new(Script::new().config);
    s.clear_output();
    s.feed(
        crlf("a LOGIN alice secret\nb APPEND INBOX {3+}\nabc\nc APPEND INBOX {3+}\ndef\nd NOOP\ne LOGOUT\n").as_bytes(),
    );
    assert!(matches!(s.next(), Event::Login { .. }));
    s.accept_login();
    let mut deferred = Vec::new();
    for _ in 0..2 {
        assert!(matches!(s.next(), Event::Command { command: Command::Append { .. }, .. }));
        deferred.push(s.defer().expect("an APPEND can be deferred"));
    }
    // NOOP must not overtake the APPENDs: the driver is told to settle.
    assert!(matches!(s.next(), Event::Settle));
    assert!(matches!(s.next(), Event::Settle), "still owed");
    for d in deferred {
        s.complete(d, Status::Ok, None, "APPEND completed");
    }
    assert!(matches!(s.next(), Event::Command { command: Command::Noop, .. }));
    s.respond_ok(None, "NOOP completed");
    assert!(matches!(s.next(), Event::Close));
    let out = String::from_utf8(s.output().to_vec()).unwrap();
    let tail = crlf(
        "b OK APPEND completed\nc OK APPEND completed\nd OK NOOP completed\n* BYE Logging out\ne OK LOGOUT completed\n",
    );
    assert!(out.ends_with(&tail), "{out}");
}
