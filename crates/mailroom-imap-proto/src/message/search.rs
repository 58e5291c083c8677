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
use std::ops::Range;

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

use super::ParsedMessage;
use super::extract::decode_body;
use super::mime::{Cte, Part, PartKind, fields};

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
        self.body_has(&fold(needle))
    }

    /// See [`text_contains`].
    pub fn text_contains(&self, needle: &str) -> bool {
        let folded = fold(needle);
        self.header_has(&folded) || self.body_has(&folded)
    }

    /// Whether the decoded header contains the folded needle.
    ///
    /// Decoding an ASCII header without encoded words only unfolds lines
    /// and adjusts white space around field names and values; every run of
    /// other characters stays as it is. So a needle without white space or
    /// colon is in the decoded header exactly when it is in the raw one,
    /// which is searched in place then: most mail, at a fraction of the
    /// cost of decoding each field.
    fn header_has(&self, folded: &str) -> bool {
        let raw = &self.raw[self.header()];
        let plain_needle = folded.is_ascii() && !folded.bytes().any(|b| b.is_ascii_whitespace() || b == b':');
        if plain_needle && raw.is_ascii() && memchr::memmem::find(raw, b"=?").is_none() {
            return contains_ascii_nocase(raw, folded);
        }
        contains(self.header_text(), folded)
    }

    /// Whether some text part contains the folded needle.
    fn body_has(&self, folded: &str) -> bool {
        self.body_texts().iter().any(|t| match t {
            // Folding ASCII text leaves it ASCII, so only an ASCII needle
            // can be in it.
            BodyText::Ascii(range) => folded.is_ascii() && contains_ascii_nocase(&self.raw[range.clone()], folded),
            BodyText::Folded(text) => contains(text, folded),
        })
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
    fn body_texts(&self) -> &[BodyText] {
        self.body_texts.get_or_init(|| {
            let mut out = Vec::new();
            collect_texts(self.raw, self.tree(), &mut out);
            out
        })
    }
}

/// A text part's content as searches see it.
#[derive(Debug)]
pub(super) enum BodyText {
    /// Unencoded ASCII text in an ASCII-compatible charset: its decoded
    /// form is the raw octets in this range of the message, searched in
    /// place with ASCII case folding (most mail, and no copy of it).
    Ascii(Range<usize>),
    /// Anything else, decoded and case-folded.
    Folded(String),
}

/// Walks the tree (including encapsulated messages) for text leaves.
fn collect_texts(raw: &[u8], part: &Part, out: &mut Vec<BodyText>) {
    match &part.kind {
        PartKind::Multipart(children) => children.iter().for_each(|c| collect_texts(raw, c, out)),
        PartKind::Message(inner) => collect_texts(raw, inner, out),
        PartKind::Leaf if part.info.is_type("text") => {
            let charset = part.info.param("charset");
            let body = &raw[part.body.clone()];
            if matches!(part.info.cte(), Cte::Identity) && charset.is_none_or(utf8_like) && body.is_ascii() {
                out.push(BodyText::Ascii(part.body.clone()));
                return;
            }
            // An unknown transfer encoding is searched as it stands.
            let bytes = decode_body(raw, part).unwrap_or(Cow::Borrowed(body));
            let text = decode_charset(&bytes, charset);
            out.push(BodyText::Folded(fold(&text).into_owned()));
        }
        PartKind::Leaf => {}
    }
}

/// Whether a charset decodes like UTF-8 (and so ASCII as ASCII).
fn utf8_like(charset: &[u8]) -> bool {
    charset.eq_ignore_ascii_case(b"utf-8")
        || charset.eq_ignore_ascii_case(b"utf8")
        || charset.eq_ignore_ascii_case(b"us-ascii")
}

