//! The MIME tree of a stored message over its raw bytes (RFC 5322 §2.1,
//! RFC 2045, RFC 2046): where each part's header and body lie, and the
//! `Content-*` fields BODYSTRUCTURE reports.
//!
//! IMAP answers in octets of the stored message (sizes, line counts,
//! `BODY[1.2]`), so the tree keeps byte ranges into the raw message rather
//! than decoded copies; decoding happens only where a command asks for it
//! (BINARY, SEARCH).
//!
//! Boundaries follow Dovecot's reading of RFC 2046 §5.1.1: the CRLF before
//! a delimiter line belongs to the delimiter, so a part's body ends before
//! it; a multipart that is never closed runs to the end of its parent.
//! Nesting deeper than [`MAX_DEPTH`] is treated as an opaque leaf, so a
//! hostile message cannot make the parser (or the encoders that recurse
//! over the tree) run out of stack.

use std::ops::Range;

use memchr::{memchr, memmem};

/// Deepest MIME nesting analysed; deeper parts are leaves.
pub const MAX_DEPTH: usize = 64;

/// One entity: a whole message, a body part, or an encapsulated message.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The header section, including its terminating blank line when the
    /// message has one.
    pub header: Range<usize>,
    /// The body: everything after the header section up to the part's end.
    pub body: Range<usize>,
    /// The `Content-*` fields, with RFC 2045 defaults applied.
    pub info: MimeInfo,
    /// What the body holds.
    pub kind: PartKind,
}

/// What a part's body holds.
#[derive(Debug, Clone)]
pub(crate) enum PartKind {
    /// Opaque content (text, image, an encoded message, ...).
    Leaf,
    /// `multipart/*`: the body parts, possibly none when the boundary is
    /// missing or never occurs.
    Multipart(Vec<Part>),
    /// `message/rfc822` or `message/global`: the encapsulated message,
    /// whose range is this part's body.
    Message(Box<Part>),
}

/// A MIME parameter: name (lowercased) and value (unquoted, otherwise raw).
pub type Param = (Vec<u8>, Vec<u8>);

/// The `Content-*` fields of one part, as BODYSTRUCTURE reports them.
#[derive(Debug, Clone, Default)]
pub(crate) struct MimeInfo {
    /// Media type as written, or the RFC 2045 §5.2 default.
    pub media_type: Vec<u8>,
    /// Subtype as written, or the default.
    pub subtype: Vec<u8>,
    /// `Content-Type` parameters, RFC 2231 continuations joined.
    pub params: Vec<Param>,
    /// `Content-ID`, unfolded.
    pub id: Option<Vec<u8>>,
    /// `Content-Description`, unfolded, encoded words left as they are.
    pub description: Option<Vec<u8>>,
    /// `Content-Transfer-Encoding` token as written; `None` is 7BIT.
    pub encoding: Option<Vec<u8>>,
    /// `Content-MD5`, unfolded.
    pub md5: Option<Vec<u8>>,
    /// `Content-Disposition` (RFC 2183): type and parameters.
    pub disposition: Option<(Vec<u8>, Vec<Param>)>,
    /// `Content-Language` tags (RFC 3282); empty when absent.
    pub language: Vec<Vec<u8>>,
    /// `Content-Location` (RFC 2557), unfolded.
    pub location: Option<Vec<u8>>,
}

/// A parsed `Content-Type`: type, subtype if given, parameters.
type ContentType = (Vec<u8>, Option<Vec<u8>>, Vec<Param>);

/// An RFC 2231 segment: its number, whether it is encoded, its value.
type Segment = (u32, bool, Vec<u8>);

/// A content transfer encoding as far as decoding is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cte {
    /// 7bit, 8bit, binary, or none given: the octets are the content.
    Identity,
    /// RFC 2045 §6.8.
    Base64,
    /// RFC 2045 §6.7.
    QuotedPrintable,
    /// Anything else (x-uuencode, typos): cannot be decoded.
    Unknown(Vec<u8>),
}

impl MimeInfo {
    /// Whether the media type is `ty` (case-insensitive).
    pub fn is_type(&self, ty: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(ty.as_bytes())
    }

