//! The POP3 server state machine (RFC 1939 §3–§7, RFC 2449 CAPA and
//! PIPELINING, RFC 5034 AUTH).
//!
//! ```text
//!                USER+PASS or AUTH PLAIN                QUIT
//! AUTHORIZATION ────────────────────────▶ TRANSACTION ─────────▶ UPDATE
//!  │   ▲     │   Login → accept_login      STAT LIST UIDL         Update →
//!  │   └─────┘                             RETR/TOP (Retrieve)    update_done or
//!  │   Login → reject_login                DELE NOOP RSET CAPA    update_failed
//!  │ QUIT                                                          │
//!  ▼                                                               ▼
//! Closed ◀──────────────────────────────────────────────────────────┘
//!        ◀── close_with(reply) from any state (no UPDATE happens)
//! ```
//!
//! Implementation notes:
//! - One loop, [`Server::next`], consumes buffered input in order. A
//!   decision event (`Login`, `Retrieve`, `Update`) stops it until the
//!   driver answers, so pipelined commands (RFC 2449 §6.6) see the effect
//!   of every earlier command and replies leave in order.
//! - The TRANSACTION state works on a snapshot of the maildrop taken at
//!   login: message numbers, sizes and unique ids never change during the
//!   session (RFC 1939 §5), and DELE only marks; the driver removes the
//!   marked messages in the UPDATE state (RFC 1939 §6). A message that
//!   vanished meanwhile is the driver's to report with
//!   [`Server::message_unavailable`].
//! - Input is bounded whatever the client sends: [`Server::feed`] keeps at
//!   most the longest allowed line of a line that has no end yet, and a
//!   line over the limit is answered and then skipped up to its LF.
//! - A line ends in CRLF (RFC 1939 §3). A bare LF is accepted as a line
//!   end too: unlike SMTP, nothing is relayed, so there is no smuggling
//!   to fear and some clients send it. A CR inside a line is refused.

#[cfg(test)]
mod tests;

use std::mem;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailroom_types::Secret;
use memchr::{memchr, memrchr};

use crate::command::{self, Verb};
use crate::content;
use crate::reply::Reply;
use crate::reply::fixed::*;

/// The output capacity [`Server::clear_output`] keeps between replies.
pub const KEEP_OUTPUT_CAPACITY: usize = 1 << 20;

/// The protocol limits the server enforces; the driver takes them from
/// configuration so that every buffer stays bounded (style guide §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line in octets, CRLF included; RFC 2449 §4 fixes
    /// 255.
    pub max_command_line: usize,
    /// Longest AUTH continuation response in octets, CRLF included. It is
    /// longer than a command line because RFC 5034 §4 sends long initial
    /// responses this way.
    pub max_sasl_line: usize,
}

impl Default for Limits {
    /// 255 octets per command (RFC 2449 §4) and 8192 per SASL response.
    fn default() -> Limits {
        Limits { max_command_line: 255, max_sasl_line: 8192 }
    }
}

/// What a server needs to know about itself and its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name in the greeting.
    pub hostname: String,
    /// The limits to enforce.
    pub limits: Limits,
    /// Whether USER/PASS and AUTH PLAIN may be used. The driver sets it
    /// once the connection is protected by TLS, or on loopback; while it is
    /// false those commands are refused and not advertised, so that no
    /// password crosses the network in the clear (RFC 1939 §13).
    pub allow_plaintext: bool,
    /// Whether STLS is offered (RFC 2595 §4): the driver can run a TLS
    /// handshake and the connection is not protected yet.
    pub stls_available: bool,
}

/// One message of the maildrop snapshot the driver hands over at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropEntry {
    /// The exact number of octets RETR will send, before byte-stuffing
    /// (RFC 1939 §5: STAT and LIST report these).
    pub size: u64,
    /// The unique id UIDL reports (RFC 1939 §7): 1 to 70 characters from
    /// 0x21 to 0x7E, stable across sessions. Other characters are sent as
    /// `_` so that a bad id cannot break the protocol stream.
    pub uidl: String,
}

