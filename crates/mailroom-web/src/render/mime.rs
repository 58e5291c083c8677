//! MIME structure on top of mail-parser: IMAP section numbers, decoded
//! bytes, content types and filenames fit for download.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Longest filename offered, in characters; longer names are cut.
const MAX_FILENAME: usize = 200;

/// A leaf part of one message level with its section number.
pub(super) struct Section<'a, 'x> {
    /// The IMAP section number (RFC 3501 §6.4.5), e.g. "1.2".
    pub number: String,
    /// mail-parser's index of the part within `msg.parts`.
    pub id: u32,
    /// The message whose `parts` hold this part; its raw bytes are what the
    /// part's offsets refer to.
    pub msg: &'a Message<'x>,
    pub part: &'a MessagePart<'x>,
}

pub(super) fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::new().parse(raw)
}

/// The leaf parts of `msg` (not descending into forwarded messages) with
/// their IMAP section numbers, in message order.
///
/// A single-part message has one section, "1". A multipart's children are
/// numbered from 1, nested multiparts add a level ("2.1").
pub(super) fn sections<'a, 'x>(msg: &'a Message<'x>) -> Vec<Section<'a, 'x>> {
    let mut out = Vec::new();
    let Some(root) = msg.parts.first() else {
        return out;
    };
    let mut stack: Vec<(String, u32)> = match &root.body {
        PartType::Multipart(children) => numbered_children("", 0, children),
        _ => vec![("1".to_owned(), 0)],
    };
    while let Some((number, id)) = stack.pop() {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(children) => {
                stack.extend(numbered_children(&number, id, children));
            }
            _ => out.push(Section { number, id, msg, part }),
        }
    }
    out
}

/// The children of multipart `id` numbered under `prefix`, reversed so that
/// popping them from a stack gives message order. mail-parser adds parts in
/// order, so a child's id is always above its parent's; anything else is
/// skipped, which rules out cycles.
fn numbered_children(prefix: &str, id: u32, children: &[u32]) -> Vec<(String, u32)> {
    children
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &child)| child > id)
        .map(|(i, &child)| {
            let n = i + 1;
            let number = if prefix.is_empty() { n.to_string() } else { format!("{prefix}.{n}") };
            (number, child)
        })
        .collect()
}

/// The section numbered `number`, looking inside forwarded messages for
/// numbers below a message/rfc822 part ("2.1" in the message at "2").
pub(super) fn find<'a, 'x>(msg: &'a Message<'x>, number: &str) -> Option<Section<'a, 'x>> {
    for section in sections(msg) {
        if section.number == number {
            return Some(section);
        }
        let rest = number.strip_prefix(section.number.as_str()).and_then(|r| r.strip_prefix('.'));
        if let (Some(rest), PartType::Message(inner)) = (rest, &section.part.body) {
            return find(inner, rest);
        }
    }
    None
}

/// The part's content with its transfer encoding removed. Text is UTF-8
/// (mail-parser converts charsets); a forwarded message is its raw bytes.
pub(super) fn decoded<'a>(section: &Section<'a, '_>) -> Cow<'a, [u8]> {
    let part = section.part;
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => match recover(part) {
            Some(bytes) => Cow::Owned(bytes),
            None => Cow::Borrowed(t.as_bytes()),
        },
        PartType::Binary(b) | PartType::InlineBinary(b) => Cow::Borrowed(b.as_ref()),
        // A base64 or quoted-printable message/rfc822 was parsed from its
        // decoded bytes; otherwise its offsets point into the container.
        PartType::Message(inner) if part.encoding != Encoding::None => Cow::Borrowed(inner.raw_message.as_ref()),
        PartType::Message(_) | PartType::Multipart(_) => {
            let (start, end) = (part.offset_body as usize, part.offset_end as usize);
            Cow::Borrowed(section.msg.raw_message.get(start..end).unwrap_or_default())
        }
    }
}

/// The content of a non-text part that mail-parser could not decode in
/// place (typically the last part of a multipart that never ends) and so
/// kept as raw text: decoded here from that text.
fn recover(part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let PartType::Text(raw) = &part.body else {
        return None;
    };
    if !part.is_encoding_problem || content_type(part).starts_with("text/") {
        return None;
    }
    let encoding = part.content_transfer_encoding()?;
    if encoding.eq_ignore_ascii_case("base64") {
        base64_decode(raw.as_bytes())
    } else if encoding.eq_ignore_ascii_case("quoted-printable") {
        quoted_printable_decode(raw.as_bytes())
    } else {
        None
    }
}

/// Lower-case "type/subtype", reduced to token characters so that it is
/// safe in a Content-Type header. Without a Content-Type header the type
/// follows from what mail-parser made of the part.
pub(super) fn content_type(part: &MessagePart<'_>) -> String {
    if let Some(ct) = part.content_type().filter(|_| !is_broken_multipart(part)) {
        let main = token(&ct.c_type);
        let sub = ct.c_subtype.as_deref().map(token).unwrap_or_default();
        if !main.is_empty() && !sub.is_empty() {
            return format!("{main}/{sub}");
        }
    }
    match part.body {
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        PartType::Message(_) => "message/rfc822",
        PartType::Multipart(_) => "multipart/mixed",
        PartType::Binary(_) | PartType::InlineBinary(_) => "application/octet-stream",
    }
    .to_owned()
}

/// Whether the part says it is a multipart but mail-parser found no
/// boundary line and read it as one leaf part.
pub(super) fn is_broken_multipart(part: &MessagePart<'_>) -> bool {
    !matches!(part.body, PartType::Multipart(_))
        && part.content_type().is_some_and(|ct| ct.c_type.eq_ignore_ascii_case("multipart"))
}

/// RFC 2045 token characters, lower-cased.
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(*c))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The filename to offer: "<subject>.eml" for a forwarded message, else the
/// part's own (decoded by mail-parser), else "attachment-<part>".
pub(super) fn filename(section: &Section<'_, '_>) -> String {
    let fallback = || format!("attachment-{}", section.number);
    if let PartType::Message(inner) = &section.part.body {
        let name = inner.subject().map(sanitize_filename).filter(|s| !s.is_empty()).unwrap_or_else(fallback);
        return format!("{name}.eml");
    }
    section.part.attachment_name().map(sanitize_filename).filter(|s| !s.is_empty()).unwrap_or_else(fallback)
}

/// A filename without path separators, control characters, bidirectional
/// overrides (which can make "fdp.exe" look like "exe.pdf") or leading dots
/// (no hidden files, no ".."), trimmed and cut to a sane length.
pub(super) fn sanitize_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .map(|c| match c {
            '/' | '\\' => '_',
            c => c,
        })
        .take(MAX_FILENAME)
        .collect();
    cleaned.trim().trim_start_matches('.').trim().to_owned()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