    /// Whether this is `multipart/*`.
    pub fn is_multipart(&self) -> bool {
        self.is_type("multipart")
    }

    /// Whether this is an encapsulated message IMAP shows as
    /// envelope + body (RFC 9051 §7.5.2, RFC 6532 for `message/global`).
    pub fn is_message(&self) -> bool {
        self.is_type("message")
            && (self.subtype.eq_ignore_ascii_case(b"rfc822") || self.subtype.eq_ignore_ascii_case(b"global"))
    }

    /// The first parameter called `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params.iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| v.as_slice())
    }

    /// How the body is encoded.
    pub fn cte(&self) -> Cte {
        let Some(enc) = &self.encoding else { return Cte::Identity };
        let is = |s: &str| enc.eq_ignore_ascii_case(s.as_bytes());
        if is("7bit") || is("8bit") || is("binary") {
            Cte::Identity
        } else if is("base64") {
            Cte::Base64
        } else if is("quoted-printable") {
            Cte::QuotedPrintable
        } else {
            Cte::Unknown(enc.clone())
        }
    }

    /// Reads the `Content-*` fields of a header section. `in_digest` makes
    /// the default type `message/rfc822` (RFC 2046 §5.1.5).
    fn parse(raw: &[u8], header: Range<usize>, in_digest: bool) -> MimeInfo {
        let mut info = MimeInfo::default();
        let mut content_type: Option<ContentType> = None;
        for field in fields(raw, header) {
            let name = &raw[field.name.clone()];
            if name.len() < 8 || !name[..8].eq_ignore_ascii_case(b"content-") {
                continue;
            }
            let value = &raw[field.value.clone()];
            let rest = &name[8..];
            let is = |s: &str| rest.eq_ignore_ascii_case(s.as_bytes());
            if is("type") && content_type.is_none() {
                content_type = parse_content_type(value);
            } else if is("transfer-encoding") && info.encoding.is_none() {
                let mut lx = Lexer::new(value);
                lx.skip_cfws();
                let token = lx.token();
                if !token.is_empty() {
                    info.encoding = Some(token.to_vec());
                }
            } else if is("id") && info.id.is_none() {
                info.id = Some(unfold_trim(value));
            } else if is("description") && info.description.is_none() {
                info.description = Some(unfold_trim(value));
            } else if is("md5") && info.md5.is_none() {
                info.md5 = Some(unfold_trim(value));
            } else if is("location") && info.location.is_none() {
                info.location = Some(unfold_trim(value));
            } else if is("disposition") && info.disposition.is_none() {
                let mut lx = Lexer::new(value);
                lx.skip_cfws();
                let token = lx.token().to_vec();
                if !token.is_empty() {
                    info.disposition = Some((token, lx.params()));
                }
            } else if is("language") && info.language.is_empty() {
                info.language = parse_language(value);
            }
        }
        match content_type {
            Some((ty, sub, params)) => {
                let sub = sub.unwrap_or_else(|| {
                    let default: &[u8] = if ty.eq_ignore_ascii_case(b"text") {
                        b"plain"
                    } else if ty.eq_ignore_ascii_case(b"multipart") {
                        b"x-unknown"
                    } else {
                        b"unknown"
                    };
                    default.to_vec()
                });
                info.media_type = ty;
                info.subtype = sub;
                info.params = params;
            }
            None if in_digest => {
                info.media_type = b"message".to_vec();
                info.subtype = b"rfc822".to_vec();
            }
            None => {
                info.media_type = b"text".to_vec();
                info.subtype = b"plain".to_vec();
            }
        }
        info
    }
}

/// Parses the entity in `range` of `raw`: a whole message when `range`
/// covers it.
pub(crate) fn parse(raw: &[u8]) -> Part {
    parse_part(raw, 0..raw.len(), false, 0)
}

