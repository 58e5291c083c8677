//! Reading stored mail back into the composer: drafts ([`resume`]) and the
//! message being answered or forwarded ([`prepare`]).
//!
//! Both take bytes from the store, which came from anywhere, so neither may
//! fail or panic: a message mail-parser cannot make sense of gives an empty
//! form.

use std::collections::HashSet;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use mailroom_types::Address;

use super::recipients::{format_entry, key};
use super::{Draft, ReplyKind, Upload, clean_id};

mod html;

/// Reads a stored draft back into the composer.
///
/// Recipient lists come back in the form [`super::parse_recipients`] reads
/// (or as typed, if they were invalid when saved); the body comes back with
/// LF line endings; attachments come back with their decoded bytes, names
/// and types.
pub fn resume(raw: &[u8]) -> (Draft, Vec<Upload>) {
    let Some(msg) = parse(raw) else {
        return (Draft::default(), Vec::new());
    };
    let draft = Draft {
        to: typed_list(msg.to(), msg.header_raw(HeaderName::To)),
        cc: typed_list(msg.cc(), msg.header_raw(HeaderName::Cc)),
        bcc: typed_list(msg.bcc(), msg.header_raw(HeaderName::Bcc)),
        subject: msg.subject().unwrap_or_default().to_string(),
        body: message_text(&msg),
        in_reply_to: ids(msg.in_reply_to()).into_iter().next(),
        references: ids(msg.references()),
    };
    (draft, attachments(&msg))
}

/// Prepares the composer for a reply or forward of `original`, by the user
/// whose addresses (account address and aliases) are `me`.
///
/// - Reply: To is the original's Reply-To, else its From (and when that is
///   the user, the original's To: replying to one's own sent message goes
///   to its recipients). Subject gets `Re: ` unless it has a reply prefix.
///   The body quotes the original's text with `> ` under an attribution
///   line. In-Reply-To is the original's Message-ID and References extends
///   the original's chain with it (RFC 5322 §3.6.4).
/// - ReplyAll: like Reply, and Cc is the original's To and Cc, without the
///   user's addresses (case-insensitive) and without anyone already in To.
/// - Forward: no recipients, `Fwd: ` subject, the original's headers and
///   text unquoted in the body, and its attachments returned as uploads.
///
/// Uploads are empty except for Forward.
pub fn prepare(original: &[u8], kind: ReplyKind, me: &[Address]) -> (Draft, Vec<Upload>) {
    let msg = parse(original);
    let subject = msg.as_ref().and_then(|m| m.subject()).unwrap_or_default().trim();
    let subject = match kind {
        ReplyKind::Forward if is_forward_subject(subject) => subject.to_string(),
        ReplyKind::Forward => format!("Fwd: {subject}"),
        _ if is_reply_subject(subject) => subject.to_string(),
        _ => format!("Re: {subject}"),
    };
    let Some(msg) = msg else {
        return (Draft { subject, ..Draft::default() }, Vec::new());
    };
    let message_id = msg.message_id().and_then(clean_id);
    let text = message_text(&msg);
    let date = msg.date().filter(|d| d.is_valid()).map(|d| d.to_rfc822());
    let from = entries(msg.from());

    if kind == ReplyKind::Forward {
        let mut body = String::from("\n\n---------- Forwarded message ---------\n");
        body += &format!("From: {}\n", render(&from));
        body += &format!("Date: {}\n", date.unwrap_or_default());
        body += &format!("Subject: {}\n", msg.subject().unwrap_or_default().trim());
        body += &format!("To: {}\n", render(&entries(msg.to())));
        let cc = entries(msg.cc());
        if !cc.is_empty() {
            body += &format!("Cc: {}\n", render(&cc));
        }
        body += "\n";
        body += &text;
        let draft = Draft { subject, body, references: message_id.into_iter().collect(), ..Draft::default() };
        return (draft, attachments(&msg));
    }

    let mine: HashSet<String> = me.iter().map(Address::key).collect();
    let is_mine = |e: &Entry| mine.contains(&key(&e.address));
    let reply_to = entries(msg.reply_to());
    let mut to = if reply_to.is_empty() { from.clone() } else { reply_to };
    if !to.is_empty() && to.iter().all(is_mine) {
        let theirs: Vec<Entry> = entries(msg.to()).into_iter().filter(|e| !is_mine(e)).collect();
        if !theirs.is_empty() {
            to = theirs;
        }
    }
    if kind == ReplyKind::ReplyAll {
        to.retain(|e| !is_mine(e));
    }
    let to = dedup(to, &HashSet::new());
    let cc = if kind == ReplyKind::ReplyAll {
        let taken: HashSet<String> = to.iter().map(|e| key(&e.address)).chain(mine.iter().cloned()).collect();
        dedup(entries(msg.to()).into_iter().chain(entries(msg.cc())).collect(), &taken)
    } else {
        Vec::new()
    };

    let who = from.first().map_or("Someone", |e| e.name.as_deref().unwrap_or(&e.address)).to_string();
    let mut body = match date {
        Some(date) => format!("\n\nOn {date}, {who} wrote:\n"),
        None => format!("\n\n{who} wrote:\n"),
    };
    for line in text.trim_end_matches('\n').lines() {
        body += "> ";
        body += line;
        body += "\n";
    }

    let mut references = ids(msg.references());
    if references.is_empty() {
        references = ids(msg.in_reply_to());
    }
    if let Some(id) = &message_id
        && references.last() != Some(id)
    {
        references.push(id.clone());
    }
    let draft = Draft {
        to: render(&to),
        cc: render(&cc),
        bcc: String::new(),
        subject,
        body,
        in_reply_to: message_id,
        references,
    };
    (draft, Vec::new())
}

