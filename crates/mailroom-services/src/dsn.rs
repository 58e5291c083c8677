//! Delivery status notifications (RFC 3464): the bounce or delay report the
//! queue sends to a message's envelope sender.
//!
//! A DSN is a `multipart/report; report-type=delivery-status` (RFC 6522)
//! of three parts: a text for people, naming each recipient and quoting
//! the remote server's reply as Postfix does; the `message/delivery-status`
//! part for programs; and the original message's header section as
//! `text/rfc822-headers` (never its body: a bounce must not carry the
//! content back, nor double the size of a large message).
//!
//! mail-builder assembles the MIME structure. Every part is given its own
//! `Content-Transfer-Encoding` so mail-builder writes the bodies as they
//! are: the delivery-status fields must stay readable text (7bit), never
//! base64 or quoted-printable. The result has CRLF line ends only, as the
//! store requires. Building reads no clock: the caller passes `now`.
//!
//! Not done yet: internationalized addresses and headers (RFC 6533's
//! `message/global-delivery-status`); they are written as 8bit text.

use std::fmt::Write as _;
use std::time::SystemTime;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mailroom_types::time::rfc5322;

/// Longest text interpolated from elsewhere (a remote reply, an address):
/// keeps every line under RFC 5322 §2.1.1's 998 characters without folding.
const MAX_QUOTED: usize = 900;

/// What happened to a recipient (RFC 3464 §2.3.3); only the two the queue
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Delivery failed for good: the message is returned.
    Failed,
    /// Delivery has not succeeded yet and is still being retried.
    Delayed,
}

impl DsnAction {
    fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
        }
    }
}

/// One recipient's entry in a DSN.
#[derive(Debug, Clone)]
pub struct DsnRecipient {
    /// The recipient address as the message was sent to it (`Final-Recipient`).
    pub recipient: String,
    /// Failed or delayed.
    pub action: DsnAction,
    /// The enhanced status code (RFC 3463), e.g. `(5, 1, 1)`.
    pub status: (u8, u16, u16),
    /// The host that gave the reply, when one did (`Remote-MTA`).
    pub remote_mta: Option<String>,
    /// The remote reply, e.g. `550 5.1.1 <bob@other.test>: User unknown`,
    /// or a local explanation (`connection refused`).
    pub diagnostic: Option<String>,
    /// When delivery was last tried.
    pub last_attempt: Option<SystemTime>,
    /// When the queue gives up, for a delayed recipient.
    pub will_retry_until: Option<SystemTime>,
}

/// Everything a DSN says.
#[derive(Debug, Clone)]
pub struct DsnRequest<'a> {
    /// Our host name (`Reporting-MTA`, and the default `From` domain).
    pub reporting_mta: &'a str,
    /// The original envelope sender: the DSN is addressed to it.
    pub sender: &'a str,
    /// The `From` address; `MAILER-DAEMON@<reporting_mta>` when `None`.
    pub postmaster: Option<&'a str>,
    /// The queue id of the original message (`X-Mailroom-Queue-ID`).
    pub queue_id: &'a str,
    /// When the original message was accepted (`Arrival-Date`).
    pub arrival: SystemTime,
    /// The DSN's `Date`.
    pub now: SystemTime,
    /// The recipients reported on; those delivered are not listed.
    pub recipients: &'a [DsnRecipient],
    /// The original message; only its header section is quoted.
    pub original: &'a [u8],
    /// The DSN's own Message-ID, unique, as `<id@host>` (brackets optional).
    pub message_id: String,
}

