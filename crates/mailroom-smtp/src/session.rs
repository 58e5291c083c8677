//! One SMTP connection: read, feed the state machine, answer its decisions,
//! write. Generic over the stream so transcript tests run it in memory.
//!
//! Implementation notes:
//! - Output is flushed whenever the state machine needs input, which is what
//!   RFC 2920 §3.1 asks of a pipelining server; it is never held while the
//!   session waits on the network.
//! - A 2xx to the end of data is written only after [`deliver_local`] has
//!   returned, i.e. after the blob is fsync'd and the metadata committed.
//! - Reads are bounded (one buffer of [`READ_CHUNK`]); the state machine keeps
//!   its own buffer bounded; message data spills to disk as it arrives.

use std::borrow::Cow;
use std::io;
use std::net::{IpAddr, SocketAddr};

use mailroom_services::authenticate::{DmarcAction, Envelope, InboundChecks, Verdict, strip_forged};
use mailroom_services::delivery::{LocalRecipients, StoredMessage, deliver_local, deliver_local_special};
use mailroom_services::net::{ReadOutcome, Shutdown, read_or_stop};
use mailroom_services::tls::{MaybeTls, Security};
use mailroom_smtp_proto::{EnhancedCode, Event, ForwardPath, Reply, ReversePath, Server, ServerConfig};
use mailroom_store::{AccountRecord, MailStore, NewContent, Resolution, SpecialUse, StoreError};
use mailroom_types::{Address, QueueId};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};

use crate::content;
use crate::sink::Sink;
use crate::submit::{self, Accepted};
use crate::trace::{TraceInfo, trace_headers, with_protocol};
use crate::{Role, SmtpContext};

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// More `Received:` fields than this means a mail loop (RFC 5321 §6.3).
const MAX_HOPS: usize = 50;

/// What a finished session did, for its summary log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// Messages accepted with a 2xx.
    pub accepted: u32,
    /// Messages refused at the end of data.
    pub refused: u32,
}

/// The transaction between MAIL and the end of data.
#[derive(Default)]
struct Transaction {
    reverse_path: Option<ReversePath>,
    forward_paths: Vec<String>,
    recipients: LocalRecipients,
    /// Recipients in other domains (submission only).
    remote: Vec<Address>,
    sink: Option<(QueueId, Sink)>,
}

fn reply(code: u16, e: (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode(e.0, e.1, e.2)), text)
}

fn temporary_failure() -> Reply {
    reply(451, (4, 3, 0), "Error: internal error, try again later")
}