/// What the driver must do next; returned by [`Server::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// All buffered input is used up: flush [`Server::take_output`], read
    /// more and pass it to [`Server::feed`].
    NeedInput,
    /// The client presented credentials, with USER and PASS (RFC 1939 §7)
    /// or AUTH PLAIN (RFC 5034, RFC 4616). Check them and lock the
    /// maildrop, then answer with [`Server::accept_login`] and the
    /// snapshot, or [`Server::reject_login`].
    Login {
        /// The user name (the PLAIN authentication identity).
        user: String,
        /// The password, redacted in `Debug`.
        password: Secret<String>,
    },
    /// The client asked for a message (RETR) or its start (TOP). Answer
    /// with [`Server::message`] and the full content (the server cuts it
    /// for TOP), or [`Server::message_unavailable`].
    Retrieve {
        /// The 1-based message number in the snapshot; it exists and is not
        /// marked as deleted.
        msg: usize,
        /// For TOP, how many body lines to send after the headers
        /// (RFC 1939 §7).
        top_lines: Option<u64>,
    },
    /// QUIT in the TRANSACTION state: enter the UPDATE state (RFC 1939 §6).
    /// Remove the marked messages (all or none), then answer with
    /// [`Server::update_done`] or [`Server::update_failed`]. Sent even when
    /// nothing is marked, so the driver can release the maildrop lock.
    Update {
        /// The 1-based numbers of the messages marked by DELE, ascending.
        deleted: Vec<usize>,
    },
    /// STLS was accepted and its `+OK` is in the output: write it, run
    /// the TLS handshake, then call [`Server::tls_started`]. Anything the
    /// client sent after STLS was dropped (RFC 2595 §4; the CVE-2011-0411
    /// class of command injection).
    StartTls,
    /// The session is over (QUIT answered, or [`Server::close_with`]):
    /// flush the output and close the connection. Every later call of
    /// [`Server::next`] returns this again.
    Close,
}

/// The sans-IO POP3 server for one connection.
///
/// Use: call [`Server::next`] in a loop and act on each [`Event`]; write
/// [`Server::take_output`] at least before each read, before closing, and
/// whenever [`Server::output_len`] grows large (a RETR appends a whole
/// message).
///
/// ```
/// use mailroom_pop3_proto::{Event, Limits, MaildropEntry, Server, ServerConfig};
///
/// let config = ServerConfig {
///     hostname: "pop.test".into(),
///     limits: Limits::default(),
///     allow_plaintext: true,
///     stls_available: false,
/// };
/// let mut server = Server::new(config);
/// server.feed(b"USER alice\r\nPASS secret\r\nRETR 1\r\nQUIT\r\n");
/// let mut wire = Vec::new();
/// loop {
///     match server.next() {
///         Event::Login { user, password } => {
///             assert_eq!((user.as_str(), password.expose().as_str()), ("alice", "secret"));
///             server.accept_login(vec![MaildropEntry { size: 7, uidl: "a1".into() }]);
///         }
///         Event::Retrieve { msg: 1, top_lines: None } => server.message(b"Hi\r\n.\r\n"),
///         Event::Update { deleted } => server.update_done(deleted.len()),
///         Event::NeedInput | Event::Close => break,
///         other => unreachable!("{other:?}"),
///     }
/// }
/// wire.extend(server.take_output());
/// assert!(wire.ends_with(b"+OK 7 octets\r\nHi\r\n..\r\n.\r\n+OK Logging out, 0 messages deleted.\r\n"));
/// ```
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    /// Unprocessed input starts at `input[pos]`; the consumed prefix is
    /// dropped on the next feed, so a long pipelined burst costs linear
    /// time.
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    state: State,
    /// A decision event waiting for the driver.
    pending: Option<Pending>,
    /// `next` is skipping the rest of an over-long line up to its LF.
    discarding: bool,
    /// `feed` truncated the unfinished last line of the input because it
    /// is already over every limit; the rest of it up to its LF is dropped
    /// as it arrives.
    truncating: bool,
}

