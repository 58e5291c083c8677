//! `BODY[section]<partial>` (RFC 9051 §6.4.5) and `BINARY[section]` /
//! `BINARY.SIZE[section]` (RFC 3516): which octets of a stored message a
//! FETCH returns.
//!
//! Part numbering (RFC 9051 §6.4.5): the parts of a multipart are numbered
//! from 1; a message whose body is not multipart has one part, `1`, its
//! body; a `message/rfc822` part's own numbers address the parts of the
//! encapsulated message in the same way, and `HEADER`, `TEXT`,
//! `HEADER.FIELDS[.NOT]` after its number address that message's header
//! and body. `MIME` addresses a part's own MIME header.
//!
//! A section that does not exist (part 4 of a 3-part message, `HEADER` of
//! a text part, `MIME` of the whole message, part number 0) yields `None`.
//! The server answers it with an empty string, as Dovecot and Cyrus do,
//! rather than a NO that would fail the whole FETCH (RFC 9051 leaves the
//! answer open; an empty string is what clients cope with).

use std::borrow::Cow;
use std::ops::Range;

use super::mime::{Cte, Part, PartKind, decode_base64, decode_quoted_printable, fields};
use super::section::{Partial, Section, SectionText};

/// Why BINARY cannot decode a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's `Content-Transfer-Encoding` is not one RFC 2045 defines;
    /// answered with `NO [UNKNOWN-CTE]` (RFC 3516 §4.3).
    UnknownCte(Vec<u8>),
}

impl std::fmt::Display for BinaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinaryError::UnknownCte(name) => {
                write!(f, "unknown content transfer encoding {}", String::from_utf8_lossy(name))
            }
        }
    }
}

impl std::error::Error for BinaryError {}

/// The octets of `section` in `raw`, or `None` when that section does not
/// exist (see the module notes for how the server answers that). Apply
/// `<origin.count>` afterwards with [`apply_partial`].
pub fn section_bytes<'a>(raw: &'a [u8], section: &Section) -> Option<Cow<'a, [u8]>> {
    super::ParsedMessage::new(raw).section(section)
}

/// Cuts `data` down to `<origin.count>` (RFC 9051 §6.4.5): an origin past
/// the end gives an empty string.
pub fn apply_partial(data: &[u8], partial: Option<Partial>) -> &[u8] {
    let Some(p) = partial else { return data };
    let len = data.len() as u64;
    let start = p.origin.min(len);
    let end = start.saturating_add(p.count).min(len);
    // Both bounds are at most `data.len()`, which fits in usize.
    &data[start as usize..end as usize]
}

/// The decoded content of the part `part` for `BINARY[part]` (RFC 3516
/// §4.2): base64 and quoted-printable are undone, identity encodings
/// returned as they are. An empty `part` is the whole message, untouched.
/// `Ok(None)` means the part does not exist.
pub fn binary<'a>(raw: &'a [u8], part: &[u32]) -> Result<Option<Cow<'a, [u8]>>, BinaryError> {
    super::ParsedMessage::new(raw).binary(part)
}

/// `BINARY.SIZE[part]`: the length [`binary`] would return.
pub fn binary_size(raw: &[u8], part: &[u32]) -> Result<Option<u64>, BinaryError> {
    Ok(binary(raw, part)?.map(|b| b.len() as u64))
}

/// [`section_bytes`] over an already parsed tree.
pub(crate) fn section_in<'a>(raw: &'a [u8], root: &Part, section: &Section) -> Option<Cow<'a, [u8]>> {
    let borrowed = |r: std::ops::Range<usize>| Some(Cow::Borrowed(&raw[r]));
    if section.part.is_empty() {
        return top_level(raw, root.header.clone(), root.body.clone(), section.text.as_ref());
    }
    let part = resolve(root, &section.part)?;
    match &section.text {
        None => borrowed(part.body.clone()),
        Some(SectionText::Mime) => borrowed(part.header.clone()),
        Some(text) => match &part.kind {
            PartKind::Message(inner) => message_text(raw, inner.header.clone(), inner.body.clone(), text),
            _ => None,
        },
    }
}

