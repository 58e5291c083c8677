//! Between the store's flags (system flag bits plus keywords) and the
//! protocol's flag lists.

use mailroom_imap_proto::command::Flag;
use mailroom_types::Flags;

/// The flags a message shows: system flags in RFC order, then keywords.
pub(crate) fn to_wire(flags: Flags, keywords: &[String]) -> Vec<Flag> {
    let mut out: Vec<Flag> = [
        (Flags::SEEN, Flag::Seen),
        (Flags::ANSWERED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::DELETED, Flag::Deleted),
        (Flags::DRAFT, Flag::Draft),
    ]
    .into_iter()
    .filter(|(bit, _)| flags.contains(*bit))
    .map(|(_, f)| f)
    .collect();
    out.extend(keywords.iter().cloned().map(Flag::Keyword));
    out
}

/// Splits a flag list of STORE or APPEND into system flags and keywords.
/// `\Recent` and unknown system flags cannot be set by a client (RFC 9051
/// §2.3.2): they are the error.
pub(crate) fn from_wire(flags: &[Flag]) -> Result<(Flags, Vec<String>), String> {
    let mut bits = Flags::empty();
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits = bits | Flags::SEEN,
            Flag::Answered => bits = bits | Flags::ANSWERED,
            Flag::Flagged => bits = bits | Flags::FLAGGED,
            Flag::Deleted => bits = bits | Flags::DELETED,
            Flag::Draft => bits = bits | Flags::DRAFT,
            Flag::Keyword(k) => keywords.push(k.clone()),
            Flag::Extension(e) => return Err(format!("\\{e}")),
        }
    }
    Ok((bits, keywords))
}

/// `* FLAGS`: the system flags and every keyword in use.
pub(crate) fn defined<'a>(keywords: impl IntoIterator<Item = &'a String>) -> Vec<Flag> {
    let mut out = to_wire(Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED | Flags::DRAFT, &[]);
    out.extend(keywords.into_iter().cloned().map(Flag::Keyword));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let wire = to_wire(Flags::SEEN | Flags::DELETED, &["$Junk".to_string()]);
        assert_eq!(wire, [Flag::Seen, Flag::Deleted, Flag::Keyword("$Junk".into())]);
        assert_eq!(from_wire(&wire).unwrap(), (Flags::SEEN | Flags::DELETED, vec!["$Junk".to_string()]));
        assert_eq!(from_wire(&[Flag::Extension("Recent".into())]).unwrap_err(), "\\Recent");
    }
}