/// The session state (RFC 1939 §3).
#[derive(Debug)]
enum State {
    /// Not logged in; `user` is the name from a USER command, waiting for
    /// PASS.
    Authorization { user: Option<String> },
    /// Still AUTHORIZATION: AUTH PLAIN sent its `+ ` continuation and the
    /// next line is the client's base64 response (RFC 5034 §4).
    AuthPlain,
    /// Logged in, working on the snapshot.
    Transaction(Maildrop),
    /// QUIT was given in TRANSACTION; the driver is removing messages.
    Update,
    /// Nothing more is read.
    Closed,
}

/// A decision the driver owes us.
#[derive(Debug)]
enum Pending {
    Login { user: String, password: Secret<String> },
    Retrieve { msg: usize, top_lines: Option<u64> },
    Update { deleted: Vec<usize> },
    StartTls,
}

impl Pending {
    fn event(&self) -> Event {
        match self {
            Pending::Login { user, password } => Event::Login { user: user.clone(), password: password.clone() },
            Pending::Retrieve { msg, top_lines } => Event::Retrieve { msg: *msg, top_lines: *top_lines },
            Pending::Update { deleted } => Event::Update { deleted: deleted.clone() },
            Pending::StartTls => Event::StartTls,
        }
    }
}

/// The snapshot of the maildrop and the deletion marks (RFC 1939 §5).
#[derive(Debug)]
struct Maildrop {
    entries: Vec<MaildropEntry>,
    deleted: Vec<bool>,
    /// Messages not marked as deleted, and their total size.
    count: usize,
    octets: u64,
}

impl Maildrop {
    fn new(entries: Vec<MaildropEntry>) -> Maildrop {
        let deleted = vec![false; entries.len()];
        let mut maildrop = Maildrop { entries, deleted, count: 0, octets: 0 };
        maildrop.reset();
        maildrop
    }

    /// RFC 1939 §5: a message number must exist and must not refer to a
    /// message marked as deleted.
    fn visible(&self, msg: usize) -> Result<&MaildropEntry, Reply> {
        let i = msg.checked_sub(1).ok_or_else(err_no_such_message)?;
        let entry = self.entries.get(i).ok_or_else(err_no_such_message)?;
        // `deleted` always has one mark per entry, so `i` is in range.
        if self.deleted[i] { Err(err_message_deleted()) } else { Ok(entry) }
    }

    /// Marks a message that [`Maildrop::visible`] accepted.
    fn mark_deleted(&mut self, msg: usize) {
        let i = msg - 1;
        if !mem::replace(&mut self.deleted[i], true) {
            self.count -= 1;
            self.octets -= self.entries[i].size;
        }
    }

    /// RFC 1939 §5 RSET: unmark every message.
    fn reset(&mut self) {
        self.deleted.fill(false);
        self.count = self.entries.len();
        self.octets = self.entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size));
    }

    /// The visible messages as (1-based number, entry).
    fn iter(&self) -> impl Iterator<Item = (usize, &MaildropEntry)> {
        self.entries.iter().enumerate().filter(|&(i, _)| !self.deleted[i]).map(|(i, e)| (i + 1, e))
    }

    fn deleted_numbers(&self) -> Vec<usize> {
        self.deleted.iter().enumerate().filter(|&(_, d)| *d).map(|(i, _)| i + 1).collect()
    }
}

impl Server {
    /// A server for a new connection, with the greeting already queued
    /// (RFC 1939 §4).
    pub fn new(config: ServerConfig) -> Server {
        let output = ok_greeting(&config.hostname).to_bytes();
        Server {
            config,
            input: Vec::new(),
            pos: 0,
            output,
            state: State::Authorization { user: None },
            pending: None,
            discarding: false,
            truncating: false,
        }
    }