/// Text in `charset` as a string; UTF-8 (lossily) when the charset is
/// absent, ASCII-compatible or unknown.
fn decode_charset<'b>(bytes: &'b [u8], charset: Option<&[u8]>) -> Cow<'b, str> {
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
/// else Unicode lowercase of each character on its own (no context rules
/// such as the final sigma), so that folding a text folds every substring
/// of it the same way.
fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(s.to_ascii_lowercase()) } else { Cow::Borrowed(s) }
    } else {
        Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes()).is_some()
}

/// How much of an ASCII text [`contains_ascii_nocase`] lowercases at once.
const FOLD_CHUNK: usize = 16 * 1024;

/// Whether ASCII `haystack`, lowercased, contains `needle` (lowercase
/// already). Lowercases a chunk at a time into a stack buffer and searches
/// it with memchr's SIMD finder: no allocation, and a speed close to that
/// of a plain substring search.
fn contains_ascii_nocase(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return true;
    }
    if !needle.iter().any(u8::is_ascii_alphabetic) {
        return memchr::memmem::find(haystack, needle).is_some();
    }
    if needle.len() > FOLD_CHUNK / 2 {
        return memchr::memmem::find(&haystack.to_ascii_lowercase(), needle).is_some();
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = [0u8; FOLD_CHUNK];
    let mut start = 0;
    loop {
        let end = (start + FOLD_CHUNK).min(haystack.len());
        let lower = &mut buf[..end - start];
        for (to, from) in lower.iter_mut().zip(&haystack[start..end]) {
            *to = from.to_ascii_lowercase();
        }
        if finder.find(lower).is_some() {
            return true;
        }
        if end == haystack.len() {
            return false;
        }
        // Overlap by one octet less than the needle, so that no match
        // straddling two chunks is missed.
        start = end - (needle.len() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_ascii_search_finds_matches_across_chunk_edges() {
        let needle = "zanzibar";
        for at in [0, 1, FOLD_CHUNK - 8, FOLD_CHUNK - 5, FOLD_CHUNK - 1, FOLD_CHUNK, 2 * FOLD_CHUNK - 3, 40_000] {
            let mut hay = vec![b'a'; 3 * FOLD_CHUNK];
            hay[at..at + needle.len()].copy_from_slice(b"ZanZIBar");
            assert!(contains_ascii_nocase(&hay, needle), "at {at}");
            hay[at] = b'x';
            assert!(!contains_ascii_nocase(&hay, needle), "at {at}");
        }
        assert!(contains_ascii_nocase(b"", ""));
        assert!(!contains_ascii_nocase(b"", "a"));
        assert!(contains_ascii_nocase(b"price: 42.50", "42.5"));
        assert!(!contains_ascii_nocase(b"short", "longer than it"));
    }

    #[test]
    fn raw_header_search_agrees_with_decoded() {
        let headers: [&[u8]; 3] = [
            b"Subject: Weekly  Project\r\n\tUpdate\r\nFrom: Ann <ann@x.test>\r\nX-Empty:\r\n\r\n",
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Bern\r\nTo: bob@y.test\r\n\r\n",
            b"Subject: caf\xc3\xa9 menu\r\n\r\n",
        ];
        let needles = [
            "weekly",
            "PROJECT",
            "update",
            "ann@x.test",
            "<ann@",
            "x-empty",
            "subject",
            "grüße",
            "gr=c3",
            "=?utf-8",
            "bern",
            "café",
            "menu",
            "absent",
            "",
            "q?gr",
        ];
        for raw in headers {
            let m = ParsedMessage::new(raw);
            for needle in needles {
                let folded = fold(needle);
                assert_eq!(
                    m.header_has(&folded),
                    contains(m.header_text(), &folded),
                    "{needle:?} in {:?}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }

    #[test]
    fn folding_is_per_character() {
        // The final-sigma rule would fold a word-final capital sigma to
        // a different letter than the same sigma standing alone.
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ");
        assert!(contains(&fold("ΟΔΟΣ ΕΝΑ"), &fold("Σ")));
    }
}