/// A section without part numbers: it needs only the top-level header and
/// body ranges, not the MIME tree.
pub(crate) fn top_level<'a>(
    raw: &'a [u8],
    header: Range<usize>,
    body: Range<usize>,
    text: Option<&SectionText>,
) -> Option<Cow<'a, [u8]>> {
    match text {
        None => Some(Cow::Borrowed(raw)),
        Some(text) => message_text(raw, header, body, text),
    }
}

/// HEADER, HEADER.FIELDS[.NOT] or TEXT of a message entity.
fn message_text<'a>(
    raw: &'a [u8],
    header: Range<usize>,
    body: Range<usize>,
    text: &SectionText,
) -> Option<Cow<'a, [u8]>> {
    match text {
        SectionText::Header => Some(Cow::Borrowed(&raw[header])),
        SectionText::Text => Some(Cow::Borrowed(&raw[body])),
        SectionText::HeaderFields(names) => Some(Cow::Owned(header_fields(raw, header, names, true))),
        SectionText::HeaderFieldsNot(names) => Some(Cow::Owned(header_fields(raw, header, names, false))),
        SectionText::Mime => None,
    }
}

/// The fields of `msg`'s header whose names are (or, with `keep` false,
/// are not) in `names`, compared without case, in message order with their
/// folding, followed by the blank line (RFC 9051 §6.4.5).
fn header_fields(raw: &[u8], header: Range<usize>, names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(raw, header) {
        let name = &raw[field.name.clone()];
        let listed = names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if listed == keep {
            out.extend_from_slice(&raw[field.whole.clone()]);
            if !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Follows part numbers from the top-level message.
pub(crate) fn resolve<'p>(root: &'p Part, numbers: &[u32]) -> Option<&'p Part> {
    let (&first, rest) = numbers.split_first()?;
    let mut cur = child_of_message(root, first)?;
    for &n in rest {
        cur = match &cur.kind {
            PartKind::Multipart(children) => nth(children, n)?,
            PartKind::Message(inner) => child_of_message(inner, n)?,
            PartKind::Leaf => return None,
        };
    }
    Some(cur)
}

/// Part `n` of a message entity: a child of its multipart body, or, for a
/// non-multipart body, the entity itself as part 1.
fn child_of_message(msg: &Part, n: u32) -> Option<&Part> {
    match &msg.kind {
        PartKind::Multipart(children) => nth(children, n),
        _ => (n == 1).then_some(msg),
    }
}

fn nth(children: &[Part], n: u32) -> Option<&Part> {
    children.get(usize::try_from(n).ok()?.checked_sub(1)?)
}

/// [`binary`] over an already parsed tree.
pub(crate) fn binary_in<'a>(raw: &'a [u8], root: &Part, numbers: &[u32]) -> Result<Option<Cow<'a, [u8]>>, BinaryError> {
    if numbers.is_empty() {
        return Ok(Some(Cow::Borrowed(raw)));
    }
    let Some(part) = resolve(root, numbers) else { return Ok(None) };
    decode_body(raw, part).map(Some)
}

/// A part's body with its transfer encoding undone.
pub(crate) fn decode_body<'a>(raw: &'a [u8], part: &Part) -> Result<Cow<'a, [u8]>, BinaryError> {
    let body = &raw[part.body.clone()];
    if !matches!(part.kind, PartKind::Leaf) {
        // Multiparts and messages are never encoded (RFC 2045 §6.4).
        return Ok(Cow::Borrowed(body));
    }
    match part.info.cte() {
        Cte::Identity => Ok(Cow::Borrowed(body)),
        Cte::Base64 => Ok(Cow::Owned(decode_base64(body))),
        Cte::QuotedPrintable => Ok(Cow::Owned(decode_quoted_printable(body))),
        Cte::Unknown(name) => Err(BinaryError::UnknownCte(name)),
    }
}
