//! The submission role's decisions (RFC 6409): who is logged in, which
//! senders they may use, how much they may send, and where their mail goes
//! (local copies now, the queue for the rest, in one commit).

use std::net::IpAddr;

use mailroom_services::auth::Login;
use mailroom_services::delivery::StoredMessage;
use mailroom_services::submission::{from_addresses, missing_fields, owns};
use mailroom_smtp_proto::{EnhancedCode, Reply, ReversePath};
use mailroom_store::{AccountRecord, MailStore, NewContent, NewQueueEntry, Submission};
use mailroom_types::{AccountId, Address, QueueId, Secret};
use tracing::{info, warn};

use crate::content;
use crate::sink::Completer;
use crate::{SmtpContext, SubmissionPolicy};

fn reply(code: u16, e: (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode(e.0, e.1, e.2)), text)
}

/// Checks a login; a failure is answered only after its throttling delay.
pub(crate) async fn login(
    ctx: &SmtpContext,
    policy: &SubmissionPolicy,
    ip: IpAddr,
    authzid: &str,
    username: &str,
    password: &Secret<String>,
) -> Result<AccountRecord, Reply> {
    let failed = || reply(535, (5, 7, 8), "Error: authentication failed");
    match policy.auth.login(&ctx.store, ip, username, password).await {
        // Acting for another user (RFC 4616 §2) is not supported.
        Ok(Login::Success(account)) if authzid.is_empty() || authzid.eq_ignore_ascii_case(username) => {
            info!(user = %account.address, "authenticated");
            Ok(account)
        }
        Ok(Login::Success(_)) => Err(failed()),
        Ok(Login::Failure(delay)) => {
            tokio::time::sleep(delay).await;
            Err(failed())
        }
        Err(e) => {
            warn!(error = %e, "login check failed");
            Err(reply(454, (4, 7, 0), "Temporary authentication failure"))
        }
    }
}

/// MAIL FROM on a submission port: the sender must be the user's and the
/// user within their sending rate. The null sender is allowed (MDNs, RFC
/// 8098 §2.1, use it).
pub(crate) async fn check_sender(
    ctx: &SmtpContext,
    policy: &SubmissionPolicy,
    account: &AccountRecord,
    sender: &ReversePath,
) -> Result<(), Reply> {
    if !policy.rate.allows(account.id) {
        return Err(reply(450, (4, 7, 1), format!("Error: too much mail from {}, try again later", account.address)));
    }
    let ReversePath::Address(address) = sender else { return Ok(()) };
    match owns(&ctx.store, account, address).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(not_owned(address, account)),
        Err(e) => {
            warn!(error = %e, "sender check failed");
            Err(reply(451, (4, 3, 0), "Error: internal error, try again later"))
        }
    }
}

fn not_owned(address: &dyn std::fmt::Display, account: &AccountRecord) -> Reply {
    reply(553, (5, 7, 1), format!("<{address}>: Sender address rejected: not owned by user {}", account.address))
}

/// Adds `Date:` and `Message-ID:` to a submitted message that lacks them.
pub(crate) fn completer(ctx: &SmtpContext) -> Completer {
    let (now, ids, hostname) = (ctx.clock.now(), ctx.ids.clone(), ctx.hostname.clone());
    Box::new(move |header: &[u8]| missing_fields(header, now, &ids, &hostname))
}

/// The `From:` field of a submitted message must name only addresses the
/// user owns, and must be there (RFC 5322 §3.6).
pub(crate) async fn check_from(ctx: &SmtpContext, account: &AccountRecord, header: &[u8]) -> Result<(), Reply> {
    let from = from_addresses(header);
    if from.is_empty() {
        return Err(reply(550, (5, 6, 0), "Error: message has no From: header field"));
    }
    for text in from {
        let owned = match Address::parse(&text) {
            Ok(address) => owns(&ctx.store, account, &address).await.map_err(|e| {
                warn!(error = %e, "From: check failed");
                reply(451, (4, 3, 0), "Error: internal error, try again later")
            })?,
            Err(_) => false,
        };
        if !owned {
            return Err(reply(
                553,
                (5, 7, 1),
                format!("<{text}>: From: address rejected: not owned by user {}", account.address),
            ));
        }
    }
    Ok(())
}

/// What a submitted message is and where it goes.
pub(crate) struct Accepted<'a> {
    pub(crate) id: QueueId,
    pub(crate) stored: &'a StoredMessage,
    pub(crate) sender: &'a ReversePath,
    pub(crate) local: &'a [AccountId],
    pub(crate) remote: &'a [Address],
}