fn parse_part(raw: &[u8], range: Range<usize>, in_digest: bool, depth: usize) -> Part {
    let (header, body) = split_header(raw, range);
    let info = MimeInfo::parse(raw, header.clone(), in_digest);
    let kind = if depth >= MAX_DEPTH {
        PartKind::Leaf
    } else if info.is_multipart() {
        let digest = info.subtype.eq_ignore_ascii_case(b"digest");
        let children = match info.param("boundary") {
            Some(boundary) if !boundary.is_empty() => split_multipart(raw, body.clone(), boundary)
                .into_iter()
                .map(|r| parse_part(raw, r, digest, depth + 1))
                .collect(),
            _ => Vec::new(),
        };
        PartKind::Multipart(children)
    } else if info.is_message() && info.cte() == Cte::Identity {
        // RFC 2046 §5.2.1: only 7bit, 8bit or binary may encapsulate a
        // message; an encoded one stays opaque.
        PartKind::Message(Box::new(parse_part(raw, body.clone(), false, depth + 1)))
    } else {
        PartKind::Leaf
    };
    Part { header, body, info, kind }
}

/// Splits an entity into its header section (with the blank line) and its
/// body. Without a blank line the whole entity is header.
pub(crate) fn split_header(raw: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let end = range.end;
    let mut pos = range.start;
    while pos < end {
        let line_end = line_end(raw, pos, end);
        if is_blank(&raw[pos..line_end]) {
            return (range.start..line_end, line_end..end);
        }
        pos = line_end;
    }
    (range.start..end, end..end)
}

/// The body ranges of a multipart's parts (RFC 2046 §5.1.1). A delimiter
/// line is `--boundary`, then optional white space; the close delimiter
/// adds `--`. Matching is exact, so a nested boundary that merely starts
/// with this one is not mistaken for it.
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let hay = &raw[body.clone()];
    let mut pattern = Vec::with_capacity(boundary.len() + 2);
    pattern.extend_from_slice(b"--");
    pattern.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&pattern);
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut from = 0;
    while let Some(found) = finder.find(&hay[from..]) {
        let i = from + found;
        from = i + 1;
        if i != 0 && hay[i - 1] != b'\n' {
            continue;
        }
        let after = i + pattern.len();
        let close = hay[after..].starts_with(b"--");
        let next_line = memchr(b'\n', &hay[after..]).map_or(hay.len(), |k| after + k + 1);
        if !close && !hay[after..next_line].iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
            continue;
        }
        if let Some(start) = current {
            let end = if i >= 2 && &hay[i - 2..i] == b"\r\n" {
                i - 2
            } else if i >= 1 {
                i - 1
            } else {
                i
            };
            parts.push(body.start + start..body.start + end.max(start));
        }
        if close {
            return parts;
        }
        current = Some(next_line);
        from = next_line;
    }
    if let Some(start) = current {
        parts.push(body.start + start..body.end);
    }
    parts
}

/// One header field: name, value (after the colon, up to but excluding the
/// final line break) and the whole field with its line break.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
    pub whole: Range<usize>,
}

/// The fields of a header section in order. Lines that are neither a field
/// nor a continuation are skipped; the blank line ends the section.
pub(crate) fn fields(raw: &[u8], header: Range<usize>) -> Fields<'_> {
    Fields { raw, pos: header.start, end: header.end }
}

/// Iterator returned by [`fields`].
pub(crate) struct Fields<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        let raw = self.raw;
        while self.pos < self.end {
            let start = self.pos;
            let first_end = line_end(raw, start, self.end);
            if is_blank(&raw[start..first_end]) {
                self.pos = self.end;
                return None;
            }
            let mut field_end = first_end;
            while field_end < self.end && matches!(raw[field_end], b' ' | b'\t') {
                field_end = line_end(raw, field_end, self.end);
            }
            self.pos = field_end;
            if matches!(raw[start], b' ' | b'\t') {
                continue;
            }
            let Some(colon) = memchr(b':', &raw[start..first_end]) else { continue };
            let mut name_end = start + colon;
            while name_end > start && matches!(raw[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            if name_end == start {
                continue;
            }
            let mut value_end = field_end;
            if value_end > start && raw[value_end - 1] == b'\n' {
                value_end -= 1;
                if value_end > start && raw[value_end - 1] == b'\r' {
                    value_end -= 1;
                }
            }
            let value_start = (start + colon + 1).min(value_end);
            return Some(Field { name: start..name_end, value: value_start..value_end, whole: start..field_end });
        }
        None
    }
}

