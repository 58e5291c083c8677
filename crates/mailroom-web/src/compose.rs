//! Composing mail: turns what the composer form holds into the bytes of a
//! message to send or to keep in Drafts, reads a stored draft back into the
//! form, and prepares the form for a reply or a forward.
//!
//! Everything here is pure and synchronous: no store, no clock, no
//! randomness. The caller passes the date and the Message-ID in, so the
//! output of [`build`] is the same for the same input (apart from MIME
//! boundaries, which mail-builder picks), and the handlers decide where the
//! bytes go (the submission queue, the Drafts mailbox).
//!
//! mail-builder writes the MIME structure: encoded words for non-ASCII
//! headers (RFC 2047), RFC 2231 parameters for non-ASCII file names, the
//! cheapest transfer encoding per part and folding. mail-parser reads
//! originals and drafts back.
//!
//! What this module deliberately does not do: dot-stuffing and SMTP line
//! limits belong to the submission path; HTML bodies are never composed
//! (the composer is plain text), only read when replying to HTML mail.

mod read;
mod recipients;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::address::Address as MimeAddress;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mailroom_types::Address;

pub use read::{prepare, resume};
pub use recipients::parse_recipients;

/// What the composer form holds: the text fields as the user typed them.
///
/// Recipient fields stay strings so that a half-typed list survives a round
/// trip through the form and the Drafts folder; they are validated only when
/// the message is sent ([`build`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Draft {
    /// Comma-separated address list as typed: `Bob <bob@example.test>, carol@x.test`.
    pub to: String,
    /// Comma-separated address list, like `to`.
    pub cc: String,
    /// Comma-separated address list, like `to`; never written into a sent message.
    pub bcc: String,
    /// The subject as typed (unencoded).
    pub subject: String,
    /// The plain-text body. Line endings may be LF or CRLF; [`resume`] and
    /// [`prepare`] return LF.
    pub body: String,
    /// The Message-ID this replies to, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first, without angle brackets.
    pub references: Vec<String>,
}

/// A file attached in the composer (or carried over from a forwarded message
/// or a resumed draft).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    /// The file name as the user's system gave it (any path is dropped).
    pub filename: String,
    /// The MIME type, `type/subtype`; anything unusable becomes
    /// `application/octet-stream`.
    pub content_type: String,
    /// The decoded content, exactly as uploaded.
    pub bytes: Vec<u8>,
}

/// Why a message could not be built. Each variant is something the composer
/// can show the user next to the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// A recipient entry is not a valid address; the entry is named as typed
    /// so the form can point at it.
    #[error("not a valid address: {0}")]
    BadAddress(String),
    /// To, Cc and Bcc are all empty.
    #[error("no recipients")]
    NoRecipients,
    /// The Message-ID passed in cannot be written as an RFC 5322 §3.6.4
    /// `msg-id` (empty, or with spaces, controls or brackets inside). This
    /// is the caller's bug; without the check mail-builder would silently
    /// invent an ID of its own.
    #[error("unusable Message-ID: {0:?}")]
    BadMessageId(String),
    /// The built message is larger than the submission limit.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes, the message exceeded.
        limit: u64,
    },
}

/// One entry of a recipient list: an address and the display name typed
/// with it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The display name, unquoted; `None` when only an address was typed.
    pub name: Option<String>,
    /// The validated address.
    pub address: Address,
}

/// Who sends: the account's own address and an optional display name.
///
/// The handler fills this from the session, never from the form, so a user
/// cannot send as someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The display name for `From:`.
    pub name: Option<String>,
    /// The account's address (or one of its aliases).
    pub address: Address,
}

/// A message ready for submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The message, CRLF line endings, without dot-stuffing.
    pub bytes: Vec<u8>,
    /// The envelope recipients (`RCPT TO`): To, Cc and Bcc in that order,
    /// each address once (compared case-insensitively).
    pub recipients: Vec<Address>,
}

/// What to prepare the composer for, from a message the user is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Answer the sender (or its Reply-To).
    Reply,
    /// Answer the sender and everyone else the original went to.
    ReplyAll,
    /// Send the original on to someone new, with its attachments.
    Forward,
}

