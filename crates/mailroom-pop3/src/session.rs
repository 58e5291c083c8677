//! One POP3 connection: read, feed the state machine, answer its decisions,
//! write. Generic over the stream so transcript tests run it in memory.
//!
//! Implementation notes:
//! - The maildrop snapshot taken at login is the message list the state
//!   machine numbers; the session keeps each number's UID and blob.
//! - A message expunged under the session (by IMAP, webmail, another
//!   node) must not be served: the session watches the store's change
//!   events for its INBOX and, once anything changed, checks that a message
//!   still exists before sending it.
//! - Output is flushed whenever the state machine needs input, and also as
//!   soon as it passes [`FLUSH_AT`], so pipelined RETRs never pile up.

use std::io;
use std::net::SocketAddr;

use mailroom_pop3_proto::{Code, Event, MaildropEntry, Reply, Server, ServerConfig};
use mailroom_services::auth::Login;
use mailroom_services::net::{ReadOutcome, Shutdown, read_or_stop};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_store::{AccountRecord, ChangeEvent, MailStore, StoreError};
use mailroom_types::{BlobId, MailboxId, Uid};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::Pop3Context;
use crate::locks::MaildropLock;

/// Bytes read from the socket at once; commands are short.
const READ_CHUNK: usize = 4096;
/// Output is written out once it grows past this.
const FLUSH_AT: usize = 256 * 1024;
/// The message read buffer is kept for the next RETR up to this capacity.
const MESSAGE_BUFFER: usize = 1 << 20;

/// What a finished session did, for its summary log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// Messages sent by RETR or TOP.
    pub retrieved: u32,
    /// Messages expunged at QUIT.
    pub deleted: u32,
}

/// The logged-in state: the snapshot's messages and the maildrop lock.
struct Maildrop {
    mailbox: MailboxId,
    messages: Vec<(Uid, BlobId, u64)>,
    changes: broadcast::Receiver<ChangeEvent>,
    /// Set once the INBOX changed after the snapshot: from then on every
    /// message is checked before it is sent.
    changed: bool,
    _lock: MaildropLock,
}

impl Maildrop {
    /// Notices changes to the INBOX since the last call.
    fn poll_changes(&mut self) {
        loop {
            match self.changes.try_recv() {
                Ok(event) if event.mailbox == self.mailbox => self.changed = true,
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.changed = true,
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => return,
            }
        }
    }
}

fn temporary_failure() -> Reply {
    Reply::err(Some(Code::SysTemp), "Temporary server failure, try again later.")
}

