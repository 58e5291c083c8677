//! BODYSTRUCTURE and BODY (RFC 9051 §7.5.2): the MIME tree as clients see
//! it before deciding which parts to download.
//!
//! Choices follow Dovecot so that clients see what they are used to:
//! text parts without a charset get `("charset" "us-ascii")` (RFC 2045
//! §5.2), a missing `Content-Transfer-Encoding` is `"7bit"`, parameter
//! names are lowercased, a multipart with no parts gets one empty
//! text/plain part (the grammar needs one), and an encapsulated message
//! that is itself base64 or quoted-printable encoded (which RFC 2046
//! §5.2.1 forbids) is shown as `application/octet-stream`, because the
//! `message/rfc822` form would need an envelope IMAP cannot give.

use super::envelope::{Envelope, from_header};
use super::mime::{self, Param, Part, PartKind};

/// The structure of one body part, or of the whole message's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyStructure {
    /// Media type (`text`, `multipart`, ...), as written or defaulted.
    pub media_type: Vec<u8>,
    /// Subtype (`plain`, `mixed`, ...).
    pub subtype: Vec<u8>,
    /// `Content-Type` parameters; for a multipart these are extension data.
    pub params: Vec<Param>,
    /// Single-part fields, or the children of a multipart.
    pub body: Body,
    /// `Content-Disposition` (extension data).
    pub disposition: Option<Disposition>,
    /// `Content-Language` tags (extension data); empty is NIL.
    pub language: Vec<Vec<u8>>,
    /// `Content-Location` (extension data).
    pub location: Option<Vec<u8>>,
}

/// Multipart children or single-part fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `multipart/*`: at least one part.
    Multipart(Vec<BodyStructure>),
    /// Any other type.
    Single(SinglePart),
}

/// The `body-fields` of a non-multipart part, and what its type adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinglePart {
    /// `Content-ID`.
    pub id: Option<Vec<u8>>,
    /// `Content-Description`.
    pub description: Option<Vec<u8>>,
    /// `Content-Transfer-Encoding` as written, default `7bit`.
    pub encoding: Vec<u8>,
    /// Size of the body in octets, still encoded.
    pub size: u64,
    /// `Content-MD5` (extension data).
    pub md5: Option<Vec<u8>>,
    /// The type-specific fields.
    pub kind: SingleKind,
}

/// What a single part's type adds to its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleKind {
    /// Any type but text and message.
    Basic,
    /// `text/*`: lines of the encoded body.
    Text {
        /// Number of lines (line feeds) in the body.
        lines: u64,
    },
    /// `message/rfc822` or `message/global`.
    Message {
        /// The encapsulated message's envelope.
        envelope: Box<Envelope>,
        /// The encapsulated message's body structure.
        body: Box<BodyStructure>,
        /// Number of lines in the encapsulated message.
        lines: u64,
    },
}

/// `Content-Disposition` (RFC 2183).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ... as written.
    pub kind: Vec<u8>,
    /// Its parameters (`filename`, ...).
    pub params: Vec<Param>,
}

impl BodyStructure {
    /// The structure of a whole raw message.
    pub fn parse(raw: &[u8]) -> BodyStructure {
        from_part(raw, &mime::parse(raw))
    }

    /// The structure `("text" "plain" ("charset" "us-ascii") NIL NIL
    /// "7bit" 0 0)` standing in for the missing parts of a multipart.
    pub fn empty_text() -> BodyStructure {
        BodyStructure {
            media_type: b"text".to_vec(),
            subtype: b"plain".to_vec(),
            params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
            body: Body::Single(SinglePart {
                id: None,
                description: None,
                encoding: b"7bit".to_vec(),
                size: 0,
                md5: None,
                kind: SingleKind::Text { lines: 0 },
            }),
            disposition: None,
            language: Vec::new(),
            location: None,
        }
    }
}

/// Builds the structure of a parsed part.
pub(crate) fn from_part(raw: &[u8], part: &Part) -> BodyStructure {
    let info = &part.info;
    let mut media_type = info.media_type.clone();
    let mut subtype = info.subtype.clone();
    let mut params = info.params.clone();
    let body = match &part.kind {
        PartKind::Multipart(children) => {
            let mut parts: Vec<BodyStructure> = children.iter().map(|c| from_part(raw, c)).collect();
            if parts.is_empty() {
                parts.push(BodyStructure::empty_text());
            }
            Body::Multipart(parts)
        }
        kind => {
            let body = &raw[part.body.clone()];
            let lines = memchr::memchr_iter(b'\n', body).count() as u64;
            let kind = match kind {
                PartKind::Message(inner) => SingleKind::Message {
                    envelope: Box::new(from_header(raw, inner.header.clone())),
                    body: Box::new(from_part(raw, inner)),
                    lines,
                },
                _ if info.is_type("text") => {
                    if info.param("charset").is_none() {
                        params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
                    }
                    SingleKind::Text { lines }
                }
                _ => {
                    if info.is_message() || info.is_multipart() {
                        // An encoded message (or a multipart cut off by the
                        // depth bound) cannot be shown as what it claims.
                        media_type = b"application".to_vec();
                        subtype = b"octet-stream".to_vec();
                    }
                    SingleKind::Basic
                }
            };
            Body::Single(SinglePart {
                id: info.id.clone(),
                description: info.description.clone(),
                encoding: info.encoding.clone().unwrap_or_else(|| b"7bit".to_vec()),
                size: body.len() as u64,
                md5: info.md5.clone(),
                kind,
            })
        }
    };
    BodyStructure {
        media_type,
        subtype,
        params,
        body,
        disposition: info.disposition.clone().map(|(kind, params)| Disposition { kind, params }),
        language: info.language.clone(),
        location: info.location.clone(),
    }
}
