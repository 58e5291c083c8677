//! Writing IMAP strings (RFC 9051 §4.3): the one place that decides between
//! an atom, a quoted string and a literal, so no response can be
//! mis-quoted.

/// Writes `s` as a quoted string when it can be one (7-bit, no CR, LF or
/// NUL, at most 1 KiB), else as a literal `{n}\r\n...`. Eight-bit text
/// always goes as a literal: RFC 3501 quoted strings are 7-bit, and RFC
/// 9051 admits only valid UTF-8 in them, which a header may not be.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_string_as(out, s, false);
}

/// Like [`write_string`], but valid UTF-8 may be quoted: for a client
/// that has enabled IMAP4rev2 or UTF8=ACCEPT (mailbox names).
pub fn write_utf8_string(out: &mut Vec<u8>, s: &[u8]) {
    write_string_as(out, s, std::str::from_utf8(s).is_ok());
}

fn write_string_as(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable = s.len() <= 1024 && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0 && (b < 0x80 || utf8));
    if quotable {
        // Runs between the octets to escape are copied whole: ENVELOPE of
        // a mailbox writes thousands of these.
        out.reserve(s.len() + 2);
        out.push(b'"');
        let mut rest = s;
        while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
            out.extend_from_slice(&rest[..i]);
            out.push(b'\\');
            out.push(rest[i]);
            rest = &rest[i + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    } else {
        write_literal_header(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Writes `NIL` for `None`, else the string.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes an astring: a bare atom when every octet is an ATOM-CHAR (and it
/// is not `NIL`), else a string.
pub fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    if is_atom(s) { out.extend_from_slice(s) } else { write_string(out, s) }
}

/// Like [`write_astring`], with valid UTF-8 quoted (see
/// [`write_utf8_string`]).
pub fn write_utf8_astring(out: &mut Vec<u8>, s: &[u8]) {
    if is_atom(s) { out.extend_from_slice(s) } else { write_utf8_string(out, s) }
}

fn is_atom(s: &[u8]) -> bool {
    !s.is_empty() && !s.eq_ignore_ascii_case(b"NIL") && s.iter().all(|&b| is_astring_char(b))
}

/// Writes a literal's announcement `{n}\r\n`; the caller writes the `n`
/// octets after it (possibly streamed).
pub fn write_literal_header(out: &mut Vec<u8>, len: u64) {
    out.push(b'{');
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
}

/// ASTRING-CHAR of RFC 9051 §9: ATOM-CHAR or `]`.
fn is_astring_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut Vec<u8>, &[u8]), v: &[u8]) -> String {
        let mut out = Vec::new();
        f(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(s(write_string, b"a \"b\" \\c"), r#""a \"b\" \\c""#);
        assert_eq!(s(write_string, b"x\r\ny"), "{4}\r\nx\r\ny");
        assert_eq!(s(write_astring, b"INBOX"), "INBOX");
        assert_eq!(s(write_astring, b"a b"), "\"a b\"");
        assert_eq!(s(write_astring, b"nil"), "\"nil\"");
        assert_eq!(s(write_astring, b""), "\"\"");
        let mut latin1 = Vec::new();
        write_string(&mut latin1, b"R\xe9union");
        assert_eq!(latin1, b"{7}\r\nR\xe9union");
        assert_eq!(s(write_string, "Réunion".as_bytes()), "{8}\r\nRéunion");
        assert_eq!(s(write_utf8_string, "Réunion".as_bytes()), "\"Réunion\"");
        assert_eq!(s(write_utf8_astring, "Entwürfe".as_bytes()), "\"Entwürfe\"");
        let mut out = Vec::new();
        write_nstring(&mut out, None);
        assert_eq!(out, b"NIL");
    }
}
