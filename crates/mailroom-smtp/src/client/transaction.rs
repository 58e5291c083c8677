//! One mail transaction (RFC 5321 §3.3): MAIL, RCPT for each recipient,
//! then the message by DATA (dot-stuffed) or, when CHUNKING is offered,
//! by one `BDAT <n> LAST` (RFC 3030).
//!
//! With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go in one write
//! and their replies are read after; the message itself is sent only once
//! DATA got its 354, so it never goes to a server that refused every
//! recipient. BDAT waits for the RCPT replies for the same reason.

use tracing::debug;

use super::data;
use super::{ClientError, Connection, Envelope, RecipientOutcome, Reply};

/// Everything about a transaction that is decided before it starts.
struct Plan {
    /// The MAIL command line.
    mail: Vec<u8>,
    /// Index into the envelope's recipients and RCPT line of each
    /// recipient sent.
    rcpts: Vec<(usize, Vec<u8>)>,
}

impl Connection {
    /// Sends one message to the envelope's recipients and gives one
    /// outcome per recipient, in order. Refusals (of MAIL, of a recipient,
    /// of the message, a 421) are outcomes; an `Err` means the transaction
    /// broke off (I/O, timeout, a malformed reply), its outcome unknown,
    /// and the connection is no longer usable.
    ///
    /// A message over the advertised SIZE, or a UTF-8 address for a server
    /// without SMTPUTF8, fails at once with a made-up 5xx, sending nothing.
    pub async fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Vec<RecipientOutcome>, ClientError> {
        if !self.usable {
            return Err(ClientError::Unusable);
        }
        let mut outcomes: Vec<Option<RecipientOutcome>> = vec![None; envelope.recipients.len()];
        let plan = match self.plan(envelope, message, &mut outcomes) {
            Ok(plan) => plan,
            Err(refusal) => return Ok(envelope.recipients.iter().map(|_| refusal.clone()).collect()),
        };
        if !plan.rcpts.is_empty() {
            let result = self.transaction(&plan, message, &mut outcomes).await;
            if let Err(e) = result {
                self.usable = false;
                return Err(e);
            }
        }
        let outcomes: Vec<RecipientOutcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| RecipientOutcome::Transient(Reply::synthetic(451, (4, 3, 0), "no reply"))))
            .collect();
        debug!(
            peer = %self.peer,
            recipients = outcomes.len(),
            delivered = outcomes.iter().filter(|o| matches!(o, RecipientOutcome::Delivered(_))).count(),
            "transaction"
        );
        Ok(outcomes)
    }

    /// The commands, or the refusal of the whole message; recipients the
    /// server cannot be asked about get their outcome in `outcomes`.
    fn plan(
        &self,
        envelope: &Envelope,
        message: &[u8],
        outcomes: &mut [Option<RecipientOutcome>],
    ) -> Result<Plan, RecipientOutcome> {
        let ext = &self.extensions;
        let size = message.len() as u64 + data::missing_crlf(message).len() as u64;
        if let Some(max) = ext.max_size().filter(|&max| size > max) {
            let text = format!("message of {size} octets exceeds the server's limit of {max}");
            return Err(RecipientOutcome::Permanent(Reply::synthetic(552, (5, 3, 4), &text)));
        }
        let sender = envelope.sender.as_deref().unwrap_or("");
        if !is_sendable(sender) {
            return Err(RecipientOutcome::Permanent(Reply::synthetic(553, (5, 1, 7), "malformed sender address")));
        }
        if !sender.is_ascii() && !ext.smtputf8 {
            let text = "UTF-8 sender address, and the server does not offer SMTPUTF8";
            return Err(RecipientOutcome::Permanent(Reply::synthetic(553, (5, 6, 7), text)));
        }
        let mut rcpts = Vec::with_capacity(envelope.recipients.len());
        let mut utf8 = !sender.is_ascii();
        for (i, rcpt) in envelope.recipients.iter().enumerate() {
            let refusal = if rcpt.is_empty() || !is_sendable(rcpt) {
                Reply::synthetic(553, (5, 1, 3), "malformed recipient address")
            } else if !rcpt.is_ascii() && !ext.smtputf8 {
                Reply::synthetic(553, (5, 6, 7), "UTF-8 recipient address, and the server does not offer SMTPUTF8")
            } else {
                utf8 |= !rcpt.is_ascii();
                rcpts.push((i, [b"RCPT TO:<", rcpt.as_bytes(), b">\r\n"].concat()));
                continue;
            };
            outcomes[i] = Some(RecipientOutcome::Permanent(refusal));
        }
        let mut mail = [b"MAIL FROM:<", sender.as_bytes(), b">"].concat();
        if ext.size.is_some() {
            mail.extend_from_slice(format!(" SIZE={size}").as_bytes());
        }
        if ext.eight_bit_mime && data::is_8bit(message) {
            mail.extend_from_slice(b" BODY=8BITMIME");
        }
        if utf8 {
            mail.extend_from_slice(b" SMTPUTF8");
        }
        mail.extend_from_slice(b"\r\n");
        Ok(Plan { mail, rcpts })
    }

    /// Runs the transaction for the recipients in `plan`, filling their
    /// outcomes. Errors leave the connection unusable.
    async fn transaction(
        &mut self,
        plan: &Plan,
        message: &[u8],
        outcomes: &mut [Option<RecipientOutcome>],
    ) -> Result<(), ClientError> {
        let pipelining = self.extensions.pipelining;
        let bdat = self.extensions.chunking;
        let limit = self.command_timeout;
        if pipelining {
            let mut parts: Vec<&[u8]> = vec![&plan.mail];
            parts.extend(plan.rcpts.iter().map(|(_, line)| line.as_slice()));
            if !bdat {
                parts.push(b"DATA\r\n");
            }
            self.wire.write(&parts, limit, "MAIL").await?;
        } else {
            self.wire.write(&[&plan.mail], limit, "MAIL").await?;
        }
        let mail = self.wire.read_reply(limit, "MAIL").await?;
        if mail.is_closing() {
            return self.closing(mail, outcomes);
        }
        if !mail.is_positive() && !pipelining {
            fill(outcomes, RecipientOutcome::failure(mail));
            return Ok(());
        }

        let mut accepted = Vec::with_capacity(plan.rcpts.len());
        for (i, line) in &plan.rcpts {
            if !pipelining {
                self.wire.write(&[line], limit, "RCPT").await?;
            }
            let reply = self.wire.read_reply(limit, "RCPT").await?;
            if reply.is_closing() {
                return self.closing(reply, outcomes);
            }
            if reply.is_positive() {
                accepted.push(*i);
            } else {
                outcomes[*i] = Some(RecipientOutcome::failure(reply));
            }
        }
        let data = match pipelining && !bdat {
            true => Some(self.wire.read_reply(limit, "DATA").await?),
            false => None,
        };
        if let Some(reply) = data.as_ref().filter(|r| r.is_closing()) {
            return self.closing(reply.clone(), outcomes);
        }

        if !mail.is_positive() || accepted.is_empty() {
            // Whatever the server said to each RCPT, MAIL's refusal is the
            // reason; and every recipient refused is every outcome decided.
            if !mail.is_positive() {
                fill_all(outcomes, &plan.rcpts, RecipientOutcome::failure(mail.clone()));
            }
            self.abort(data.as_ref(), mail.is_positive()).await;
            return Ok(());
        }

        let last = if bdat {
            let size = message.len() + data::missing_crlf(message).len();
            let command = format!("BDAT {size} LAST\r\n");
            let parts: [&[u8]; 3] = [command.as_bytes(), message, data::missing_crlf(message)];
            self.wire.write(&parts, self.data_timeout, "BDAT").await?;
            self.wire.read_reply(self.data_timeout, "BDAT").await?
        } else {
            let data = match data {
                Some(reply) => reply,
                None => {
                    self.wire.write(&[b"DATA\r\n"], limit, "DATA").await?;
                    self.wire.read_reply(limit, "DATA").await?
                }
            };
            if data.code != 354 {
                if data.is_closing() {
                    return self.closing(data, outcomes);
                }
                fill(outcomes, RecipientOutcome::failure(data));
                self.rset().await;
                return Ok(());
            }
            self.wire.write_stuffed(message, self.data_timeout, "message").await?;
            self.wire.read_reply(self.data_timeout, "message").await?
        };
        if last.is_closing() {
            return self.closing(last, outcomes);
        }
        if bdat && !last.is_positive() {
            // RFC 3030 §4.2: the transaction failed; start afresh.
            fill(outcomes, RecipientOutcome::failure(last));
            self.rset().await;
            return Ok(());
        }
        fill(outcomes, RecipientOutcome::last(last));
        Ok(())
    }

    /// Ends a transaction that will carry no message: answers a 354 the
    /// server gave in spite of everything with an empty message (RFC 2920
    /// §3.1), and resets a transaction MAIL opened. Failures here only
    /// make the connection unusable: the outcomes are already decided.
    async fn abort(&mut self, data: Option<&Reply>, mail_accepted: bool) {
        if data.is_some_and(|r| r.code == 354) {
            let limit = self.data_timeout;
            match self.command(&[b".\r\n"], limit, "DATA").await {
                Ok(reply) if reply.is_closing() => self.usable = false,
                Ok(_) => {}
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "ending an empty DATA");
                    self.usable = false;
                }
            }
        }
        if mail_accepted && self.usable {
            self.rset().await;
        }
    }

    /// RSET, so that the next MAIL finds no transaction open. The
    /// connection is unusable unless the server agrees.
    async fn rset(&mut self) {
        match self.command(&[b"RSET\r\n"], self.command_timeout, "RSET").await {
            Ok(reply) if reply.is_positive() => {}
            Ok(reply) => {
                debug!(peer = %self.peer, %reply, "RSET refused");
                self.usable = false;
            }
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "RSET");
                self.usable = false;
            }
        }
    }

    /// A 421: the server is going away. Recipients without an outcome yet
    /// (accepted ones included) are to be tried again.
    fn closing(&mut self, reply: Reply, outcomes: &mut [Option<RecipientOutcome>]) -> Result<(), ClientError> {
        debug!(peer = %self.peer, %reply, "server closing the connection");
        self.usable = false;
        fill(outcomes, RecipientOutcome::Transient(reply));
        Ok(())
    }
}

/// Gives `outcome` to every recipient without one.
fn fill(outcomes: &mut [Option<RecipientOutcome>], outcome: RecipientOutcome) {
    for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
        *slot = Some(outcome.clone());
    }
}

/// Gives `outcome` to every recipient that was sent, replacing theirs.
fn fill_all(outcomes: &mut [Option<RecipientOutcome>], rcpts: &[(usize, Vec<u8>)], outcome: RecipientOutcome) {
    for (i, _) in rcpts {
        outcomes[*i] = Some(outcome.clone());
    }
}

/// Whether an address can go between angle brackets on a command line:
/// no line breaks or other control characters, no angle brackets.
fn is_sendable(address: &str) -> bool {
    !address.chars().any(|c| c.is_control() || c == '<' || c == '>')
}
