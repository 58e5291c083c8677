//! ENVELOPE (RFC 9051 §7.5.2): the header fields clients show in message
//! lists, read once from the raw header.
//!
//! Values are the raw header values, unfolded and trimmed: RFC 9051 wants
//! encoded words (RFC 2047) left as they are for the client to decode.
//! Address lists are split into name, source route, mailbox and host; a
//! group appears as a start marker (mailbox = group name, host NIL) and an
//! end marker (all NIL).

use std::ops::Range;

use super::mime::{fields, split_header, unfold_trim};

/// A host placed in an address that has none, so that clients never read
/// it as a group marker (which is a NIL host).
pub const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
/// A mailbox placed in an address that has none.
pub const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";

/// The ENVELOPE of a message; every field is `None`/empty when the header
/// field is absent (written as NIL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `Date:` as written.
    pub date: Option<Vec<u8>>,
    /// `Subject:` as written (encoded words kept).
    pub subject: Option<Vec<u8>>,
    /// `From:`.
    pub from: Vec<Address>,
    /// `Sender:`, or `From:` when absent or empty (RFC 9051 §7.5.2).
    pub sender: Vec<Address>,
    /// `Reply-To:`, or `From:` when absent or empty.
    pub reply_to: Vec<Address>,
    /// `To:`.
    pub to: Vec<Address>,
    /// `Cc:`.
    pub cc: Vec<Address>,
    /// `Bcc:`.
    pub bcc: Vec<Address>,
    /// `In-Reply-To:` as written.
    pub in_reply_to: Option<Vec<u8>>,
    /// `Message-ID:` as written.
    pub message_id: Option<Vec<u8>>,
}

/// One address of an ENVELOPE address list (RFC 9051 §9 `address`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name (phrase), quotes removed, encoded words kept.
    pub name: Option<Vec<u8>>,
    /// Source route (`@a,@b`), obsolete but reported.
    pub adl: Option<Vec<u8>>,
    /// Local part; the group name in a group start marker.
    pub mailbox: Option<Vec<u8>>,
    /// Domain; NIL only in group markers.
    pub host: Option<Vec<u8>>,
}

impl Envelope {
    /// The envelope of a whole raw message.
    pub fn parse(raw: &[u8]) -> Envelope {
        let (header, _) = split_header(raw, 0..raw.len());
        from_header(raw, header)
    }
}

/// The envelope of the header section at `header` in `raw`. The first
/// occurrence of each field counts.
pub(crate) fn from_header(raw: &[u8], header: Range<usize>) -> Envelope {
    let mut env = Envelope::default();
    let (mut sender, mut reply_to) = (None, None);
    let (mut from, mut to, mut cc, mut bcc) = (None, None, None, None);
    for field in fields(raw, header) {
        let name = &raw[field.name.clone()];
        let value = &raw[field.value.clone()];
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        let text = |slot: &mut Option<Vec<u8>>| {
            if slot.is_none() {
                *slot = Some(unfold_trim(value));
            }
        };
        let addrs = |slot: &mut Option<Vec<Address>>| {
            if slot.is_none() {
                *slot = Some(parse_address_list(value));
            }
        };
        if is("date") {
            text(&mut env.date);
        } else if is("subject") {
            text(&mut env.subject);
        } else if is("in-reply-to") {
            text(&mut env.in_reply_to);
        } else if is("message-id") {
            text(&mut env.message_id);
        } else if is("from") {
            addrs(&mut from);
        } else if is("sender") {
            addrs(&mut sender);
        } else if is("reply-to") {
            addrs(&mut reply_to);
        } else if is("to") {
            addrs(&mut to);
        } else if is("cc") {
            addrs(&mut cc);
        } else if is("bcc") {
            addrs(&mut bcc);
        }
    }
    env.from = from.unwrap_or_default();
    env.sender = sender.filter(|s| !s.is_empty()).unwrap_or_else(|| env.from.clone());
    env.reply_to = reply_to.filter(|s| !s.is_empty()).unwrap_or_else(|| env.from.clone());
    env.to = to.unwrap_or_default();
    env.cc = cc.unwrap_or_default();
    env.bcc = bcc.unwrap_or_default();
    env
}

/// A lexical item of an address header (RFC 5322 §3.2, §3.4).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An atom (also encoded words and stray 8-bit text).
    Atom(Vec<u8>),
    /// A quoted string: its raw form (with quotes) and its content.
    Quoted { raw: Vec<u8>, content: Vec<u8> },
    /// A domain literal `[...]`, raw.
    Literal(Vec<u8>),
    /// A comment's content, used as the name of a bare addr-spec.
    Comment(Vec<u8>),
    /// One of `<>@,;:.`.
    Special(u8),
}

/// A token with whether white space preceded it, so a phrase can be
/// rebuilt with single spaces where the sender had any.
type Spaced = (bool, Token);

