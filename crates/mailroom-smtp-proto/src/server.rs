//! The SMTP server state machine (RFC 5321 §4.1.4 command order, §4.5.3
//! limits, RFC 2920 pipelining, RFC 3030 chunking, RFC 4954 AUTH).
//!
//! ```text
//!            HELO/EHLO           MAIL (accepted)        RCPT (accepted)
//! Connected ───────────▶ Greeted ──────────────▶ Mail ──────────────▶ Rcpt
//!                          ▲  ▲                                        │ DATA / BDAT
//!                          │  └──── RSET, HELO, EHLO (any state) ──────┤ (DataStart accepted)
//!                          │                                           ▼
//!                          └──── complete() / MessageAborted ───── Content
//! QUIT or 421 from any state ──▶ Closed
//!
//!          AUTH (after EHLO, outside a transaction, once)
//! Greeted ────────────────────────────────────────────▶ SASL exchange
//!    ▲                                                  (334 challenge ⇄ response line)
//!    │                                                        │
//!    └─ Auth accepted (235: authenticated) or rejected, ──────┘
//!       `*` (501), bad base64 or credentials (501), line too long (500)
//! ```
//!
//! Authentication outlives RSET, HELO and EHLO (as in Postfix); only
//! STARTTLS's reset ([`Server::tls_started`]) forgets it. Where
//! [`ServerConfig::auth_required`] is set, MAIL needs it first.
//!
//! Implementation notes:
//! - One loop, [`Server::next`], consumes buffered input in order. A
//!   decision event (`Mail`, `Rcpt`, `DataStart`, `MessageEnd`, `Auth`)
//!   stops it until the driver answers, so pipelined commands (RFC 2920
//!   §3) see the effect of every earlier command and replies leave in
//!   order. Lines after an AUTH command are its SASL responses until the
//!   exchange ends; what follows is read as commands again.
//! - Input is buffered only up to one command line (or one SASL response
//!   line, RFC 4954 §4: 12288 octets): a longer line is answered at once
//!   and the rest of it discarded as it arrives, and message content is
//!   passed on (or dropped) as it is read.
//! - Only CRLF ends a command line or a content line (RFC 5321 §2.3.8);
//!   see the `content` module for why this defeats SMTP smuggling.
//! - The server sends no enhanced code on the greeting, the HELO and EHLO
//!   replies and the 354 and 334 intermediate replies (RFC 2034 §4 covers
//!   completion replies; the greeting precedes EHLO), and one on every
//!   other reply.

mod content;
#[cfg(test)]
mod tests;

use std::mem;

use mailroom_types::Secret;

use crate::command::{Body, Command, ForwardPath, MailParams, RcptParams, ReversePath};
use crate::reply::Reply;
use crate::reply::fixed::*;
use crate::sasl::{Mechanism, SaslError, decode_base64, parse_plain};
use content::{BdatCheck, DataReader, Tally};

/// The longest SASL response line, CRLF excluded (RFC 4954 §4: "12288
/// octets"; a PLAIN response for any sane credentials is far shorter).
const MAX_SASL_LINE: usize = 12288;

/// The protocol limits the server enforces; the driver takes them from
/// configuration so that every buffer stays bounded (style guide §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line in octets, CRLF included (RFC 5321 §4.5.3.1.4).
    pub max_command_line: usize,
    /// Longest message line in octets, CRLF included (RFC 5321 §4.5.3.1.6).
    pub max_text_line: usize,
    /// Largest message in octets, after dot-unstuffing; advertised with
    /// SIZE (RFC 1870 §4).
    pub max_message_size: u64,
    /// Most recipients per transaction; RFC 5321 §4.5.3.1.8 asks that at
    /// least 100 be accepted.
    pub max_recipients: usize,
}

impl Default for Limits {
    /// The RFC minimums, and 25 MiB per message.
    fn default() -> Limits {
        Limits { max_command_line: 512, max_text_line: 1000, max_message_size: 25 * 1024 * 1024, max_recipients: 100 }
    }
}

/// What a server needs to know about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name in the greeting and in HELO/EHLO replies (RFC 5321 §4.3.1).
    pub hostname: String,
    /// The limits to enforce.
    pub limits: Limits,
    /// Whether STARTTLS is offered (RFC 3207): the driver can run a TLS
    /// handshake and the connection is not protected yet.
    pub starttls_available: bool,
    /// Whether AUTH (RFC 4954) may be used now: it is advertised in the
    /// EHLO reply and the command is accepted. The driver sets it when the
    /// connection is protected (TLS, or loopback), since PLAIN and LOGIN
    /// send the password itself; after STARTTLS it calls
    /// [`Server::set_auth_available`].
    pub auth_available: bool,
    /// Whether this is a submission listener (RFC 6409 §4.3): MAIL before a
    /// successful AUTH is refused with 530, and AUTH that is not available
    /// yet is answered 538 (TLS first) rather than 503.
    pub auth_required: bool,
}