/// Builds the DSN, ready to queue or store: CRLF line ends throughout.
///
/// The caller never asks for one when the original envelope sender was
/// null (`MAIL FROM:<>`): RFC 5321 §6.1 forbids notifications about
/// notifications. The DSN itself is sent with a null sender.
pub fn build(req: &DsnRequest) -> Vec<u8> {
    let all_delayed = !req.recipients.is_empty() && req.recipients.iter().all(|r| r.action == DsnAction::Delayed);
    let subject =
        if all_delayed { "Delayed Mail (still being retried)" } else { "Undelivered Mail Returned to Sender" };
    let reporting_mta = clean(req.reporting_mta);
    let from = match req.postmaster {
        Some(address) => clean(address),
        None => format!("MAILER-DAEMON@{reporting_mta}"),
    };
    let message_id = req.message_id.trim().trim_start_matches('<').trim_end_matches('>');

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            leaf("text/plain", "Notification", human_text(req, &reporting_mta).into_bytes()),
            leaf("message/delivery-status", "Delivery report", delivery_status(req, &reporting_mta).into_bytes()),
            leaf("text/rfc822-headers", "Undelivered Message Headers", header_section(req.original)),
        ],
    );

    let mut out = Vec::new();
    MessageBuilder::new()
        .header("From", Raw::new(format!("Mail Delivery System <{from}>")))
        .header("To", Raw::new(format!("<{}>", clean(req.sender))))
        .header("Subject", Raw::new(subject))
        .header("Date", Raw::new(rfc5322(req.now)))
        .header("Message-ID", MessageId::new(clean(message_id)))
        // RFC 3834 §5: an automatic reply, so no autoresponder answers it.
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .serialize(&mut out);
    out
}

/// A leaf part written verbatim: the explicit transfer encoding makes
/// mail-builder skip its own choice (base64 or quoted-printable). Bodies
/// here are CRLF text with short lines, so 7bit is true unless a quoted
/// address or header is not ASCII.
fn leaf(content_type: &'static str, description: &'static str, body: Vec<u8>) -> MimePart<'static> {
    let encoding = if body.is_ascii() { "7bit" } else { "8bit" };
    let mut kind = ContentType::new(content_type);
    if content_type.starts_with("text/") {
        kind = kind.attribute("charset", if body.is_ascii() { "us-ascii" } else { "utf-8" });
    }
    MimePart::new(kind, body).header("Content-Description", Raw::new(description)).transfer_encoding(encoding)
}

/// The part for people, in the manner of Postfix's bounce text.
fn human_text(req: &DsnRequest, reporting_mta: &str) -> String {
    let mut text = format!("This is the mail system at host {reporting_mta}.\r\n\r\n");
    let failed: Vec<_> = req.recipients.iter().filter(|r| r.action == DsnAction::Failed).collect();
    let delayed: Vec<_> = req.recipients.iter().filter(|r| r.action == DsnAction::Delayed).collect();
    if !failed.is_empty() {
        text.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. The headers of your\r\n\
             message are attached below.\r\n\r\n\
             For further assistance, please send mail to postmaster.\r\n\r\n",
        );
        for r in &failed {
            recipient_text(&mut text, r);
            text.push_str("\r\n");
        }
    }
    if !delayed.is_empty() {
        text.push_str(
            "Your message could not be delivered yet to one or more\r\n\
             recipients. The mail system will keep trying; you do not need\r\n\
             to send it again.\r\n\r\n",
        );
        for r in &delayed {
            recipient_text(&mut text, r);
            if let Some(until) = r.will_retry_until {
                let _ = write!(text, "    Delivery will be tried until {}.\r\n", rfc5322(until));
            }
            text.push_str("\r\n");
        }
    }
    text.push_str("                   The mail system\r\n");
    text
}

/// `<bob@other.test>: host mx.other.test said: 550 ...`, or what is known.
fn recipient_text(text: &mut String, r: &DsnRecipient) {
    let _ = write!(text, "<{}>: ", clean(&r.recipient));
    match (&r.remote_mta, &r.diagnostic) {
        (Some(host), Some(reply)) => {
            let _ = write!(text, "host {} said: {}", clean(host), clean(reply));
        }
        (None, Some(reason)) => text.push_str(&clean(reason)),
        (Some(host), None) => {
            let _ = write!(text, "delivery to host {} did not succeed", clean(host));
        }
        (None, None) => text.push_str("delivery did not succeed"),
    }
    text.push_str("\r\n");
}

