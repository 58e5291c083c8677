//! LIST, parsed here in full: imap-codec lacks LIST-EXTENDED's selection
//! and return options (RFC 5258), SPECIAL-USE (RFC 6154), LIST-STATUS
//! (RFC 5819) and multiple patterns (ARCHITECTURE.md, Decisions).

use super::lexer::Lexer;
use super::{Refusal, StatusItem};
use crate::mailbox;

/// A LIST command (RFC 9051 §6.3.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    /// The reference name (often empty).
    pub reference: String,
    /// The patterns, with `%` and `*` wildcards; at least one. An empty
    /// single pattern asks for the hierarchy delimiter.
    pub patterns: Vec<String>,
    /// Selection options (RFC 5258 §3.1).
    pub select: ListSelect,
    /// Return options (RFC 5258 §3.2).
    pub ret: ListReturn,
    /// Selection or return options or a pattern list were used: the
    /// client speaks LIST-EXTENDED, so CHILDINFO may be sent.
    pub extended: bool,
}

/// LIST selection options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListSelect {
    /// SUBSCRIBED: only subscribed names (and it implies the SUBSCRIBED
    /// return option).
    pub subscribed: bool,
    /// REMOTE: include remote mailboxes (we have none; accepted).
    pub remote: bool,
    /// RECURSIVEMATCH: also names whose children match (CHILDINFO).
    pub recursive_match: bool,
    /// SPECIAL-USE (RFC 6154 §3): only mailboxes with a special use.
    pub special_use: bool,
}

/// LIST return options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    /// SUBSCRIBED: mark subscribed names with `\Subscribed`.
    pub subscribed: bool,
    /// CHILDREN: `\HasChildren` or `\HasNoChildren`.
    pub children: bool,
    /// SPECIAL-USE: the special-use attributes (RFC 6154 §3).
    pub special_use: bool,
    /// STATUS (...): a STATUS response per selectable mailbox
    /// (RFC 5819).
    pub status: Option<Vec<StatusItem>>,
}

fn bad() -> Refusal {
    Refusal::bad("Invalid LIST arguments")
}

/// Parses what follows `LIST` (the lexer is just past the name).
pub(super) fn parse(lx: &mut Lexer<'_>, utf8: bool) -> Result<List, Refusal> {
    let mut list = List::default();
    lx.sp().ok_or_else(bad)?;
    if lx.byte(b'(').is_some() {
        list.extended = true;
        for option in options(lx)? {
            match option.as_str() {
                "SUBSCRIBED" => list.select.subscribed = true,
                "REMOTE" => list.select.remote = true,
                "RECURSIVEMATCH" => list.select.recursive_match = true,
                "SPECIAL-USE" => list.select.special_use = true,
                _ => return Err(Refusal::bad(format!("Unknown LIST selection option {option}"))),
            }
        }
        lx.sp().ok_or_else(bad)?;
    }
    // RFC 5258 §3.1: RECURSIVEMATCH alone is a syntax error.
    if list.select.recursive_match && !list.select.subscribed && !list.select.special_use {
        return Err(Refusal::bad("RECURSIVEMATCH needs another selection option"));
    }
    let reference = lx.astring().ok_or_else(bad)?;
    list.reference = mailbox::decode_pattern(&reference, utf8).map_err(|e| Refusal::bad(e.to_string()))?;
    lx.sp().ok_or_else(bad)?;
    if lx.byte(b'(').is_some() {
        list.extended = true;
        loop {
            list.patterns.push(pattern(lx, utf8)?);
            if lx.byte(b')').is_some() {
                break;
            }
            lx.sp().ok_or_else(bad)?;
        }
    } else {
        list.patterns.push(pattern(lx, utf8)?);
    }
    if lx.sp().is_some() {
        list.extended = true;
        let word = lx.atom().ok_or_else(bad)?;
        if !word.eq_ignore_ascii_case(b"RETURN") {
            return Err(bad());
        }
        lx.sp().ok_or_else(bad)?;
        lx.byte(b'(').ok_or_else(bad)?;
        return_options(lx, &mut list.ret)?;
    }
    if list.select.subscribed {
        // RFC 5258 §3.1: SUBSCRIBED implies the SUBSCRIBED return option.
        list.ret.subscribed = true;
    }
    if !lx.at_end() {
        return Err(bad());
    }
    Ok(list)
}

fn pattern(lx: &mut Lexer<'_>, utf8: bool) -> Result<String, Refusal> {
    let raw = lx.list_mailbox().ok_or_else(bad)?;
    mailbox::decode_pattern(&raw, utf8).map_err(|e| Refusal::bad(e.to_string()))
}