/// The position after the next LF at or after `pos`, or `end`.
fn line_end(raw: &[u8], pos: usize, end: usize) -> usize {
    memchr(b'\n', &raw[pos..end]).map_or(end, |i| pos + i + 1)
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// A header value with its folding line breaks removed and surrounding
/// white space trimmed, as ENVELOPE and BODYSTRUCTURE report raw values.
pub(crate) fn unfold_trim(value: &[u8]) -> Vec<u8> {
    let out: Vec<u8> = value.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    trim(&out).to_vec()
}

/// `s` without leading and trailing SP/HT.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &s[start..end]
}

/// `type "/" subtype *(";" parameter)` (RFC 2045 §5.1); `None` when no
/// type can be read, so the defaults apply.
fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let ty = lx.token().to_vec();
    if ty.is_empty() {
        return None;
    }
    lx.skip_cfws();
    let mut sub = None;
    if lx.eat(b'/') {
        lx.skip_cfws();
        let s = lx.token();
        if !s.is_empty() {
            sub = Some(s.to_vec());
        }
    }
    Some((ty, sub, lx.params()))
}

/// `Content-Language: en, de-CH` (RFC 3282).
fn parse_language(value: &[u8]) -> Vec<Vec<u8>> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    loop {
        lx.skip_cfws();
        let tag = lx.token();
        if !tag.is_empty() {
            out.push(tag.to_vec());
        }
        lx.skip_cfws();
        if !lx.eat(b',') {
            break;
        }
    }
    out
}

/// A small lexer for MIME structured field values: tokens, quoted strings
/// and comments (RFC 2045 §5.1, RFC 5322 §3.2).
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips white space, line breaks and (nested) comments.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    /// A run of token characters (RFC 2045 §5.1).
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A quoted string's content, escapes removed; the opening quote must
    /// be next. An unterminated string runs to the end.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// `*(";" attribute "=" value)`, leniently: an unquoted value runs to
    /// the next `;`, and a parameter without `=` is skipped. RFC 2231
    /// continuations (`name*0`, `name*1*`) are joined.
    fn params(&mut self) -> Vec<Param> {
        let mut raw_params: Vec<Param> = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => break,
                Some(b';') => self.pos += 1,
                Some(_) => {
                    // Junk between parameters: skip to the next one.
                    self.skip_past(b';');
                    continue;
                }
            }
            self.skip_cfws();
            let name = self.token().to_ascii_lowercase();
            self.skip_cfws();
            if name.is_empty() || !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                // A token (RFC 2045 §5.1), leniently up to `;` since real
                // mail has unquoted spaces in file names; a comment ends it
                // (`charset=us-ascii (Plain text)`).
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if b == b';' || b == b'(' {
                        break;
                    }
                    self.pos += 1;
                }
                let v: Vec<u8> =
                    self.s[start..self.pos].iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
                trim(&v).to_vec()
            };
            raw_params.push((name, value));
        }
        join_continuations(raw_params)
    }

    fn skip_past(&mut self, b: u8) {
        match memchr(b, &self.s[self.pos..]) {
            Some(i) => self.pos += i,
            None => self.pos = self.s.len(),
        }
    }
}