/// What the driver must do next; returned by [`Server::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// All buffered input is used up: flush [`Server::take_output`], read
    /// more and pass it to [`Server::feed`].
    NeedInput,
    /// A MAIL command passed every protocol check; policy decides. Answer
    /// with [`Server::accept`] or [`Server::reject`]; a rejected MAIL starts
    /// no transaction.
    Mail {
        /// The sender.
        reverse_path: ReversePath,
        /// Its parameters, already checked against the limits.
        params: MailParams,
    },
    /// A RCPT command passed every protocol check; policy decides. Answer
    /// with [`Server::accept`] or [`Server::reject`]; a rejected recipient
    /// is not counted.
    Rcpt {
        /// The recipient.
        forward_path: ForwardPath,
        /// Its parameters.
        params: RcptParams,
    },
    /// DATA, or the first BDAT chunk of a transaction: the driver prepares
    /// a sink for the message. Answer with [`Server::accept`] or
    /// [`Server::reject`] (which resets the transaction; a BDAT chunk's
    /// octets are still read and discarded).
    DataStart,
    /// Message octets for the sink: dot-unstuffed, lines ending in CRLF.
    /// Sent only while the message is still acceptable; it is final only
    /// after [`Event::MessageEnd`].
    Data(Vec<u8>),
    /// The message is complete and acceptable: store it, then answer with
    /// [`Server::complete`] (250 when stored, 451 or 554 when not). The
    /// transaction then ends.
    MessageEnd,
    /// The message in progress was refused (too big, bare CR or LF, line
    /// too long) or dropped (RSET, HELO, EHLO or QUIT between BDAT chunks).
    /// The server has already queued any reply due; discard the sink. No
    /// answer is expected.
    MessageAborted,
    /// STARTTLS was accepted and its 220 is in the output: write it, run
    /// the TLS handshake, then call [`Server::tls_started`]. Whatever the
    /// client sent after STARTTLS was dropped (RFC 3207 §4.2; the
    /// CVE-2011-0411 class of command injection).
    StartTls,
    /// An AUTH exchange (RFC 4954) completed with well-formed credentials;
    /// the server does not check passwords, the driver does (through the
    /// account store, with its throttling). Answer with [`Server::accept`]
    /// (235; the session is then authenticated as `username`, see
    /// [`Server::authenticated`]) or [`Server::reject`] (normally
    /// `535 5.7.8`; the session stays unauthenticated and the client may
    /// try again).
    Auth {
        /// The mechanism the client used.
        mechanism: Mechanism,
        /// The identity to act as (RFC 4616 §2 authzid); empty when the
        /// client asked for none, always empty for LOGIN. It is the
        /// driver's to refuse unless empty or equal to `username`.
        authzid: String,
        /// The authentication identity (RFC 4616 §2 authcid): the login.
        username: String,
        /// The password, redacted in `Debug` so no log can show it.
        password: Secret<String>,
    },
    /// QUIT was answered or a 421 was sent: flush the output and close the
    /// connection. Every later call of [`Server::next`] returns this again.
    Close,
}

/// The sans-IO SMTP server for one connection.
///
/// Use: call [`Server::next`] in a loop and act on each [`Event`]; write
/// [`Server::take_output`] at least before each read and before closing.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    input: Vec<u8>,
    output: Vec<u8>,
    mode: Mode,
    /// A decision event waiting for accept/reject/complete.
    pending: Option<Pending>,
    /// A `MessageAborted` event to return before anything else.
    aborted: bool,
    helo: Option<String>,
    extended: bool,
    transaction: Option<Transaction>,
    /// The user name of a successful AUTH.
    authenticated: Option<String>,
    shutting_down: bool,
}

/// What the input currently is.
#[derive(Debug)]
enum Mode {
    /// Command lines; `discarding` while skipping the rest of a line that
    /// was too long.
    Command { discarding: bool },
    /// DATA content up to `<CRLF>.<CRLF>`.
    Data(DataReader),
    /// The octets of one BDAT chunk.
    Bdat(Chunk),
    /// SASL response lines of an AUTH exchange (RFC 4954 §4).
    Auth(Sasl),
    /// Nothing more is read.
    Closed,
}

/// One BDAT chunk being read.
#[derive(Debug)]
struct Chunk {
    size: u64,
    remaining: u64,
    last: bool,
    /// When set the chunk is refused: its octets are read and discarded,
    /// then this reply is sent (RFC 3030 §2: the octets are always consumed
    /// so that they are never taken for commands).
    refusal: Option<Reply>,
}

