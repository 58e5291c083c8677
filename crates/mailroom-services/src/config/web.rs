//! The webmail's `[web]` section: how long a browser stays signed in, and
//! how much it may hold the server busy.

use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, HumanDuration};

/// Sessions, pages and uploads of the webmail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// A session unused this long is signed out (server-side expiry).
    pub session_idle: HumanDuration,
    /// A session ends this long after sign-in, however busy.
    pub session_lifetime: HumanDuration,
    /// The most sessions held at once; the least recently used goes first.
    pub max_sessions: usize,
    /// Messages per page of a folder's list.
    pub page_size: usize,
    /// The largest request body: a composed message with its attachments
    /// (base64 makes them a third larger once sent, and the message must
    /// still fit `limits.max_message_size`).
    pub max_upload: ByteSize,
    /// An HTTP connection idle this long between requests is closed.
    pub idle_timeout: HumanDuration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_idle: HumanDuration(Duration::from_secs(30 * 60)),
            session_lifetime: HumanDuration(Duration::from_secs(12 * 3600)),
            max_sessions: 10_000,
            page_size: 50,
            max_upload: ByteSize(25 * 1024 * 1024),
            idle_timeout: HumanDuration(Duration::from_secs(60)),
        }
    }
}

impl WebConfig {
    /// Problems with the values, each prefixed with its key path.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_sessions == 0 {
            problems.push("web.max_sessions: must be at least 1".into());
        }
        if !(1..=500).contains(&self.page_size) {
            problems.push("web.page_size: must be between 1 and 500".into());
        }
        if self.session_idle.0.is_zero() || self.session_lifetime.0.is_zero() {
            problems.push("web.session_idle, web.session_lifetime: must be more than zero".into());
        }
        problems
    }
}
