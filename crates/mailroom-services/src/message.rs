//! Message helpers over mail-parser.

use std::sync::LazyLock;

use mail_parser::{HeaderName, MessageParser};
use mailroom_store::HeaderCache;

/// A parser for the cached fields only: every other field (trace fields
/// above all, one more per hop) is skipped rather than parsed, as this
/// runs for every message delivered.
static CACHE_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_address(HeaderName::From)
        .header_address(HeaderName::To)
        .header_text(HeaderName::Subject)
        .header_id(HeaderName::MessageId)
        .header_date(HeaderName::Date)
        .default_header_ignore()
});

/// Longest value kept per cached header, in characters.
const CACHE_CHARS: usize = mailroom_store::HEADER_CACHE_CHARS;

/// Extracts the header cache from the start of a raw message.
///
/// Only the header section is parsed; `raw` may be the whole message or just
/// its first kilobytes. A message without parsable headers gets an empty
/// cache rather than an error: the cache only serves listings.
pub fn header_cache(raw: &[u8]) -> HeaderCache {
    let Some(msg) = CACHE_PARSER.parse_headers(raw) else {
        return HeaderCache::default();
    };
    let addresses = |a: Option<&mail_parser::Address<'_>>| {
        let Some(a) = a else { return String::new() };
        let list: Vec<String> = a
            .iter()
            .map(|addr| match (addr.name.as_deref(), addr.address.as_deref()) {
                (Some(name), Some(email)) => format!("{name} <{email}>"),
                (None, Some(email)) => email.to_string(),
                (Some(name), None) => name.to_string(),
                (None, None) => String::new(),
            })
            .collect();
        clip(&list.join(", "))
    };
    HeaderCache {
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        subject: clip(msg.subject().unwrap_or_default()),
        message_id: clip(msg.message_id().unwrap_or_default()),
        date: msg.date().map(|d| d.to_timestamp()),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(CACHE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_decoded_headers() {
        let raw = b"From: =?UTF-8?Q?J=C3=B6ran?= <j@x.test>\r\nTo: a@x.test, B <b@x.test>\r\nSubject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=\r\nMessage-ID: <1@x.test>\r\nDate: Sun, 22 Nov 2026 05:55:56 +0000\r\n\r\nbody\r\n";
        let c = header_cache(raw);
        assert_eq!(c.from, "Jöran <j@x.test>");
        assert_eq!(c.to, "a@x.test, B <b@x.test>");
        assert_eq!(c.subject, "Hello Wörld");
        assert_eq!(c.message_id, "1@x.test");
        assert_eq!(c.date, Some(1_795_326_956));
    }

    #[test]
    fn tolerates_garbage_and_clips() {
        assert_eq!(header_cache(b""), HeaderCache::default());
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(1000));
        assert_eq!(header_cache(long.as_bytes()).subject.len(), CACHE_CHARS);
    }
}
