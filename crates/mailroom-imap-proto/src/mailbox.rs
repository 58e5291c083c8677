//! Mailbox names on the wire (RFC 9051 §5.1): UTF-8 for clients that
//! enabled IMAP4rev2 or UTF8=ACCEPT (RFC 6855), modified UTF-7
//! (RFC 3501 §5.1.3) for IMAP4rev1 clients. imap-codec hands names over as
//! raw octets, so the conversion is here; the command model and the store
//! only ever see UTF-8.

use base64::Engine as _;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::wire;

/// Modified base64 of RFC 3501 §5.1.3: `,` for `/`, no padding.
const MUTF7: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Why a mailbox name from the client was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    /// Not valid UTF-8 (in UTF-8 mode, or after decoding).
    #[error("mailbox name is not valid UTF-8")]
    NotUtf8,
    /// A `&...-` sequence that is not valid modified UTF-7.
    #[error("mailbox name is not valid modified UTF-7")]
    BadUtf7,
}

/// Decodes a mailbox name as sent. `INBOX` in any case becomes `INBOX`
/// (RFC 9051 §5.1: it is case-insensitive). In rev1 mode modified UTF-7
/// is decoded; raw UTF-8 is still accepted there, since many rev1 clients
/// send it.
pub fn decode_name(raw: &[u8], utf8: bool) -> Result<String, MailboxNameError> {
    let text = std::str::from_utf8(raw).map_err(|_| MailboxNameError::NotUtf8)?;
    let name = if utf8 || !text.contains('&') { text.to_string() } else { utf7_decode(text)? };
    Ok(if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_string() } else { name })
}

/// Decodes a LIST pattern: like [`decode_name`] but without the INBOX
/// rule, which is the matcher's.
pub fn decode_pattern(raw: &[u8], utf8: bool) -> Result<String, MailboxNameError> {
    let text = std::str::from_utf8(raw).map_err(|_| MailboxNameError::NotUtf8)?;
    if utf8 || !text.contains('&') { Ok(text.to_string()) } else { utf7_decode(text) }
}

/// Writes a mailbox name as an astring, in modified UTF-7 unless `utf8`.
pub fn write_name(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        wire::write_utf8_astring(out, name.as_bytes());
    } else {
        wire::write_astring(out, utf7_encode(name).as_bytes());
    }
}

/// Encodes `name` in modified UTF-7 (RFC 3501 §5.1.3).
pub fn utf7_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&MUTF7.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Decodes modified UTF-7 (RFC 3501 §5.1.3).
pub fn utf7_decode(text: &str) -> Result<String, MailboxNameError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let dash = after.find('-').ok_or(MailboxNameError::BadUtf7)?;
        let encoded = &after[..dash];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = MUTF7.decode(encoded).map_err(|_| MailboxNameError::BadUtf7)?;
            if bytes.len() % 2 != 0 {
                return Err(MailboxNameError::BadUtf7);
            }
            let units = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
            for c in char::decode_utf16(units) {
                let c = c.map_err(|_| MailboxNameError::BadUtf7)?;
                // RFC 3501 §5.1.3: printable ASCII must be sent as itself.
                if (' '..='~').contains(&c) {
                    return Err(MailboxNameError::BadUtf7);
                }
                out.push(c);
            }
        }
        rest = &after[dash + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf7_round_trips() {
        // RFC 3501 §5.1.3's example.
        let name = "~peter/mail/台北/日本語";
        assert_eq!(utf7_encode(name), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(utf7_decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(), name);
        assert_eq!(utf7_encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(utf7_decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(utf7_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(utf7_decode("&Jjo-!").unwrap(), "☺!");
        for bad in ["&", "&U,BTF", "&AGE-", "&*-"] {
            assert_eq!(utf7_decode(bad), Err(MailboxNameError::BadUtf7), "{bad}");
        }
    }

    #[test]
    fn names_by_mode() {
        assert_eq!(decode_name(b"inbox", false).unwrap(), "INBOX");
        assert_eq!(decode_name(b"Entw&APw-rfe", false).unwrap(), "Entwürfe");
        assert_eq!(decode_name(b"Entw&APw-rfe", true).unwrap(), "Entw&APw-rfe");
        assert_eq!(decode_name("Entwürfe".as_bytes(), false).unwrap(), "Entwürfe");
        assert_eq!(decode_name(b"\xff", true), Err(MailboxNameError::NotUtf8));
        assert_eq!(decode_pattern(b"inbox", true).unwrap(), "inbox");
        let mut out = Vec::new();
        write_name(&mut out, "Entwürfe", false);
        write_name(&mut out, " Entwürfe", true);
        assert_eq!(String::from_utf8(out).unwrap(), "Entw&APw-rfe\" Entwürfe\"");
    }
}