fn tokenize(value: &[u8]) -> Vec<Spaced> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < value.len() {
        let b = value[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                space = true;
                i += 1;
                continue;
            }
            b'"' => {
                let start = i;
                let mut content = Vec::new();
                i += 1;
                while i < value.len() {
                    match value[i] {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' if i + 1 < value.len() => {
                            content.push(value[i + 1]);
                            i += 2;
                        }
                        b'\r' | b'\n' => i += 1,
                        c => {
                            content.push(c);
                            i += 1;
                        }
                    }
                }
                let raw = value[start..i].iter().copied().filter(|&c| c != b'\r' && c != b'\n').collect();
                out.push((space, Token::Quoted { raw, content }));
            }
            b'(' => {
                let mut depth = 0usize;
                let mut content = Vec::new();
                while i < value.len() {
                    let c = value[i];
                    i += 1;
                    match c {
                        b'(' => {
                            if depth > 0 {
                                content.push(c);
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            content.push(c);
                        }
                        b'\\' if i < value.len() => {
                            content.push(value[i]);
                            i += 1;
                        }
                        b'\r' | b'\n' => {}
                        _ => content.push(c),
                    }
                }
                out.push((space, Token::Comment(content)));
            }
            b'[' => {
                let start = i;
                while i < value.len() && value[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(value.len());
                let raw = value[start..i].iter().copied().filter(|&c| c != b'\r' && c != b'\n').collect();
                out.push((space, Token::Literal(raw)));
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                out.push((space, Token::Special(b)));
                i += 1;
            }
            _ => {
                let start = i;
                while i < value.len()
                    && !matches!(
                        value[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'"'
                            | b'('
                            | b')'
                            | b'['
                            | b']'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'.'
                    )
                {
                    i += 1;
                }
                if i == start {
                    // A stray `)` or `]`: drop it.
                    i += 1;
                    continue;
                }
                out.push((space, Token::Atom(value[start..i].to_vec())));
            }
        }
        space = false;
    }
    out
}

