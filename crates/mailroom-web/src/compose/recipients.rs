//! Recipient lists as users type them, and as the composer shows them.
//!
//! The accepted syntax is the everyday subset of RFC 5322 §3.4
//! `address-list`: `Name <addr>`, `"Quoted, Name" <addr>`, `<addr>` and
//! bare `addr`, separated by commas. Groups and comments are not offered by
//! the composer and are rejected as bad addresses.

use std::collections::HashSet;

use mailroom_types::Address;

use super::{ComposeError, Recipient};

/// Parses a comma-separated recipient list.
///
/// Commas inside double quotes or angle brackets do not separate entries,
/// and empty entries (a trailing comma, say) are skipped, so an empty or
/// blank list gives an empty vector. The first invalid entry fails the
/// whole list with [`ComposeError::BadAddress`] naming it as typed.
pub fn parse_recipients(list: &str) -> Result<Vec<Recipient>, ComposeError> {
    split_entries(list).into_iter().filter(|e| !e.trim().is_empty()).map(parse_entry).collect()
}

/// Splits at commas outside quotes and angle brackets.
fn split_entries(list: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut in_quotes, mut escaped, mut in_angle, mut start) = (false, false, false, 0);
    for (i, c) in list.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes {
            match c {
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                '"' => in_quotes = true,
                '<' => in_angle = true,
                '>' => in_angle = false,
                ',' if !in_angle => {
                    entries.push(&list[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    entries.push(&list[start..]);
    entries
}

fn parse_entry(entry: &str) -> Result<Recipient, ComposeError> {
    let typed = entry.trim();
    let bad = || ComposeError::BadAddress(typed.to_string());
    let Some(open) = find_unquoted(typed, '<') else {
        let address = Address::parse(typed).map_err(|_| bad())?;
        return Ok(Recipient { name: None, address });
    };
    let rest = &typed[open + 1..];
    let close = rest.find('>').ok_or_else(bad)?;
    if !rest[close + 1..].trim().is_empty() {
        return Err(bad());
    }
    let address = Address::parse(rest[..close].trim()).map_err(|_| bad())?;
    let name = unquote(typed[..open].trim()).ok_or_else(bad)?;
    Ok(Recipient { name: (!name.is_empty()).then_some(name), address })
}

/// The byte offset of `wanted` outside double quotes.
fn find_unquoted(s: &str, wanted: char) -> Option<usize> {
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == wanted && !in_quotes {
            return Some(i);
        }
    }
    None
}

/// A display name without its quotes and escapes: `"Doe, Jane"` gives
/// `Doe, Jane`. Quoted and unquoted words may be mixed (`"J." Doe`); an
/// unterminated quote or a bracket outside quotes makes the name invalid.
fn unquote(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let (mut in_quotes, mut escaped) = (false, false);
    for c in name.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && "<>".contains(c) {
            return None;
        } else {
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    (!in_quotes && !escaped).then(|| out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Renders one entry the way [`parse_recipients`] reads it back: the name
/// quoted when it holds anything beyond atoms and spaces (RFC 5322 §3.2.3).
pub(super) fn format_entry(name: Option<&str>, address: &str) -> String {
    let name = name.map(|n| n.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|n| !n.is_empty());
    let Some(name) = name else {
        return address.to_string();
    };
    let plain = name.chars().all(|c| c == ' ' || c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c));
    if plain {
        format!("{name} <{address}>")
    } else {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{address}>")
    }
}

/// The key two recipients are the same by: the address, case-insensitive
/// as users expect (`Address::key`), or the lower-cased text if invalid.
pub(super) fn key(address: &str) -> String {
    Address::parse(address.trim()).map(|a| a.key()).unwrap_or_else(|_| address.trim().to_lowercase())
}

/// The envelope: each address once, first occurrence wins.
pub(super) fn envelope<'a>(list: impl Iterator<Item = &'a Recipient>) -> Vec<Address> {
    let mut seen = HashSet::new();
    list.filter(|r| seen.insert(r.address.key())).map(|r| r.address.clone()).collect()
}