    /// Adds bytes read from the client. Call it after [`Event::NeedInput`];
    /// bytes fed after the connection closed are ignored.
    ///
    /// Complete lines are kept for [`Server::next`]; of an unfinished line
    /// at most the longest allowed line is kept, so the buffer stays
    /// bounded even if one call brings megabytes without a line end.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        // Any line longer than `cap` is over the limit of every mode, so
        // keeping its first `cap` octets and its LF is enough for `next`
        // to answer it exactly as if it were kept whole.
        let cap = self.config.limits.max_command_line.max(self.config.limits.max_sasl_line);
        let mut tail = self.input.len() - memrchr(b'\n', &self.input).map_or(0, |lf| lf + 1);
        while !bytes.is_empty() {
            if self.truncating {
                let Some(lf) = memchr(b'\n', bytes) else { return };
                self.input.push(b'\n');
                self.truncating = false;
                tail = 0;
                bytes = &bytes[lf + 1..];
                continue;
            }
            let room = cap.saturating_sub(tail);
            match memchr(b'\n', bytes) {
                Some(lf) if lf <= room => {
                    self.input.extend_from_slice(&bytes[..=lf]);
                    tail = 0;
                    bytes = &bytes[lf + 1..];
                }
                None if bytes.len() <= room => {
                    self.input.extend_from_slice(bytes);
                    return;
                }
                _ => {
                    self.input.extend_from_slice(&bytes[..room]);
                    self.truncating = true;
                    tail = cap;
                    bytes = &bytes[room..];
                }
            }
        }
    }

    /// Runs until something needs the driver and says what.
    ///
    /// Calling it again while a decision (`Login`, `Retrieve`, `Update`) is
    /// unanswered is a driver bug; it is harmless: the same event is
    /// returned again and no input is processed.
    #[expect(
        clippy::should_implement_trait,
        reason = "not an iterator: it never ends and the driver must act between calls (style guide §3 names it next)"
    )]
    pub fn next(&mut self) -> Event {
        loop {
            if let Some(pending) = &self.pending {
                return pending.event();
            }
            if matches!(self.state, State::Closed) {
                return Event::Close;
            }
            let step = if self.discarding { self.discard_line() } else { self.line_step() };
            if let Some(event) = step {
                return event;
            }
        }
    }

    /// Takes the bytes to send to the client (possibly none).
    pub fn take_output(&mut self) -> Vec<u8> {
        mem::take(&mut self.output)
    }

    /// The bytes waiting to be sent; pair with [`Server::clear_output`] to
    /// write them without giving up the buffer.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Forgets the output once written, keeping the buffer for the next
    /// reply: streaming a mailbox then reuses warm memory instead of
    /// faulting in a fresh buffer per message. Capacity above
    /// [`KEEP_OUTPUT_CAPACITY`] is released, so one large message does not
    /// pin memory for the rest of a session.
    pub fn clear_output(&mut self) {
        self.output.clear();
        if self.output.capacity() > KEEP_OUTPUT_CAPACITY {
            self.output.shrink_to(KEEP_OUTPUT_CAPACITY);
        }
    }

    /// How many octets wait in the output, so that a driver can flush
    /// before it grows large.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Answers `Login`: the credentials are good and the maildrop is
    /// locked; `maildrop` is the snapshot the session works on, message 1
    /// first. Enters the TRANSACTION state (RFC 1939 §4). Without that
    /// decision pending it does nothing (and asserts in debug builds).
    pub fn accept_login(&mut self, maildrop: Vec<MaildropEntry>) {
        match self.pending.take() {
            Some(Pending::Login { .. }) => {
                let maildrop = Maildrop::new(maildrop);
                self.reply(ok_logged_in(maildrop.count, maildrop.octets));
                self.state = State::Transaction(maildrop);
            }
            other => self.misuse(other, "accept_login"),
        }
    }

    /// Answers `StartTls`: the handshake succeeded. Passwords may now be
    /// sent, STLS is no longer offered, and the session starts over in
    /// the AUTHORIZATION state with nothing read before the handshake.
    pub fn tls_started(&mut self) {
        match self.pending.take() {
            Some(Pending::StartTls) => {
                self.config.allow_plaintext = true;
                self.config.stls_available = false;
                self.state = State::Authorization { user: None };
                self.input.clear();
                self.pos = 0;
                self.discarding = false;
            }
            other => self.misuse(other, "tls_started"),
        }
    }

    /// Answers `Login` with a refusal, e.g.
    /// `Reply::err(Some(Code::Auth), "Authentication failed.")`,
    /// `Code::InUse` when the maildrop is locked (RFC 2449 §8.1) or
    /// `Code::SysTemp`. The session stays in the AUTHORIZATION state, and
    /// a new USER is needed before PASS. Without that decision pending it
    /// does nothing (and asserts in debug builds).
    pub fn reject_login(&mut self, reply: Reply) {
        match self.pending.take() {
            Some(Pending::Login { .. }) => self.reply(reply),
            other => self.misuse(other, "reject_login"),
        }
    }

    /// Answers `Retrieve` with the whole message content: sends
    /// `+OK n octets`, then the content (for TOP only the header section
    /// and the first lines of the body), byte-stuffed, then `.` CRLF
    /// (RFC 1939 §3). `n` counts the octets the client gets after undoing
    /// the stuffing; for RETR it is the snapshot size when the driver gave
    /// exact sizes. Without that decision pending it does nothing (and
    /// asserts in debug builds).
    pub fn message(&mut self, content: &[u8]) {
        match self.pending.take() {
            Some(Pending::Retrieve { top_lines, .. }) => {
                let content = match top_lines {
                    Some(lines) => content::top(content, lines),
                    None => content,
                };
                self.reply(ok_octets(content::unstuffed_len(content)));
                content::write_stuffed(&mut self.output, content);
            }
            other => self.misuse(other, "message"),
        }
    }

    /// Answers `Retrieve` when the message is gone from the store (another
    /// session removed it after the snapshot). Without that decision
    /// pending it does nothing (and asserts in debug builds).
    pub fn message_unavailable(&mut self) {
        match self.pending.take() {
            Some(Pending::Retrieve { msg, .. }) => self.reply(err_message_gone(msg)),
            other => self.misuse(other, "message_unavailable"),
        }
    }

    /// Answers `Update`: `removed` messages were deleted (RFC 1939 §6).
    /// The session then closes. Without that decision pending it does
    /// nothing (and asserts in debug builds).
    pub fn update_done(&mut self, removed: usize) {
        match self.pending.take() {
            Some(Pending::Update { .. }) => {
                self.reply(ok_logging_out_deleted(removed));
                self.close();
            }
            other => self.misuse(other, "update_done"),
        }
    }

    /// Answers `Update` when removing failed and nothing was removed
    /// (RFC 1939 §6: "-ERR some deleted messages not removed"). The
    /// session then closes. Without that decision pending it does nothing
    /// (and asserts in debug builds).
    pub fn update_failed(&mut self) {
        match self.pending.take() {
            Some(Pending::Update { .. }) => {
                self.reply(err_update_failed());
                self.close();
            }
            other => self.misuse(other, "update_failed"),
        }
    }

    /// Queues `reply` and closes: the next event is [`Event::Close`]. For
    /// an idle timeout (`-ERR Disconnected for inactivity.`) or a shutdown
    /// (`-ERR [SYS/TEMP] Server shutting down.`). No UPDATE happens
    /// (RFC 1939 §6: only QUIT enters it); any pending decision is
    /// dropped.
    pub fn close_with(&mut self, reply: Reply) {
        self.reply(reply);
        self.close();
    }

    /// True once logged in (TRANSACTION or UPDATE state).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Transaction(_) | State::Update)
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// How many unprocessed input octets are buffered: the complete lines
    /// of the last feed plus at most one line's limit, whatever the client
    /// sends.
    pub fn buffered_len(&self) -> usize {
        self.input.len() - self.pos
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
    }

    fn close(&mut self) {
        self.pending = None;
        self.input = Vec::new();
        self.pos = 0;
        self.discarding = false;
        self.truncating = false;
        self.state = State::Closed;
    }

    fn misuse(&mut self, pending: Option<Pending>, call: &str) {
        debug_assert!(false, "{call}() does not answer {pending:?}");
        self.pending = pending;
    }

    /// Skips the rest of an over-long line without buffering it.
    fn discard_line(&mut self) -> Option<Event> {
        match memchr(b'\n', &self.input[self.pos..]) {
            Some(lf) => {
                self.pos += lf + 1;
                self.discarding = false;
                None
            }
            None => {
                self.input.clear();
                self.pos = 0;
                Some(Event::NeedInput)
            }
        }
    }

    /// Takes one line off the input and handles it.
    fn line_step(&mut self) -> Option<Event> {
        let pending = &self.input[self.pos..];
        if pending.is_empty() {
            return Some(Event::NeedInput);
        }
        let max = match self.state {
            State::AuthPlain => self.config.limits.max_sasl_line,
            _ => self.config.limits.max_command_line,
        };
        let Some(lf) = memchr(b'\n', &pending[..pending.len().min(max)]) else {
            if pending.len() < max {
                return Some(Event::NeedInput);
            }
            // RFC 2449 §4: a command line is at most 255 octets with CRLF;
            // no LF in the first `max` octets means it is longer.
            self.discarding = true;
            self.abort_auth();
            self.reply(err_line_too_long());
            return None;
        };
        let line = pending[..lf].to_vec();
        self.pos += lf + 1;
        self.handle_line(&line);
        None
    }

    /// Ends an AUTH exchange that a bad response line interrupted.
    fn abort_auth(&mut self) {
        if matches!(self.state, State::AuthPlain) {
            self.state = State::Authorization { user: None };
        }
    }

    /// Handles one complete line, without its LF.
    fn handle_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // RFC 1939 §3: lines end in CRLF; a CR elsewhere is refused.
        if memchr(b'\r', line).is_some() {
            self.abort_auth();
            return self.reply(err_invalid_line());
        }
        let result = match self.state {
            State::AuthPlain => self.auth_response(line),
            _ => command::split(line).and_then(|(verb, rest)| self.command(verb, rest)),
        };
        if let Err(reply) = result {
            self.reply(reply);
        }
    }

    /// Runs one command; an `Err` is the refusal to send.
    fn command(&mut self, verb: Verb, rest: &str) -> Result<(), Reply> {
        match (&self.state, verb) {
            (_, Verb::Capa) => {
                command::none(rest)?;
                self.capabilities();
            }
            (State::Authorization { .. }, Verb::Quit) => {
                command::none(rest)?;
                self.reply(ok_logging_out());
                self.close();
            }
            (State::Authorization { .. }, Verb::Stls) => {
                command::none(rest)?;
                if !self.config.stls_available {
                    return Err(err_stls_unavailable());
                }
                self.reply(ok_begin_tls());
                // Nothing sent before the handshake may count after it.
                self.input.clear();
                self.pos = 0;
                self.pending = Some(Pending::StartTls);
            }
            (State::Authorization { .. }, v) if v.is_login() => self.login(v, rest)?,
            (State::Authorization { .. }, _) => return Err(err_not_logged_in()),
            (State::Transaction(_), v) if v.is_login() => return Err(err_already_logged_in()),
            (State::Transaction(_), _) => self.transaction(verb, rest)?,
            // No lines are read in these states: the driver owes an answer
            // (Update) or the session is over.
            (State::AuthPlain | State::Update | State::Closed, _) => {}
        }
        Ok(())
    }

    /// RFC 2449 §5: the capabilities of the current state.
    fn capabilities(&mut self) {
        let mut lines = vec!["TOP", "UIDL"];
        // RFC 2449 §6.2, §6.3: only what may be used now is announced.
        if matches!(self.state, State::Authorization { .. }) && self.config.allow_plaintext {
            lines.extend(["USER", "SASL PLAIN"]);
        }
        if matches!(self.state, State::Authorization { .. }) && self.config.stls_available {
            lines.push("STLS");
        }
        lines.extend(["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Mailroom"]);
        self.reply(ok_capabilities());
        self.list_lines(lines.into_iter().map(String::from));
    }

    /// Writes the lines of a multi-line response and its terminator,
    /// byte-stuffed (RFC 1939 §3).
    fn list_lines(&mut self, lines: impl Iterator<Item = String>) {
        for line in lines {
            if line.starts_with('.') {
                self.output.push(b'.');
            }
            self.output.extend_from_slice(line.as_bytes());
            self.output.extend_from_slice(b"\r\n");
        }
        self.output.extend_from_slice(b".\r\n");
    }

    /// USER, PASS and AUTH in the AUTHORIZATION state.
    fn login(&mut self, verb: Verb, rest: &str) -> Result<(), Reply> {
        let mechanisms = command::auth(rest);
        let other_mechanism = matches!(&mechanisms, Ok(Some((m, _))) if !m.eq_ignore_ascii_case("PLAIN"));
        // Everything here but an unknown AUTH mechanism would carry a
        // password in the clear (RFC 1939 §13).
        let sends_password = verb != Verb::Auth || !other_mechanism;
        if sends_password && !self.config.allow_plaintext {
            return Err(err_plaintext_disallowed());
        }
        let user = match &mut self.state {
            State::Authorization { user } => user,
            _ => return Ok(()),
        };
        match verb {
            Verb::User => {
                // RFC 1939 §7: +OK whether or not the mailbox exists, so
                // USER cannot be used to find valid names.
                *user = Some(command::user(rest)?);
                self.reply(ok());
            }
            Verb::Pass => {
                let password = command::pass(rest)?;
                let user = user.take().ok_or_else(err_no_username)?;
                self.pending = Some(Pending::Login { user, password });
            }
            _ => {
                *user = None;
                match mechanisms? {
                    // Lists the mechanisms, as RFC 1734 servers do.
                    None => {
                        self.reply(ok());
                        self.list_lines(["PLAIN".to_string()].into_iter());
                    }
                    Some((_, _)) if other_mechanism => return Err(err_unsupported_mechanism()),
                    // RFC 5034 §4: "=" is an empty initial response.
                    Some((_, Some(initial))) => self.auth_plain(initial)?,
                    Some((_, None)) => {
                        // RFC 5034 §4: an empty challenge is "+ " CRLF.
                        self.output.extend_from_slice(b"+ \r\n");
                        self.state = State::AuthPlain;
                    }
                }
            }
        }
        Ok(())
    }

    /// The line after AUTH PLAIN's continuation (RFC 5034 §4).
    fn auth_response(&mut self, line: &[u8]) -> Result<(), Reply> {
        self.state = State::Authorization { user: None };
        if line == b"*" {
            return Err(err_auth_aborted());
        }
        let line = std::str::from_utf8(line).map_err(|_| err_auth_invalid_data())?;
        self.auth_plain(line)
    }

    /// Decodes a PLAIN response `[authzid] NUL authcid NUL passwd`
    /// (RFC 4616 §2) into a `Login` decision.
    fn auth_plain(&mut self, response: &str) -> Result<(), Reply> {
        let decoded = match response {
            "=" => Vec::new(),
            b64 => BASE64.decode(b64).map_err(|_| err_auth_invalid_data())?,
        };
        let message = String::from_utf8(decoded).map_err(|_| err_auth_invalid_data())?;
        let mut parts = message.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err_auth_invalid_data());
        };
        // RFC 4616 §2: authcid and passwd are at least one character.
        if authcid.is_empty() || password.is_empty() {
            return Err(err_auth_invalid_data());
        }
        // RFC 4616 §2: acting as another identity is for the server to
        // allow; we never do, except for the identity itself.
        if !authzid.is_empty() && authzid != authcid {
            return Err(err_authzid_unsupported());
        }
        let user = authcid.to_string();
        self.pending = Some(Pending::Login { user, password: Secret::new(password.to_string()) });
        Ok(())
    }

    /// The commands of the TRANSACTION state (RFC 1939 §5, TOP and UIDL
    /// from §7).
    fn transaction(&mut self, verb: Verb, rest: &str) -> Result<(), Reply> {
        let State::Transaction(maildrop) = &mut self.state else { return Ok(()) };
        let out = &mut self.output;
        match verb {
            Verb::Stat => {
                command::none(rest)?;
                ok_stat(maildrop.count, maildrop.octets).write_to(out);
            }
            Verb::List => match command::optional_msg(rest)? {
                Some(msg) => ok_scan(msg, maildrop.visible(msg)?.size).write_to(out),
                None => {
                    let lines: Vec<_> = maildrop.iter().map(|(n, e)| format!("{n} {}", e.size)).collect();
                    let first = ok_summary(maildrop.count, maildrop.octets);
                    self.reply(first);
                    self.list_lines(lines.into_iter());
                }
            },
            Verb::Uidl => match command::optional_msg(rest)? {
                Some(msg) => ok_unique_id(msg, &unique_id(&maildrop.visible(msg)?.uidl)).write_to(out),
                None => {
                    let lines: Vec<_> = maildrop.iter().map(|(n, e)| format!("{n} {}", unique_id(&e.uidl))).collect();
                    self.reply(ok());
                    self.list_lines(lines.into_iter());
                }
            },
            Verb::Retr => {
                let msg = command::msg(rest)?;
                maildrop.visible(msg)?;
                self.pending = Some(Pending::Retrieve { msg, top_lines: None });
            }
            Verb::Top => {
                let (msg, lines) = command::top(rest)?;
                maildrop.visible(msg)?;
                self.pending = Some(Pending::Retrieve { msg, top_lines: Some(lines) });
            }
            Verb::Dele => {
                let msg = command::msg(rest)?;
                maildrop.visible(msg)?;
                maildrop.mark_deleted(msg);
                ok_marked_deleted().write_to(out);
            }
            Verb::Noop => {
                command::none(rest)?;
                ok().write_to(out);
            }
            Verb::Rset => {
                command::none(rest)?;
                maildrop.reset();
                ok_summary(maildrop.count, maildrop.octets).write_to(out);
            }
            Verb::Quit => {
                command::none(rest)?;
                // RFC 1939 §6: QUIT from TRANSACTION enters UPDATE.
                let deleted = maildrop.deleted_numbers();
                self.state = State::Update;
                self.pending = Some(Pending::Update { deleted });
            }
            Verb::Auth | Verb::Capa | Verb::Pass | Verb::User => {}
            // RFC 2595 §4: only in the AUTHORIZATION state.
            Verb::Stls => return Err(err_already_logged_in()),
        }
        Ok(())
    }
}

/// A unique id as sent: RFC 1939 §7 allows only 0x21 to 0x7E.
fn unique_id(uidl: &str) -> String {
    uidl.chars().map(|c| if ('\x21'..='\x7e').contains(&c) { c } else { '_' }).collect()
}
