//! POP3 command syntax (RFC 1939 §3, RFC 2449 §5, RFC 5034 §4).
//!
//! Parsing is split in two: [`split`] finds the keyword, and the server
//! checks that the command is allowed in the current state *before* the
//! arguments are parsed with the helpers here, so that `RETR x` before
//! login says "not logged in" rather than "invalid message number".
//!
//! Implementation notes:
//! - Keywords are case-insensitive (RFC 1939 §3).
//! - Arguments are separated by single spaces (RFC 1939 §3); we tolerate
//!   runs of spaces, since the meaning stays clear. PASS is the exception:
//!   its argument is the rest of the line, spaces included, as RFC 1939 §7
//!   allows ("the server may treat spaces in the argument as part of the
//!   password").
//! - Message numbers are positive decimal numbers (RFC 1939 §5); numbers
//!   too large for `usize` saturate and later fail as "no such message".

use mailroom_types::Secret;

use crate::reply::Reply;
use crate::reply::fixed::*;

/// A command keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Auth,
    Capa,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
}

impl Verb {
    fn parse(word: &str) -> Option<Verb> {
        const VERBS: [(&str, Verb); 14] = [
            ("AUTH", Verb::Auth),
            ("CAPA", Verb::Capa),
            ("DELE", Verb::Dele),
            ("LIST", Verb::List),
            ("NOOP", Verb::Noop),
            ("PASS", Verb::Pass),
            ("QUIT", Verb::Quit),
            ("RETR", Verb::Retr),
            ("RSET", Verb::Rset),
            ("STAT", Verb::Stat),
            ("STLS", Verb::Stls),
            ("TOP", Verb::Top),
            ("UIDL", Verb::Uidl),
            ("USER", Verb::User),
        ];
        VERBS.iter().find(|(name, _)| name.eq_ignore_ascii_case(word)).map(|&(_, verb)| verb)
    }

    /// True for the commands that authenticate (RFC 1939 §7, RFC 5034 §4).
    pub(crate) fn is_login(self) -> bool {
        matches!(self, Verb::Auth | Verb::Pass | Verb::User)
    }
}

/// Splits a command line (without its line end) into keyword and the
/// rest of the line after the first space. Unknown keywords, empty lines
/// and lines that are not UTF-8 are all "unknown command".
pub(crate) fn split(line: &[u8]) -> Result<(Verb, &str), Reply> {
    let line = std::str::from_utf8(line).map_err(|_| err_unknown_command())?;
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let verb = Verb::parse(word).ok_or_else(err_unknown_command)?;
    Ok((verb, rest))
}

/// The space-separated arguments, tolerating runs of spaces.
fn words(rest: &str) -> impl Iterator<Item = &str> {
    rest.split(' ').filter(|w| !w.is_empty())
}

/// Exactly `N` arguments, else "invalid arguments".
fn exactly<const N: usize>(rest: &str) -> Result<[&str; N], Reply> {
    let mut words = words(rest);
    let mut args = [""; N];
    for arg in &mut args {
        *arg = words.next().ok_or_else(err_invalid_arguments)?;
    }
    match words.next() {
        Some(_) => Err(err_invalid_arguments()),
        None => Ok(args),
    }
}

/// A command without arguments (CAPA, QUIT, STAT, NOOP, RSET).
pub(crate) fn none(rest: &str) -> Result<(), Reply> {
    exactly::<0>(rest).map(|_| ())
}

/// One message number (RETR, DELE).
pub(crate) fn msg(rest: &str) -> Result<usize, Reply> {
    let [n] = exactly(rest)?;
    msg_number(n)
}

/// An optional message number (LIST, UIDL).
pub(crate) fn optional_msg(rest: &str) -> Result<Option<usize>, Reply> {
    match words(rest).count() {
        0 => Ok(None),
        _ => msg(rest).map(Some),
    }
}

/// TOP's message number and line count (RFC 1939 §7).
pub(crate) fn top(rest: &str) -> Result<(usize, u64), Reply> {
    let [n, lines] = exactly(rest)?;
    let n = msg_number(n)?;
    let lines = decimal(lines).ok_or_else(err_invalid_line_count)?;
    Ok((n, lines))
}