/// The `message/delivery-status` body (RFC 3464 §2.2, §2.3): per-message
/// fields, then one block per recipient, blocks separated by empty lines.
fn delivery_status(req: &DsnRequest, reporting_mta: &str) -> String {
    let mut body = format!("Reporting-MTA: dns; {reporting_mta}\r\n");
    if !req.queue_id.is_empty() {
        let _ = write!(body, "X-Mailroom-Queue-ID: {}\r\n", clean(req.queue_id));
    }
    let _ = write!(body, "Arrival-Date: {}\r\n", rfc5322(req.arrival));
    for r in req.recipients {
        let (class, subject, detail) = r.status;
        let _ = write!(body, "\r\nFinal-Recipient: rfc822; {}\r\n", clean(&r.recipient));
        let _ = write!(body, "Action: {}\r\n", r.action.as_str());
        let _ = write!(body, "Status: {class}.{subject}.{detail}\r\n");
        if let Some(host) = &r.remote_mta {
            let _ = write!(body, "Remote-MTA: dns; {}\r\n", clean(host));
        }
        if let Some(diagnostic) = &r.diagnostic {
            let diagnostic = clean(diagnostic);
            // RFC 3464 §2.3.6: "smtp" types a reply from an SMTP server;
            // anything else (a connection error) is our own wording.
            let kind = if is_smtp_reply(&diagnostic) { "smtp" } else { "X-Mailroom" };
            let _ = write!(body, "Diagnostic-Code: {kind}; {diagnostic}\r\n");
        }
        if let Some(at) = r.last_attempt {
            let _ = write!(body, "Last-Attempt-Date: {}\r\n", rfc5322(at));
        }
        // RFC 3464 §2.3.9: only for a delayed recipient.
        if let (DsnAction::Delayed, Some(until)) = (r.action, r.will_retry_until) {
            let _ = write!(body, "Will-Retry-Until: {}\r\n", rfc5322(until));
        }
    }
    body
}

/// `550 ...` or `550-...`: a reply code, so the text came from a server.
fn is_smtp_reply(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && matches!(bytes[3], b' ' | b'-')
}

/// The header section of `message`, up to and including the line end of
/// its last header line; all of it when there is no body. Line ends are
/// made CRLF whatever the input, so the DSN is CRLF throughout.
fn header_section(message: &[u8]) -> Vec<u8> {
    let end = find_blank_line(message).unwrap_or(message.len());
    let mut out = Vec::with_capacity(end + 2);
    let mut bytes = message[..end].iter().copied().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the empty line after the header section starts (the index just
/// past the last header line's end), for CRLF or bare-LF input.
fn find_blank_line(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") || message.starts_with(b"\n") {
        return Some(0);
    }
    message.windows(2).enumerate().find_map(|(i, pair)| match pair {
        b"\n\n" => Some(i + 1),
        b"\n\r" if message.get(i + 2) == Some(&b'\n') => Some(i + 1),
        _ => None,
    })
}

/// Text from outside (a remote reply, an address) made safe for one line:
/// control characters, CR and LF become spaces, runs of spaces one, and
/// the length is capped at [`MAX_QUOTED`] bytes.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_QUOTED));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_QUOTED {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_stops_at_the_blank_line() {
        assert_eq!(header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"), b"A: 1\r\nB: 2\r\n");
        assert_eq!(header_section(b"A: 1\nB: 2\n\nbody\n"), b"A: 1\r\nB: 2\r\n");
        assert_eq!(header_section(b"A: 1\r\n\tfolded\r\n"), b"A: 1\r\n\tfolded\r\n");
        assert_eq!(header_section(b"A: 1"), b"A: 1\r\n");
        assert_eq!(header_section(b"\r\nbody only\r\n"), b"");
        assert_eq!(header_section(b"A: bare\rCR\r\n\r\n"), b"A: bare\r\nCR\r\n");
    }

    #[test]
    fn quoted_text_is_one_bounded_line() {
        assert_eq!(clean("550-first\r\n550 second\r\n"), "550-first 550 second");
        assert_eq!(clean("  a \t b  "), "a b");
        let long = clean(&"\u{e9}".repeat(1000));
        assert!(long.len() <= MAX_QUOTED && long.chars().all(|c| c == '\u{e9}'));
    }

    #[test]
    fn smtp_replies_are_told_from_local_reasons() {
        assert!(is_smtp_reply("550 5.1.1 unknown"));
        assert!(is_smtp_reply("451-try later"));
        assert!(!is_smtp_reply("connect to mx: Connection refused"));
        assert!(!is_smtp_reply("550"));
    }
}
