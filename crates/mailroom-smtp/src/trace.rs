//! Trace headers (RFC 5321 §4.4): `Return-Path:` and `Received:`.

use std::net::IpAddr;
use std::time::SystemTime;

use mailroom_smtp_proto::ReversePath;
use mailroom_types::{QueueId, time::rfc5322};

/// What a `Received:` header records about one transaction.
#[derive(Debug, Clone)]
pub struct TraceInfo<'a> {
    /// The client's HELO/EHLO name.
    pub helo: &'a str,
    /// The client's IP address.
    pub peer: IpAddr,
    /// Our hostname.
    pub hostname: &'a str,
    /// The `with` protocol (RFC 3848, RFC 6531 §3.7.3): SMTP, ESMTP, UTF8SMTP...
    pub protocol: &'static str,
    /// The transaction's id.
    pub id: &'a QueueId,
    /// The recipient, named only when there is exactly one (RFC 5321 §7.2:
    /// naming several would disclose Bcc recipients to each other).
    pub single_recipient: Option<&'a str>,
    /// When the message arrived.
    pub date: SystemTime,
}

/// The RFC 3848 / RFC 6531 protocol name for the `with` clause; an
/// authenticated session (RFC 4954) gets the trailing `A`.
pub fn with_protocol(extended: bool, tls: bool, smtputf8: bool, authenticated: bool) -> &'static str {
    match (smtputf8, extended, tls, authenticated) {
        (true, _, false, false) => "UTF8SMTP",
        (true, _, false, true) => "UTF8SMTPA",
        (true, _, true, false) => "UTF8SMTPS",
        (true, _, true, true) => "UTF8SMTPSA",
        (false, false, _, _) => "SMTP",
        (false, true, false, false) => "ESMTP",
        (false, true, false, true) => "ESMTPA",
        (false, true, true, false) => "ESMTPS",
        (false, true, true, true) => "ESMTPSA",
    }
}

/// The `Return-Path:` and `Received:` header lines, CRLF-terminated, to be
/// written before the message.
pub fn trace_headers(reverse_path: &ReversePath, info: &TraceInfo<'_>) -> Vec<u8> {
    let return_path = match reverse_path {
        ReversePath::Null => String::new(),
        ReversePath::Address(a) => a.to_string(),
    };
    let literal = match info.peer {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
    };
    // The HELO name is client-controlled: keep it to printable characters
    // without the parentheses that delimit the comment.
    let helo: String =
        info.helo.chars().map(|c| if c.is_control() || c == '(' || c == ')' || c == ';' { '_' } else { c }).collect();
    let mut out = format!("Return-Path: <{return_path}>\r\n");
    out.push_str(&format!(
        "Received: from {helo} ({literal})\r\n\tby {} (Mailroom) with {} id {}",
        info.hostname, info.protocol, info.id
    ));
    if let Some(rcpt) = info.single_recipient {
        out.push_str(&format!("\r\n\tfor <{rcpt}>"));
    }
    out.push_str(&format!("; {}\r\n", rfc5322(info.date)));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_types::Address;
    use std::time::Duration;

    #[test]
    fn builds_postfix_like_trace_headers() {
        let id = QueueId::from_string("ABC123".into());
        let info = TraceInfo {
            helo: "client.test",
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "mx.test",
            protocol: with_protocol(true, false, false, false),
            id: &id,
            single_recipient: Some("alice@example.test"),
            date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_326_956),
        };
        let rp = ReversePath::Address(Address::parse("bob@other.test").unwrap());
        assert_eq!(
            String::from_utf8(trace_headers(&rp, &info)).unwrap(),
            "Return-Path: <bob@other.test>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.test (Mailroom) with ESMTP id ABC123\r\n\tfor <alice@example.test>; Sun, 22 Nov 2026 05:55:56 +0000\r\n"
        );
        let info = TraceInfo { single_recipient: None, peer: "::1".parse().unwrap(), helo: "x(y)", ..info };
        let text = String::from_utf8(trace_headers(&ReversePath::Null, &info)).unwrap();
        assert!(text.starts_with("Return-Path: <>\r\nReceived: from x_y_ ([IPv6:::1])"), "{text}");
        assert!(!text.contains("for <"));
    }

    #[test]
    fn protocol_names() {
        assert_eq!(with_protocol(false, false, false, false), "SMTP");
        assert_eq!(with_protocol(true, true, false, false), "ESMTPS");
        assert_eq!(with_protocol(true, true, false, true), "ESMTPSA");
        assert_eq!(with_protocol(true, false, false, true), "ESMTPA");
        assert_eq!(with_protocol(true, false, true, false), "UTF8SMTP");
        assert_eq!(with_protocol(true, true, true, true), "UTF8SMTPSA");
    }
}