/// Runs one session to its end. The caller owns connection limits.
/// `security` says whether the stream is under TLS already, or plain with
/// STARTTLS offered when it carries an acceptor (RFC 3207).
pub async fn run_session<S>(
    mut stream: MaybeTls<S>,
    peer: SocketAddr,
    ctx: &SmtpContext,
    mut shutdown: Shutdown,
    security: Security,
) -> io::Result<SessionSummary>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut tls = security.is_tls();
    let submission = match &ctx.role {
        Role::Mta => None,
        Role::Submission(policy) => Some(policy.as_ref()),
    };
    // Passwords only under TLS, or from loopback (ARCHITECTURE.md).
    let passwords_allowed = |tls: bool| submission.is_some() && (tls || security.allows_passwords(peer.ip()));
    let mut server = Server::new(ServerConfig {
        hostname: ctx.hostname.clone(),
        limits: ctx.limits.clone(),
        starttls_available: security.starttls().is_some(),
        auth_available: passwords_allowed(tls),
        auth_required: submission.is_some(),
    });
    let mut user: Option<AccountRecord> = None;
    let mut txn = Transaction::default();
    let mut summary = SessionSummary::default();
    // Capacity only: `read_buf` fills spare capacity without zeroing it
    // first, which for one short message per connection was a visible cost.
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        // Checked before every step, not only while waiting for input: a
        // command already buffered when shutdown begins gets 421 too.
        if shutdown.is_triggered() {
            server.set_shutting_down();
        }
        match server.next() {
            Event::NeedInput => {
                write_output(&mut stream, &mut server).await?;
                if shutdown.is_triggered() && !server.is_receiving_data() {
                    server.close_with(shutting_down(ctx));
                    continue;
                }
                let timeout = if server.is_receiving_data() { ctx.data_timeout } else { ctx.command_timeout };
                buf.clear();
                // Once shutdown has begun, only message data is still read.
                let watch = (!shutdown.is_triggered()).then_some(&mut shutdown);
                match read_or_stop(&mut stream, &mut buf, timeout, watch).await? {
                    ReadOutcome::Data => server.feed(&buf),
                    ReadOutcome::Eof => {
                        debug!("client closed the connection");
                        break;
                    }
                    ReadOutcome::TimedOut => {
                        info!("idle timeout");
                        server.close_with(reply(421, (4, 4, 2), format!("{} Error: timeout exceeded", ctx.hostname)));
                    }
                    ReadOutcome::ShuttingDown => server.set_shutting_down(),
                }
            }
            Event::Mail { reverse_path, params: _ } => {
                if let (Some(policy), Some(account)) = (submission, &user)
                    && let Err(r) = submit::check_sender(ctx, policy, account, &reverse_path).await
                {
                    server.reject(r);
                    continue;
                }
                txn = Transaction { reverse_path: Some(reverse_path), ..Transaction::default() };
                server.accept();
            }
            Event::Rcpt { forward_path, params: _ } => match resolve(ctx, &forward_path).await {
                Ok(Recipient::Local(shown, accounts)) => {
                    txn.forward_paths.push(shown);
                    txn.recipients.extend(&accounts);
                    server.accept();
                }
                // Only an authenticated submission gets this far with a
                // remote recipient; the MTA role refused it in `resolve`.
                Ok(Recipient::Remote(address)) if submission.is_some() && user.is_some() => {
                    txn.forward_paths.push(address.to_string());
                    if !txn.remote.contains(&address) {
                        txn.remote.push(address);
                    }
                    server.accept();
                }
                Ok(Recipient::Remote(address)) => server.reject(relay_denied(&address)),
                Err(r) => server.reject(r),
            },
            Event::Auth { authzid, username, password, .. } => {
                let Some(policy) = submission else {
                    server.reject(reply(503, (5, 5, 1), "Error: authentication not enabled"));
                    continue;
                };
                match submit::login(ctx, policy, peer.ip(), &authzid, &username, &password).await {
                    Ok(account) => {
                        user = Some(account);
                        server.accept();
                    }
                    Err(r) => server.reject(r),
                }
            }
            Event::DataStart => {
                let now = ctx.clock.now();
                let id = ctx.ids.queue_id(now);
                let reverse_path = txn.reverse_path.clone().unwrap_or(ReversePath::Null);
                let single = (txn.forward_paths.len() == 1).then(|| txn.forward_paths[0].as_str());
                let info = TraceInfo {
                    helo: server.helo().unwrap_or("unknown"),
                    peer: peer.ip(),
                    hostname: &ctx.hostname,
                    protocol: with_protocol(server.is_extended(), tls, server.transaction_smtputf8(), user.is_some()),
                    id: &id,
                    single_recipient: single,
                    date: now,
                };
                let prefix = trace_headers(&reverse_path, &info);
                let complete = submission.map(|_| submit::completer(ctx));
                let sink = Sink::new(ctx.store.blobs().clone(), ctx.ids.blob_id(now), prefix, complete);
                txn.sink = Some((id, sink));
                server.accept();
            }
            Event::Data(bytes) => {
                if let Some((_, sink)) = txn.sink.as_mut() {
                    sink.push(&bytes).await;
                }
            }
            Event::MessageEnd => {
                let client = Client { ip: peer.ip(), helo: server.helo().unwrap_or("") };
                let outcome = finish_message(ctx, &mut txn, submission.zip(user.as_ref()), client).await;
                if outcome.is_positive() {
                    summary.accepted += 1
                } else {
                    summary.refused += 1
                }
                server.complete(outcome);
                txn = Transaction::default();
            }
            Event::MessageAborted => {
                summary.refused += 1;
                txn = Transaction::default();
            }
            Event::StartTls => {
                // The 220 goes out in the clear; then the handshake. The
                // protocol offers STARTTLS only when there is an acceptor.
                write_output(&mut stream, &mut server).await?;
                stream.start_tls(&security).await?;
                server.tls_started();
                tls = true;
                server.set_auth_available(passwords_allowed(tls));
            }
            // AUTH is not offered here yet (`auth_available` is false), so
            // this never comes; refused rather than trusted if it does.
            Event::Close => {
                write_output(&mut stream, &mut server).await?;
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
    Ok(summary)
}

fn shutting_down(ctx: &SmtpContext) -> Reply {
    reply(421, (4, 3, 2), format!("{} Service shutting down", ctx.hostname))
}

async fn write_output<S: AsyncWrite + Unpin>(stream: &mut S, server: &mut Server) -> io::Result<()> {
    let out = server.take_output();
    if !out.is_empty() {
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
    Ok(())
}

/// Where a recipient leads.
enum Recipient {
    /// Local accounts, with the address shown in trace headers.
    Local(String, Vec<mailroom_types::AccountId>),
    /// Another domain: for the queue, if the session may relay.
    Remote(Address),
}

/// Decides a recipient (RFC 5321 §4.1.1.3), or refuses it.
async fn resolve(ctx: &SmtpContext, path: &ForwardPath) -> Result<Recipient, Reply> {
    let address = match path {
        ForwardPath::Address(a) => a.clone(),
        ForwardPath::Postmaster => postmaster_address(ctx).await?,
    };
    match ctx.store.resolve_recipient(&address).await {
        Ok(Resolution::Accounts(accounts)) => Ok(Recipient::Local(address.to_string(), accounts)),
        Ok(Resolution::Unknown) => {
            Err(reply(550, (5, 1, 1), format!("<{address}>: Recipient address rejected: User unknown")))
        }
        Ok(Resolution::NotLocal) => Ok(Recipient::Remote(address)),
        Err(e) => Err(store_failure(&e)),
    }
}

/// No relaying for anyone but an authenticated user of a submission
/// listener, ever (design.md, "No open relay").
fn relay_denied(address: &Address) -> Reply {
    reply(554, (5, 7, 1), format!("<{address}>: Relay access denied"))
}

/// How many `Received:` fields a header section has.
fn hops(header: &[u8]) -> usize {
    header.split(|&b| b == b'\n').filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:")).count()
}

/// `RCPT TO:<Postmaster>` means this server's postmaster (RFC 5321
/// §4.1.1.3): that of the hostname's domain or its closest local parent
/// (`mx.example.org` -> `example.org`), else of the first local domain.
async fn postmaster_address(ctx: &SmtpContext) -> Result<Address, Reply> {
    let domains = ctx.store.list_domains().await.map_err(|e| store_failure(&e))?;
    let host = ctx.hostname.to_ascii_lowercase();
    let parents = std::iter::successors(Some(host.as_str()), |h| h.split_once('.').map(|(_, rest)| rest));
    let domain = parents
        .filter_map(|candidate| domains.iter().find(|d| d.name.as_str() == candidate))
        .chain(domains.first())
        .next()
        .map(|d| d.name.clone())
        .ok_or_else(|| reply(550, (5, 1, 1), "<Postmaster>: Recipient address rejected: User unknown"))?;
    Address::new("postmaster", domain).map_err(|_| temporary_failure())
}

fn store_failure(e: &StoreError) -> Reply {
    warn!(error = %e, "store failure");
    temporary_failure()
}

/// Who sent the message, for the MTA role's checks.
#[derive(Clone, Copy)]
struct Client<'a> {
    ip: IpAddr,
    helo: &'a str,
}

/// Makes the message durable and commits it to every recipient's INBOX
/// (and, for a submission, the queue); the reply for the end of data.
/// In the MTA role with checks on, the message first gets its
/// `Authentication-Results:` and meets its DMARC policy: refused, or
/// delivered into Junk.
async fn finish_message(
    ctx: &SmtpContext,
    txn: &mut Transaction,
    submission: Option<(&crate::SubmissionPolicy, &AccountRecord)>,
    client: Client<'_>,
) -> Reply {
    let Some((id, sink)) = txn.sink.take() else {
        return temporary_failure();
    };
    if hops(sink.client_header()) > MAX_HOPS {
        return reply(554, (5, 4, 6), "Error: too many hops (mail loop?)");
    }
    if let Some((_, account)) = submission
        && let Err(r) = submit::check_from(ctx, account, sink.client_header()).await
    {
        return r;
    }
    let received_at = ctx.clock.now();
    let stored = match sink.finish(received_at).await {
        Ok(stored) => stored,
        Err(e) => {
            warn!(error = %e, queue_id = %id, "cannot write message");
            return temporary_failure();
        }
    };
    if let Some((policy, account)) = submission {
        let sender = txn.reverse_path.clone().unwrap_or(ReversePath::Null);
        let accepted = Accepted {
            id: id.clone(),
            stored: &stored,
            sender: &sender,
            local: txn.recipients.as_slice(),
            remote: &txn.remote,
        };
        let outcome = submit::commit(ctx, policy, account, accepted).await;
        if !outcome.is_positive()
            && let NewContent::File(blob, _) = &stored.content
        {
            let _ = ctx.store.blobs().delete(blob);
        }
        return outcome;
    }
    let mut action = DmarcAction::None;
    let stored = match &ctx.inbound {
        Some(checks) => {
            let sender = txn.reverse_path.clone().unwrap_or(ReversePath::Null);
            let old = stored.content.clone();
            match check_inbound(ctx, checks, &sender, client, stored).await {
                Ok((stored, verdict)) => {
                    action = verdict.action;
                    if verdict.action == DmarcAction::Reject {
                        let domain = verdict.dmarc_domain.unwrap_or_default();
                        info!(queue_id = %id, %domain, "message refused per DMARC policy");
                        if let NewContent::File(blob, _) = &stored.content {
                            let _ = ctx.store.blobs().delete(blob);
                        }
                        return reply(550, (5, 7, 1), format!("Email rejected per DMARC policy for {domain}"));
                    }
                    stored
                }
                Err(e) => {
                    warn!(error = %e, queue_id = %id, "cannot read or rewrite message");
                    if let NewContent::File(blob, _) = &old {
                        let _ = ctx.store.blobs().delete(blob);
                    }
                    return temporary_failure();
                }
            }
        }
        None => stored,
    };
    let delivered = if action == DmarcAction::Quarantine {
        deliver_local_special(&ctx.store, &stored, &txn.recipients, SpecialUse::Junk).await
    } else {
        deliver_local(&ctx.store, &stored, &txn.recipients).await
    };
    match delivered {
        Ok(copies) => {
            info!(queue_id = %id, size = stored.size, recipients = copies.len(), "message delivered");
            reply(250, (2, 0, 0), format!("Ok: queued as {id}"))
        }
        Err(e) => {
            warn!(error = %e, queue_id = %id, "cannot deliver message");
            if let NewContent::File(blob, _) = &stored.content {
                let _ = ctx.store.blobs().delete(blob);
            }
            if e.is_temporary() { temporary_failure() } else { reply(554, (5, 3, 0), "Error: delivery failed") }
        }
    }
}

/// Runs the checks over the received message, removes forged
/// `Authentication-Results:` fields and adds ours after this server's trace
/// fields; the message to deliver and the verdict.
async fn check_inbound(
    ctx: &SmtpContext,
    checks: &InboundChecks,
    sender: &ReversePath,
    client: Client<'_>,
    stored: StoredMessage,
) -> io::Result<(StoredMessage, Verdict)> {
    let bytes = content::bytes(ctx.store.blobs(), &stored).await?;
    let mail_from = match sender {
        ReversePath::Null => None,
        ReversePath::Address(a) => Some(a.to_string()),
    };
    let envelope = Envelope { ip: client.ip, helo: client.helo, mail_from: mail_from.as_deref() };
    let Some(verdict) = checks.verify(&ctx.hostname, &envelope, &bytes).await else {
        // Every check is off: forged fields still go.
        let verdict = Verdict { field: String::new(), action: DmarcAction::None, dmarc_domain: None };
        return match strip_forged(&bytes, &ctx.hostname) {
            Cow::Borrowed(_) => Ok((stored, verdict)),
            Cow::Owned(stripped) => {
                let now = ctx.clock.now();
                Ok((content::replace(ctx.store.blobs(), &ctx.ids, now, stored, stripped).await?, verdict))
            }
        };
    };
    debug!(verdict = %verdict.field.trim_end(), "inbound checks");
    let stripped = strip_forged(&bytes, &ctx.hostname);
    let at = after_trace_fields(&stripped);
    let edited = content::insert_fields(&stripped, at, verdict.field.as_bytes());
    let stored = content::replace(ctx.store.blobs(), &ctx.ids, ctx.clock.now(), stored, edited).await?;
    Ok((stored, verdict))
}

/// The offset of the first header field that is neither `Return-Path:` nor
/// `Received:`: the trace fields at the top end there.
fn after_trace_fields(message: &[u8]) -> usize {
    let mut at = 0;
    let mut in_trace = false;
    while at < message.len() {
        let line_end = message[at..].iter().position(|&b| b == b'\n').map_or(message.len(), |n| at + n + 1);
        let line = &message[at..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !(continuation && in_trace) {
            let name = line.split(|&b| b == b':').next().unwrap_or_default().trim_ascii_end();
            in_trace = line.contains(&b':')
                && (name.eq_ignore_ascii_case(b"return-path") || name.eq_ignore_ascii_case(b"received"));
            if !in_trace {
                return at;
            }
        }
        at = line_end;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::after_trace_fields;

    #[test]
    fn trace_fields_end_at_the_first_other_field() {
        let m = b"Return-Path: <a@b>\r\nReceived: from x\r\n\tby y\r\nreceived: z\r\nSubject: s\r\n\r\nb\r\n";
        assert_eq!(after_trace_fields(m), m.len() - b"Subject: s\r\n\r\nb\r\n".len());
        assert_eq!(after_trace_fields(b"Subject: s\r\n\r\n"), 0);
        let m = b"Received: x\r\n\r\nbody\r\n";
        assert_eq!(after_trace_fields(m), 13, "before the blank line");
    }
}
