//! SEARCH content keys (RFC 9051 §6.4.4): HEADER, FROM, SUBJECT, ...,
//! BODY, TEXT, and SENTBEFORE/SENTON/SENTSINCE.
//!
//! Matching is on decoded text: RFC 2047 encoded words in headers, and
//! base64/quoted-printable plus the declared charset in text parts
//! (charsets through mail-parser's decoders). It is a case-insensitive
//! substring match: ASCII case folding for ASCII text, Unicode lowercase
//! otherwise. A SEARCH that tests several keys on one message should use
//! one [`ParsedMessage`], which parses the MIME tree once and decodes each
//! part at most once.

use std::borrow::Cow;

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

use super::ParsedMessage;
use super::extract::decode_body;
use super::mime::{Part, PartKind, fields};

/// The date of a `Date:` header, in the header's own time zone, as
/// SENTBEFORE/SENTON/SENTSINCE compare it (RFC 9051 §6.4.4: "disregarding
/// time and timezone"). Orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SentDate {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
}

/// Whether `raw` has a `field` header whose decoded value contains
/// `needle`; an empty needle matches any message with the field.
pub fn header_contains(raw: &[u8], field: &str, needle: &str) -> bool {
    ParsedMessage::new(raw).header_contains(field, needle)
}

/// Whether the decoded text of any text part of `raw` contains `needle`.
pub fn body_contains(raw: &[u8], needle: &str) -> bool {
    ParsedMessage::new(raw).body_contains(needle)
}

/// Whether the header or the body text of `raw` contains `needle`.
pub fn text_contains(raw: &[u8], needle: &str) -> bool {
    ParsedMessage::new(raw).text_contains(needle)
}

/// The date of `raw`'s `Date:` header, or `None` when it is missing or
/// cannot be read (such a message matches no SENT* key).
pub fn sent_date(raw: &[u8]) -> Option<SentDate> {
    ParsedMessage::new(raw).sent_date()
}

impl ParsedMessage<'_> {
    /// See [`header_contains`].
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = fold(needle);
        let raw = self.raw;
        fields(raw, self.header())
            .filter(|f| raw[f.name.clone()].eq_ignore_ascii_case(field.as_bytes()))
            .any(|f| needle.is_empty() || contains(&fold(&decode_header_value(&raw[f.value])), &needle))
    }

    /// See [`body_contains`].
    pub fn body_contains(&self, needle: &str) -> bool {
        let needle = fold(needle);
        self.body_texts().iter().any(|t| contains(t, &needle))
    }

    /// See [`text_contains`].
    pub fn text_contains(&self, needle: &str) -> bool {
        let folded = fold(needle);
        contains(self.header_text(), &folded) || self.body_texts().iter().any(|t| contains(t, &folded))
    }

    /// See [`sent_date`].
    pub fn sent_date(&self) -> Option<SentDate> {
        let raw = self.raw;
        let field = fields(raw, self.header()).find(|f| raw[f.name.clone()].eq_ignore_ascii_case(b"date"))?;
        let mut value = Vec::with_capacity(field.value.len() + 3);
        value.push(b' ');
        value.extend_from_slice(&raw[field.value]);
        value.extend_from_slice(b"\r\n");
        match MessageStream::new(&value).parse_date() {
            HeaderValue::DateTime(dt) if (1..=12).contains(&dt.month) && (1..=31).contains(&dt.day) && dt.year > 0 => {
                Some(SentDate { year: i32::from(dt.year), month: u32::from(dt.month), day: u32::from(dt.day) })
            }
            _ => None,
        }
    }

    /// The whole top-level header, decoded and case-folded, computed once.
    fn header_text(&self) -> &str {
        self.header_text.get_or_init(|| {
            let raw = self.raw;
            let mut text = String::new();
            for f in fields(raw, self.header()) {
                text.push_str(&String::from_utf8_lossy(&raw[f.name]));
                text.push_str(": ");
                text.push_str(&decode_header_value(&raw[f.value]));
                text.push('\n');
            }
            fold(&text).into_owned()
        })
    }

    /// Every text part's decoded, case-folded content, computed once.
    fn body_texts(&self) -> &[String] {
        self.body_texts.get_or_init(|| {
            let mut out = Vec::new();
            collect_texts(self.raw, self.tree(), &mut out);
            out
        })
    }
}

/// Walks the tree (including encapsulated messages) for text leaves.
fn collect_texts(raw: &[u8], part: &Part, out: &mut Vec<String>) {
    match &part.kind {
        PartKind::Multipart(children) => children.iter().for_each(|c| collect_texts(raw, c, out)),
        PartKind::Message(inner) => collect_texts(raw, inner, out),
        PartKind::Leaf if part.info.is_type("text") => {
            // An unknown transfer encoding is searched as it stands.
            let bytes = decode_body(raw, part).unwrap_or(Cow::Borrowed(&raw[part.body.clone()]));
            let text = decode_charset(&bytes, part.info.param("charset"));
            out.push(fold(&text).into_owned());
        }
        PartKind::Leaf => {}
    }
}

/// Text in `charset` as a string; UTF-8 (lossily) when the charset is
/// absent, ASCII-compatible or unknown.
fn decode_charset<'b>(bytes: &'b [u8], charset: Option<&[u8]>) -> Cow<'b, str> {
    let utf8_like = |c: &[u8]| {
        c.eq_ignore_ascii_case(b"utf-8") || c.eq_ignore_ascii_case(b"utf8") || c.eq_ignore_ascii_case(b"us-ascii")
    };
    match charset {
        Some(c) if !utf8_like(c) => match charset_decoder(c) {
            Some(decode) => Cow::Owned(decode(bytes)),
            None => String::from_utf8_lossy(bytes),
        },
        _ => String::from_utf8_lossy(bytes),
    }
}

/// A header value with RFC 2047 encoded words decoded and folding removed.
fn decode_header_value(value: &[u8]) -> String {
    // mail-parser's reader expects the value as it follows a field name's
    // colon, up to the line break that ends the field.
    let mut buf = Vec::with_capacity(value.len() + 3);
    buf.push(b' ');
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
    match MessageStream::new(&buf).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

/// Case folding for matching: ASCII lowercase when that is all there is,
/// else Unicode lowercase.
fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(s.to_ascii_lowercase()) } else { Cow::Borrowed(s) }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes()).is_some()
}