/// Parses a message; `None` when there is nothing usable (the header
/// accessors of mail-parser assume a root part).
fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw).filter(|m| !m.parts.is_empty())
}

/// One mailbox of an address header, as found in the message.
#[derive(Clone)]
struct Entry {
    name: Option<String>,
    address: String,
}

/// The mailboxes of an address header, groups flattened, entries without
/// an address (a bare group name, a syntax error) left out.
fn entries(list: Option<&mail_parser::Address<'_>>) -> Vec<Entry> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let address = a.address()?.trim();
            let name = a.name().map(str::trim).filter(|n| !n.is_empty() && *n != address);
            (!address.is_empty()).then(|| Entry { name: name.map(str::to_string), address: address.to_string() })
        })
        .collect()
}

/// Each address once (case-insensitive), leaving out those in `taken`.
fn dedup(list: Vec<Entry>, taken: &HashSet<String>) -> Vec<Entry> {
    let mut seen = taken.clone();
    list.into_iter().filter(|e| seen.insert(key(&e.address))).collect()
}

fn render(list: &[Entry]) -> String {
    list.iter().map(|e| format_entry(e.name.as_deref(), &e.address)).collect::<Vec<_>>().join(", ")
}

/// A draft's recipient field as the user should see it again.
///
/// A list of valid mailboxes is rendered from the parsed header, which
/// decodes encoded-word names and keeps commas in names quoted. Anything
/// else was saved as typed text, so it is decoded as unstructured text.
fn typed_list(parsed: Option<&mail_parser::Address<'_>>, raw: Option<&str>) -> String {
    if let Some(list) = parsed.and_then(|p| p.as_list()) {
        let rendered: Option<Vec<String>> = list
            .iter()
            .map(|a| {
                let address = a.address()?.trim();
                Address::parse(address).ok()?;
                Some(format_entry(a.name(), address))
            })
            .collect();
        if let Some(rendered) = rendered.filter(|r| !r.is_empty()) {
            return rendered.join(", ");
        }
    }
    raw.map(decode_unstructured).unwrap_or_default()
}

/// Decodes a raw header value as unstructured text (RFC 2047 encoded
/// words, unfolding), by letting mail-parser read it as a Subject.
fn decode_unstructured(raw: &str) -> String {
    let header = format!("Subject: {}\r\n\r\n", raw.trim());
    let parsed = MessageParser::default().parse_headers(header.as_bytes());
    parsed.as_ref().and_then(|m| m.subject()).unwrap_or_default().trim().to_string()
}

/// Message-IDs from In-Reply-To or References, without angle brackets.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

/// The readable text of a message, LF line endings: its text/plain body
/// parts, or a plain rendering of the HTML ones when there is no text.
fn message_text(msg: &Message<'_>) -> String {
    let mut pieces = Vec::new();
    for id in msg.text_body.iter().chain(if msg.text_body.is_empty() { &msg.html_body[..] } else { &[] }) {
        match msg.parts.get(*id as usize).map(|p| &p.body) {
            Some(PartType::Text(text)) => pieces.push(text.to_string()),
            Some(PartType::Html(html)) => pieces.push(html::to_text(html)),
            _ => {}
        }
    }
    lf(&pieces.join("\n"))
}

fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A message's attachments as uploads, so a forward or a resumed draft
/// carries them on unchanged.
fn attachments(msg: &Message<'_>) -> Vec<Upload> {
    msg.attachments.iter().filter_map(|id| msg.parts.get(*id as usize)).map(|part| upload(msg, part)).collect()
}

fn upload(msg: &Message<'_>, part: &MessagePart<'_>) -> Upload {
    let content_type = match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        },
        None if matches!(part.body, PartType::Text(_)) => "text/plain".to_string(),
        None => "application/octet-stream".to_string(),
    };
    let content_type = super::clean_content_type(&content_type);
    let filename = match part.attachment_name() {
        Some(name) if !name.trim().is_empty() => super::clean_filename(name),
        _ if matches!(part.body, PartType::Message(_)) => "message.eml".to_string(),
        _ => "attachment".to_string(),
    };
    Upload { filename, content_type, bytes: part_bytes(msg, part) }
}

/// A part's content after transfer decoding only.
///
/// mail-parser also converts text parts to UTF-8 (lossily, when the bytes
/// are not in the declared charset), which would change an attached file;
/// for those the raw body is decoded again here.
fn part_bytes(msg: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        return part.contents().to_vec();
    }
    let raw = msg.raw_message().get(part.offset_body as usize..part.offset_end as usize);
    let decoded = raw.and_then(|raw| match part.encoding {
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::None => Some(raw.to_vec()),
    });
    decoded.unwrap_or_else(|| part.contents().to_vec())
}

/// `Re:`, `RE:`, `re:` and the counted `Re[2]:` form.
fn is_reply_subject(subject: &str) -> bool {
    let lower = subject.to_lowercase();
    let Some(rest) = lower.strip_prefix("re") else {
        return false;
    };
    if rest.starts_with(':') {
        return true;
    }
    rest.strip_prefix('[')
        .and_then(|r| r.split_once("]:"))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn is_forward_subject(subject: &str) -> bool {
    let lower = subject.to_lowercase();
    lower.starts_with("fwd:") || lower.starts_with("fw:")
}
