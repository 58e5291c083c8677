//! SMTP replies (RFC 5321 §4.2) with optional enhanced status codes
//! (RFC 2034, RFC 3463).
//!
//! A [`Reply`] is the only way the server answers a client: protocol
//! refusals are values, never errors. The fixed replies the state machine
//! sends itself live in the private `replies` module, named by number and
//! meaning.

use std::fmt;

pub(crate) mod fixed;

/// An enhanced mail system status code `class.subject.detail` (RFC 3463 §2).
///
/// Sent after the basic code on every reply line once ENHANCEDSTATUSCODES is
/// in effect (RFC 2034 §4), so clients can tell, for example, a full mailbox
/// (4.2.2) from an unknown user (5.1.1) without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply: a three-digit code, an optional enhanced code and one or
/// more text lines (RFC 5321 §4.2.1 multiline replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The basic reply code (RFC 5321 §4.2.2), e.g. 250.
    pub code: u16,
    /// The enhanced status code repeated on every line, if any.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line, without code or CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// Builds a reply; `text` is split at line feeds into several lines so
    /// that callers can write multiline replies as one string and can never
    /// inject a bare line break into the protocol stream.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Reply {
        let text = text.into();
        let lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect();
        Reply { code, enhanced, lines }
    }

    /// The wire form: `250-a\r\n250 b\r\n`, with the enhanced code (if any)
    /// after the basic code on every line (RFC 2034 §4). Stray CR or LF in a
    /// line become spaces, so a reply is always exactly its lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends [`Reply::to_bytes`] to `out`, with no allocation of its own:
    /// a reply is written for every command of every session.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        let empty = [String::new()];
        let lines = if self.lines.is_empty() { &empty[..] } else { &self.lines[..] };
        for (i, line) in lines.iter().enumerate() {
            // RFC 5321 §4.2.1: "-" continues a multiline reply, " " ends it.
            let sep = if i < last { b'-' } else { b' ' };
            push_number(out, u32::from(self.code), 3);
            out.push(sep);
            if let Some(EnhancedCode(class, subject, detail)) = self.enhanced {
                push_number(out, u32::from(class), 1);
                out.push(b'.');
                push_number(out, u32::from(subject), 1);
                out.push(b'.');
                push_number(out, u32::from(detail), 1);
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend(line.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// True for 2xx and 3xx: the command succeeded or may continue
    /// (RFC 5321 §4.2.1).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_number(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 && digits.len() - at >= width {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

impl fmt::Display for Reply {
    /// The wire form without the final CRLF, for logs and test failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        f.write_str(text.trim_end_matches("\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_displays_dotted() {
        assert_eq!(EnhancedCode(2, 1, 0).to_string(), "2.1.0");
        assert_eq!(EnhancedCode(5, 7, 26).to_string(), "5.7.26");
    }

    #[test]
    fn single_line_with_and_without_enhanced_code() {
        assert_eq!(Reply::new(250, Some(EnhancedCode(2, 0, 0)), "Ok").to_bytes(), b"250 2.0.0 Ok\r\n");
        assert_eq!(Reply::new(220, None, "mx.test ESMTP").to_bytes(), b"220 mx.test ESMTP\r\n");
    }

    #[test]
    fn multiline_repeats_enhanced_code_on_every_line() {
        let r = Reply::new(250, Some(EnhancedCode(2, 0, 0)), "a\nb");
        assert_eq!(r.lines, ["a", "b"]);
        assert_eq!(r.to_bytes(), b"250-2.0.0 a\r\n250 2.0.0 b\r\n");
        let r = Reply::new(250, None, "a\r\nb\nc");
        assert_eq!(r.to_bytes(), b"250-a\r\n250-b\r\n250 c\r\n");
    }

    #[test]
    fn stray_line_breaks_cannot_be_injected() {
        let r = Reply { code: 550, enhanced: None, lines: vec!["a\r\n250 b".into()] };
        assert_eq!(r.to_bytes(), b"550 a  250 b\r\n");
        let r = Reply { code: 421, enhanced: None, lines: vec![] };
        assert_eq!(r.to_bytes(), b"421 \r\n");
    }

    #[test]
    fn positive_is_2xx_and_3xx() {
        assert!(Reply::new(250, None, "").is_positive());
        assert!(Reply::new(354, None, "").is_positive());
        assert!(!Reply::new(421, None, "").is_positive());
        assert!(!Reply::new(550, None, "").is_positive());
        assert!(!Reply::new(199, None, "").is_positive());
    }

    #[test]
    fn display_is_wire_form_without_final_crlf() {
        assert_eq!(Reply::new(250, Some(EnhancedCode(2, 0, 0)), "a\nb").to_string(), "250-2.0.0 a\r\n250 2.0.0 b");
    }
}