impl Chunk {
    fn new(size: u64, last: bool, refusal: Option<Reply>) -> Chunk {
        Chunk { size, remaining: size, last, refusal }
    }
}

/// What an AUTH exchange waits for: the client's next response line.
#[derive(Debug)]
enum Sasl {
    /// PLAIN's one message (RFC 4616 §2).
    Plain,
    /// LOGIN's user name.
    LoginUsername,
    /// LOGIN's password.
    LoginPassword { username: String },
}

impl Sasl {
    /// The challenge that asks for this response: empty for PLAIN, the
    /// base64 of `Username:` and `Password:` for LOGIN.
    fn challenge(&self) -> &'static str {
        match self {
            Sasl::Plain => "",
            Sasl::LoginUsername => "VXNlcm5hbWU6",
            Sasl::LoginPassword { .. } => "UGFzc3dvcmQ6",
        }
    }
}

/// Where one SASL response leads.
enum SaslStep {
    /// Another challenge, then this response.
    Next(Sasl),
    /// The credentials are complete: the driver decides.
    Decide(Pending),
}

/// A decision the driver owes us.
#[derive(Debug)]
enum Pending {
    Mail(ReversePath, MailParams),
    Rcpt(ForwardPath, RcptParams),
    DataStart(ContentKind),
    MessageEnd,
    StartTls,
    Auth { mechanism: Mechanism, authzid: String, username: String, password: Secret<String> },
}

impl Pending {
    fn event(&self) -> Event {
        match self {
            Pending::Mail(r, p) => Event::Mail { reverse_path: r.clone(), params: p.clone() },
            Pending::Rcpt(f, p) => Event::Rcpt { forward_path: f.clone(), params: p.clone() },
            Pending::DataStart(_) => Event::DataStart,
            Pending::MessageEnd => Event::MessageEnd,
            Pending::StartTls => Event::StartTls,
            Pending::Auth { mechanism, authzid, username, password } => Event::Auth {
                mechanism: *mechanism,
                authzid: authzid.clone(),
                username: username.clone(),
                password: password.clone(),
            },
        }
    }
}

/// How the message of a transaction is being sent.
#[derive(Debug, Clone, Copy)]
enum ContentKind {
    Data,
    Bdat { size: u64, last: bool },
}

/// The state between an accepted MAIL and the end of the message.
#[derive(Debug)]
struct Transaction {
    params: MailParams,
    recipients: usize,
    /// Present once the first BDAT chunk was accepted: the checks carry
    /// over from chunk to chunk.
    bdat: Option<BdatCheck>,
}

impl Server {
    /// A server for a new connection, with the greeting already queued
    /// (RFC 5321 §4.3.1 "220 domain").
    pub fn new(config: ServerConfig) -> Server {
        let output = r220_greeting(&config.hostname).to_bytes();
        Server {
            config,
            input: Vec::new(),
            output,
            mode: Mode::Command { discarding: false },
            pending: None,
            aborted: false,
            helo: None,
            extended: false,
            transaction: None,
            authenticated: None,
            shutting_down: false,
        }
    }

