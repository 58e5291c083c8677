//! One IMAP connection: read, feed the state machine, carry out its
//! commands, write. Generic over the stream so transcript tests run it in
//! memory.
//!
//! Implementation notes:
//! - Every command that ends in the selected state ends with the pending
//!   untagged updates ([`crate::selected`]): those caused by this command
//!   and those other sessions caused meanwhile, EXPUNGE only where RFC 9051
//!   §7.5.1 allows it.
//! - In IDLE the session waits for the client's DONE and for the change
//!   feed at once; a change to the selected mailbox is announced at once.
//! - Output is flushed whenever the state machine needs input, and also as
//!   soon as it passes [`FLUSH_AT`], so a FETCH of a whole mailbox never
//!   piles up in memory.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use mailroom_imap_proto::command::Command;
use mailroom_imap_proto::response::{Code, Status};
use mailroom_imap_proto::{Deferred, Event, Server, ServerConfig};
use mailroom_services::auth::Login;
use mailroom_services::net::{ReadOutcome, Shutdown, read_or_stop};
use mailroom_services::sendfile::DirectSocket;
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_store::{AccountRecord, ChangeEvent, ChangeKind, MailStore, StoreError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::ImapContext;
use crate::fetch::FetchRequest;
use crate::mailboxes::start_append;
use crate::selected::{Selected, Style};

/// Bytes read from the socket at once while commands are short: an idle
/// session holds no more.
const SMALL_READ: usize = 4 * 1024;
/// Bytes read at once while a client streams (APPEND literals).
const LARGE_READ: usize = 64 * 1024;
/// APPENDs under way at once; a client pipelining more waits for the
/// oldest (each holds its message in memory).
const MAX_IN_FLIGHT: usize = 16;
/// Output is written out once it grows past this.
pub(crate) const FLUSH_AT: usize = 256 * 1024;
/// How long a write may wait for a client that does not read.
pub(crate) const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// What a finished session did, for its summary log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// Commands carried out by the driver.
    pub commands: u32,
}

/// A logged-in session's state beside the protocol's.
pub(crate) struct Session<'a> {
    pub(crate) ctx: &'a ImapContext,
    pub(crate) account: Option<AccountRecord>,
    pub(crate) selected: Option<Selected>,
    /// The store's change feed, subscribed at login.
    changes: Option<broadcast::Receiver<ChangeEvent>>,
}

/// How a command ended, for the tagged response.
pub(crate) enum Outcome {
    Ok(Option<Code>, String),
    No(Option<Code>, String),
    Bad(String),
    /// Still under way in the store (an APPEND): answered when the task
    /// ends, while later commands are read.
    Pending(JoinHandle<Outcome>),
}

impl Outcome {
    pub(crate) fn ok(text: impl Into<String>) -> Outcome {
        Outcome::Ok(None, text.into())
    }
    pub(crate) fn no(text: impl Into<String>) -> Outcome {
        Outcome::No(None, text.into())
    }
}

/// A store failure as the client sees it: temporary ones ask to retry.
pub(crate) fn store_failure(e: &StoreError) -> Outcome {
    if e.is_temporary() {
        warn!(error = %e, "store failure");
        Outcome::No(Some(Code::Unavailable), "Temporary server failure, try again later".into())
    } else {
        warn!(error = %e, "store error");
        Outcome::No(Some(Code::ServerBug), "Internal error".into())
    }
}

