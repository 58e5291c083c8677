//! The IMAP server state machine (RFC 9051 §3, with LITERAL+ of RFC 7888,
//! SASL-IR of RFC 4959, ENABLE of RFC 5161, IDLE of RFC 2177).
//!
//! ```text
//!                      +--------------------------------------+
//!                      |  greeting: * OK [CAPABILITY ...]     |
//!                      +--------------------------------------+
//!                                        |
//!                                        v
//!  STARTTLS ───▶ StartTls ──tls_started──▶ NOT AUTHENTICATED ◀─┐ reject_login
//!                                        │  LOGIN / AUTHENTICATE (Login)
//!                                        │  accept_login
//!                                        v
//!            +-------------------▶ AUTHENTICATED ◀──────────────────+
//!            |                           │ SELECT/EXAMINE (Command)  |
//!            | respond_no to SELECT      │ respond_ok                | respond_ok to
//!            |                           v                           | CLOSE/UNSELECT
//!            +------------------------ SELECTED ─────────────────────+
//!
//!   any state: LOGOUT ─▶ * BYE, tagged OK ─▶ LOGOUT (Event::Close);
//!              close_with(text) ─▶ * BYE ─▶ LOGOUT
//!   AUTHENTICATED/SELECTED: IDLE ─▶ "+ idling" (IdleStarted) ... DONE ─▶
//!              tagged OK (IdleDone)
//! ```
//!
//! Implementation notes:
//! - One loop, [`Server::next`], consumes buffered input in order. A
//!   decision event (`Login`, `Command`, `StartTls`) stops it until the
//!   driver answers, so pipelined commands see the effect of every earlier
//!   one and tagged responses leave in order. The driver writes untagged
//!   data for a command into [`Server::output_mut`] before answering it.
//! - The server answers CAPABILITY, NOOP before login, LOGOUT, ENABLE,
//!   NAMESPACE and the IDLE exchange itself; everything about mailboxes
//!   and messages is a [`Command`] for the driver.
//! - Input is bounded whatever the client sends: [`crate::framing`]
//!   collects at most one command within [`Limits`]; an unfinished line
//!   stays in the input buffer only up to [`Limits::max_line`]. The
//!   driver feeds only after [`Event::NeedInput`] and in chunks of its
//!   read buffer's size, so [`Server::buffered_len`] stays bounded too.
//! - A command valid only in another state gets a tagged BAD that says
//!   why (RFC 9051 §6: "BAD - command unknown or arguments invalid");
//!   the session goes on.

#[cfg(test)]
mod tests;

use std::mem;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailroom_types::Secret;
use memchr::memchr;

use crate::capability;
use crate::command::{self, Command, Parsed, Refusal, lexer};
use crate::framing::{Framer, Step};
use crate::response::{self, Code, Status};

/// The output capacity [`Server::clear_output`] keeps between responses.
pub const KEEP_OUTPUT_CAPACITY: usize = 1 << 20;

/// The hierarchy delimiter of every mailbox name.
pub const DELIMITER: char = '/';

/// The protocol limits the server enforces; the driver takes them from
/// configuration so that every buffer stays bounded (style guide §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest line of a command in octets, CRLF included. RFC 9051 §4
    /// asks servers to take lines of at least 8000 octets; long UID sets
    /// from synchronizing clients need more, hence 64 KiB.
    pub max_line: usize,
    /// Most octets of one command, lines and literals together, APPEND's
    /// message aside.
    pub max_command_size: usize,
    /// Largest message APPEND accepts (its literal), in octets.
    pub max_message_size: u64,
    /// Longest AUTHENTICATE response line, CRLF included.
    pub max_sasl_line: usize,
}

impl Default for Limits {
    /// 64 KiB lines, 256 KiB commands, 50 MiB messages, 8 KiB SASL lines.
    fn default() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_command_size: 256 * 1024,
            max_message_size: 50 * 1024 * 1024,
            max_sasl_line: 8 * 1024,
        }
    }
}