    /// Adds bytes read from the client. Call it after [`Event::NeedInput`];
    /// bytes fed after the connection closed are ignored.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.mode, Mode::Closed) {
            self.input.extend_from_slice(bytes);
        }
    }

    /// Runs until something needs the driver and says what.
    ///
    /// Calling it again while a decision (`Mail`, `Rcpt`, `DataStart`,
    /// `MessageEnd`, `Auth`) is unanswered is a driver bug; it is harmless:
    /// the same event is returned again and no input is processed.
    #[expect(
        clippy::should_implement_trait,
        reason = "not an iterator: it never ends and the driver must act between calls (style guide §3 names it next)"
    )]
    pub fn next(&mut self) -> Event {
        loop {
            if mem::take(&mut self.aborted) {
                return Event::MessageAborted;
            }
            if let Some(pending) = &self.pending {
                return pending.event();
            }
            let step = match self.mode {
                Mode::Closed => return Event::Close,
                Mode::Command { discarding: true } => self.discard_line(),
                Mode::Command { discarding: false } => self.command_step(),
                Mode::Data(_) => self.data_step(),
                Mode::Bdat(_) => self.bdat_step(),
                Mode::Auth(_) => self.sasl_step(),
            };
            if let Some(event) = step {
                return event;
            }
        }
    }

    /// Takes the bytes to send to the client (possibly none).
    pub fn take_output(&mut self) -> Vec<u8> {
        mem::take(&mut self.output)
    }

    /// Answers a `Mail`, `Rcpt`, `DataStart` or `Auth` event with the
    /// standard positive reply (250 2.1.0, 250 2.1.5, 354, or nothing for
    /// BDAT until its chunk is read; 235 2.7.0 for AUTH, which also makes
    /// the session authenticated). Without such a decision pending it does
    /// nothing (and asserts in debug builds).
    pub fn accept(&mut self) {
        match self.pending.take() {
            Some(Pending::Mail(_, params)) => {
                self.transaction = Some(Transaction { params, recipients: 0, bdat: None });
                self.reply(r250_mail_ok());
            }
            Some(Pending::Rcpt(..)) => {
                if let Some(t) = &mut self.transaction {
                    t.recipients += 1;
                }
                self.reply(r250_rcpt_ok());
            }
            Some(Pending::DataStart(ContentKind::Data)) => {
                self.reply(r354_start_data());
                self.mode = Mode::Data(DataReader::new(self.tally()));
            }
            Some(Pending::DataStart(ContentKind::Bdat { size, last })) => {
                let check = BdatCheck::new(self.tally());
                if let Some(t) = &mut self.transaction {
                    t.bdat = Some(check);
                }
                self.mode = Mode::Bdat(Chunk::new(size, last, None));
            }
            Some(Pending::Auth { username, .. }) => {
                self.authenticated = Some(username);
                self.reply(r235_authenticated());
            }
            other => self.misuse(other, "accept"),
        }
    }

    /// Answers a `Mail`, `Rcpt`, `DataStart` or `Auth` event with `reply`.
    /// A rejected MAIL starts no transaction, a rejected RCPT is not
    /// counted, a rejected DataStart resets the transaction (for BDAT the
    /// reply follows the chunk, whose octets are discarded), a rejected
    /// AUTH leaves the session unauthenticated. Without such a decision
    /// pending it does nothing (and asserts in debug builds).
    pub fn reject(&mut self, reply: Reply) {
        match self.pending.take() {
            Some(Pending::Mail(..) | Pending::Rcpt(..) | Pending::Auth { .. }) => self.reply(reply),
            Some(Pending::DataStart(ContentKind::Data)) => {
                self.transaction = None;
                self.reply(reply);
            }
            Some(Pending::DataStart(ContentKind::Bdat { size, last })) => {
                self.transaction = None;
                self.mode = Mode::Bdat(Chunk::new(size, last, Some(reply)));
            }
            other => self.misuse(other, "reject"),
        }
    }

    /// Answers `MessageEnd` with the outcome of storing the message; the
    /// transaction ends either way (RFC 5321 §4.1.1.4). Without that
    /// decision pending it does nothing (and asserts in debug builds).
    pub fn complete(&mut self, reply: Reply) {
        match self.pending.take() {
            Some(Pending::MessageEnd) => {
                self.transaction = None;
                self.reply(reply);
            }
            other => self.misuse(other, "complete"),
        }
    }

    /// Queues `reply` (normally a 421, RFC 5321 §3.8) and closes: the next
    /// event is [`Event::Close`]. Any message in progress is the driver's
    /// to discard; no `MessageAborted` follows.
    pub fn close_with(&mut self, reply: Reply) {
        self.reply(reply);
        self.close();
    }

    /// Starts a graceful shutdown: each later complete command line is
    /// answered `421 4.3.2` and closes the session, while message content
    /// already being read finishes normally first.
    pub fn set_shutting_down(&mut self) {
        self.shutting_down = true;
    }

    /// True while reading DATA content or BDAT octets, for which the driver
    /// uses the longer data timeout (RFC 5321 §4.5.3.2.5).
    pub fn is_receiving_data(&self) -> bool {
        matches!(self.mode, Mode::Data(_) | Mode::Bdat(_))
    }

    /// The HELO/EHLO argument, once given.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// The user name of the successful AUTH, if any. RSET, HELO and EHLO
    /// keep it; [`Server::tls_started`] forgets it.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// Makes AUTH available or not from now on (see
    /// [`ServerConfig::auth_available`]); the driver calls it after
    /// [`Server::tls_started`], when TLS makes passwords acceptable. The
    /// next EHLO reply shows the change.
    pub fn set_auth_available(&mut self, available: bool) {
        self.config.auth_available = available;
    }

    /// True after EHLO, false after HELO (or before either): only EHLO
    /// clients may use extensions (RFC 5321 §2.2.1).
    pub fn is_extended(&self) -> bool {
        self.extended
    }

    /// True when the current transaction's MAIL had SMTPUTF8, so the message
    /// may carry UTF-8 headers (RFC 6531 §3.4).
    pub fn transaction_smtputf8(&self) -> bool {
        self.transaction.as_ref().is_some_and(|t| t.params.smtputf8)
    }

    /// The current transaction's declared BODY type, if any (RFC 6152).
    pub fn transaction_body(&self) -> Option<Body> {
        self.transaction.as_ref().and_then(|t| t.params.body)
    }

    /// True once the session is over (QUIT, 421 or [`Server::close_with`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    /// How many input octets are buffered; bounded by one command line
    /// (or SASL response line) plus the last feed, whatever the client
    /// sends.
    pub fn buffered_len(&self) -> usize {
        self.input.len()
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
    }

    fn close(&mut self) {
        self.pending = None;
        self.input = Vec::new();
        self.mode = Mode::Closed;
    }

    fn misuse(&mut self, pending: Option<Pending>, call: &str) {
        debug_assert!(false, "{call}() does not answer {pending:?}");
        self.pending = pending;
    }

    fn tally(&self) -> Tally {
        Tally::new(self.config.limits.max_text_line, self.config.limits.max_message_size)
    }

    /// Ends the transaction; a BDAT message already started is aborted.
    fn reset_transaction(&mut self) {
        if self.transaction.take().is_some_and(|t| t.bdat.is_some()) {
            self.aborted = true;
        }
    }

    /// Skips the rest of an over-long command line without buffering it.
    fn discard_line(&mut self) -> Option<Event> {
        match self.input.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                self.input.drain(..=lf);
                self.mode = Mode::Command { discarding: false };
                None
            }
            None => {
                self.input.clear();
                Some(Event::NeedInput)
            }
        }
    }

    /// Takes one command line off the input and handles it.
    fn command_step(&mut self) -> Option<Event> {
        let max = self.config.limits.max_command_line;
        let window = &self.input[..self.input.len().min(max)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if self.input.len() < max {
                return Some(Event::NeedInput);
            }
            // RFC 5321 §4.5.3.1.4: at most 512 octets including CRLF; with
            // no LF in the first `max` octets the line is certainly longer.
            self.mode = Mode::Command { discarding: true };
            self.refuse_line(r500_line_too_long());
            return None;
        };
        let line: Vec<u8> = self.input.drain(..=lf).collect();
        self.handle_line(&line);
        None
    }

    /// Answers a line that is not a command, unless shutting down.
    fn refuse_line(&mut self, reply: Reply) {
        if self.shutting_down {
            self.shut_down();
        } else {
            self.reply(reply);
        }
    }

    fn shut_down(&mut self) {
        self.reply(r421_shutting_down(&self.config.hostname));
        self.reset_transaction();
        self.close();
    }

    /// Handles one complete line, LF included.
    fn handle_line(&mut self, line: &[u8]) {
        if self.shutting_down {
            return self.shut_down();
        }
        // RFC 5321 §2.3.8: lines end in CRLF only; a bare CR or LF is refused.
        let body = line.strip_suffix(b"\n").and_then(|l| l.strip_suffix(b"\r"));
        let Some(body) = body.filter(|b| !b.contains(&b'\r')) else {
            return self.reply(r500_bare_cr_lf());
        };
        match Command::parse(body) {
            Ok(command) => self.handle_command(command),
            Err(reply) => self.reply(reply),
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Helo(name) => self.greet(name, false),
            Command::Ehlo(name) => self.greet(name, true),
            Command::Mail(reverse_path, params) => self.handle_mail(reverse_path, params),
            Command::Rcpt(forward_path, params) => self.handle_rcpt(forward_path, params),
            Command::Data => self.handle_data(),
            Command::Bdat { size, last } => self.handle_bdat(size, last),
            Command::Rset => {
                // RFC 5321 §4.1.1.5: RSET aborts the transaction.
                self.reset_transaction();
                self.reply(r250_ok());
            }
            Command::Noop => self.reply(r250_ok()),
            // RFC 5321 §3.5.3: 252 rather than revealing valid users.
            Command::Vrfy(_) => self.reply(r252_cannot_vrfy()),
            Command::Expn(_) => self.reply(r502_expn()),
            Command::Help => self.reply(r214_help()),
            Command::Quit => {
                self.reply(r221_bye());
                self.reset_transaction();
                self.close();
            }
            Command::StartTls => self.handle_starttls(),
            Command::Auth { mechanism, initial_response } => self.handle_auth(&mechanism, initial_response),
        }
    }

    /// AUTH (RFC 4954 §4): only where offered, after EHLO, once per
    /// session and outside a transaction.
    fn handle_auth(&mut self, mechanism: &str, initial_response: Option<Secret<String>>) {
        if let Some(reply) = self.auth_refusal() {
            return self.reply(reply);
        }
        let sasl = match Mechanism::parse(mechanism) {
            Some(Mechanism::Plain) => Sasl::Plain,
            Some(Mechanism::Login) => Sasl::LoginUsername,
            None => return self.reply(r504_unrecognized_mechanism()),
        };
        // RFC 4954 §4: `=` is an initial response of zero length. Neither
        // mechanism can start with one (PLAIN needs its two NULs, LOGIN's
        // first message is the user name), so it is taken as no initial
        // response and the usual challenge follows.
        match initial_response.filter(|r| r.expose() != "=") {
            Some(response) => self.sasl_response(sasl, response.expose().as_bytes()),
            None => self.challenge(sasl),
        }
    }

    /// The sequence error for AUTH now, if any.
    fn auth_refusal(&self) -> Option<Reply> {
        if !self.config.auth_available {
            // RFC 4954 §6: 538 when the mechanisms need encryption first,
            // which is why a submission listener offers no AUTH before TLS.
            // Elsewhere, Postfix's 503 (AUTH is not offered at all).
            let reply = if self.config.auth_required { r538_encryption_required() } else { r503_auth_not_enabled() };
            return Some(reply);
        }
        if !self.extended {
            // RFC 4954 §3: AUTH is an extension, so EHLO comes first.
            Some(r503_ehlo_first())
        } else if self.authenticated.is_some() {
            // RFC 4954 §4: no AUTH after a successful one.
            Some(r503_already_authenticated())
        } else if self.transaction.is_some() {
            // RFC 4954 §4: AUTH is not permitted during a transaction.
            Some(r503_transaction_in_progress())
        } else {
            None
        }
    }

    /// Sends the challenge for `sasl` and reads the response lines.
    fn challenge(&mut self, sasl: Sasl) {
        self.reply(r334_challenge(sasl.challenge()));
        self.mode = Mode::Auth(sasl);
    }

    /// Takes one SASL response line off the input (RFC 4954 §4).
    fn sasl_step(&mut self) -> Option<Event> {
        // The limit excludes the CRLF, like RFC 4954's 12288 octets.
        let max = MAX_SASL_LINE + 2;
        let window = &self.input[..self.input.len().min(max)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if self.input.len() < max {
                return Some(Event::NeedInput);
            }
            // The exchange ends; the rest of the line is skipped as it
            // arrives, as for an over-long command line.
            self.mode = Mode::Command { discarding: true };
            self.refuse_line(r500_auth_line_too_long());
            return None;
        };
        let line: Vec<u8> = self.input.drain(..=lf).collect();
        let Mode::Auth(sasl) = mem::replace(&mut self.mode, Mode::Command { discarding: false }) else {
            return None;
        };
        if self.shutting_down {
            self.shut_down();
            return None;
        }
        let body = line.strip_suffix(b"\n").and_then(|l| l.strip_suffix(b"\r"));
        match body.filter(|b| !b.contains(&b'\r')) {
            // RFC 5321 §2.3.8 holds for these lines too.
            None => self.reply(r500_bare_cr_lf()),
            // RFC 4954 §4: "*" cancels the exchange.
            Some(b"*") => self.reply(r501_auth_aborted()),
            Some(response) => self.sasl_response(sasl, response),
        }
        None
    }

    /// Handles one base64 response to `sasl`: the next challenge, the
    /// `Auth` decision, or a 501 that ends the exchange.
    fn sasl_response(&mut self, sasl: Sasl, base64: &[u8]) {
        let text = |data: Vec<u8>| String::from_utf8(data).map_err(|_| SaslError::NotUtf8);
        let step = decode_base64(base64).and_then(|data| match sasl {
            Sasl::Plain => parse_plain(data).map(|c| {
                let (authzid, username, password) = (c.authzid, c.authcid, c.password);
                SaslStep::Decide(Pending::Auth { mechanism: Mechanism::Plain, authzid, username, password })
            }),
            Sasl::LoginUsername => text(data).map(|username| SaslStep::Next(Sasl::LoginPassword { username })),
            Sasl::LoginPassword { username } => text(data).map(|password| {
                let password = Secret::new(password);
                SaslStep::Decide(Pending::Auth {
                    mechanism: Mechanism::Login,
                    authzid: String::new(),
                    username,
                    password,
                })
            }),
        });
        match step {
            Ok(SaslStep::Next(next)) => self.challenge(next),
            Ok(SaslStep::Decide(decision)) => self.pending = Some(decision),
            Err(SaslError::Base64) => self.reply(r501_auth_bad_base64()),
            Err(SaslError::MalformedPlain) => self.reply(r501_auth_malformed()),
            Err(SaslError::NotUtf8) => self.reply(r501_auth_not_utf8()),
        }
    }

    /// STARTTLS (RFC 3207 §4): only after EHLO and outside a transaction;
    /// nothing sent with it counts, whatever the handshake's outcome.
    fn handle_starttls(&mut self) {
        if !self.config.starttls_available {
            return self.reply(r502_not_implemented());
        }
        if !self.extended {
            return self.reply(r503_ehlo_first());
        }
        if self.transaction.is_some() {
            return self.reply(r503_transaction_in_progress());
        }
        self.reply(r220_ready_for_tls());
        self.input.clear();
        self.pending = Some(Pending::StartTls);
    }

    /// Answers [`Event::StartTls`]: the handshake succeeded. The session
    /// starts over as after the greeting (RFC 3207 §4.2: all knowledge
    /// from before is discarded, so the client must send EHLO again, and
    /// any authentication is forgotten), and STARTTLS is no longer
    /// offered. Whether AUTH is now available is the driver's to say with
    /// [`Server::set_auth_available`].
    pub fn tls_started(&mut self) {
        match self.pending.take() {
            Some(Pending::StartTls) => {
                self.config.starttls_available = false;
                self.helo = None;
                self.extended = false;
                self.transaction = None;
                self.authenticated = None;
                self.input.clear();
                self.mode = Mode::Command { discarding: false };
            }
            other => {
                debug_assert!(false, "tls_started() does not answer {other:?}");
                self.pending = other;
            }
        }
    }

    /// HELO and EHLO (RFC 5321 §4.1.1.1), which also reset the transaction
    /// (RFC 5321 §4.1.4).
    fn greet(&mut self, name: String, extended: bool) {
        self.reset_transaction();
        let host = &self.config.hostname;
        let reply = if extended {
            let limits = &self.config.limits;
            r250_ehlo(host, limits.max_message_size, self.config.starttls_available, self.config.auth_available)
        } else {
            r250_helo(host)
        };
        self.helo = Some(name);
        self.extended = extended;
        self.reply(reply);
    }

    /// The first sequence error for a transaction command, if any
    /// (RFC 5321 §4.1.4).
    fn needs_mail(&self) -> Option<Reply> {
        if self.helo.is_none() {
            Some(r503_helo_first())
        } else if self.transaction.is_none() {
            Some(r503_need_mail())
        } else {
            None
        }
    }

    fn handle_mail(&mut self, reverse_path: ReversePath, params: MailParams) {
        let refusal = if self.helo.is_none() {
            Some(r503_helo_first())
        } else if self.config.auth_required && self.authenticated.is_none() {
            // RFC 4954 §6 and RFC 6409 §4.3: submission needs AUTH first.
            Some(r530_auth_required())
        } else if self.transaction.is_some() {
            // RFC 5321 §4.1.4: MAIL MUST NOT be sent during a transaction.
            Some(r503_nested_mail())
        } else {
            self.mail_refusal(&reverse_path, &params)
        };
        match refusal {
            Some(reply) => self.reply(reply),
            None => self.pending = Some(Pending::Mail(reverse_path, params)),
        }
    }

    /// Checks MAIL parameters against the session and the limits.
    fn mail_refusal(&self, reverse_path: &ReversePath, params: &MailParams) -> Option<Reply> {
        // RFC 1869 §4.2 (RFC 5321 §4.1.1.1): no extensions after HELO.
        if let Some(name) = params.first_name().filter(|_| !self.extended) {
            return Some(r555_unsupported(name));
        }
        // RFC 4954 §5: AUTH= belongs to the AUTH extension; where that is
        // not offered the parameter is unknown (RFC 1869 §6).
        if params.auth.is_some() && !self.config.auth_available {
            return Some(r555_unsupported("AUTH"));
        }
        // RFC 1870 §6: a declared size over our limit is refused at once.
        if params.size.is_some_and(|s| s > self.config.limits.max_message_size) {
            return Some(r552_too_big());
        }
        // RFC 6531 §3.4: a UTF-8 address needs the SMTPUTF8 parameter.
        let utf8 = matches!(reverse_path, ReversePath::Address(a) if !a.is_ascii());
        (utf8 && !params.smtputf8).then(r553_smtputf8_required)
    }

    fn handle_rcpt(&mut self, forward_path: ForwardPath, params: RcptParams) {
        let refusal = self.needs_mail().or_else(|| {
            let t = self.transaction.as_ref()?;
            // RFC 3030 §3: once message data has begun, the recipient list
            // is closed (the trace headers were written for it).
            if t.bdat.is_some() {
                return Some(r503_rcpt_after_bdat());
            }
            // RFC 5321 §4.5.3.1.10: 452 for recipients over our limit.
            if t.recipients >= self.config.limits.max_recipients {
                return Some(r452_too_many_recipients());
            }
            // RFC 6531 §3.4: UTF-8 recipients only in an SMTPUTF8 transaction.
            let utf8 = matches!(&forward_path, ForwardPath::Address(a) if !a.is_ascii());
            (utf8 && !t.params.smtputf8).then(r553_smtputf8_required)
        });
        match refusal {
            Some(reply) => self.reply(reply),
            None => self.pending = Some(Pending::Rcpt(forward_path, params)),
        }
    }

    /// The refusal for DATA or a first BDAT without valid recipients.
    fn needs_recipients(&self) -> Option<Reply> {
        // RFC 5321 §3.3: DATA with no successful RCPT gets 554 (or 503).
        self.transaction.as_ref().filter(|t| t.recipients == 0).map(|_| r554_no_valid_recipients())
    }

    fn handle_data(&mut self) {
        let in_bdat = self.transaction.as_ref().is_some_and(|t| t.bdat.is_some());
        let refusal = self.needs_mail().or_else(|| {
            // RFC 3030 §3: DATA and BDAT are not mixed in one transaction.
            if in_bdat { Some(r503_data_after_bdat()) } else { self.needs_recipients() }
        });
        match refusal {
            Some(reply) => self.reply(reply),
            None => self.pending = Some(Pending::DataStart(ContentKind::Data)),
        }
    }

    fn handle_bdat(&mut self, size: u64, last: bool) {
        // RFC 3030 §2: even a refused chunk's octets are read, never run.
        let refusal = self.needs_mail().or_else(|| self.needs_recipients());
        let started = self.transaction.as_ref().is_some_and(|t| t.bdat.is_some());
        if refusal.is_none() && !started {
            self.pending = Some(Pending::DataStart(ContentKind::Bdat { size, last }));
        } else {
            self.mode = Mode::Bdat(Chunk::new(size, last, refusal));
        }
    }

    /// Reads DATA content from the input.
    fn data_step(&mut self) -> Option<Event> {
        let Mode::Data(reader) = &mut self.mode else { return None };
        let mut out = Vec::new();
        let (used, done) = reader.read(&self.input, &mut out);
        self.input.drain(..used);
        if done {
            let refusal = reader.tally.refusal();
            self.mode = Mode::Command { discarding: false };
            self.end_message(refusal);
        }
        match (out.is_empty(), done) {
            (false, _) => Some(Event::Data(out)),
            (true, true) => None,
            (true, false) => Some(Event::NeedInput),
        }
    }

    /// The message is read: refused with `refusal`, or handed to the driver.
    fn end_message(&mut self, refusal: Option<Reply>) {
        match refusal {
            Some(reply) => {
                self.reply(reply);
                self.transaction = None;
                self.aborted = true;
            }
            None => self.pending = Some(Pending::MessageEnd),
        }
    }

    /// Reads BDAT chunk octets from the input.
    fn bdat_step(&mut self) -> Option<Event> {
        let Mode::Bdat(chunk) = &mut self.mode else { return None };
        let n = usize::try_from(chunk.remaining).unwrap_or(usize::MAX).min(self.input.len());
        if n == 0 && chunk.remaining > 0 {
            return Some(Event::NeedInput);
        }
        let bytes: Vec<u8> = self.input.drain(..n).collect();
        chunk.remaining -= n as u64;
        let check = self.transaction.as_mut().and_then(|t| t.bdat.as_mut());
        let mut out = Vec::new();
        if let Some(check) = check.filter(|_| chunk.refusal.is_none()) {
            check.scan(&bytes);
            if check.tally.is_acceptable() {
                out = bytes;
            }
        }
        if chunk.remaining == 0 {
            let Mode::Bdat(chunk) = mem::replace(&mut self.mode, Mode::Command { discarding: false }) else {
                return None;
            };
            self.end_chunk(chunk);
        }
        if out.is_empty() { None } else { Some(Event::Data(out)) }
    }

    /// A chunk has been read in full (RFC 3030 §2): reply or end the message.
    fn end_chunk(&mut self, chunk: Chunk) {
        if let Some(reply) = chunk.refusal {
            return self.reply(reply);
        }
        let Some(check) = self.transaction.as_mut().and_then(|t| t.bdat.as_mut()) else { return };
        if chunk.last {
            check.finish();
        }
        match check.tally.refusal() {
            Some(reply) => self.end_message(Some(reply)),
            None if chunk.last => self.end_message(None),
            None => self.reply(r250_chunk_received(chunk.size)),
        }
    }
}
