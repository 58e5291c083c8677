//! Conditional GET (RFC 9110 §13, RFC 9111) for what never changes: a
//! message's rendered body, its parts and its raw bytes. A mailbox id is
//! never reused and a UID never reused within it, so (mailbox, UID,
//! UIDVALIDITY, variant) names the same bytes forever: a strong validator.

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailroom_store::{MailboxRecord, MessageRecord};

/// Bumped when rendering changes, so browsers drop what they kept.
const RENDERER: u32 = 1;

/// The validators of one immutable representation of a message.
pub struct Immutable {
    etag: String,
    modified: SystemTime,
}

impl Immutable {
    /// The representation `variant` (`body`, `body+images`, `part/2`...)
    /// of a message.
    pub fn new(mailbox: &MailboxRecord, message: &MessageRecord, variant: &str) -> Immutable {
        let etag = format!(
            "\"{}-{}-{}-{RENDERER}-{}\"",
            mailbox.id.0,
            mailbox.uid_validity.get(),
            message.uid.get(),
            variant.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        Immutable { etag, modified: message.internal_date }
    }

    /// Whether the client's copy is current: `If-None-Match` decides when
    /// present, else `If-Modified-Since` (RFC 9110 §13.2.2).
    pub fn is_fresh(&self, request: &HeaderMap) -> bool {
        if let Some(tags) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
            return tags.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == self.etag);
        }
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| whole_seconds(self.modified) <= whole_seconds(since))
    }

    /// 304 Not Modified, with the validators and no body.
    pub fn not_modified(&self) -> Response {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        self.apply(r.headers_mut());
        r
    }

    /// Adds the validators and the caching policy: the user's browser
    /// only (`private`), for a year, without revalidation.
    pub fn apply(&self, h: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(self.modified)) {
            h.insert(header::LAST_MODIFIED, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    }
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn validators() -> Immutable {
        Immutable {
            etag: "\"7-1-3-1-body\"".into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn req(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn if_none_match_decides_before_if_modified_since() {
        let v = validators();
        assert!(v.is_fresh(&req(header::IF_NONE_MATCH, "\"7-1-3-1-body\"")));
        assert!(v.is_fresh(&req(header::IF_NONE_MATCH, "\"x\", W/\"7-1-3-1-body\"")));
        assert!(!v.is_fresh(&req(header::IF_NONE_MATCH, "\"7-1-3-1-other\"")));
        assert!(v.is_fresh(&req(header::IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:20 GMT")));
        assert!(!v.is_fresh(&req(header::IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:19 GMT")));
        assert!(!v.is_fresh(&HeaderMap::new()));
        let mut both = req(header::IF_NONE_MATCH, "\"nope\"");
        both.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"));
        assert!(!v.is_fresh(&both), "a mismatched tag wins over the date");
        let r = v.not_modified();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"7-1-3-1-body\"");
    }
}