/// Builds the message to send.
///
/// Headers: From, To, Cc (never Bcc: RFC 5322 §3.6.3 lets it be dropped,
/// and dropping it is what keeps blind copies blind), Subject, Date
/// (`date` in Unix seconds, rendered in UTC), Message-ID (`message_id`,
/// without angle brackets), In-Reply-To and References when set, and
/// MIME-Version. The body is text/plain UTF-8; uploads make it
/// multipart/mixed with one attachment part each.
///
/// Fails with [`ComposeError::NoRecipients`] when To, Cc and Bcc are all
/// empty, [`ComposeError::BadAddress`] on the first invalid entry, and
/// [`ComposeError::TooLarge`] when the message exceeds `max_size` bytes,
/// and [`ComposeError::BadMessageId`] when `message_id` is unusable.
pub fn build(
    sender: &Sender,
    draft: &Draft,
    uploads: &[Upload],
    date: i64,
    message_id: &str,
    max_size: u64,
) -> Result<Built, ComposeError> {
    let to = parse_recipients(&draft.to)?;
    let cc = parse_recipients(&draft.cc)?;
    let bcc = parse_recipients(&draft.bcc)?;
    let recipients = recipients::envelope(to.iter().chain(&cc).chain(&bcc));
    if recipients.is_empty() {
        return Err(ComposeError::NoRecipients);
    }
    check_raw_size(draft, uploads, max_size)?;

    let mut headers = vec![("From", address_header(std::slice::from_ref(&sender_recipient(sender))))];
    if !to.is_empty() {
        headers.push(("To", address_header(&to)));
    }
    if !cc.is_empty() {
        headers.push(("Cc", address_header(&cc)));
    }
    let bytes = assemble(headers, draft, uploads, date, message_id)?;
    check_size(bytes, max_size).map(|bytes| Built { bytes, recipients })
}

/// Builds a draft for the Drafts folder.
///
/// Like [`build`], but recipients may be empty or invalid: a list that does
/// not parse is kept as typed (as unstructured text), so [`resume`] gives
/// the user back what they wrote. Bcc is kept as a header, since a draft is
/// never transmitted and must resume whole. Only [`ComposeError::TooLarge`]
/// (and a bad `message_id`) can fail it.
pub fn build_draft(
    sender: &Sender,
    draft: &Draft,
    uploads: &[Upload],
    date: i64,
    message_id: &str,
    max_size: u64,
) -> Result<Vec<u8>, ComposeError> {
    check_raw_size(draft, uploads, max_size)?;
    let mut headers = vec![("From", address_header(std::slice::from_ref(&sender_recipient(sender))))];
    for (name, typed) in [("To", &draft.to), ("Cc", &draft.cc), ("Bcc", &draft.bcc)] {
        match parse_recipients(typed) {
            Ok(list) if list.is_empty() => {}
            Ok(list) => headers.push((name, address_header(&list))),
            Err(_) => headers.push((name, Text::new(one_line(typed).trim().to_string()).into())),
        }
    }
    check_size(assemble(headers, draft, uploads, date, message_id)?, max_size)
}

fn sender_recipient(sender: &Sender) -> Recipient {
    Recipient { name: sender.name.clone(), address: sender.address.clone() }
}

/// Writes everything after the address headers; shared by [`build`] and
/// [`build_draft`] so a draft and its sent message differ only in Bcc.
fn assemble(
    addresses: Vec<(&'static str, HeaderType<'static>)>,
    draft: &Draft,
    uploads: &[Upload],
    date: i64,
    message_id: &str,
) -> Result<Vec<u8>, ComposeError> {
    let id = clean_id(message_id).ok_or_else(|| ComposeError::BadMessageId(message_id.to_string()))?;
    let mut message = MessageBuilder::new();
    for (name, value) in addresses {
        message = message.header(name, value);
    }
    let subject = one_line(&draft.subject);
    if !subject.trim().is_empty() {
        message = message.subject(subject.trim().to_string());
    }
    message = message.header("Date", Raw::new(mailroom_types::time::rfc5322(system_time(date))));
    message = message.message_id(id);
    if let Some(id) = draft.in_reply_to.as_deref().and_then(clean_id) {
        message = message.in_reply_to(id);
    }
    let references: Vec<String> = draft.references.iter().filter_map(|id| clean_id(id)).collect();
    if !references.is_empty() {
        message = message.references(MessageId::from(references));
    }
    message = message.header("MIME-Version", Raw::new("1.0"));

    let text = MimePart::new("text/plain", BodyPart::Text(crlf(&draft.body).into()));
    let body = if uploads.is_empty() {
        text
    } else {
        let mut parts = vec![text];
        parts.extend(uploads.iter().map(attachment_part));
        MimePart::new("multipart/mixed", parts)
    };
    let mut bytes = Vec::new();
    message.body(body).serialize(&mut bytes);
    Ok(bytes)
}

