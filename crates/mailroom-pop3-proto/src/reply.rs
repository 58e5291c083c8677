//! POP3 status replies (RFC 1939 §3) with optional response codes
//! (RFC 2449 §8, RFC 3206).
//!
//! A [`Reply`] is the first (often only) line of every server answer:
//! `+OK` or `-ERR`, then text. Protocol refusals are values, never errors.
//! The fixed replies the state machine sends itself live in the private
//! `fixed` module, named by status and meaning.

use std::fmt;

pub(crate) mod fixed;

/// An extended response code, sent in brackets after `-ERR` so that a
/// client can tell a wrong password from a locked maildrop or a server
/// fault without parsing text (RFC 2449 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `[AUTH]`: the credentials were refused; retrying with the same ones
    /// will fail again (RFC 3206 §5).
    Auth,
    /// `[IN-USE]`: the maildrop is locked by another session
    /// (RFC 2449 §8.1).
    InUse,
    /// `[LOGIN-DELAY]`: the user logged in too recently (RFC 2449 §8.1).
    LoginDelay,
    /// `[SYS/PERM]`: a server fault the client cannot fix by waiting
    /// (RFC 3206 §4).
    SysPerm,
    /// `[SYS/TEMP]`: a temporary server fault; trying later may work
    /// (RFC 3206 §4).
    SysTemp,
}

impl Code {
    /// The code as written between the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Auth => "AUTH",
            Code::InUse => "IN-USE",
            Code::LoginDelay => "LOGIN-DELAY",
            Code::SysPerm => "SYS/PERM",
            Code::SysTemp => "SYS/TEMP",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One POP3 status line: `+OK text` or `-ERR [CODE] text`.
///
/// Response codes exist only on negative replies (RFC 2449 §8), so the
/// fields are private and the constructors keep that true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    ok: bool,
    code: Option<Code>,
    text: String,
}

impl Reply {
    /// A positive reply, `+OK text` (just `+OK` when `text` is empty).
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply { ok: true, code: None, text: text.into() }
    }

    /// A negative reply, `-ERR [code] text`.
    pub fn err(code: Option<Code>, text: impl Into<String>) -> Reply {
        Reply { ok: false, code, text: text.into() }
    }

    /// True for `+OK`.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The response code of a negative reply, if any.
    pub fn code(&self) -> Option<Code> {
        self.code
    }

    /// The text after the status indicator and code.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The wire form, CRLF included. A CR or LF in the text becomes a
    /// space, so a reply is always exactly one line and a caller can never
    /// inject a line into the protocol stream.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 20);
        self.write_to(&mut out);
        out
    }

    /// Appends the wire form to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.ok { b"+OK" } else { b"-ERR" });
        if let Some(code) = self.code {
            out.extend_from_slice(format!(" [{code}]").as_bytes());
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend(self.text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for Reply {
    /// The wire form without the CRLF, for logs and test failures.
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
    fn positive_and_negative_lines() {
        assert_eq!(Reply::ok("").to_bytes(), b"+OK\r\n");
        assert_eq!(Reply::ok("2 320").to_bytes(), b"+OK 2 320\r\n");
        assert_eq!(Reply::err(None, "No such message.").to_bytes(), b"-ERR No such message.\r\n");
        assert_eq!(Reply::err(Some(Code::InUse), "Locked.").to_bytes(), b"-ERR [IN-USE] Locked.\r\n");
        assert_eq!(Reply::err(Some(Code::SysTemp), "").to_bytes(), b"-ERR [SYS/TEMP]\r\n");
    }

    #[test]
    fn every_code_is_spelled_as_in_the_rfcs() {
        let codes = [Code::Auth, Code::InUse, Code::LoginDelay, Code::SysPerm, Code::SysTemp];
        let names: Vec<_> = codes.iter().map(|c| c.to_string()).collect();
        assert_eq!(names, ["AUTH", "IN-USE", "LOGIN-DELAY", "SYS/PERM", "SYS/TEMP"]);
    }

    #[test]
    fn stray_line_breaks_cannot_be_injected() {
        assert_eq!(Reply::err(None, "a\r\n+OK b").to_bytes(), b"-ERR a  +OK b\r\n");
    }

    #[test]
    fn accessors_and_display() {
        let r = Reply::err(Some(Code::Auth), "Authentication failed.");
        assert!(!r.is_ok());
        assert_eq!(r.code(), Some(Code::Auth));
        assert_eq!(r.text(), "Authentication failed.");
        assert_eq!(r.to_string(), "-ERR [AUTH] Authentication failed.");
        assert!(Reply::ok("x").is_ok());
    }
}