/// USER's mailbox name (RFC 1939 §7): one argument.
pub(crate) fn user(rest: &str) -> Result<String, Reply> {
    let [name] = exactly(rest)?;
    Ok(name.to_string())
}

/// PASS's password: the rest of the line (see the module notes).
pub(crate) fn pass(rest: &str) -> Result<Secret<String>, Reply> {
    if rest.is_empty() {
        return Err(err_invalid_arguments());
    }
    Ok(Secret::new(rest.to_string()))
}

/// AUTH's arguments (RFC 5034 §4): none (list the mechanisms), or a
/// mechanism and an optional initial response.
pub(crate) fn auth(rest: &str) -> Result<Option<(&str, Option<&str>)>, Reply> {
    let mut words = words(rest);
    let Some(mechanism) = words.next() else { return Ok(None) };
    let initial = words.next();
    match words.next() {
        Some(_) => Err(err_invalid_arguments()),
        None => Ok(Some((mechanism, initial))),
    }
}

/// A message number: decimal, positive (RFC 1939 §5).
fn msg_number(word: &str) -> Result<usize, Reply> {
    match decimal(word) {
        Some(0) | None => Err(err_invalid_message_number()),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// Only ASCII digits (no sign), saturating at `u64::MAX`.
fn decimal(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(word.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive() {
        for line in ["STAT", "stat", "StAt"] {
            assert_eq!(split(line.as_bytes()), Ok((Verb::Stat, "")));
        }
        assert_eq!(split(b"top 1 2"), Ok((Verb::Top, "1 2")));
    }

    #[test]
    fn unknown_empty_and_non_utf8_lines_are_unknown_commands() {
        for line in [&b""[..], b"STATS", b"APOP a b", b"ST\xffAT", b" STAT", b"STAT\t"] {
            assert_eq!(split(line), Err(err_unknown_command()), "{line:?}");
        }
    }

    #[test]
    fn message_numbers() {
        assert_eq!(msg("1"), Ok(1));
        assert_eq!(msg("  42  "), Ok(42));
        assert_eq!(msg("99999999999999999999999"), Ok(usize::MAX));
        for bad in ["0", "-1", "+1", "x", "1x", "0x1"] {
            assert_eq!(msg(bad), Err(err_invalid_message_number()), "{bad}");
        }
        assert_eq!(msg(""), Err(err_invalid_arguments()));
        assert_eq!(msg("1 2"), Err(err_invalid_arguments()));
        assert_eq!(optional_msg(""), Ok(None));
        assert_eq!(optional_msg("  "), Ok(None));
        assert_eq!(optional_msg("3"), Ok(Some(3)));
        assert_eq!(optional_msg("3 4"), Err(err_invalid_arguments()));
    }

    #[test]
    fn top_arguments() {
        assert_eq!(top("1 0"), Ok((1, 0)));
        assert_eq!(top("2  10"), Ok((2, 10)));
        assert_eq!(top("2 99999999999999999999999"), Ok((2, u64::MAX)));
        assert_eq!(top("1"), Err(err_invalid_arguments()));
        assert_eq!(top("1 2 3"), Err(err_invalid_arguments()));
        assert_eq!(top("x 2"), Err(err_invalid_message_number()));
        assert_eq!(top("1 -2"), Err(err_invalid_line_count()));
    }

    #[test]
    fn pass_keeps_spaces_and_user_takes_one_word() {
        assert_eq!(pass("two words ").map(|p| p.expose().clone()), Ok("two words ".to_string()));
        assert!(pass("").is_err());
        assert_eq!(user("alice"), Ok("alice".to_string()));
        assert_eq!(user("a b"), Err(err_invalid_arguments()));
        assert_eq!(user(""), Err(err_invalid_arguments()));
    }

    #[test]
    fn auth_arguments() {
        assert_eq!(auth(""), Ok(None));
        assert_eq!(auth("PLAIN"), Ok(Some(("PLAIN", None))));
        assert_eq!(auth("plain  AGEAYg=="), Ok(Some(("plain", Some("AGEAYg==")))));
        assert_eq!(auth("PLAIN a b"), Err(err_invalid_arguments()));
    }
}