/// What a server needs to know about itself and its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name in the greeting.
    pub hostname: String,
    /// The limits to enforce.
    pub limits: Limits,
    /// Whether LOGIN and AUTHENTICATE PLAIN may be used: true once the
    /// connection is protected by TLS, or on loopback. While false they
    /// are refused with `NO [PRIVACYREQUIRED]` and LOGINDISABLED is
    /// announced (RFC 9051 §6.2.3).
    pub allow_plaintext: bool,
    /// Whether STARTTLS is offered (RFC 9051 §6.2.1).
    pub starttls_available: bool,
}

/// The session state (RFC 9051 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Before login.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected {
        /// By EXAMINE (or the driver answered SELECT with READ-ONLY).
        read_only: bool,
    },
    /// The session is over.
    Logout,
}

/// What the driver must do next; returned by [`Server::next`].
#[derive(Debug)]
pub enum Event {
    /// All buffered input is used up: write the output, read more and pass
    /// it to [`Server::feed`].
    NeedInput,
    /// LOGIN or AUTHENTICATE PLAIN gave credentials. Check them, then
    /// answer with [`Server::accept_login`] or [`Server::reject_login`].
    Login {
        /// The command's tag, for logs.
        tag: String,
        /// The user name (the PLAIN authentication identity).
        user: String,
        /// The password, redacted in `Debug`.
        password: Secret<String>,
    },
    /// A command to carry out. Write its untagged responses into
    /// [`Server::output_mut`], then answer with [`Server::respond_ok`],
    /// [`Server::respond_no`] or [`Server::respond_bad`].
    Command {
        /// The command's tag, for logs.
        tag: String,
        /// The command.
        command: Command,
    },
    /// STARTTLS was accepted and its OK is in the output: write it, run
    /// the TLS handshake, then call [`Server::tls_started`]. Input that
    /// came with the command was dropped (RFC 9051 §6.2.1).
    StartTls,
    /// IDLE began (`+ idling` is in the output): send untagged updates as
    /// they happen until [`Event::IdleDone`].
    IdleStarted {
        /// The IDLE command's tag.
        tag: String,
    },
    /// IDLE ended; its tagged response is in the output.
    IdleDone {
        /// The IDLE command's tag.
        tag: String,
    },
    /// A decision is still unanswered: calling [`Server::next`] before
    /// answering is a driver bug.
    Waiting,
    /// Deferred commands (see [`Server::defer`]) must be completed before
    /// the next command, which is not one that may run beside them (only
    /// APPEND may): call [`Server::complete`] for each, then `next` again.
    Settle,
    /// The session is over (LOGOUT, or [`Server::close_with`]): write the
    /// output and close the connection. Returned again on every call.
    Close,
}

/// What the owed answer is about, for the state change it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Login,
    Select {
        read_only: bool,
    },
    /// CLOSE or UNSELECT: OK leaves the selected state.
    Deselect,
    StartTls,
    Other,
}

/// A command answered later (see [`Server::defer`]): its tag.
#[derive(Debug)]
pub struct Deferred {
    tag: String,
}

impl Deferred {
    /// The command's tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// An answer the driver owes.
#[derive(Debug)]
struct Pending {
    tag: String,
    kind: Kind,
}

/// Which input the next line is.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Commands,
    /// AUTHENTICATE PLAIN sent `+ ` and waits for the response line.
    AuthPlain {
        tag: String,
    },
    /// IDLE waits for DONE.
    Idle {
        tag: String,
    },
}

/// Extensions the client turned on with ENABLE (RFC 5161), or
/// implicitly (CONDSTORE, RFC 7162 §3.1).
#[derive(Debug, Default, Clone, Copy)]
struct Enabled {
    condstore: bool,
    qresync: bool,
    imap4rev2: bool,
    utf8: bool,
}

