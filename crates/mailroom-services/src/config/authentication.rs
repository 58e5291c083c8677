//! The checks of mail arriving on the `smtp` listener: SPF (RFC 7208),
//! DKIM (RFC 6376) and DMARC (RFC 7489). Submission listeners carry mail
//! from logged-in users and check none of them.

use serde::Deserialize;

/// Which checks run on mail received by the `smtp` listener. A private
/// relay whose senders are known may turn them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthenticationConfig {
    /// SPF for the MAIL FROM and HELO identities.
    pub spf: bool,
    /// Verification of every DKIM signature.
    pub dkim: bool,
    /// DMARC, which needs both SPF and DKIM: `p=reject` refuses the message
    /// at the end of data, `p=quarantine` delivers it into Junk.
    pub dmarc: bool,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig { spf: true, dkim: true, dmarc: true }
    }
}

impl AuthenticationConfig {
    /// Whether any check runs at all.
    pub fn any(&self) -> bool {
        self.spf || self.dkim || self.dmarc
    }

    /// Problems with the combination, each prefixed with its key path.
    pub(super) fn problems(&self) -> Vec<String> {
        // DMARC passes by an aligned SPF pass or an aligned DKIM pass; with
        // either missing it would fail mail that passes, and reject it
        // under p=reject.
        if self.dmarc && !(self.spf && self.dkim) {
            vec!["authentication.dmarc: needs authentication.spf and authentication.dkim on".into()]
        } else {
            Vec::new()
        }
    }
}
