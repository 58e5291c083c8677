//! Section specifiers of BODY[...] and BINARY[...] (RFC 9051 §6.4.5), as
//! the command parser produces them and the message analysis answers them.

/// `BODY[<section>]<<partial>>`: which bytes of the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers, outermost first (`1.2` is `[1, 2]`); empty for the
    /// whole message.
    pub part: Vec<u32>,
    /// What of that part; `None` is the part's whole content (or, with an
    /// empty `part`, the whole message).
    pub text: Option<SectionText>,
}

/// The part of a section after the part numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`: the header section, with its blank line.
    Header,
    /// `HEADER.FIELDS (...)`: only these fields (names as sent).
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (...)`: all but these fields.
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`: the body after the header section.
    Text,
    /// `MIME`: the MIME header of a non-top-level part.
    Mime,
}

/// `<origin.count>`: a byte range of the section's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// First octet, from 0.
    pub origin: u64,
    /// Most octets to return.
    pub count: u64,
}
