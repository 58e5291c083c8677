use std::fmt;

/// Why a string is not a valid address or domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The text is empty where an address or domain is required.
    #[error("empty")]
    Empty,
    /// There is no `@` between local part and domain.
    #[error("missing @")]
    MissingAt,
    /// The local part breaks RFC 5321 §4.1.2 (Dot-string or Quoted-string).
    #[error("invalid local part")]
    LocalPart,
    /// The domain breaks RFC 5321 §4.1.2 or is longer than 255 octets.
    #[error("invalid domain")]
    Domain,
    /// The address is longer than RFC 5321 §4.5.3.1.3 allows (256 octets
    /// for a path including the angle brackets).
    #[error("address too long")]
    TooLong,
}

/// A domain name or address literal, lower-cased (RFC 5321 §2.4: domains
/// are case-insensitive).
///
/// Accepts LDH labels, UTF-8 labels (RFC 6531), and address literals such as
/// `[192.0.2.1]` or `[IPv6:::1]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(String);

impl Domain {
    /// Parses and lower-cases a domain.
    pub fn parse(s: &str) -> Result<Domain, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 255 {
            return Err(AddressError::Domain);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddressError::Domain)?;
            return parse_literal(inner).map(|lit| Domain(format!("[{lit}]")));
        }
        for label in s.split('.') {
            let bytes = label.as_bytes();
            let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
                return Err(AddressError::Domain);
            };
            if label.len() > 63 || *first == b'-' || *last == b'-' {
                return Err(AddressError::Domain);
            }
            let ok = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control()));
            if !ok {
                return Err(AddressError::Domain);
            }
        }
        Ok(Domain(s.to_lowercase()))
    }

    /// The domain as text, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the domain is pure ASCII (needs no SMTPUTF8).
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// True for an address literal such as `[127.0.0.1]`.
    pub fn is_literal(&self) -> bool {
        self.0.starts_with('[')
    }
}

fn parse_literal(inner: &str) -> Result<String, AddressError> {
    if let Some(v6) = inner.get(..5).filter(|p| p.eq_ignore_ascii_case("IPv6:")).map(|_| &inner[5..]) {
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| AddressError::Domain)?;
        return Ok(format!("IPv6:{ip}"));
    }
    let ip: std::net::Ipv4Addr = inner.parse().map_err(|_| AddressError::Domain)?;
    Ok(ip.to_string())
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.0)
    }
}

/// A mailbox address `local-part@domain` (RFC 5321 §4.1.2 `Mailbox`).
///
/// The local part is kept as written (a quoted local part keeps its quotes)
/// because RFC 5321 §2.4 lets only the destination interpret it; lookups use
/// [`Address::key`], which lower-cases it as users expect of a mail server.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    local: String,
    domain: Domain,
}

impl Address {
    /// Parses `local@domain` (no angle brackets).
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let at = local_part_end(s)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        Ok(Address { local: local.to_string(), domain: Domain::parse(domain)? })
    }

    /// Builds an address from a validated domain and a local part.
    pub fn new(local: &str, domain: Domain) -> Result<Address, AddressError> {
        if local.is_empty() || local_part_end(&format!("{local}@x")).ok() != Some(local.len()) {
            return Err(AddressError::LocalPart);
        }
        Ok(Address { local: local.to_string(), domain })
    }

    /// The local part, as written.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// True when the address needs no SMTPUTF8 (RFC 6531 §3.2).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }

    /// The lookup key: the whole address lower-cased.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

/// Finds the `@` that ends a valid local part, validating the local part.
fn local_part_end(s: &str) -> Result<usize, AddressError> {
    if let Some(rest) = s.strip_prefix('"') {
        // Quoted-string: qtextSMTP or quoted-pairSMTP, then the closing quote.
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                if !(' '..='~').contains(&c) {
                    return Err(AddressError::LocalPart);
                }
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                let end = i + 2;
                return if s[end..].starts_with('@') { Ok(end) } else { Err(AddressError::MissingAt) };
            } else if c.is_control() || (c.is_ascii() && !(' '..='~').contains(&c)) {
                return Err(AddressError::LocalPart);
            }
        }
        return Err(AddressError::LocalPart);
    }
    let at = s.rfind('@').ok_or(AddressError::MissingAt)?;
    let local = &s[..at];
    if local.is_empty() {
        return Err(AddressError::LocalPart);
    }
    for atom in local.split('.') {
        if atom.is_empty() || !atom.chars().all(is_atext) {
            return Err(AddressError::LocalPart);
        }
    }
    Ok(at)
}

/// RFC 5322 `atext`, extended with non-ASCII UTF-8 by RFC 6531 §3.3.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !c.is_control())
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ordinary_and_unusual_addresses() {
        let a = Address::parse("Alice@Example.TEST").unwrap();
        assert_eq!(a.to_string(), "Alice@example.test");
        assert_eq!(a.key(), "alice@example.test");
        assert!(a.is_ascii());
        assert_eq!(Address::parse("\"a b\"@x.test").unwrap().local_part(), "\"a b\"");
        assert_eq!(Address::parse("\"a@b\"@x.test").unwrap().domain().as_str(), "x.test");
        let u = Address::parse("jöran@bücher.test").unwrap();
        assert!(!u.is_ascii());
        assert_eq!(Address::parse("x@[127.0.0.1]").unwrap().domain().as_str(), "[127.0.0.1]");
        assert_eq!(Address::parse("x@[IPv6:::1]").unwrap().domain().as_str(), "[IPv6:::1]");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "alice",
            "@x.test",
            "a..b@x.test",
            ".a@x.test",
            "a@",
            "a@-x.test",
            "a@x..test",
            "a b@x.test",
            "a@x_y.test",
            "a@[300.1.1.1]",
            "\"a@x.test",
            "a<b@x.test",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Address::parse(&format!("{}@x.test", "a".repeat(300))), Err(AddressError::TooLong));
    }

    #[test]
    fn new_validates_local_part() {
        let d = Domain::parse("x.test").unwrap();
        assert!(Address::new("bob", d.clone()).is_ok());
        assert!(Address::new("bo b", d.clone()).is_err());
        assert!(Address::new("", d).is_err());
    }
}
