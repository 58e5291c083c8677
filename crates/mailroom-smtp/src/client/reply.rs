//! Replies as the client reads them (RFC 5321 §4.2): a three-digit code on
//! every line, `-` after it on all lines but the last, and the RFC 3463
//! enhanced status code at the start of the text when the server gives one.
//!
//! Assembly is pure (lines in, a [`Reply`] out) so that the bounds and the
//! refusals of malformed replies are tested without a socket.

use std::fmt;

/// One complete reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 status code (`class.subject.detail`), taken from the
    /// first line when its text starts with one of the code's class.
    pub enhanced: Option<(u8, u16, u16)>,
    /// The text of each line, without code, separator or enhanced code.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply the client makes up itself, for a refusal it decides without
    /// asking the server (a message over the advertised SIZE, say), so that
    /// the caller handles it like any other.
    pub fn synthetic(code: u16, enhanced: (u8, u16, u16), text: &str) -> Reply {
        Reply { code, enhanced: Some(enhanced), lines: vec![text.to_owned()] }
    }

    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: a temporary failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: a permanent failure; repeating the command will not help.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 421: the server is closing the connection (RFC 5321 §3.8).
    pub fn is_closing(&self) -> bool {
        self.code == 421
    }

    /// All lines' text joined with `"; "`, for logs and DSNs.
    pub fn text(&self) -> String {
        self.lines.iter().filter(|l| !l.is_empty()).map(String::as_str).collect::<Vec<_>>().join("; ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some((class, subject, detail)) = self.enhanced {
            write!(f, " {class}.{subject}.{detail}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Collects the lines of one reply, refusing malformed or oversized ones.
pub(super) struct ReplyBuilder {
    max_lines: usize,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyBuilder {
    /// A builder refusing replies of more than `max_lines` lines.
    pub(super) fn new(max_lines: usize) -> ReplyBuilder {
        ReplyBuilder { max_lines, code: None, lines: Vec::new() }
    }

    /// Takes one line (its CRLF or LF included or not); gives the reply
    /// when it was the last one. Errors describe the protocol violation.
    pub(super) fn push(&mut self, raw: &[u8]) -> Result<Option<Reply>, String> {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (code, more, text) = split_line(line)?;
        match self.code {
            None => self.code = Some(code),
            Some(first) if first != code => {
                return Err(format!("reply line with code {code} continues a reply with code {first}"));
            }
            Some(_) => {}
        }
        if self.lines.len() >= self.max_lines {
            return Err(format!("reply longer than {} lines", self.max_lines));
        }
        self.lines.push(text);
        if more {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        Ok(Some(finish(code, lines)))
    }
}

/// Code, whether more lines follow, and text of one reply line.
fn split_line(line: &[u8]) -> Result<(u16, bool, String), String> {
    let digits = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let Some(digits) = digits else {
        return Err(format!("malformed reply line {:?}", String::from_utf8_lossy(line)));
    };
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(200..600).contains(&code) {
        return Err(format!("reply code {code} out of range"));
    }
    let more = match line.get(3) {
        None | Some(b' ') => false,
        Some(b'-') => true,
        Some(_) => return Err(format!("malformed reply line {:?}", String::from_utf8_lossy(line))),
    };
    let text = line.get(4..).unwrap_or_default();
    Ok((code, more, String::from_utf8_lossy(text).into_owned()))
}

/// The reply from its lines: the enhanced code of the first line, when it
/// has one, is taken out of every line that repeats it.
fn finish(code: u16, mut lines: Vec<String>) -> Reply {
    let enhanced = lines.first().and_then(|l| enhanced_code(code, l));
    if let Some((prefix_len, _)) = enhanced {
        let prefix = lines[0][..prefix_len].to_owned();
        for line in &mut lines {
            if let Some(rest) = line.strip_prefix(prefix.as_str()) {
                *line = rest.trim_start_matches(' ').to_owned();
            }
        }
    }
    Reply { code, enhanced: enhanced.map(|(_, e)| e), lines }
}

/// The RFC 3463 code at the start of `text` (`class.subject.detail`, one
/// to three digits for subject and detail, then a space or the end), when
/// its class matches the reply code's first digit; with its length.
fn enhanced_code(code: u16, text: &str) -> Option<(usize, (u8, u16, u16))> {
    let end = text.find(' ').unwrap_or(text.len());
    let mut parts = text[..end].split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u16>().ok())?
    };
    let class = u8::try_from(number(class, 1)?).ok()?;
    if u16::from(class) != code / 100 {
        return None;
    }
    Some((end, (class, number(subject, 3)?, number(detail, 3)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Reply, String> {
        let mut b = ReplyBuilder::new(3);
        for (i, l) in lines.iter().enumerate() {
            match b.push(format!("{l}\r\n").as_bytes())? {
                Some(r) if i + 1 == lines.len() => return Ok(r),
                Some(_) => panic!("reply ended early"),
                None => {}
            }
        }
        panic!("reply not finished")
    }

    #[test]
    fn single_and_multi_line() {
        let r = parse(&["250 2.1.0 Ok"]).unwrap();
        assert_eq!((r.code, r.enhanced, r.lines.clone()), (250, Some((2, 1, 0)), vec!["Ok".to_owned()]));
        assert_eq!(r.to_string(), "250 2.1.0 Ok");
        let r = parse(&["550-5.1.1 No such user", "550 5.1.1 here"]).unwrap();
        assert_eq!(r.to_string(), "550 5.1.1 No such user; here");
        assert!(r.is_permanent() && !r.is_transient() && !r.is_positive());
        let r = parse(&["250-mx.test", "250-PIPELINING", "250 SIZE 100"]).unwrap();
        assert_eq!(r.enhanced, None);
        assert_eq!(r.lines, ["mx.test", "PIPELINING", "SIZE 100"]);
        // A bare code, and a reply without CR.
        let r = parse(&["354"]).unwrap();
        assert!(r.is_intermediate() && r.lines == [""] && r.to_string() == "354");
        let r = ReplyBuilder::new(3).push(b"451 4.3.0 later\n").unwrap().unwrap();
        assert!(r.is_transient() && r.to_string() == "451 4.3.0 later");
    }

    #[test]
    fn enhanced_codes_only_of_the_same_class() {
        assert_eq!(parse(&["550 4.1.1 odd"]).unwrap().enhanced, None);
        assert_eq!(parse(&["250 2.0.0"]).unwrap().enhanced, Some((2, 0, 0)));
        assert_eq!(parse(&["250 2.0.1000 x"]).unwrap().enhanced, None);
        assert_eq!(parse(&["250 2.0 x"]).unwrap().enhanced, None);
        assert_eq!(parse(&["250 2.0.0.0 x"]).unwrap().enhanced, None);
        assert_eq!(parse(&["250 2.0.0x y"]).unwrap().enhanced, None);
        assert_eq!(parse(&["421 4.7.0 bye"]).unwrap().to_string(), "421 4.7.0 bye");
    }

    #[test]
    fn malformed_replies_are_refused() {
        assert!(parse(&["25 ok"]).unwrap_err().contains("malformed"));
        assert!(parse(&["2x0 ok"]).unwrap_err().contains("malformed"));
        assert!(parse(&["250_ok"]).unwrap_err().contains("malformed"));
        assert!(parse(&["199 ok"]).unwrap_err().contains("out of range"));
        assert!(parse(&["250-a", "251 b"]).unwrap_err().contains("continues"));
        assert!(parse(&["250-a", "250-b", "250-c", "250 d"]).unwrap_err().contains("3 lines"));
    }
}