/// The sans-IO IMAP server for one connection.
///
/// Use: call [`Server::next`] in a loop and act on each [`Event`]; write
/// the output ([`Server::output`] then [`Server::clear_output`]) at least
/// before each read, before closing, and whenever
/// [`Server::output_len`] grows large.
///
/// ```
/// use mailroom_imap_proto::{Event, Limits, Server, ServerConfig};
/// use mailroom_imap_proto::command::Command;
///
/// let config = ServerConfig {
///     hostname: "imap.test".into(),
///     limits: Limits::default(),
///     allow_plaintext: true,
///     starttls_available: false,
/// };
/// let mut server = Server::new(config);
/// server.feed(b"a LOGIN alice secret\r\nb CREATE Archive\r\nc LOGOUT\r\n");
/// loop {
///     match server.next() {
///         Event::Login { user, .. } => {
///             assert_eq!(user, "alice");
///             server.accept_login();
///         }
///         Event::Command { command: Command::Create { mailbox }, .. } => {
///             assert_eq!(mailbox, "Archive");
///             server.respond_ok(None, "CREATE completed");
///         }
///         Event::NeedInput | Event::Close => break,
///         other => unreachable!("{other:?}"),
///     }
/// }
/// assert!(server.output().ends_with(b"b OK CREATE completed\r\n* BYE Logging out\r\nc OK LOGOUT completed\r\n"));
/// ```
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    /// Unprocessed input starts at `input[pos]`.
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    state: SessionState,
    mode: Mode,
    framer: Framer,
    pending: Option<Pending>,
    /// Commands deferred and not yet completed.
    deferred: usize,
    /// A command read while deferred ones were open, which must wait for
    /// them ([`Event::Settle`]).
    held: Option<Vec<u8>>,
    enabled: Enabled,
    /// The rest of an over-long AUTHENTICATE or IDLE line is being
    /// dropped up to its LF.
    skip_line: bool,
}

impl Server {
    /// A server for a new connection; the greeting is already in the
    /// output (RFC 9051 §7.1.1).
    pub fn new(config: ServerConfig) -> Server {
        let mut server = Server {
            config,
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
            state: SessionState::NotAuthenticated,
            mode: Mode::Commands,
            framer: Framer::new(),
            pending: None,
            deferred: 0,
            held: None,
            enabled: Enabled::default(),
            skip_line: false,
        };
        let code = Code::Capability(server.capabilities().iter().map(|c| c.to_string()).collect());
        let text = format!("{} ready", server.config.hostname);
        response::status(&mut server.output, None, Status::Ok, Some(&code), &text);
        server
    }

