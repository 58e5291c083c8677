//! The service extensions a server lists in its EHLO reply (RFC 5321
//! §4.1.1.1): one keyword per line after the first, with parameters.

use super::reply::Reply;

/// What the server offers, as far as the client makes use of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 2920: commands may be sent in groups.
    pub pipelining: bool,
    /// RFC 1870: `Some(limit)` when SIZE is offered; a limit of 0 means
    /// the server announces no fixed maximum.
    pub size: Option<u64>,
    /// RFC 6152: `BODY=8BITMIME`.
    pub eight_bit_mime: bool,
    /// RFC 6531: UTF-8 addresses.
    pub smtputf8: bool,
    /// RFC 3030: BDAT.
    pub chunking: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 4954: the SASL mechanisms offered, upper-cased.
    pub auth: Vec<String>,
    /// RFC 2034: replies carry RFC 3463 codes.
    pub enhanced_status_codes: bool,
}

impl Extensions {
    /// The extensions in a positive EHLO reply. Unknown keywords are
    /// ignored, as are malformed parameters (SIZE with a non-number is
    /// taken as SIZE without a limit).
    pub fn parse(ehlo: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in ehlo.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            // Some old servers wrote `AUTH=LOGIN PLAIN`.
            let (keyword, first) = match keyword.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (keyword, None),
            };
            let mut params = first.into_iter().chain(words);
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(params.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "CHUNKING" => ext.chunking = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "AUTH" => {
                    for mechanism in params {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !ext.auth.contains(&mechanism) {
                            ext.auth.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }

    /// The announced maximum message size, when there is one.
    pub fn max_size(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }

    /// Whether the SASL `mechanism` is offered.
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Reply {
        Reply { code: 250, enhanced: None, lines: lines.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn keywords_and_parameters() {
        let e = Extensions::parse(&ehlo(&[
            "mx.test greets you",
            "pipelining",
            "SIZE 35882577",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "AUTH PLAIN login",
            "AUTH=LOGIN CRAM-MD5",
            "X-UNKNOWN 1 2",
        ]));
        assert!(e.pipelining && e.eight_bit_mime && e.smtputf8 && e.chunking && e.starttls);
        assert!(e.enhanced_status_codes);
        assert_eq!(e.size, Some(35882577));
        assert_eq!(e.max_size(), Some(35882577));
        assert_eq!(e.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(e.offers_auth("plain") && !e.offers_auth("XOAUTH2"));
    }

    #[test]
    fn size_without_limit_and_greeting_line_ignored() {
        let e = Extensions::parse(&ehlo(&["PIPELINING is the hostname here", "SIZE"]));
        assert!(!e.pipelining);
        assert_eq!((e.size, e.max_size()), (Some(0), None));
        assert_eq!(Extensions::parse(&ehlo(&["x", "SIZE 0"])).max_size(), None);
        assert_eq!(Extensions::parse(&ehlo(&["x"])), Extensions::default());
    }
}
