//! What mail arriving from the world proves about its sender: SPF for the
//! MAIL FROM and HELO identities (RFC 7208), every DKIM signature
//! (RFC 6376), and DMARC with identifier alignment (RFC 7489), all by
//! mail-auth over the process's one resolver ([`Resolver::authenticator`]).
//!
//! The outcome is an `Authentication-Results:` field (RFC 8601) naming this
//! host, and what the sender's DMARC policy asks of a message that failed.
//! Nothing here fails: a DNS problem is a `temperror` result, a bad record a
//! `permerror`, a message mail-auth cannot parse has no signatures.
//!
//! [`strip_forged`] removes `Authentication-Results:` fields that claim this
//! host but arrived from outside (RFC 8601 §5): readers trust ours.

use std::borrow::Cow;
use std::net::IpAddr;

use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator, SpfOutput, SpfResult};

use crate::config::AuthenticationConfig;
use crate::dns::Resolver;

/// The SMTP envelope of a received message, as far as the checks need it.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The name given in HELO or EHLO.
    pub helo: &'a str,
    /// The MAIL FROM address (`local@domain`), or `None` for the null path.
    pub mail_from: Option<&'a str>,
}

/// What the sender's DMARC policy asks for a message that failed DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcAction {
    /// Deliver as usual: DMARC passed, did not apply, or asks nothing.
    None,
    /// `p=quarantine`: deliver, but as suspicious (into Junk).
    Quarantine,
    /// `p=reject`: refuse the message.
    Reject,
}

/// The outcome of the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The whole `Authentication-Results:` field, folded, ending in CRLF.
    pub field: String,
    /// What DMARC asks of the message.
    pub action: DmarcAction,
    /// The RFC5322.From domain DMARC evaluated, when it did.
    pub dmarc_domain: Option<String>,
}

/// The checks of one listener: the switches and a verifier over the shared
/// resolver.
pub struct InboundChecks {
    authenticator: MessageAuthenticator,
    checks: AuthenticationConfig,
}

impl InboundChecks {
    /// Checks as `checks` says, with lookups through `resolver` (and so its
    /// cache, shared with delivery).
    pub fn new(resolver: &Resolver, checks: AuthenticationConfig) -> InboundChecks {
        InboundChecks { authenticator: resolver.authenticator(), checks }
    }

    /// Which checks run.
    pub fn checks(&self) -> AuthenticationConfig {
        self.checks
    }

    /// Runs the checks that are on over `message` (whole, as received) and
    /// names `authserv_id` (this host) in the result; `None` when every
    /// check is off.
    pub async fn verify(&self, authserv_id: &str, envelope: &Envelope<'_>, message: &[u8]) -> Option<Verdict> {
        let on = self.checks;
        if !on.any() {
            return None;
        }
        let auth = &self.authenticator;
        let Envelope { ip, helo, mail_from } = *envelope;
        // Each builder writes "authserv-id;\r\n\tmethod=..."; the parts after
        // the id are joined under one id.
        let part = |results: AuthenticationResults<'_>| results.to_string()[authserv_id.len()..].to_string();
        let mut text = String::from(authserv_id);

        let mut spf_mail_from = None;
        if on.spf {
            // An address literal is no domain to check (RFC 7208 §2.3).
            let helo_checked = !helo.is_empty() && !helo.starts_with('[');
            let helo_out = if helo_checked {
                auth.verify_spf(SpfParameters::verify_ehlo(ip, helo, authserv_id)).await
            } else {
                SpfOutput::new(helo.to_string()).with_result(SpfResult::None)
            };
            // For the null path, the MAIL FROM identity is postmaster@HELO
            // (RFC 7208 §2.4), which is what the HELO check checked.
            let mail_out = match mail_from {
                Some(from) => auth.verify_spf(SpfParameters::verify_mail_from(ip, helo, authserv_id, from)).await,
                None => helo_out.clone(),
            };
            text += &part(AuthenticationResults::new(authserv_id).with_spf_mailfrom_result(
                &mail_out,
                ip,
                mail_from.unwrap_or(""),
                helo,
            ));
            if helo_checked {
                text += &part(AuthenticationResults::new(authserv_id).with_spf_ehlo_result(&helo_out, ip, helo));
            }
            spf_mail_from = Some(mail_out);
        }

        let parsed = AuthenticatedMessage::parse(message);
        let mut dkim = Vec::new();
        if on.dkim {
            if let Some(parsed) = &parsed {
                dkim = auth.verify_dkim(parsed).await;
            }
            if dkim.is_empty() {
                text += ";\r\n\tdkim=none";
            } else {
                // A body hash that does not match is a failed verification
                // (RFC 6376 §6.1.3, PERMFAIL): `fail` in RFC 8601 §2.7.1
                // terms. mail-auth writes `neutral`, which is meant for
                // signatures that cannot be processed.
                let dkim_text = part(AuthenticationResults::new(authserv_id).with_dkim_results(&dkim, ""));
                text += &dkim_text
                    .replace("dkim=neutral (body hash did not verify)", "dkim=fail (body hash did not verify)");
            }
        }

        let mut action = DmarcAction::None;
        let mut dmarc_domain = None;
        if on.dmarc {
            match (&parsed, &spf_mail_from) {
                (Some(parsed), Some(spf)) => {
                    let mail_from_domain = mail_from.and_then(|f| f.rsplit_once('@')).map_or(helo, |(_, d)| d);
                    let out = auth.verify_dmarc(DmarcParameters::new(parsed, &dkim, mail_from_domain, spf)).await;
                    if out.domain().is_empty() {
                        // No single RFC5322.From domain: DMARC does not apply.
                        text += ";\r\n\tdmarc=none";
                    } else {
                        text += &part(AuthenticationResults::new(authserv_id).with_dmarc_result(&out));
                        if matches!(out.result(), DmarcResult::Fail(_)) {
                            action = match out.policy() {
                                Policy::Reject => DmarcAction::Reject,
                                Policy::Quarantine => DmarcAction::Quarantine,
                                Policy::None | Policy::Unspecified => DmarcAction::None,
                            };
                        }
                        dmarc_domain = Some(out.domain().to_string());
                    }
                }
                _ => text += ";\r\n\tdmarc=none",
            }
        }
        Some(Verdict { field: format!("Authentication-Results: {text}\r\n"), action, dmarc_domain })
    }
}