/// Runs one session to its end. The caller owns connection limits. `security`
/// says how the stream is protected: under TLS already (an implicit-TLS
/// listener), or plain with STARTTLS offered when it carries an acceptor.
/// Passwords are accepted under TLS, or from loopback.
pub async fn run_session<S>(
    mut stream: MaybeTls<S>,
    peer: SocketAddr,
    ctx: &ImapContext,
    mut shutdown: Shutdown,
    security: Security,
) -> io::Result<SessionSummary>
where
    S: AsyncRead + AsyncWrite + Unpin,
    MaybeTls<S>: DirectSocket,
{
    let config = ServerConfig {
        hostname: ctx.hostname.clone(),
        limits: ctx.limits.clone(),
        allow_plaintext: security.allows_passwords(peer.ip()),
        starttls_available: security.starttls().is_some(),
    };
    let mut server = Server::new(config);
    let mut session = Session { ctx, account: None, selected: None, changes: None };
    let mut summary = SessionSummary::default();
    let mut in_flight: VecDeque<(Deferred, JoinHandle<Outcome>)> = VecDeque::new();
    let mut buf = Vec::with_capacity(SMALL_READ);
    loop {
        if server.output_len() >= FLUSH_AT {
            write_output(&mut stream, &mut server).await?;
        }
        match server.next() {
            Event::NeedInput => {
                write_output(&mut stream, &mut server).await?;
                if shutdown.is_triggered() {
                    server.close_with("Server shutting down");
                    continue;
                }
                // A read that filled the buffer means the client streams:
                // read more at once; an idle session gives it back.
                if server.is_idle() || buf.capacity() > LARGE_READ {
                    buf = Vec::with_capacity(SMALL_READ);
                } else if buf.len() == buf.capacity() {
                    buf.reserve(LARGE_READ);
                }
                buf.clear();
                let outcome = if server.is_idle() {
                    session.idle_wait(&mut stream, &mut server, &mut buf, &mut shutdown).await?
                } else if let Some((_, task)) = in_flight.front_mut() {
                    // Read on while APPENDs commit; answer each as it ends.
                    tokio::select! {
                        read = read_or_stop(&mut stream, &mut buf, ctx.idle_timeout, Some(&mut shutdown)) => read?,
                        done = task => {
                            let (deferred, _) = in_flight.pop_front().expect("the front task just ended");
                            // EXISTS for the new message before its OK.
                            session.update(&mut server, true).await;
                            session.complete(&mut server, deferred, joined(done));
                            continue;
                        }
                    }
                } else {
                    read_or_stop(&mut stream, &mut buf, ctx.idle_timeout, Some(&mut shutdown)).await?
                };
                match outcome {
                    ReadOutcome::Data => server.feed(&buf),
                    ReadOutcome::Eof => {
                        debug!("client closed the connection");
                        break;
                    }
                    ReadOutcome::TimedOut => {
                        info!("idle timeout");
                        server.close_with("Autologout; idle for too long");
                    }
                    ReadOutcome::ShuttingDown => server.close_with("Server shutting down"),
                }
            }
            Event::Login { user, password, .. } => {
                match ctx.auth.login(&ctx.store, peer.ip(), &user, &password).await {
                    Ok(Login::Success(account)) => {
                        info!(user = %account.address, "logged in");
                        // Subscribed before any mailbox is read, so no change
                        // between the read and the subscription is missed.
                        session.changes = Some(ctx.store.subscribe());
                        session.account = Some(account);
                        server.accept_login();
                    }
                    Ok(Login::Failure(delay)) => {
                        info!(delay_ms = delay.as_millis() as u64, "login failed");
                        tokio::time::sleep(delay).await;
                        server.reject_login();
                    }
                    Err(e) => {
                        warn!(error = %e, "login check failed");
                        server.respond_no(Some(Code::Unavailable), "Temporary server failure, try again later");
                    }
                }
            }
            Event::Command { tag, command } => {
                summary.commands += 1;
                // Only APPENDs run side by side: anything else sees their
                // effects.
                if !matches!(command, Command::Append { .. }) || in_flight.len() >= MAX_IN_FLIGHT {
                    session.finish_appends(&mut server, &mut in_flight).await;
                }
                let outcome = session.command(&mut stream, &mut server, &tag, command).await?;
                if !matches!(outcome, Outcome::Pending(_)) {
                    // Tagged responses leave in command order.
                    session.finish_appends(&mut server, &mut in_flight).await;
                }
                match outcome {
                    Outcome::Ok(code, text) => server.respond_ok(code, &text),
                    Outcome::No(code, text) => server.respond_no(code, &text),
                    Outcome::Bad(text) => server.respond_bad(None, &text),
                    Outcome::Pending(task) => {
                        if let Some(deferred) = server.defer() {
                            in_flight.push_back((deferred, task));
                        }
                    }
                }
                if session.selected_deleted() {
                    server.close_with("Selected mailbox was deleted");
                }
            }
            Event::Settle if in_flight.is_empty() => {
                warn!("imap protocol waits for deferred answers the driver does not hold");
                server.close_with("Internal error");
            }
            Event::Settle => session.finish_appends(&mut server, &mut in_flight).await,
            Event::StartTls => {
                // The OK goes out in the clear; then the handshake. The
                // protocol offers STARTTLS only when there is an acceptor.
                write_output(&mut stream, &mut server).await?;
                stream.start_tls(&security).await?;
                server.tls_started();
            }
            Event::IdleStarted { .. } => {
                session.finish_appends(&mut server, &mut in_flight).await;
                // Whatever is pending goes out at once (RFC 2177 §3).
                session.update(&mut server, true).await;
            }
            Event::IdleDone { .. } => {}
            Event::Waiting => {
                warn!("imap driver left a command unanswered");
                server.close_with("Internal error");
            }
            Event::Close => {
                session.finish_appends(&mut server, &mut in_flight).await;
                write_output(&mut stream, &mut server).await?;
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
    Ok(summary)
}

/// A finished task's outcome; a task that panicked failed its command.
fn joined(done: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    done.unwrap_or_else(|e| {
        warn!(error = %e, "append task failed");
        Outcome::No(Some(Code::ServerBug), "Internal error".into())
    })
}

impl Session<'_> {
    /// Waits for the APPENDs under way, announces what they changed in
    /// the selected mailbox, and answers each, oldest first.
    async fn finish_appends(&mut self, server: &mut Server, in_flight: &mut VecDeque<(Deferred, JoinHandle<Outcome>)>) {
        if in_flight.is_empty() {
            return;
        }
        let mut done = Vec::with_capacity(in_flight.len());
        while let Some((deferred, task)) = in_flight.pop_front() {
            done.push((deferred, joined(task.await)));
        }
        self.update(server, true).await;
        for (deferred, outcome) in done {
            self.complete(server, deferred, outcome);
        }
    }

    /// Writes a deferred command's tagged response.
    fn complete(&mut self, server: &mut Server, deferred: Deferred, outcome: Outcome) {
        match outcome {
            Outcome::Ok(code, text) => server.complete(deferred, Status::Ok, code, &text),
            Outcome::No(code, text) => server.complete(deferred, Status::No, code, &text),
            Outcome::Bad(text) => server.complete(deferred, Status::Bad, None, &text),
            Outcome::Pending(_) => server.complete(deferred, Status::No, Some(Code::ServerBug), "Internal error"),
        }
    }

    /// The logged-in account (commands reach the driver only after login).
    pub(crate) fn account(&self) -> &AccountRecord {
        // The protocol state machine passes commands on only in the
        // authenticated and selected states, which follow accept_login.
        self.account.as_ref().expect("commands arrive only after login")
    }

    /// How this client wants untagged updates written.
    pub(crate) fn style(server: &Server) -> Style {
        Style { condstore: server.condstore_enabled(), qresync: server.qresync_enabled() }
    }

    /// Carries out one command; untagged data goes to the server's output.
    async fn command<S: AsyncWrite + Unpin + DirectSocket>(
        &mut self,
        stream: &mut S,
        server: &mut Server,
        tag: &str,
        command: Command,
    ) -> io::Result<Outcome> {
        // EXPUNGE responses may not interrupt a FETCH, STORE or SEARCH by
        // sequence number (RFC 9051 §7.5.1).
        let allow_expunge = !matches!(
            &command,
            Command::Fetch { uid: false, .. } | Command::Store { uid: false, .. } | Command::Search(_)
        ) || matches!(&command, Command::Search(s) if s.uid);
        let name = command.name();
        let outcome = match command {
            Command::Noop | Command::Check => Outcome::ok(format!("{name} completed")),
            Command::Id { .. } => {
                mailroom_imap_proto::response::id(server.output_mut(), Some(&[("name", Some("Mailroom"))]));
                Outcome::ok("ID completed")
            }
            Command::Select { mailbox, read_only, condstore: _, qresync } => {
                return Ok(self.select(server, &mailbox, read_only, qresync).await);
            }
            Command::Create { mailbox } => self.create(&mailbox).await,
            Command::Delete { mailbox } => self.delete(&mailbox).await,
            Command::Rename { from, to } => self.rename(&from, &to).await,
            Command::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            Command::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            Command::List(list) => self.list(server, &list).await,
            Command::Lsub { reference, pattern } => self.lsub(server, &reference, &pattern).await,
            Command::Status { mailbox, items } => self.status(server, &mailbox, &items).await,
            Command::Append { mailbox, flags, date, message, .. } => {
                match self.prepare_append(&mailbox, &flags, date, message).await {
                    Ok((record, new)) => {
                        return Ok(Outcome::Pending(start_append(self.ctx.store.clone(), record, new).await));
                    }
                    Err(outcome) => outcome,
                }
            }
            Command::Close => return Ok(self.close(server, true).await),
            Command::Unselect => return Ok(self.close(server, false).await),
            Command::Expunge { uids } => self.expunge(server, uids.as_ref()).await,
            Command::Search(search) => self.search(server, tag, &search).await,
            Command::Fetch { uid, set, items, changed_since, vanished } => {
                let req = FetchRequest { uid, set: &set, items: &items, changed_since, vanished };
                self.fetch(stream, server, req).await?
            }
            Command::Store { uid, set, flags } => self.store(server, uid, &set, &flags).await,
            Command::Copy { uid, set, mailbox } => self.copy(server, uid, &set, &mailbox, false).await,
            Command::Move { uid, set, mailbox } => self.copy(server, uid, &set, &mailbox, true).await,
        };
        if matches!(outcome, Outcome::Bad(_) | Outcome::Pending(_)) {
            return Ok(outcome);
        }
        self.update(server, allow_expunge).await;
        Ok(outcome)
    }

    /// Reads the change feed and, when the selected mailbox changed,
    /// announces the changes.
    pub(crate) async fn update(&mut self, server: &mut Server, allow_expunge: bool) {
        self.poll_changes();
        let style = Self::style(server);
        let Some(selected) = self.selected.as_mut() else { return };
        if selected.dirty
            && let Err(e) = selected.refresh(&self.ctx.store).await
        {
            warn!(error = %e, "cannot read mailbox changes");
        }
        selected.announce(server.output_mut(), allow_expunge, style);
    }

    /// Notes which of the feed's events concern the selected mailbox.
    fn poll_changes(&mut self) {
        let Some(changes) = self.changes.as_mut() else { return };
        let mut events = Vec::new();
        let mut lagged = false;
        loop {
            match changes.try_recv() {
                Ok(event) => events.push(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                Err(_) => break,
            }
        }
        for event in &events {
            self.note(event);
        }
        if lagged && let Some(s) = self.selected.as_mut() {
            s.dirty = true;
        }
    }

    fn note(&mut self, event: &ChangeEvent) {
        if let Some(s) = self.selected.as_mut()
            && event.mailbox == s.mailbox
        {
            s.dirty = true;
            if event.kind == ChangeKind::Deleted {
                s.deleted = true;
            }
        }
    }

    /// True once the selected mailbox was deleted (by any session): the
    /// session then ends, as its messages are gone for good.
    fn selected_deleted(&self) -> bool {
        self.selected.as_ref().is_some_and(|s| s.deleted)
    }

    /// Waits in IDLE for the client's next line, announcing changes to the
    /// selected mailbox as they come.
    async fn idle_wait<S>(
        &mut self,
        stream: &mut S,
        server: &mut Server,
        buf: &mut Vec<u8>,
        shutdown: &mut Shutdown,
    ) -> io::Result<ReadOutcome>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.ctx.idle_timeout;
        loop {
            let Some(changes) = self.changes.as_mut() else {
                return read_or_stop(stream, buf, self.ctx.idle_timeout, Some(shutdown)).await;
            };
            tokio::select! {
                read = stream.read_buf(buf) => {
                    return match read? {
                        0 => Ok(ReadOutcome::Eof),
                        _ => Ok(ReadOutcome::Data),
                    };
                }
                event = changes.recv() => {
                    match event {
                        Ok(event) => self.note(&event),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            if let Some(s) = self.selected.as_mut() {
                                s.dirty = true;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => self.changes = None,
                    }
                    if self.selected_deleted() {
                        server.close_with("Selected mailbox was deleted");
                        return Ok(ReadOutcome::Data);
                    }
                    self.update(server, true).await;
                    write_output(stream, server).await?;
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(ReadOutcome::TimedOut),
                _ = shutdown.triggered() => return Ok(ReadOutcome::ShuttingDown),
            }
        }
    }
}

/// Writes the pending output. A client that stops reading stalls the
/// session here (so nothing more is read from it and nothing more is
/// buffered) until [`WRITE_TIMEOUT`] ends the connection.
pub(crate) async fn write_output<S: AsyncWrite + Unpin>(stream: &mut S, server: &mut Server) -> io::Result<()> {
    if !server.output().is_empty() {
        write_bytes(stream, server.output()).await?;
        server.clear_output();
    }
    Ok(())
}

/// Writes `bytes` to the client, waiting at most [`WRITE_TIMEOUT`] for a
/// client that does not read. Anything in the server's output must have
/// been written first.
pub(crate) async fn write_bytes<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
}
