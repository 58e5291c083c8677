//! A small cursor over one complete command (lines and literal data as
//! framed by the server), for the parts of the grammar read here rather
//! than by imap-codec: the tag and command name, LIST, and SEARCH's
//! `RETURN (...)`.

/// The cursor; every method either consumes what it read or leaves the
/// position alone and returns `None`.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// ATOM-CHAR of RFC 9051 §9 (any CHAR except atom-specials).
fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `tag` of RFC 9051 §9: ASTRING-CHAR except `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    (is_atom_char(b) || b == b']') && b != b'+'
}

impl<'a> Lexer<'a> {
    pub fn new(buf: &'a [u8]) -> Lexer<'a> {
        Lexer { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `b` if it comes next.
    pub fn byte(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.pos += 1)
    }

    pub fn sp(&mut self) -> Option<()> {
        self.byte(b' ')
    }

    /// True when only the final CRLF is left.
    pub fn at_end(&self) -> bool {
        &self.buf[self.pos..] == b"\r\n"
    }

    /// A run of octets accepted by `f`, at least one.
    fn run(&mut self, f: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.buf[start..self.pos])
    }

    pub fn tag(&mut self) -> Option<&'a [u8]> {
        self.run(is_tag_char)
    }

    /// An atom (command names, option names).
    pub fn atom(&mut self) -> Option<&'a [u8]> {
        self.run(is_atom_char)
    }

    /// An astring: atom-like run (with `]`), quoted string or literal.
    pub fn astring(&mut self) -> Option<Vec<u8>> {
        if let Some(s) = self.string() {
            return Some(s);
        }
        self.run(|b| is_atom_char(b) || b == b']').map(<[u8]>::to_vec)
    }

    /// A `list-mailbox`: like an astring, but `%` and `*` are allowed in
    /// the bare form (RFC 9051 §9 `list-char`).
    pub fn list_mailbox(&mut self) -> Option<Vec<u8>> {
        if let Some(s) = self.string() {
            return Some(s);
        }
        self.run(|b| is_atom_char(b) || matches!(b, b']' | b'%' | b'*')).map(<[u8]>::to_vec)
    }

    /// A quoted string or a literal (RFC 9051 §4.3).
    pub fn string(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => None,
        }
    }

    fn quoted(&mut self) -> Option<Vec<u8>> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Some(out);
                }
                Some(b'\\') => match self.buf.get(self.pos + 1) {
                    Some(&c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => break,
                },
                Some(b'\r' | b'\n') | None => break,
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos = start;
        None
    }

    /// `{n}` or `{n+}` CRLF and n octets; the framing guarantees they are
    /// all there.
    fn literal(&mut self) -> Option<Vec<u8>> {
        let start = self.pos;
        let rest = &self.buf[self.pos..];
        let close = rest.iter().position(|&b| b == b'}')?;
        let digits = rest[1..close].strip_suffix(b"+").unwrap_or(&rest[1..close]);
        let parsed = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<usize>().ok());
        let body = close + 3;
        match parsed {
            Some(n) if rest.get(close + 1..body) == Some(b"\r\n") && rest.len() >= body + n => {
                self.pos += body + n;
                Some(rest[body..body + n].to_vec())
            }
            _ => {
                self.pos = start;
                None
            }
        }
    }
}

/// The tag of a command, if the buffer starts with a valid one and a
/// space; used to address refusals even when the rest does not parse.
pub(crate) fn peek_tag(buf: &[u8]) -> Option<String> {
    let mut lx = Lexer::new(buf);
    let tag = lx.tag()?;
    if lx.sp().is_none() && !lx.at_end() {
        return None;
    }
    Some(String::from_utf8_lossy(tag).into_owned())
}

/// The tag and the upper-cased command name (`UID FETCH` for UID
/// commands), for the literal policy and error texts.
pub(crate) fn peek_name(buf: &[u8]) -> Option<(String, String)> {
    let mut lx = Lexer::new(buf);
    let tag = String::from_utf8_lossy(lx.tag()?).into_owned();
    lx.sp()?;
    let mut name = String::from_utf8_lossy(lx.atom()?).to_ascii_uppercase();
    if name == "UID"
        && lx.sp().is_some()
        && let Some(sub) = lx.atom()
    {
        name = format!("UID {}", String::from_utf8_lossy(sub).to_ascii_uppercase());
    }
    Some((tag, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut lx = Lexer::new(b"\"a\\\"b\" {3}\r\nx y {2+}\r\nzz atom]\r\n");
        assert_eq!(lx.astring().unwrap(), b"a\"b");
        lx.sp().unwrap();
        assert_eq!(lx.astring().unwrap(), b"x y");
        lx.sp().unwrap();
        assert_eq!(lx.astring().unwrap(), b"zz");
        lx.sp().unwrap();
        assert_eq!(lx.astring().unwrap(), b"atom]");
        assert!(lx.at_end());
        assert_eq!(peek_name(b"a1 uid fetch 1 FLAGS\r\n"), Some(("a1".into(), "UID FETCH".into())));
        assert_eq!(peek_name(b"+x NOOP\r\n"), None);
        assert_eq!(Lexer::new(b"\"open\r\n").astring(), None);
        assert_eq!(Lexer::new(b"{5}\r\nab").astring(), None);
    }
}