/// The header value for a list of recipients; mail-builder quotes names
/// with specials and encodes non-ASCII names (RFC 2047 §5 (3)).
fn address_header(list: &[Recipient]) -> HeaderType<'static> {
    let entries: Vec<MimeAddress<'static>> =
        list.iter().map(|r| MimeAddress::new_address(r.name.as_deref().map(one_line), r.address.to_string())).collect();
    match <[MimeAddress; 1]>::try_from(entries) {
        Ok([single]) => single.into(),
        Err(entries) => MimeAddress::new_list(entries).into(),
    }
}

fn attachment_part(upload: &Upload) -> MimePart<'static> {
    let mime = clean_content_type(&upload.content_type);
    let mut content_type = ContentType::new(mime.clone());
    // Declared so that text attachments display right; mail-parser would
    // otherwise guess, and receivers would assume US-ASCII.
    if mime.starts_with("text/") && std::str::from_utf8(&upload.bytes).is_ok() {
        content_type = content_type.attribute("charset", "utf-8");
    }
    MimePart::new(content_type, BodyPart::Binary(upload.bytes.clone().into()))
        .attachment(clean_filename(&upload.filename))
}

/// Fails early, before encoding, when the content alone is over the limit:
/// encoding never makes a message smaller.
fn check_raw_size(draft: &Draft, uploads: &[Upload], max_size: u64) -> Result<(), ComposeError> {
    let raw: u64 = uploads.iter().map(|u| u.bytes.len() as u64).sum::<u64>() + draft.body.len() as u64;
    if raw > max_size { Err(ComposeError::TooLarge { limit: max_size }) } else { Ok(()) }
}

fn check_size(bytes: Vec<u8>, max_size: u64) -> Result<Vec<u8>, ComposeError> {
    if bytes.len() as u64 > max_size { Err(ComposeError::TooLarge { limit: max_size }) } else { Ok(bytes) }
}

/// Unix seconds as a `SystemTime`; out-of-range values clamp to the epoch
/// rather than panic, since the date comes from the caller's clock.
fn system_time(date: i64) -> SystemTime {
    let magnitude = Duration::from_secs(date.unsigned_abs());
    let t = if date >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A Message-ID without angle brackets, or `None` when it could not be
/// written as a `msg-id` (RFC 5322 §3.6.4): empty, or with spaces or
/// brackets inside.
fn clean_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
    (!id.is_empty() && !id.contains(bad)).then(|| id.to_string())
}

/// Text for a header: line breaks and other controls become spaces, since a
/// form field must not be able to start a new header.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The body with CRLF line endings, whatever the browser sent.
fn crlf(body: &str) -> String {
    let lf = body.replace("\r\n", "\n").replace('\r', "\n");
    lf.replace('\n', "\r\n")
}

/// `type/subtype` in lower case if it is made of RFC 2045 tokens, else
/// `application/octet-stream`; parameters are dropped.
fn clean_content_type(ct: &str) -> String {
    let ct = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let token = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
    match ct.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) && !t.starts_with("multipart") => ct,
        _ => "application/octet-stream".to_string(),
    }
}

/// The last path component of an uploaded name (old browsers send
/// `C:\fakepath\x.pdf`), without controls; `attachment` when nothing is left.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base = one_line(base);
    let base = base.trim();
    if base.is_empty() { "attachment".to_string() } else { base.to_string() }
}
