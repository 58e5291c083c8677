//! What FETCH and SEARCH need to know about a stored message's bytes.
//!
//! Everything here is a pure function of the raw RFC 5322 message (CRLF
//! line ends, as the store guarantees): ENVELOPE, BODY and BODYSTRUCTURE
//! (RFC 9051 §7.5.2), `BODY[section]<partial>` (§6.4.5), BINARY (RFC 3516)
//! and the SEARCH content keys (§6.4.4).
//!
//! The MIME tree is read by this module over byte ranges of the raw
//! message, because IMAP reports raw octets (sizes, line counts, sections)
//! and raw header values; mail-parser decodes encoded words, dates and
//! charsets. Malformed input never panics: what cannot be read takes the
//! RFC 2045 defaults. Work is linear in the message size and nesting is
//! bounded by [`MAX_DEPTH`].
//!
//! A FETCH or SEARCH that asks several things of one message should build
//! one [`ParsedMessage`]; the free functions parse on every call.

mod encode;
mod envelope;
mod extract;
mod mime;
mod search;
mod section;
mod structure;
mod summary;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

pub use encode::{write_body_structure, write_envelope};
pub use envelope::{Address, Envelope, MISSING_DOMAIN, MISSING_MAILBOX};
pub use extract::{BinaryError, apply_partial, binary, binary_size, section_bytes};
pub use mime::{MAX_DEPTH, Param};
pub use search::{SentDate, body_contains, header_contains, sent_date, text_contains};
pub use section::{Partial, Section, SectionText};
pub use structure::{Body, BodyStructure, Disposition, SingleKind, SinglePart};
pub use summary::{envelope_summary, summary_envelope};

/// A stored message analysed at most once, answering any number of FETCH
/// items and SEARCH keys. The header section is located at once; the MIME
/// tree is parsed on the first question that needs it (so ENVELOPE,
/// `HEADER.FIELDS` and header searches never read the body), and decoded
/// text for BODY/TEXT searches is computed on first use and kept.
#[derive(Debug)]
pub struct ParsedMessage<'a> {
    raw: &'a [u8],
    header: Range<usize>,
    tree: OnceCell<mime::Part>,
    header_text: OnceCell<String>,
    body_texts: OnceCell<Vec<search::BodyText>>,
}

impl<'a> ParsedMessage<'a> {
    /// Locates the header section of `raw`; nothing else is parsed yet.
    pub fn new(raw: &'a [u8]) -> Self {
        let (header, _) = mime::split_header(raw, 0..raw.len());
        ParsedMessage { raw, header, tree: OnceCell::new(), header_text: OnceCell::new(), body_texts: OnceCell::new() }
    }

    /// The message's bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The top-level header section, with its blank line.
    fn header(&self) -> Range<usize> {
        self.header.clone()
    }

    /// The MIME tree, parsed on first use.
    fn tree(&self) -> &mime::Part {
        self.tree.get_or_init(|| mime::parse(self.raw))
    }

    /// ENVELOPE of the message.
    pub fn envelope(&self) -> Envelope {
        envelope::from_header(self.raw, self.header())
    }

    /// BODYSTRUCTURE (and, written without extension data, BODY).
    pub fn body_structure(&self) -> BodyStructure {
        structure::from_part(self.raw, self.tree())
    }

    /// See [`section_bytes`].
    pub fn section(&self, section: &Section) -> Option<Cow<'a, [u8]>> {
        if section.part.is_empty() {
            let body = self.header.end..self.raw.len();
            return extract::top_level(self.raw, self.header(), body, section.text.as_ref());
        }
        extract::section_in(self.raw, self.tree(), section)
    }

    /// See [`binary`].
    pub fn binary(&self, part: &[u32]) -> Result<Option<Cow<'a, [u8]>>, BinaryError> {
        if part.is_empty() {
            return Ok(Some(Cow::Borrowed(self.raw)));
        }
        extract::binary_in(self.raw, self.tree(), part)
    }

    /// See [`binary_size`].
    pub fn binary_size(&self, part: &[u32]) -> Result<Option<u64>, BinaryError> {
        Ok(self.binary(part)?.map(|b| b.len() as u64))
    }
}
