//! The SASL side of SMTP AUTH (RFC 4954): the mechanisms we offer, the
//! base64 of the exchange (RFC 4648 §4) and the PLAIN message (RFC 4616).
//!
//! Implementation notes:
//! - Only PLAIN and LOGIN are offered: both carry the password itself,
//!   which is what the account store checks (argon2 hashes), and the
//!   driver offers them only under TLS (RFC 4954 §4 and §15).
//! - LOGIN has no RFC; it is the draft-murchison-sasl-login exchange every
//!   mail client still knows: the server asks `Username:` then
//!   `Password:`, each base64-encoded, and the client answers each.
//! - The base64 decoder is strict: the padded standard alphabet only, no
//!   whitespace, no bits left over. A client that sends anything else
//!   gets a 501 instead of having its credentials guessed at.

use mailroom_types::Secret;

/// A SASL mechanism the server offers (advertised as `AUTH PLAIN LOGIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `LOGIN`: user name and password in two server-prompted steps
    /// (draft-murchison-sasl-login). It has no authorization identity.
    Login,
    /// `PLAIN` (RFC 4616): one message `authzid NUL authcid NUL passwd`.
    Plain,
}

impl Mechanism {
    /// The mechanism named `name`, in any case (RFC 4954 §4 sends it as
    /// `sasl-mech`, and clients vary).
    pub(crate) fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// The credentials of a PLAIN message (RFC 4616 §2).
#[derive(Debug)]
pub(crate) struct PlainCredentials {
    pub(crate) authzid: String,
    pub(crate) authcid: String,
    pub(crate) password: Secret<String>,
}

/// Why a client's SASL data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslError {
    /// Not strict base64.
    Base64,
    /// Not `authzid NUL authcid NUL passwd` with a non-empty authcid and
    /// password (RFC 4616 §2).
    MalformedPlain,
    /// A credential that is not UTF-8 (RFC 4616 §2 requires UTF-8).
    NotUtf8,
}

/// Splits a decoded PLAIN message (RFC 4616 §2):
/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd`, where authcid and
/// passwd are `1*SAFE` and SAFE excludes NUL.
pub(crate) fn parse_plain(message: Vec<u8>) -> Result<PlainCredentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::MalformedPlain);
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::NotUtf8);
    Ok(PlainCredentials { authzid: text(authzid)?, authcid: text(authcid)?, password: Secret::new(text(password)?) })
}

/// Decodes strict base64 (RFC 4648 §4): the standard alphabet, padded to
/// a multiple of four, with the unused bits of the last group zero
/// (RFC 4648 §3.5 allows a decoder to insist).
pub(crate) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, SaslError> {
    if !text.len().is_multiple_of(4) {
        return Err(SaslError::Base64);
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (i, group) in text.chunks_exact(4).enumerate() {
        // Padding may end only the last group: `xx==` or `xxx=`.
        let pad = match group {
            [_, _, b'=', b'='] => 2,
            [_, _, _, b'='] => 1,
            _ => 0,
        };
        if pad > 0 && i + 1 != groups {
            return Err(SaslError::Base64);
        }
        let mut bits: u32 = 0;
        for &c in &group[..4 - pad] {
            bits = (bits << 6) | u32::from(sextet(c).ok_or(SaslError::Base64)?);
        }
        bits <<= 6 * pad;
        let bytes = bits.to_be_bytes();
        let (data, rest) = bytes[1..].split_at(3 - pad);
        if rest.iter().any(|&b| b != 0) {
            return Err(SaslError::Base64);
        }
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// The value of one base64 character, or `None` outside the alphabet.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        // RFC 4648 §10.
        for (encoded, decoded) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode_base64(encoded.as_bytes()), Ok(decoded.as_bytes().to_vec()), "{encoded}");
        }
        assert_eq!(decode_base64(b"+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn base64_is_strict() {
        for bad in
            ["Zg", "Zg=", "Zg===", "Z===", "====", "Zg==Zg==", "Zm9v YmFy", "Zm9v\r\n", "Zm-v", "Zh==", "Zm9=", "*"]
        {
            assert_eq!(decode_base64(bad.as_bytes()), Err(SaslError::Base64), "{bad}");
        }
    }

    #[test]
    fn plain_messages() {
        let c = parse_plain(b"\0bob\0secret".to_vec()).unwrap();
        assert_eq!((c.authzid.as_str(), c.authcid.as_str(), c.password.expose().as_str()), ("", "bob", "secret"));
        let c = parse_plain("admin\0bøb\0pässword".as_bytes().to_vec()).unwrap();
        assert_eq!((c.authzid.as_str(), c.authcid.as_str()), ("admin", "bøb"));
        for bad in [&b""[..], b"bob", b"\0bob", b"\0bob\0", b"\0\0secret", b"\0bob\0sec\0ret"] {
            assert_eq!(parse_plain(bad.to_vec()).unwrap_err(), SaslError::MalformedPlain, "{bad:?}");
        }
        assert_eq!(parse_plain(b"\0b\xffb\0secret".to_vec()).unwrap_err(), SaslError::NotUtf8);
        assert_eq!(parse_plain(b"\0bob\0s\xff".to_vec()).unwrap_err(), SaslError::NotUtf8);
    }

    #[test]
    fn mechanism_names_are_case_insensitive() {
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("Login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }
}
