//! The FETCH response builder (RFC 9051 §7.5.2): items in the order the
//! driver adds them, bodies as literals whose octets the caller may append
//! itself, so a large body is never formatted twice.

use mailroom_types::time::civil_from_days;

use crate::command::{Flag, InternalDate};
use crate::message::{Section, SectionText};
use crate::wire;

/// One `* n FETCH (...)` response being written.
///
/// ```
/// use mailroom_imap_proto::command::Flag;
/// use mailroom_imap_proto::response::FetchResponse;
///
/// let mut out = Vec::new();
/// let mut fetch = FetchResponse::start(&mut out, 12);
/// fetch.uid(4827).flags(&[Flag::Seen], false).rfc822_size(44827);
/// fetch.finish();
/// assert_eq!(out, b"* 12 FETCH (UID 4827 FLAGS (\\Seen) RFC822.SIZE 44827)\r\n");
/// ```
#[derive(Debug)]
pub struct FetchResponse<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

impl<'a> FetchResponse<'a> {
    /// Starts the response for message number `seq`.
    pub fn start(out: &'a mut Vec<u8>, seq: u32) -> FetchResponse<'a> {
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        FetchResponse { out, first: true }
    }

    fn name(&mut self, name: &str) {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
        self.out.extend_from_slice(name.as_bytes());
    }

    /// `UID n`.
    pub fn uid(&mut self, uid: u32) -> &mut Self {
        self.name(&format!("UID {uid}"));
        self
    }

    /// `FLAGS (...)`; `recent` adds `\Recent` (IMAP4rev1 only).
    pub fn flags(&mut self, flags: &[Flag], recent: bool) -> &mut Self {
        self.name("FLAGS (");
        let mut names: Vec<String> = flags.iter().map(Flag::as_wire).collect();
        if recent {
            names.push("\\Recent".into());
        }
        self.out.extend_from_slice(names.join(" ").as_bytes());
        self.out.push(b')');
        self
    }

    /// `MODSEQ (n)` (RFC 7162 §3.1.5).
    pub fn modseq(&mut self, modseq: u64) -> &mut Self {
        self.name(&format!("MODSEQ ({modseq})"));
        self
    }

    /// `INTERNALDATE "17-Jul-1996 02:44:25 -0700"`.
    pub fn internal_date(&mut self, date: InternalDate) -> &mut Self {
        self.name("INTERNALDATE ");
        self.out.extend_from_slice(format_date_time(date).as_bytes());
        self
    }

    /// `RFC822.SIZE n`.
    pub fn rfc822_size(&mut self, size: u64) -> &mut Self {
        self.name(&format!("RFC822.SIZE {size}"));
        self
    }

    /// A pre-encoded item: `name` and its encoded value, e.g. `ENVELOPE`
    /// and the parenthesized envelope from the message analysis.
    pub fn item(&mut self, name: &str, encoded: &[u8]) -> &mut Self {
        self.name(name);
        self.out.push(b' ');
        self.out.extend_from_slice(encoded);
        self
    }

    /// `BODY[section]<origin> {n}` and the data; `None` is NIL (a part
    /// that does not exist).
    pub fn body_section(&mut self, section: &Section, origin: Option<u64>, data: Option<&[u8]>) -> &mut Self {
        self.section_name("BODY", section, origin);
        match data {
            Some(data) => {
                wire::write_literal_header(self.out, data.len() as u64);
                self.out.extend_from_slice(data);
            }
            None => self.out.extend_from_slice(b"NIL"),
        }
        self
    }

    /// `BODY[section]<origin> {len}` CRLF, without the data: the caller
    /// appends exactly `len` octets with [`FetchResponse::data`] (or
    /// writes them itself after flushing) before the next item.
    pub fn body_section_literal(&mut self, section: &Section, origin: Option<u64>, len: u64) -> &mut Self {
        self.section_name("BODY", section, origin);
        wire::write_literal_header(self.out, len);
        self
    }

    /// `BINARY[part]<origin> ~{n}` and the decoded data (RFC 3516 §4.3);
    /// a plain literal when the data has no NUL, `None` is NIL.
    pub fn binary(&mut self, part: &[u32], origin: Option<u64>, data: Option<&[u8]>) -> &mut Self {
        let section = Section { part: part.to_vec(), text: None };
        self.section_name("BINARY", &section, origin);
        match data {
            Some(data) => {
                if data.contains(&0) {
                    self.out.push(b'~');
                }
                wire::write_literal_header(self.out, data.len() as u64);
                self.out.extend_from_slice(data);
            }
            None => self.out.extend_from_slice(b"NIL"),
        }
        self
    }

    /// `BINARY.SIZE[part] n`.
    pub fn binary_size(&mut self, part: &[u32], size: u64) -> &mut Self {
        let section = Section { part: part.to_vec(), text: None };
        self.section_name("BINARY.SIZE", &section, None);
        self.out.extend_from_slice(format!("{size}").as_bytes());
        self
    }

    /// An IMAP4rev1 RFC822 item: `name` is `RFC822`, `RFC822.HEADER` or
    /// `RFC822.TEXT`, followed by the data as a literal.
    pub fn rfc822(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.name(name);
        self.out.push(b' ');
        wire::write_literal_header(self.out, data.len() as u64);
        self.out.extend_from_slice(data);
        self
    }

    /// An IMAP4rev1 RFC822 item's name and literal header for `len`
    /// octets, without the data (see [`FetchResponse::body_section_literal`]).
    pub fn rfc822_literal(&mut self, name: &str, len: u64) -> &mut Self {
        self.name(name);
        self.out.push(b' ');
        wire::write_literal_header(self.out, len);
        self
    }

    /// How many octets the output holds so far, this response included:
    /// where literal data announced without its octets goes.
    pub fn written(&self) -> usize {
        self.out.len()
    }

    /// Appends literal octets announced by
    /// [`FetchResponse::body_section_literal`].
    pub fn data(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// Ends the response: `)` CRLF.
    pub fn finish(self) {
        self.out.extend_from_slice(b")\r\n");
    }

    /// `BODY[1.2.HEADER.FIELDS (A B)]<origin> `.
    fn section_name(&mut self, kind: &str, section: &Section, origin: Option<u64>) {
        self.name(kind);
        self.out.push(b'[');
        write_section(self.out, section);
        self.out.push(b']');
        if let Some(origin) = origin {
            self.out.extend_from_slice(format!("<{origin}>").as_bytes());
        }
        self.out.push(b' ');
    }
}

/// The section spec inside the brackets (RFC 9051 §9 `section-spec`).
fn write_section(out: &mut Vec<u8>, section: &Section) {
    let part: Vec<String> = section.part.iter().map(u32::to_string).collect();
    out.extend_from_slice(part.join(".").as_bytes());
    let Some(text) = &section.text else { return };
    if !part.is_empty() {
        out.push(b'.');
    }
    let fields = |out: &mut Vec<u8>, name: &str, list: &[String]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b" (");
        for (i, f) in list.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            wire::write_astring(out, f.as_bytes());
        }
        out.push(b')');
    };
    match text {
        SectionText::Header => out.extend_from_slice(b"HEADER"),
        SectionText::HeaderFields(list) => fields(out, "HEADER.FIELDS", list),
        SectionText::HeaderFieldsNot(list) => fields(out, "HEADER.FIELDS.NOT", list),
        SectionText::Text => out.extend_from_slice(b"TEXT"),
        SectionText::Mime => out.extend_from_slice(b"MIME"),
    }
}

/// `"dd-Mon-yyyy hh:mm:ss +zzzz"` (RFC 9051 §9 `date-time`).
pub(crate) fn format_date_time(date: InternalDate) -> String {
    let offset = i64::from(date.offset_minutes);
    let local = date.unix_seconds + offset * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    let sign = if offset < 0 { '-' } else { '+' };
    let (oh, om) = (offset.abs() / 60, offset.abs() % 60);
    format!(
        "\"{d:02}-{month}-{y:04} {:02}:{:02}:{:02} {sign}{oh:02}{om:02}\"",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