    /// Adds bytes read from the client. Call it after [`Event::NeedInput`]
    /// (see the module notes on bounds). Ignored once the session is over.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state == SessionState::Logout {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Runs until something needs the driver and says what.
    #[expect(
        clippy::should_implement_trait,
        reason = "not an iterator: it never ends and the driver must act between calls (style guide §3 names it next)"
    )]
    pub fn next(&mut self) -> Event {
        loop {
            if self.state == SessionState::Logout {
                return Event::Close;
            }
            if self.pending.is_some() {
                return Event::Waiting;
            }
            if let Some(event) = self.step() {
                return event;
            }
        }
    }

    /// The bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// The output buffer, for the driver's untagged responses (written
    /// with [`crate::response`]).
    pub fn output_mut(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Takes the bytes to send (possibly none).
    pub fn take_output(&mut self) -> Vec<u8> {
        mem::take(&mut self.output)
    }

    /// Forgets the output once written, keeping the buffer; capacity above
    /// [`KEEP_OUTPUT_CAPACITY`] is released, so one large FETCH does not
    /// pin memory for the rest of a session.
    pub fn clear_output(&mut self) {
        self.output.clear();
        if self.output.capacity() > KEEP_OUTPUT_CAPACITY {
            self.output.shrink_to(KEEP_OUTPUT_CAPACITY);
        }
    }

    /// How many octets wait in the output.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// How many unprocessed input octets are buffered.
    pub fn buffered_len(&self) -> usize {
        self.input.len() - self.pos
    }

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// True once logged in (and not logged out).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, SessionState::Authenticated | SessionState::Selected { .. })
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == SessionState::Logout
    }

    /// True while IDLE runs: untagged updates go out at once.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Idle { .. })
    }

    /// CONDSTORE is on (by ENABLE or a CONDSTORE command, RFC 7162 §3.1):
    /// FETCH responses carry MODSEQ after flag changes.
    pub fn condstore_enabled(&self) -> bool {
        self.enabled.condstore
    }

    /// QRESYNC is on (RFC 7162 §3.2): send VANISHED instead of EXPUNGE.
    pub fn qresync_enabled(&self) -> bool {
        self.enabled.qresync
    }

    /// IMAP4rev2 is on (RFC 9051 §6.3.1): no `* n RECENT`, ESEARCH for
    /// SEARCH, UTF-8 names. Off, the client is served as IMAP4rev1.
    pub fn imap4rev2_enabled(&self) -> bool {
        self.enabled.imap4rev2
    }

    /// Mailbox names are sent and read as UTF-8 (IMAP4rev2 or UTF8=ACCEPT
    /// enabled), not modified UTF-7; pass it to the encoders.
    pub fn utf8_names(&self) -> bool {
        self.enabled.imap4rev2 || self.enabled.utf8
    }

    /// The CAPABILITY list for the current state.
    pub fn capabilities(&self) -> Vec<&'static str> {
        if self.is_authenticated() {
            capability::after_login()
        } else {
            capability::before_login(self.config.allow_plaintext, self.config.starttls_available)
        }
    }

    /// Answers `Login`: the credentials are good. Sends
    /// `OK [CAPABILITY ...]` and enters the authenticated state.
    pub fn accept_login(&mut self) {
        if self.expect(Kind::Login, "accept_login") {
            self.respond_ok(None, "Logged in");
        }
    }

    /// Answers `Login` with `NO [AUTHENTICATIONFAILED]`; the same for an
    /// unknown user and a wrong password. For other refusals (e.g.
    /// `Code::Unavailable`) use [`Server::respond_no`].
    pub fn reject_login(&mut self) {
        if self.expect(Kind::Login, "reject_login") {
            self.respond_no(Some(Code::AuthenticationFailed), "Authentication failed");
        }
    }

    /// Answers the owed decision with a tagged OK, and applies its state
    /// change: a login enters the authenticated state (the capability
    /// list is added when `code` is `None`); SELECT/EXAMINE enter the
    /// selected state (read-only for EXAMINE or `Code::ReadOnly`);
    /// CLOSE/UNSELECT leave it.
    pub fn respond_ok(&mut self, code: Option<Code>, text: &str) {
        let Some(pending) = self.pending.take() else { return self.misuse("respond_ok") };
        let mut code = code;
        match pending.kind {
            Kind::Login => {
                self.state = SessionState::Authenticated;
                if code.is_none() {
                    code = Some(Code::Capability(self.capabilities().iter().map(|c| c.to_string()).collect()));
                }
            }
            Kind::Select { read_only } => {
                let read_only = read_only || code == Some(Code::ReadOnly);
                self.state = SessionState::Selected { read_only };
            }
            Kind::Deselect => self.state = SessionState::Authenticated,
            Kind::StartTls | Kind::Other => {}
        }
        response::status(&mut self.output, Some(&pending.tag), Status::Ok, code.as_ref(), text);
    }

    /// Answers the owed decision with a tagged NO. A failed SELECT leaves
    /// the session authenticated (RFC 9051 §6.3.2).
    pub fn respond_no(&mut self, code: Option<Code>, text: &str) {
        self.respond_failure(Status::No, code, text, "respond_no");
    }

    /// Answers the owed decision with a tagged BAD (e.g. a sequence
    /// number past the message count).
    pub fn respond_bad(&mut self, code: Option<Code>, text: &str) {
        self.respond_failure(Status::Bad, code, text, "respond_bad");
    }

    /// Releases the owed answer to a command that changes no session
    /// state (APPEND, say) so that the commands after it can be read
    /// meanwhile; the driver writes its tagged response later with
    /// [`Server::complete`]. RFC 9051 §5.5 lets a server work on
    /// independent commands concurrently: their tags tell the responses
    /// apart. `None` (and nothing released) for LOGIN, SELECT and the like,
    /// whose answer decides how the next command is read.
    pub fn defer(&mut self) -> Option<Deferred> {
        match self.pending.take() {
            Some(Pending { tag, kind: Kind::Other }) => {
                self.deferred += 1;
                Some(Deferred { tag })
            }
            other => {
                self.pending = other;
                self.misuse("defer");
                None
            }
        }
    }

    /// Writes the tagged response of a deferred command.
    pub fn complete(&mut self, deferred: Deferred, status: Status, code: Option<Code>, text: &str) {
        self.deferred = self.deferred.saturating_sub(1);
        response::status(&mut self.output, Some(&deferred.tag), status, code.as_ref(), text);
    }

    /// Answers [`Event::StartTls`]: the handshake succeeded. Passwords
    /// may now be sent and STARTTLS is no longer offered; anything read
    /// before the handshake is forgotten (RFC 9051 §6.2.1).
    pub fn tls_started(&mut self) {
        if !self.expect(Kind::StartTls, "tls_started") {
            return;
        }
        self.pending = None;
        self.config.allow_plaintext = true;
        self.config.starttls_available = false;
        self.input.clear();
        self.pos = 0;
        self.framer.reset();
    }

    /// Sends `* BYE text` and ends the session: for the autologout timer
    /// (RFC 9051 §5.4) or a shutdown. Any owed decision is dropped.
    pub fn close_with(&mut self, text: &str) {
        response::status(&mut self.output, None, Status::Bye, None, text);
        self.close();
    }

    fn respond_failure(&mut self, status: Status, code: Option<Code>, text: &str, call: &str) {
        let Some(pending) = self.pending.take() else { return self.misuse(call) };
        if let Kind::Select { .. } = pending.kind {
            self.state = SessionState::Authenticated;
        }
        response::status(&mut self.output, Some(&pending.tag), status, code.as_ref(), text);
    }

    /// True when the owed decision is of `kind`; else a driver bug.
    fn expect(&mut self, kind: Kind, call: &str) -> bool {
        let ok = self.pending.as_ref().is_some_and(|p| p.kind == kind);
        if !ok {
            self.misuse(call);
        }
        ok
    }

    fn misuse(&self, call: &str) {
        debug_assert!(false, "{call}() does not answer {:?}", self.pending);
    }

    fn close(&mut self) {
        self.pending = None;
        self.input = Vec::new();
        self.pos = 0;
        self.framer.reset();
        self.mode = Mode::Commands;
        self.skip_line = false;
        self.held = None;
        self.state = SessionState::Logout;
    }

    fn tagged(&mut self, tag: &str, status: Status, code: Option<Code>, text: &str) {
        response::status(&mut self.output, Some(tag), status, code.as_ref(), text);
    }

    /// One unit of work on the input; `Some` when the driver must act.
    fn step(&mut self) -> Option<Event> {
        if let Some(msg) = self.held.take() {
            if self.deferred > 0 {
                self.held = Some(msg);
                return Some(Event::Settle);
            }
            return self.command(&msg);
        }
        if self.skip_line {
            let rest = &self.input[self.pos..];
            match memchr(b'\n', rest) {
                Some(lf) => {
                    self.pos += lf + 1;
                    self.skip_line = false;
                }
                None => {
                    self.pos = self.input.len();
                    return Some(Event::NeedInput);
                }
            }
        }
        match &self.mode {
            Mode::Commands => {
                let (used, step) = self.framer.step(&self.input[self.pos..], &self.config.limits);
                self.pos += used;
                match step {
                    Step::NeedInput => Some(Event::NeedInput),
                    Step::Continue => {
                        self.output.extend_from_slice(b"+ Ready for literal data\r\n");
                        None
                    }
                    Step::Refuse(tag, refusal) => {
                        self.refuse(tag.as_deref(), refusal);
                        None
                    }
                    Step::Command => {
                        let msg = self.framer.take();
                        // Only APPENDs run beside deferred ones; anything
                        // else (LOGOUT too, which this crate answers
                        // itself) waits for them, so it sees their effects
                        // and the session never ends with answers owed.
                        let append = lexer::peek_name(&msg).is_some_and(|(_, name)| name == "APPEND");
                        if self.deferred > 0 && !append {
                            self.held = Some(msg);
                            return Some(Event::Settle);
                        }
                        self.command(&msg)
                    }
                }
            }
            Mode::AuthPlain { .. } | Mode::Idle { .. } => {
                let max = match self.mode {
                    Mode::AuthPlain { .. } => self.config.limits.max_sasl_line,
                    _ => self.config.limits.max_line,
                };
                let rest = &self.input[self.pos..];
                let window = &rest[..rest.len().min(max)];
                let Some(lf) = memchr(b'\n', window) else {
                    if rest.len() < max {
                        return Some(Event::NeedInput);
                    }
                    // An over-long line ends the exchange; its rest is
                    // dropped up to its LF.
                    self.pos += window.len();
                    self.skip_line = true;
                    return self.interrupt_exchange("Line too long");
                };
                let line = rest[..lf].to_vec();
                self.pos += lf + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                match mem::replace(&mut self.mode, Mode::Commands) {
                    Mode::AuthPlain { tag } => self.auth_response(&tag, line),
                    Mode::Idle { tag } => {
                        // RFC 2177 §3: DONE ends IDLE; anything else is BAD.
                        if line.eq_ignore_ascii_case(b"DONE") {
                            self.tagged(&tag, Status::Ok, None, "IDLE terminated");
                        } else {
                            self.tagged(&tag, Status::Bad, None, "Expected DONE");
                        }
                        Some(Event::IdleDone { tag })
                    }
                    Mode::Commands => None,
                }
            }
        }
    }

    /// An AUTHENTICATE or IDLE exchange was interrupted by an over-long
    /// line: refuse it and let the framer drop the rest of that line.
    fn interrupt_exchange(&mut self, text: &str) -> Option<Event> {
        match mem::replace(&mut self.mode, Mode::Commands) {
            Mode::AuthPlain { tag } => {
                self.tagged(&tag, Status::Bad, None, text);
                None
            }
            Mode::Idle { tag } => {
                self.tagged(&tag, Status::Bad, None, text);
                Some(Event::IdleDone { tag })
            }
            Mode::Commands => None,
        }
    }

    fn refuse(&mut self, tag: Option<&str>, refusal: Refusal) {
        let status = if refusal.no { Status::No } else { Status::Bad };
        response::status(&mut self.output, Some(tag.unwrap_or("*")), status, refusal.code.as_ref(), &refusal.text);
    }

    /// Parses and runs one complete command.
    fn command(&mut self, msg: &[u8]) -> Option<Event> {
        let (tag, parsed) = match command::parse(msg, self.utf8_names()) {
            Ok(parsed) => parsed,
            Err((tag, refusal)) => {
                self.refuse(tag.as_deref(), refusal);
                return None;
            }
        };
        match self.dispatch(&tag, parsed) {
            Ok(event) => event,
            Err(refusal) => {
                self.refuse(Some(&tag), refusal);
                None
            }
        }
    }

    /// Checks the state and runs or hands over a parsed command.
    fn dispatch(&mut self, tag: &str, parsed: Parsed) -> Result<Option<Event>, Refusal> {
        let authenticated = self.is_authenticated();
        let not_auth = || Refusal::bad("Log in first");
        match parsed {
            Parsed::Capability => {
                let caps = self.capabilities();
                response::capability(&mut self.output, &caps);
                self.tagged(tag, Status::Ok, None, "CAPABILITY completed");
            }
            Parsed::Logout => {
                response::status(&mut self.output, None, Status::Bye, None, "Logging out");
                self.tagged(tag, Status::Ok, None, "LOGOUT completed");
                self.close();
                return Ok(Some(Event::Close));
            }
            Parsed::StartTls => {
                if authenticated {
                    return Err(Refusal::bad("Already authenticated"));
                }
                if !self.config.starttls_available {
                    return Err(Refusal::bad("STARTTLS is not available"));
                }
                self.tagged(tag, Status::Ok, None, "Begin TLS negotiation now");
                // RFC 9051 §6.2.1: nothing sent before the handshake may
                // be taken as a command after it.
                self.input.clear();
                self.pos = 0;
                self.framer.reset();
                self.pending = Some(Pending { tag: tag.to_string(), kind: Kind::StartTls });
                return Ok(Some(Event::StartTls));
            }
            Parsed::Login { user, password } => {
                self.check_login_allowed()?;
                return Ok(Some(self.login(tag, user, password)));
            }
            Parsed::Authenticate { mechanism, initial } => {
                self.check_login_allowed()?;
                if mechanism != "PLAIN" {
                    return Err(Refusal::no(Some(Code::Cannot), "Unsupported authentication mechanism"));
                }
                match initial {
                    // RFC 4959 §3: the initial response, "=" being empty.
                    Some(initial) => return self.auth_plain(tag, initial.expose()).map(Some),
                    None => {
                        // RFC 9051 §6.2.2: an empty challenge.
                        self.output.extend_from_slice(b"+ \r\n");
                        self.mode = Mode::AuthPlain { tag: tag.to_string() };
                    }
                }
            }
            Parsed::Enable(names) => {
                match self.state {
                    SessionState::Authenticated => {}
                    SessionState::Selected { .. } => {
                        // RFC 5161 §3.1: only in the authenticated state.
                        return Err(Refusal::bad("ENABLE is only valid before SELECT"));
                    }
                    _ => return Err(not_auth()),
                }
                self.enable(tag, &names);
            }
            Parsed::Namespace => {
                if !authenticated {
                    return Err(not_auth());
                }
                response::namespace(&mut self.output, DELIMITER);
                self.tagged(tag, Status::Ok, None, "NAMESPACE completed");
            }
            Parsed::Idle => {
                if !authenticated {
                    return Err(not_auth());
                }
                self.output.extend_from_slice(b"+ idling\r\n");
                self.mode = Mode::Idle { tag: tag.to_string() };
                return Ok(Some(Event::IdleStarted { tag: tag.to_string() }));
            }
            Parsed::Command(Command::Noop) if !authenticated => {
                self.tagged(tag, Status::Ok, None, "NOOP completed");
            }
            Parsed::Command(command) => return self.driver_command(tag, command).map(Some),
        }
        Ok(None)
    }

    fn check_login_allowed(&self) -> Result<(), Refusal> {
        if self.is_authenticated() {
            return Err(Refusal::bad("Already authenticated"));
        }
        if !self.config.allow_plaintext {
            return Err(Refusal::no(Some(Code::PrivacyRequired), "Use TLS before sending a password"));
        }
        Ok(())
    }

    fn login(&mut self, tag: &str, user: String, password: Secret<String>) -> Event {
        self.pending = Some(Pending { tag: tag.to_string(), kind: Kind::Login });
        Event::Login { tag: tag.to_string(), user, password }
    }

    /// The line after AUTHENTICATE's `+` (RFC 9051 §6.2.2).
    fn auth_response(&mut self, tag: &str, line: &[u8]) -> Option<Event> {
        let result = if line == b"*" {
            Err(Refusal::bad("Authentication cancelled"))
        } else {
            match BASE64.decode(line) {
                Ok(decoded) => self.auth_plain(tag, &decoded),
                Err(_) => Err(Refusal::bad("Invalid base64 in authentication response")),
            }
        };
        match result {
            Ok(event) => Some(event),
            Err(refusal) => {
                self.refuse(Some(tag), refusal);
                None
            }
        }
    }

    /// A PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 §2)
    /// to a `Login` decision.
    fn auth_plain(&mut self, tag: &str, message: &[u8]) -> Result<Event, Refusal> {
        let invalid = || Refusal::bad("Invalid PLAIN authentication data");
        let message = std::str::from_utf8(message).map_err(|_| invalid())?;
        let mut parts = message.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if authcid.is_empty() || password.is_empty() {
            return Err(invalid());
        }
        // RFC 4616 §2: acting as another identity is never allowed here.
        if !authzid.is_empty() && authzid != authcid {
            return Err(Refusal::no(Some(Code::AuthorizationFailed), "Cannot act as another user"));
        }
        Ok(self.login(tag, authcid.to_string(), Secret::new(password.to_string())))
    }

    /// ENABLE (RFC 5161): turns on what we support, answers `* ENABLED`
    /// with what this command turned on.
    fn enable(&mut self, tag: &str, names: &[String]) {
        let mut turned_on: Vec<&'static str> = Vec::new();
        for name in names {
            let (flag, wire) = match name.as_str() {
                "CONDSTORE" => (&mut self.enabled.condstore, "CONDSTORE"),
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                "QRESYNC" => {
                    self.enabled.condstore = true;
                    (&mut self.enabled.qresync, "QRESYNC")
                }
                "IMAP4REV2" => (&mut self.enabled.imap4rev2, "IMAP4rev2"),
                "UTF8=ACCEPT" => (&mut self.enabled.utf8, "UTF8=ACCEPT"),
                // RFC 5161 §3.1: unknown names are ignored.
                _ => continue,
            };
            if !*flag {
                *flag = true;
                turned_on.push(wire);
            }
        }
        response::enabled(&mut self.output, &turned_on);
        self.tagged(tag, Status::Ok, None, "ENABLE completed");
    }

    /// Checks the state of a command for the driver and hands it over.
    fn driver_command(&mut self, tag: &str, command: Command) -> Result<Event, Refusal> {
        let selected_only = matches!(
            command,
            Command::Check
                | Command::Close
                | Command::Unselect
                | Command::Expunge { .. }
                | Command::Search(_)
                | Command::Fetch { .. }
                | Command::Store { .. }
                | Command::Copy { .. }
                | Command::Move { .. }
        );
        let any_state = matches!(command, Command::Noop | Command::Id { .. });
        match self.state {
            SessionState::NotAuthenticated if !any_state => return Err(Refusal::bad("Log in first")),
            SessionState::Authenticated if selected_only => return Err(Refusal::bad("No mailbox selected")),
            _ => {}
        }
        let read_only = matches!(self.state, SessionState::Selected { read_only: true });
        let changes = matches!(command, Command::Expunge { .. } | Command::Store { .. } | Command::Move { .. });
        if read_only && changes {
            return Err(Refusal::no(None, "Mailbox is read-only"));
        }
        let kind = match &command {
            Command::Select { read_only, condstore, qresync, .. } => {
                if qresync.is_some() && !self.enabled.qresync {
                    // RFC 7162 §3.2.5: QRESYNC must be enabled first.
                    return Err(Refusal::bad("ENABLE QRESYNC first"));
                }
                if *condstore {
                    self.enabled.condstore = true;
                }
                if matches!(self.state, SessionState::Selected { .. }) {
                    // RFC 9051 §6.3.2: the selected mailbox is closed
                    // first, whatever the outcome.
                    response::status(
                        &mut self.output,
                        None,
                        Status::Ok,
                        Some(&Code::Closed),
                        "Previous mailbox closed",
                    );
                    self.state = SessionState::Authenticated;
                }
                Kind::Select { read_only: *read_only }
            }
            Command::Close | Command::Unselect => Kind::Deselect,
            Command::Fetch { items, changed_since, vanished, .. } => {
                if *vanished && !self.enabled.qresync {
                    return Err(Refusal::bad("ENABLE QRESYNC first"));
                }
                if changed_since.is_some() || items.contains(&command::FetchItem::ModSeq) {
                    self.enabled.condstore = true;
                }
                Kind::Other
            }
            Command::Store { flags, .. } => {
                if flags.unchanged_since.is_some() {
                    self.enabled.condstore = true;
                }
                Kind::Other
            }
            Command::Search(search) => {
                if search.key.uses_modseq() {
                    self.enabled.condstore = true;
                }
                Kind::Other
            }
            _ => Kind::Other,
        };
        self.pending = Some(Pending { tag: tag.to_string(), kind });
        Ok(Event::Command { tag: tag.to_string(), command })
    }
}