/// Parses an address list with groups (RFC 5322 §3.4) leniently: whatever
/// cannot be read is skipped rather than failing the whole list.
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].1 {
            Token::Special(b',') => {
                i += 1;
                continue;
            }
            Token::Special(b';') => {
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        // Everything up to the next structural special.
        let mut j = i;
        while j < tokens.len() && !matches!(tokens[j].1, Token::Special(b'<' | b':' | b',' | b';')) {
            j += 1;
        }
        match tokens.get(j).map(|t| &t.1) {
            Some(Token::Special(b'<')) => {
                let name = phrase(&tokens[i..j]);
                let mut k = j + 1;
                while k < tokens.len() && tokens[k].1 != Token::Special(b'>') {
                    k += 1;
                }
                let mut addr = angle_addr(&tokens[j + 1..k]);
                addr.name = name;
                out.push(addr);
                // Skip anything after `>` up to the next separator.
                i = k + 1;
                while i < tokens.len() && !matches!(tokens[i].1, Token::Special(b',' | b';')) {
                    i += 1;
                }
            }
            Some(Token::Special(b':')) if !in_group => {
                let name = phrase(&tokens[i..j]).unwrap_or_default();
                out.push(Address { mailbox: Some(name), ..Address::default() });
                in_group = true;
                i = j + 1;
            }
            Some(Token::Special(b':')) => {
                // A colon inside a group: not valid, skip the token.
                if let Some(addr) = addr_spec(&tokens[i..j]) {
                    out.push(addr);
                }
                i = j + 1;
            }
            _ => {
                if let Some(addr) = addr_spec(&tokens[i..j]) {
                    out.push(addr);
                }
                i = j;
            }
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// A display name: words joined by single spaces where the sender had
/// white space, quotes removed, comments dropped.
fn phrase(tokens: &[Spaced]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (space, token) in tokens {
        let bytes: &[u8] = match token {
            Token::Atom(a) => a,
            Token::Quoted { content, .. } => content,
            Token::Literal(l) => l,
            Token::Special(s) => std::slice::from_ref(s),
            Token::Comment(_) => continue,
        };
        if *space && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
    }
    (!out.is_empty()).then_some(out)
}

/// `[route ":"] local-part "@" domain` inside angle brackets.
fn angle_addr(tokens: &[Spaced]) -> Address {
    let colon = tokens.iter().position(|t| t.1 == Token::Special(b':'));
    let (adl, rest) = match colon {
        Some(c) if tokens.first().is_some_and(|t| t.1 == Token::Special(b'@')) => {
            let route = concat(&tokens[..c]);
            (Some(route), &tokens[c + 1..])
        }
        _ => (None, tokens),
    };
    if rest.iter().all(|t| matches!(t.1, Token::Comment(_))) {
        // `<>`: the null reverse path.
        return Address { adl, mailbox: Some(Vec::new()), host: Some(Vec::new()), ..Address::default() };
    }
    let mut addr = split_at_sign(rest);
    addr.adl = adl;
    addr
}

/// A bare addr-spec, taking a trailing comment as the name
/// (`gray@cac.washington.edu (Terry Gray)`).
fn addr_spec(tokens: &[Spaced]) -> Option<Address> {
    if tokens.iter().all(|t| matches!(t.1, Token::Comment(_))) {
        return None;
    }
    let mut addr = split_at_sign(tokens);
    addr.name = tokens.iter().rev().find_map(|t| match &t.1 {
        Token::Comment(c) if !c.is_empty() => Some(c.clone()),
        _ => None,
    });
    Some(addr)
}

fn split_at_sign(tokens: &[Spaced]) -> Address {
    let at = tokens.iter().rposition(|t| t.1 == Token::Special(b'@'));
    let (local, host) = match at {
        Some(a) => (concat(&tokens[..a]), Some(concat(&tokens[a + 1..]))),
        None => (concat(tokens), None),
    };
    let mailbox = if local.is_empty() { MISSING_MAILBOX.to_vec() } else { local };
    let host = match host {
        Some(h) if !h.is_empty() => h,
        _ => MISSING_DOMAIN.to_vec(),
    };
    Address { name: None, adl: None, mailbox: Some(mailbox), host: Some(host) }
}

/// Tokens joined without spaces, quoted strings kept quoted, comments
/// dropped: the way a local part or domain is written.
fn concat(tokens: &[Spaced]) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, token) in tokens {
        match token {
            Token::Atom(a) => out.extend_from_slice(a),
            Token::Quoted { raw, .. } => out.extend_from_slice(raw),
            Token::Literal(l) => out.extend_from_slice(l),
            Token::Special(s) => out.push(*s),
            Token::Comment(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn address_forms() {
        assert_eq!(
            parse_address_list(b" Terry Gray <gray@cac.washington.edu>"),
            vec![a(Some("Terry Gray"), "gray", "cac.washington.edu")]
        );
        assert_eq!(
            parse_address_list(
                b" \"Gray, Terry\" <gray@cac>, imap@cac.washington.edu (IMAP list),\r\n John Q. Public <jqp@x.test>"
            ),
            vec![
                a(Some("Gray, Terry"), "gray", "cac"),
                a(Some("IMAP list"), "imap", "cac.washington.edu"),
                a(Some("John Q. Public"), "jqp", "x.test"),
            ]
        );
        assert_eq!(
            parse_address_list(b" =?UTF-8?Q?J=C3=B6rg?= <joerg@example.test>"),
            vec![a(Some("=?UTF-8?Q?J=C3=B6rg?="), "joerg", "example.test")]
        );
        assert_eq!(parse_address_list(b" \"john doe\"@x.test"), vec![a(None, "\"john doe\"", "x.test")]);
        assert_eq!(parse_address_list(b" <>"), vec![a(None, "", "")]);
        assert_eq!(parse_address_list(b" user"), vec![a(None, "user", "MISSING_DOMAIN")]);
        assert_eq!(parse_address_list(b""), vec![]);
    }

    #[test]
    fn source_route() {
        let got = parse_address_list(b"<@relay1,@relay2:joe@x.test>");
        assert_eq!(got[0].adl.as_deref(), Some(&b"@relay1,@relay2"[..]));
        assert_eq!(got[0].mailbox.as_deref(), Some(&b"joe"[..]));
    }

    #[test]
    fn groups_become_markers() {
        let start = |n: &str| Address { mailbox: Some(n.as_bytes().to_vec()), ..Address::default() };
        assert_eq!(
            parse_address_list(b" undisclosed-recipients:;"),
            vec![start("undisclosed-recipients"), Address::default()]
        );
        assert_eq!(
            parse_address_list(b" A Group: a@x.test, B <b@x.test>; c@y.test"),
            vec![
                start("A Group"),
                a(None, "a", "x.test"),
                a(Some("B"), "b", "x.test"),
                Address::default(),
                a(None, "c", "y.test"),
            ]
        );
        // An unterminated group is closed at the end.
        assert_eq!(parse_address_list(b"g: a@x"), vec![start("g"), a(None, "a", "x"), Address::default()]);
    }

    #[test]
    fn sender_and_reply_to_default_to_from() {
        let raw = b"From: a@x.test\r\nSender:\r\nSubject:  hi\r\n there \r\nSubject: second\r\n\r\n";
        let env = Envelope::parse(raw);
        assert_eq!(env.sender, env.from);
        assert_eq!(env.reply_to, env.from);
        assert_eq!(env.subject.as_deref(), Some(&b"hi there"[..]));
        assert_eq!(env.date, None);
        assert!(env.to.is_empty());
    }
}