/// `message` without the `Authentication-Results:` fields of its header
/// section whose authserv-id is `authserv_id` (compared without regard to
/// case; the field may be folded and the id preceded by comments).
/// Borrowed when there is none.
pub fn strip_forged<'m>(message: &'m [u8], authserv_id: &str) -> Cow<'m, [u8]> {
    let mut kept: Option<Vec<u8>> = None;
    let mut at = 0;
    while at < message.len() {
        let end = field_end(message, at);
        let field = &message[at..end];
        if field == b"\r\n" || field == b"\n" {
            break; // the end of the header section
        }
        let forged = claims(field, authserv_id);
        match (&mut kept, forged) {
            (None, true) => kept = Some(message[..at].to_vec()),
            (Some(out), false) => out.extend_from_slice(field),
            _ => {}
        }
        at = end;
    }
    match kept {
        Some(mut out) => {
            out.extend_from_slice(&message[at..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(message),
    }
}

/// Where the field starting at `start` ends: after its last line, i.e. at
/// the next line that does not begin with white space (a continuation).
fn field_end(message: &[u8], start: usize) -> usize {
    let mut at = start;
    loop {
        match memchr_newline(&message[at..]) {
            Some(n) => at += n + 1,
            None => return message.len(),
        }
        if !matches!(message.get(at), Some(b' ' | b'\t')) {
            return at;
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Whether `field` is an `Authentication-Results:` field naming `authserv_id`.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else { return false };
    let name = field[..colon].trim_ascii_end();
    if !name.eq_ignore_ascii_case(b"authentication-results") {
        return false;
    }
    authserv_id_of(&field[colon + 1..]).is_some_and(|id| id.eq_ignore_ascii_case(authserv_id.as_bytes()))
}

/// The authserv-id at the start of a field body: a token or a quoted
/// string after optional folding white space and comments (RFC 8601 §2.2).
fn authserv_id_of(value: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut i = 0;
    let mut depth = 0usize;
    while let Some(&b) = value.get(i) {
        match b {
            b'\\' if depth > 0 => i += 1,
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => break,
        }
        i += 1;
    }
    let rest = value.get(i..)?;
    if rest.first() == Some(&b'"') {
        let mut id = Vec::new();
        let mut j = 1;
        while let Some(&b) = rest.get(j) {
            match b {
                b'"' => return Some(Cow::Owned(id)),
                b'\\' => {
                    j += 1;
                    id.extend(rest.get(j));
                }
                _ => id.push(b),
            }
            j += 1;
        }
        return None;
    }
    let len = rest.iter().position(|b| matches!(b, b';' | b'(' | b' ' | b'\t' | b'\r' | b'\n')).unwrap_or(rest.len());
    (len > 0).then(|| Cow::Borrowed(&rest[..len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "mx.example.test";

    fn strip(m: &str) -> String {
        String::from_utf8(strip_forged(m.as_bytes(), HOST).into_owned()).unwrap()
    }

    #[test]
    fn a_field_claiming_this_host_is_removed() {
        let m = "Received: x\r\nAuthentication-Results: mx.example.test; spf=pass\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(strip(m), "Received: x\r\nSubject: s\r\n\r\nbody\r\n");
    }

    #[test]
    fn folded_commented_quoted_and_any_case_are_removed() {
        let m = concat!(
            "authentication-results:\r\n  (forged)\r\n\tMX.Example.TEST;\r\n\tdkim=pass header.d=bank.test\r\n",
            "Authentication-Results : \"mx.example.test\"; none\r\n",
            "AUTHENTICATION-RESULTS: mx.example.test (comment); dmarc=pass\r\n",
            "Authentication-Results: mx.example.test\r\n",
            "From: a@b.test\r\n\r\n",
        );
        assert_eq!(strip(m), "From: a@b.test\r\n\r\n");
    }

    #[test]
    fn fields_of_other_hosts_and_lookalikes_are_kept() {
        let m = concat!(
            "Authentication-Results: other.example.test; spf=pass\r\n",
            "Authentication-Results: mx.example.test.evil.test; spf=pass\r\n",
            "Authentication-Results: (mx.example.test) relay.test; none\r\n",
            "X-Authentication-Results: mx.example.test; none\r\n",
            "Subject: Authentication-Results: mx.example.test; none\r\n\r\n",
        );
        assert_eq!(strip(m), m);
        assert!(matches!(strip_forged(m.as_bytes(), HOST), Cow::Borrowed(_)));
    }

    #[test]
    fn the_body_is_never_touched() {
        let m = "Subject: s\r\n\r\nAuthentication-Results: mx.example.test; spf=pass\r\n";
        assert_eq!(strip(m), m);
        let m = "Authentication-Results: mx.example.test; none\r\n\r\nAuthentication-Results: mx.example.test; x\r\n";
        assert_eq!(strip(m), "\r\nAuthentication-Results: mx.example.test; x\r\n");
    }
}