/// Runs one session to its end. The caller owns connection limits.
/// `security` says how the stream is protected: under TLS already (an
/// implicit-TLS listener), or plain with STLS offered when it carries an
/// acceptor. Passwords are accepted under TLS, or from loopback.
pub async fn run_session<S>(
    mut stream: MaybeTls<S>,
    peer: SocketAddr,
    ctx: &Pop3Context,
    mut shutdown: Shutdown,
    security: Security,
) -> io::Result<SessionSummary>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = ServerConfig {
        hostname: ctx.hostname.clone(),
        limits: ctx.limits.clone(),
        allow_plaintext: security.allows_passwords(peer.ip()),
        stls_available: security.starttls().is_some(),
    };
    let mut server = Server::new(config);
    let mut maildrop: Option<Maildrop> = None;
    let mut summary = SessionSummary::default();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut message_buf = Vec::new();
    loop {
        if server.output_len() >= FLUSH_AT {
            write_output(&mut stream, &mut server).await?;
        }
        match server.next() {
            Event::NeedInput => {
                write_output(&mut stream, &mut server).await?;
                if shutdown.is_triggered() {
                    server.close_with(shutting_down());
                    continue;
                }
                buf.clear();
                match read_or_stop(&mut stream, &mut buf, ctx.idle_timeout, Some(&mut shutdown)).await? {
                    ReadOutcome::Data => server.feed(&buf),
                    ReadOutcome::Eof => {
                        // RFC 1939 §6: no QUIT, no UPDATE: nothing is deleted.
                        debug!("client closed the connection");
                        break;
                    }
                    ReadOutcome::TimedOut => {
                        info!("idle timeout");
                        server.close_with(Reply::err(None, "Disconnected for inactivity."));
                    }
                    ReadOutcome::ShuttingDown => server.close_with(shutting_down()),
                }
            }
            Event::Login { user, password } => match ctx.auth.login(&ctx.store, peer.ip(), &user, &password).await {
                Ok(Login::Success(account)) => match open_maildrop(ctx, &account).await {
                    Ok((drop, entries)) => {
                        info!(user = %account.address, messages = entries.len(), "logged in");
                        maildrop = Some(drop);
                        server.accept_login(entries);
                    }
                    Err(reply) => server.reject_login(reply),
                },
                Ok(Login::Failure(delay)) => {
                    info!(delay_ms = delay.as_millis() as u64, "login failed");
                    tokio::time::sleep(delay).await;
                    server.reject_login(Reply::err(Some(Code::Auth), "Authentication failed."));
                }
                Err(e) => {
                    warn!(error = %e, "login check failed");
                    server.reject_login(temporary_failure());
                }
            },
            Event::Retrieve { msg, top_lines: _ } => {
                let Some(drop) = maildrop.as_mut() else {
                    server.message_unavailable();
                    continue;
                };
                match read_message(ctx, drop, msg, &mut message_buf).await {
                    Ok(true) => {
                        summary.retrieved += 1;
                        server.message(&message_buf);
                        if message_buf.capacity() > MESSAGE_BUFFER {
                            message_buf = Vec::new();
                        }
                    }
                    Ok(false) => server.message_unavailable(),
                    Err(e) => {
                        warn!(error = %e, msg, "cannot read message");
                        server.message_unavailable();
                    }
                }
            }
            Event::Update { deleted } => {
                let Some(drop) = maildrop.take() else {
                    server.update_done(0);
                    continue;
                };
                let uids: Vec<Uid> = deleted.iter().filter_map(|n| drop.messages.get(n - 1)).map(|m| m.0).collect();
                let expunged = expunge(ctx, drop.mailbox, &uids).await;
                // The lock goes after the expunge has committed and before
                // the final +OK is written: a client reconnecting at once
                // finds the maildrop free and already without the messages.
                std::mem::drop(drop);
                match expunged {
                    Ok(removed) => {
                        summary.deleted = removed as u32;
                        server.update_done(removed);
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot expunge deleted messages");
                        server.update_failed();
                    }
                }
            }
            Event::StartTls => {
                // The +OK goes out in the clear; then the handshake. The
                // protocol offers STLS only when there is an acceptor.
                write_output(&mut stream, &mut server).await?;
                stream.start_tls(&security).await?;
                server.tls_started();
            }
            Event::Close => {
                write_output(&mut stream, &mut server).await?;
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
    Ok(summary)
}

fn shutting_down() -> Reply {
    Reply::err(Some(Code::SysTemp), "Server shutting down.")
}

/// Locks the account's INBOX and takes the snapshot.
async fn open_maildrop(ctx: &Pop3Context, account: &AccountRecord) -> Result<(Maildrop, Vec<MaildropEntry>), Reply> {
    let store_failure = |e: StoreError| {
        warn!(error = %e, "cannot open maildrop");
        temporary_failure()
    };
    let inbox = ctx.store.mailbox(account.id, "INBOX").await.map_err(store_failure)?.ok_or_else(temporary_failure)?;
    let lock = ctx
        .locks
        .lock(inbox.id)
        .ok_or_else(|| Reply::err(Some(Code::InUse), "Mailbox is locked by another POP3 session."))?;
    // Subscribe before listing, so no change between the two is missed.
    let changes = ctx.store.subscribe();
    let records = ctx.store.messages(inbox.id).await.map_err(store_failure)?;
    // RFC 1939 §7: a UIDL is unique and never reused for the maildrop;
    // UIDVALIDITY and UID together are exactly that.
    let validity = inbox.uid_validity.get();
    let entries = records
        .iter()
        .map(|m| MaildropEntry { size: m.size, uidl: format!("{validity:08x}{:08x}", m.uid.get()) })
        .collect();
    let messages = records.into_iter().map(|m| (m.uid, m.blob, m.size)).collect();
    Ok((Maildrop { mailbox: inbox.id, messages, changes, changed: false, _lock: lock }, entries))
}

/// Reads message `msg` (1-based) into `buf`; `false` when it no longer
/// exists.
async fn read_message(
    ctx: &Pop3Context,
    drop: &mut Maildrop,
    msg: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, StoreError> {
    let Some((uid, blob, _)) = drop.messages.get(msg - 1).cloned() else {
        return Ok(false);
    };
    drop.poll_changes();
    if drop.changed && ctx.store.message(drop.mailbox, uid).await?.is_none() {
        return Ok(false);
    }
    ctx.store.read_blob(&blob, buf).await
}

/// RFC 1939 §6: the UPDATE state removes the marked messages.
async fn expunge(ctx: &Pop3Context, mailbox: MailboxId, uids: &[Uid]) -> Result<usize, StoreError> {
    if uids.is_empty() {
        return Ok(0);
    }
    Ok(ctx.store.expunge(mailbox, uids).await?.len())
}

async fn write_output<S: AsyncWrite + Unpin>(stream: &mut S, server: &mut Server) -> io::Result<()> {
    if !server.output().is_empty() {
        stream.write_all(server.output()).await?;
        stream.flush().await?;
        server.clear_output();
    }
    Ok(())
}