/// Signs the message (DKIM, when its From: domain has keys), then commits
/// the local copies and the queue entry; the reply to the end of data.
pub(crate) async fn commit(
    ctx: &SmtpContext,
    policy: &SubmissionPolicy,
    account: &AccountRecord,
    m: Accepted<'_>,
) -> Reply {
    let signed = match sign(ctx, policy, m.stored).await {
        Ok(signed) => signed,
        Err(e) => {
            warn!(error = %e, queue_id = %m.id, "cannot DKIM-sign submitted message");
            return reply(451, (4, 3, 0), "Error: internal error, try again later");
        }
    };
    let stored = signed.as_ref().unwrap_or(m.stored);
    let message = stored.new_message();
    let queue = (!m.remote.is_empty()).then(|| NewQueueEntry {
        id: m.id.clone(),
        sender: match m.sender {
            ReversePath::Address(a) => Some(a.clone()),
            ReversePath::Null => None,
        },
        recipients: m.remote.to_vec(),
        created: stored.received_at,
        first_attempt: stored.received_at,
    });
    let submission = Submission { message, local: m.local.to_vec(), queue, sent: None };
    match policy.outbound.submit(&submission).await {
        Ok(copies) => {
            policy.rate.record(account.id);
            info!(
                queue_id = %m.id, user = %account.address, size = stored.size, signed = signed.is_some(),
                local = copies.len(), remote = m.remote.len(), "message submitted"
            );
            reply(250, (2, 0, 0), format!("Ok: queued as {}", m.id))
        }
        Err(e) => {
            warn!(error = %e, queue_id = %m.id, "cannot store submitted message");
            // The caller removes the original's file; a signed copy's is ours.
            if let Some(NewContent::File(blob, _)) = signed.as_ref().map(|s| &s.content) {
                let _ = ctx.store.blobs().delete(blob);
            }
            if e.is_temporary() {
                reply(451, (4, 3, 0), "Error: internal error, try again later")
            } else {
                reply(554, (5, 3, 0), "Error: submission failed")
            }
        }
    }
}

/// The message with its `DKIM-Signature:` fields, or `None` when no key
/// signs it. The fields go right after the trace fields this server put on
/// top (`Return-Path:`, `Received:`), where a signer's fields belong
/// (RFC 6376 §5.6): above the message's own header, below later hops'.
async fn sign(
    ctx: &SmtpContext,
    policy: &SubmissionPolicy,
    stored: &StoredMessage,
) -> std::io::Result<Option<StoredMessage>> {
    if policy.dkim.is_empty() {
        return Ok(None);
    }
    let bytes = content::bytes(ctx.store.blobs(), stored).await?;
    let now = ctx.clock.now();
    let fields = policy.dkim.sign(&bytes, now);
    if fields.is_empty() {
        return Ok(None);
    }
    let signed = content::insert_fields(&bytes, after_trace(&bytes), &fields);
    content::replace(ctx.store.blobs(), &ctx.ids, now, stored.clone(), signed).await.map(Some)
}

/// The offset of the first header field that is not a trace field
/// (`Return-Path:` or `Received:`, each with its folded lines).
fn after_trace(message: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let rest = &message[at..];
        let name = rest.iter().position(|b| *b == b':').map_or(rest, |colon| &rest[..colon]);
        if !(name.eq_ignore_ascii_case(b"Return-Path") || name.eq_ignore_ascii_case(b"Received")) {
            return at;
        }
        // Past this field: its line and every continuation line.
        loop {
            match message[at..].iter().position(|b| *b == b'\n') {
                Some(nl) => at += nl + 1,
                None => return message.len(),
            }
            if !matches!(message.get(at), Some(b' ' | b'\t')) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::after_trace;

    #[test]
    fn signatures_go_after_this_servers_trace_fields() {
        let m = b"Return-Path: <a@example.test>\r\nReceived: from x\r\n\tby y; date\r\nreceived: z\r\nFrom: a@example.test\r\nReceived: late\r\n\r\nbody\r\n";
        assert_eq!(&m[after_trace(m)..][..5], b"From:");
        let bare = b"From: a@example.test\r\n\r\nbody\r\n";
        assert_eq!(after_trace(bare), 0);
        assert_eq!(after_trace(b"Received: x\r\n"), 13);
    }
}