/// Space-separated atoms up to `)`, upper-cased (after the `(`).
fn options(lx: &mut Lexer<'_>) -> Result<Vec<String>, Refusal> {
    let mut out = Vec::new();
    if lx.byte(b')').is_some() {
        return Ok(out);
    }
    loop {
        let atom = lx.atom().ok_or_else(bad)?;
        out.push(String::from_utf8_lossy(atom).to_ascii_uppercase());
        if lx.byte(b')').is_some() {
            return Ok(out);
        }
        lx.sp().ok_or_else(bad)?;
    }
}

/// The return options, after `RETURN (`.
fn return_options(lx: &mut Lexer<'_>, ret: &mut ListReturn) -> Result<(), Refusal> {
    if lx.byte(b')').is_some() {
        return Ok(());
    }
    loop {
        let atom = lx.atom().ok_or_else(bad)?;
        match String::from_utf8_lossy(atom).to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => ret.subscribed = true,
            "CHILDREN" => ret.children = true,
            "SPECIAL-USE" => ret.special_use = true,
            "STATUS" => {
                lx.sp().ok_or_else(bad)?;
                lx.byte(b'(').ok_or_else(bad)?;
                let mut items = Vec::new();
                for name in options(lx)? {
                    let item =
                        StatusItem::parse(&name).ok_or_else(|| Refusal::bad(format!("Unknown STATUS item {name}")))?;
                    items.push(item);
                }
                if items.is_empty() {
                    return Err(bad());
                }
                ret.status = Some(items);
            }
            other => return Err(Refusal::bad(format!("Unknown LIST return option {other}"))),
        }
        if lx.byte(b')').is_some() {
            return Ok(());
        }
        lx.sp().ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(args: &str) -> Result<List, Refusal> {
        let line = format!("{args}\r\n");
        let mut lx = Lexer::new(line.as_bytes());
        parse(&mut lx, false)
    }

    #[test]
    fn basic_list() {
        // RFC 9051 §6.3.9 examples.
        let l = list(" \"\" \"\"").unwrap();
        assert_eq!((l.reference.as_str(), l.patterns.clone(), l.extended), ("", vec![String::new()], false));
        let l = list(" /usr/staff/jones \"\"").unwrap();
        assert_eq!(l.reference, "/usr/staff/jones");
        let l = list(" ~/Mail/ %").unwrap();
        assert_eq!((l.reference.as_str(), l.patterns[0].as_str()), ("~/Mail/", "%"));
        let l = list(" \"\" &AMQ-*").unwrap();
        assert_eq!(l.patterns, vec!["Ä*".to_string()]);
        let l = list(" {0}\r\n *").unwrap();
        assert_eq!((l.reference.as_str(), l.patterns[0].as_str()), ("", "*"));
    }

    #[test]
    fn extended_list() {
        // RFC 5258 §5 examples.
        let l = list(" (SUBSCRIBED) \"\" \"*\"").unwrap();
        assert!(l.select.subscribed && l.ret.subscribed && l.extended);
        let l = list(" \"\" \"%\" RETURN (CHILDREN)").unwrap();
        assert!(l.ret.children && !l.ret.subscribed);
        let l = list(" (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)").unwrap();
        assert!(l.select.recursive_match && l.ret.children);
        let l = list(" (REMOTE) \"\" (\"INBOX\" \"Drafts\" Sent/%)").unwrap();
        assert_eq!(l.patterns, vec!["INBOX", "Drafts", "Sent/%"]);
        assert!(l.select.remote);
        // RFC 6154 §5.1 and RFC 5819 §2.
        let l = list(" (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)").unwrap();
        assert!(l.select.special_use && l.ret.special_use);
        let l = list(" \"\" % RETURN (STATUS (MESSAGES UNSEEN) SUBSCRIBED)").unwrap();
        assert_eq!(l.ret.status, Some(vec![StatusItem::Messages, StatusItem::Unseen]));
        assert!(l.ret.subscribed);
        let l = list(" () \"\" % RETURN ()").unwrap();
        assert!(l.extended);
    }

    #[test]
    fn bad_lists() {
        for args in [
            "",
            " \"\"",
            " (RECURSIVEMATCH) \"\" %",
            " (BOGUS) \"\" %",
            " \"\" % RETURN (BOGUS)",
            " \"\" % RETURN (STATUS ())",
            " \"\" % RETURN (STATUS (FOO))",
            " \"\" % EXTRA",
            " \"\" () ",
            " \"\" % ",
        ] {
            assert!(list(args).is_err(), "{args:?}");
        }
    }
}
