//! Mailbox names: the rules every backend applies before storing one.
//!
//! Names are UTF-8 (RFC 9051 §5.1; a front end speaking to IMAP4rev1
//! clients converts modified UTF-7 first) with `/` as the hierarchy
//! delimiter. `INBOX` is case-insensitive (RFC 9051 §5.1), also as the first
//! level of a longer name, and is stored spelt `INBOX`; every other level
//! is exact.
//!
//! Refused, with [`StoreError::InvalidName`]: the empty name; an empty
//! level (a leading, trailing or doubled `/`; an IMAP front end strips the
//! one trailing delimiter RFC 9051 §6.3.4 allows in CREATE before calling
//! the store); control characters; `%` and `*`, which LIST could never
//! match literally (RFC 9051 §6.3.9); a level over [`MAX_LEVEL_LEN`]
//! octets, a name over [`MAX_NAME_LEN`] octets or deeper than
//! [`MAX_DEPTH`] levels, so that one CREATE cannot make thousands of
//! parents nor a LIST response grow without bound.

use crate::{Result, StoreError};

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// The longest name, in octets.
pub const MAX_NAME_LEN: usize = 1000;

/// The longest single level, in octets (a common file-system limit, which
/// other servers' mailbox formats share, so names migrate both ways).
pub const MAX_LEVEL_LEN: usize = 255;

/// The most levels a name may have.
pub const MAX_DEPTH: usize = 32;

/// The stored form of `name`: checked, with a first level spelt any way as
/// `INBOX` turned into `INBOX`.
pub fn canonical_mailbox_name(name: &str) -> Result<String> {
    let invalid = |why: &str| Err(StoreError::InvalidName(format!("{name:?}: {why}")));
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid(&format!("longer than {MAX_NAME_LEN} octets"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '%' || *c == '*') {
        return invalid(&format!("contains {c:?}"));
    }
    let mut depth = 0;
    for level in name.split(DELIMITER) {
        depth += 1;
        if level.is_empty() {
            return invalid("empty hierarchy level (leading, trailing or doubled '/')");
        }
        if level.len() > MAX_LEVEL_LEN {
            return invalid(&format!("a level is longer than {MAX_LEVEL_LEN} octets"));
        }
    }
    if depth > MAX_DEPTH {
        return invalid(&format!("more than {MAX_DEPTH} levels"));
    }
    Ok(canonical_inbox(name))
}

/// `name` with a first level spelt any way as `INBOX` turned into `INBOX`;
/// no other check (for looking names up, where an invalid one simply
/// matches nothing).
pub(crate) fn canonical_inbox(name: &str) -> String {
    let (first, rest) = match name.split_once(DELIMITER) {
        Some((first, _)) => (first, &name[first.len()..]),
        None => (name, ""),
    };
    if first.eq_ignore_ascii_case("INBOX") { format!("INBOX{rest}") } else { name.to_string() }
}

/// The proper ancestors of a (valid) name, outermost first: `a/b/c` gives
/// `a` and `a/b`.
pub(crate) fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER).map(|(i, _)| &name[..i])
}

/// Whether `name` is `parent` or one of its inferiors.
pub(crate) fn is_within(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent).is_some_and(|rest| rest.is_empty() || rest.starts_with(DELIMITER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> bool {
        matches!(canonical_mailbox_name(name), Err(StoreError::InvalidName(_)))
    }

    #[test]
    fn valid_names_and_inbox_spellings() {
        assert_eq!(canonical_mailbox_name("Work/2026").unwrap(), "Work/2026");
        assert_eq!(canonical_mailbox_name("inbox").unwrap(), "INBOX");
        assert_eq!(canonical_mailbox_name("InBox/Sub/inbox").unwrap(), "INBOX/Sub/inbox");
        assert_eq!(canonical_mailbox_name("INBOXES").unwrap(), "INBOXES");
        assert_eq!(canonical_mailbox_name("Entwürfe").unwrap(), "Entwürfe");
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["", "/a", "a/", "a//b", "/", "a\tb", "a\u{7f}", "a\u{85}b", "100%", "a*"] {
            assert!(refused(name), "{name:?}");
        }
        assert!(refused(&"x".repeat(MAX_LEVEL_LEN + 1)));
        assert!(!refused(&"x".repeat(MAX_LEVEL_LEN)));
        assert!(refused(&vec!["abcd"; 250].join("/")), "too long");
        assert!(refused(&vec!["a"; MAX_DEPTH + 1].join("/")), "too deep");
        assert!(!refused(&vec!["a"; MAX_DEPTH].join("/")));
    }

    #[test]
    fn ancestors_and_inferiors() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert!(ancestors("a").next().is_none());
        assert!(is_within("a/b", "a") && is_within("a", "a"));
        assert!(!is_within("ab", "a") && !is_within("a", "a/b"));
    }
}