/// Joins RFC 2231 §3 continuations into one parameter, keeping the
/// position of the first segment. When the first segment is encoded
/// (`name*0*`) the result is `name*`, still percent-encoded, as it is
/// written on the wire.
fn join_continuations(params: Vec<Param>) -> Vec<Param> {
    if !params.iter().any(|(n, _)| n.contains(&b'*')) {
        return params;
    }
    let mut out: Vec<Param> = Vec::new();
    // For each joined parameter: index in `out`, and its segments.
    let mut groups: Vec<(Vec<u8>, usize, Vec<Segment>)> = Vec::new();
    for (name, value) in params {
        let Some(star) = memchr(b'*', &name) else {
            out.push((name, value));
            continue;
        };
        let base = name[..star].to_vec();
        let rest = &name[star + 1..];
        let (index, encoded) = if rest.is_empty() {
            (0, true)
        } else {
            let digits = rest.strip_suffix(b"*").unwrap_or(rest);
            let encoded = rest.ends_with(b"*");
            match std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u32>().ok()) {
                Some(i) => (i, encoded),
                None => {
                    out.push((name, value));
                    continue;
                }
            }
        };
        match groups.iter_mut().find(|(b, _, _)| *b == base) {
            Some((_, _, segs)) => segs.push((index, encoded, value)),
            None => {
                groups.push((base.clone(), out.len(), vec![(index, encoded, value)]));
                out.push((base, Vec::new()));
            }
        }
    }
    for (base, slot, mut segs) in groups {
        segs.sort_by_key(|(i, _, _)| *i);
        let first_encoded = segs.first().is_some_and(|(_, e, _)| *e);
        let mut value = Vec::new();
        for (_, encoded, v) in segs {
            if first_encoded && !encoded {
                // A plain segment joined into an encoded value must read
                // as itself once the value is percent-decoded (RFC 2231
                // §4.1).
                percent_encode(&mut value, &v);
            } else {
                value.extend_from_slice(&v);
            }
        }
        let mut name = base;
        if first_encoded {
            name.push(b'*');
        }
        out[slot] = (name, value);
    }
    out
}

