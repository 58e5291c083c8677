use std::fmt;

/// The IMAP system flags of a message (RFC 9051 §2.3.2), as a bit set.
///
/// Keywords (user-defined flags) live beside this in the store as strings;
/// the five system flags are fixed by the RFC and cheap to test as bits.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(u8);

impl Flags {
    /// `\Seen`: the message has been read.
    pub const SEEN: Flags = Flags(1);
    /// `\Answered`: the message has been answered.
    pub const ANSWERED: Flags = Flags(2);
    /// `\Flagged`: the message is flagged for urgent/special attention.
    pub const FLAGGED: Flags = Flags(4);
    /// `\Deleted`: the message is marked for removal by a later EXPUNGE.
    pub const DELETED: Flags = Flags(8);
    /// `\Draft`: the message is a draft.
    pub const DRAFT: Flags = Flags(16);

    const ALL: [(Flags, &'static str); 5] = [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ];

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The raw bits, for storage.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Rebuilds flags from stored bits, dropping unknown bits.
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits & 31)
    }

    /// True when every flag in `other` is set here.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// This set without the flags in `other`.
    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The system flag named `name` (case-insensitive, with the backslash).
    pub fn from_name(name: &str) -> Option<Flags> {
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(f, _)| *f)
    }

    /// The IMAP names of the flags that are set, in RFC order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().filter(move |(f, _)| self.contains(*f)).map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let f = Flags::SEEN | Flags::DRAFT;
        assert_eq!(f.names().collect::<Vec<_>>(), ["\\Seen", "\\Draft"]);
        assert_eq!(Flags::from_name("\\seen"), Some(Flags::SEEN));
        assert_eq!(Flags::from_name("\\Recent"), None);
        assert_eq!(Flags::from_bits(f.bits()), f);
        assert!(f.difference(Flags::SEEN).contains(Flags::DRAFT));
    }
}