/// Appends `raw` with every octet that is not an RFC 2231
/// `attribute-char` written as `%XX`.
fn percent_encode(out: &mut Vec<u8>, raw: &[u8]) {
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`{|}~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// Decodes base64 leniently (RFC 2045 §6.8: characters outside the
/// alphabet are ignored; decoding stops at padding).
pub(crate) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Decodes quoted-printable leniently (RFC 2045 §6.7): soft line breaks
/// are removed, trailing white space on a line is dropped, and an `=` not
/// followed by two hex digits is kept as it is (note 1 of §6.7).
pub(crate) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    // Where a run of literal (not encoded) white space began in `out`;
    // it is dropped when a line ends after it (§6.7, rule 3).
    let mut literal_ws: Option<usize> = None;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'=' => {
                let mut j = i + 1;
                while j < input.len() && matches!(input[j], b' ' | b'\t') {
                    j += 1;
                }
                if j < input.len() && input[j] == b'\n' {
                    i = j + 1;
                    continue;
                }
                if j + 1 < input.len() && input[j] == b'\r' && input[j + 1] == b'\n' {
                    i = j + 2;
                    continue;
                }
                if j >= input.len() {
                    // "=" (and white space) at the very end: a soft break.
                    break;
                }
                let hex = |c: u8| (c as char).to_digit(16);
                literal_ws = None;
                match (input.get(i + 1).and_then(|&c| hex(c)), input.get(i + 2).and_then(|&c| hex(c))) {
                    (Some(h), Some(l)) => {
                        // Two hex digits make at most 255.
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'\r' | b'\n' => {
                if let Some(ws) = literal_ws.take() {
                    out.truncate(ws);
                }
                if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
                    out.extend_from_slice(b"\r\n");
                    i += 2;
                } else {
                    out.push(b);
                    i += 1;
                }
            }
            b' ' | b'\t' => {
                literal_ws.get_or_insert(out.len());
                out.push(b);
                i += 1;
            }
            _ => {
                literal_ws = None;
                out.push(b);
                i += 1;
            }
        }
    }
    if let Some(ws) = literal_ws {
        out.truncate(ws);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(p: &Part) -> String {
        let ty =
            format!("{}/{}", String::from_utf8_lossy(&p.info.media_type), String::from_utf8_lossy(&p.info.subtype));
        match &p.kind {
            PartKind::Leaf => ty,
            PartKind::Multipart(ch) => format!("{ty}[{}]", ch.iter().map(kinds).collect::<Vec<_>>().join(",")),
            PartKind::Message(inner) => format!("{ty}{{{}}}", kinds(inner)),
        }
    }

    #[test]
    fn header_and_body_split_at_blank_line() {
        let raw = b"A: 1\r\nB: 2\r\n\r\nbody\r\n";
        let (h, b) = split_header(raw, 0..raw.len());
        assert_eq!(&raw[h], b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(&raw[b], b"body\r\n");
        let raw = b"A: 1\r\n";
        let (h, b) = split_header(raw, 0..raw.len());
        assert_eq!((h, b), (0..6, 6..6));
    }

    #[test]
    fn fields_keep_folding_and_skip_junk() {
        let raw = b"Subject: a\r\n b\r\njunk line\r\nX-Y : z\r\n\r\nBody: no\r\n";
        let got: Vec<(String, String)> = fields(raw, 0..raw.len())
            .map(|f| {
                (
                    String::from_utf8_lossy(&raw[f.name]).into_owned(),
                    String::from_utf8_lossy(&raw[f.value]).into_owned(),
                )
            })
            .collect();
        assert_eq!(got, vec![("Subject".into(), " a\r\n b".into()), ("X-Y".into(), " z".into())]);
    }

    #[test]
    fn content_type_params_and_rfc2231() {
        let (ty, sub, params) = parse_content_type(
            b" Text/Plain (comment) ; Charset=\"UTF-8\"; format=flowed;\r\n\ttitle*0=\"a b\"; title*1=c; name*=utf-8''%E2%82%AC",
        )
        .unwrap();
        assert_eq!(ty, b"Text");
        assert_eq!(sub.unwrap(), b"Plain");
        let params: Vec<(String, String)> =
            params.into_iter().map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap())).collect();
        assert_eq!(
            params,
            vec![
                ("charset".into(), "UTF-8".into()),
                ("format".into(), "flowed".into()),
                ("title".into(), "a bc".into()),
                ("name*".into(), "utf-8''%E2%82%AC".into()),
            ]
        );
    }

    #[test]
    fn tree_of_nested_multiparts_and_messages() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\n\r\nplain\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=outerx\r\n\r\n--outerx\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--outerx--\r\n\r\n--outer--\r\nepilogue\r\n";
        let root = parse(raw);
        assert_eq!(kinds(&root), "multipart/mixed[text/plain,message/rfc822{multipart/alternative[text/html]}]");
        let PartKind::Multipart(ch) = &root.kind else { panic!() };
        assert_eq!(&raw[ch[0].body.clone()], b"plain");
        let PartKind::Message(inner) = &ch[1].kind else { panic!() };
        let PartKind::Multipart(alt) = &inner.kind else { panic!() };
        assert_eq!(&raw[alt[0].body.clone()], b"<p>x</p>");
        assert_eq!(&raw[inner.body.clone()], b"--outerx\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--outerx--\r\n");
    }

    #[test]
    fn digest_children_default_to_message() {
        let raw = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\nhi\r\n--d--\r\n";
        assert_eq!(kinds(&parse(raw)), "multipart/digest[message/rfc822{text/plain}]");
    }

    #[test]
    fn unclosed_and_missing_boundaries() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n\r\nlast";
        let root = parse(raw);
        let PartKind::Multipart(ch) = &root.kind else { panic!() };
        assert_eq!(ch.len(), 2);
        assert_eq!(&raw[ch[1].body.clone()], b"last");
        let raw = b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n";
        assert_eq!(kinds(&parse(raw)), "multipart/mixed[]");
    }

    #[test]
    fn depth_is_bounded() {
        let mut raw = Vec::new();
        for _ in 0..200 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: deep\r\n\r\nbody\r\n");
        let mut part = &parse(&raw);
        let mut depth = 0;
        while let PartKind::Message(inner) = &part.kind {
            part = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
    }

    #[test]
    fn base64_and_qp_decoding() {
        assert_eq!(decode_base64(b"SGVs\r\nbG8g d29y bGQ=\r\n"), b"Hello world");
        assert_eq!(decode_base64(b"AAEC/w=="), [0, 1, 2, 255]);
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nsoft  \r\nbad=ZZ end=3d=\r\n"),
            "café soft\r\nbad=ZZ end=".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"kept=20\r\nkept=09"), b"kept \r\nkept\t");
        assert_eq!(decode_quoted_printable(b"a \t\r\nb  "), b"a\r\nb");
    }
}
