//! DSNs built and read back: by mail-parser, and by Python's `email`
//! package as an independent parser.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailroom_services::dsn::{DsnAction, DsnRecipient, DsnRequest, build};

const ORIGINAL: &[u8] = b"From: Alice <alice@example.test>\r\n\
To: bob@other.test, carol@other.test\r\n\
Subject: Quarterly figures\r\n\
Message-ID: <orig-1@example.test>\r\n\
\r\n\
The secret body text.\r\n";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn failed(recipient: &str, diagnostic: &str) -> DsnRecipient {
    DsnRecipient {
        recipient: recipient.into(),
        action: DsnAction::Failed,
        status: (5, 1, 1),
        remote_mta: Some("mx.other.test".into()),
        diagnostic: Some(diagnostic.into()),
        last_attempt: Some(at(1_795_326_956)),
        will_retry_until: None,
    }
}

fn delayed(recipient: &str) -> DsnRecipient {
    DsnRecipient {
        recipient: recipient.into(),
        action: DsnAction::Delayed,
        status: (4, 4, 1),
        remote_mta: None,
        diagnostic: Some("connect to mx.other.test[192.0.2.7]:25: Connection refused".into()),
        last_attempt: Some(at(1_795_326_956)),
        will_retry_until: Some(at(1_795_326_956 + 5 * 86_400)),
    }
}

fn request(recipients: &[DsnRecipient]) -> DsnRequest<'_> {
    DsnRequest {
        reporting_mta: "mx.example.test",
        sender: "alice@example.test",
        postmaster: None,
        queue_id: "Q123",
        arrival: at(1_795_320_000),
        now: at(1_795_326_960),
        recipients,
        original: ORIGINAL,
        message_id: "<dsn-1@mx.example.test>".into(),
    }
}

/// Every line ends in CRLF: no bare CR or LF anywhere (the store's rule).
fn assert_crlf_only(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert_eq!(i.checked_sub(1).map(|p| bytes[p]), Some(b'\r'), "bare LF at {i}"),
            _ => {}
        }
    }
    assert!(bytes.ends_with(b"\r\n"));
    for line in bytes.split(|&b| b == b'\n') {
        assert!(line.len() <= 998, "line of {} bytes", line.len());
    }
}

/// The (name, value) fields of each block of a delivery-status body.
fn status_blocks(body: &str) -> Vec<Vec<(String, String)>> {
    body.split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            block
                .split("\r\n")
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let (name, value) = line.split_once(": ").unwrap_or((line, ""));
                    (name.to_string(), value.to_string())
                })
                .collect()
        })
        .collect()
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The three parts of a DSN as (content type, body text), checked for the
/// multipart/report structure on the way.
fn parts(dsn: &[u8]) -> Vec<(String, String)> {
    let message = MessageParser::default().parse(dsn).expect("parses");
    let ctype = message.content_type().expect("content type");
    assert_eq!((ctype.ctype(), ctype.subtype()), ("multipart", Some("report")));
    assert_eq!(ctype.attribute("report-type"), Some("delivery-status"));
    let PartType::Multipart(children) = &message.root_part().body else {
        panic!("root is not multipart");
    };
    children
        .iter()
        .map(|&i| {
            let part = message.part(i).expect("part");
            let ct = part.content_type().expect("part content type");
            let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default());
            assert!(part.content_transfer_encoding().is_none_or(|e| e == "7bit"), "{kind} is not 7bit");
            let raw = &dsn[part.raw_body_offset() as usize..part.raw_end_offset() as usize];
            (kind, String::from_utf8_lossy(raw).into_owned())
        })
        .collect()
}

#[test]
fn a_failed_recipient_is_reported_in_three_parts() {
    let recipients = [failed("bob@other.test", "550 5.1.1 <bob@other.test>: User unknown")];
    let dsn = build(&request(&recipients));
    assert_crlf_only(&dsn);

    let message = MessageParser::default().parse(&dsn[..]).expect("parses");
    assert_eq!(message.subject(), Some("Undelivered Mail Returned to Sender"));
    assert_eq!(message.header_raw("To").map(str::trim), Some("<alice@example.test>"));
    assert_eq!(message.header_raw("From").map(str::trim), Some("Mail Delivery System <MAILER-DAEMON@mx.example.test>"));
    assert_eq!(message.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    assert_eq!(message.message_id(), Some("dsn-1@mx.example.test"));
    assert_eq!(message.header_raw("Date").map(str::trim), Some("Sun, 22 Nov 2026 05:56:00 +0000"));

    let parts = parts(&dsn);
    let kinds: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);

    let text = &parts[0].1;
    assert!(
        text.contains("<bob@other.test>: host mx.other.test said: 550 5.1.1 <bob@other.test>: User unknown"),
        "{text}"
    );

    let blocks = status_blocks(&parts[1].1);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(field(&blocks[0], "Reporting-MTA"), Some("dns; mx.example.test"));
    assert_eq!(field(&blocks[0], "X-Mailroom-Queue-ID"), Some("Q123"));
    assert_eq!(field(&blocks[0], "Arrival-Date"), Some("Sun, 22 Nov 2026 04:00:00 +0000"));
    let bob = &blocks[1];
    assert_eq!(field(bob, "Final-Recipient"), Some("rfc822; bob@other.test"));
    assert_eq!(field(bob, "Action"), Some("failed"));
    assert_eq!(field(bob, "Status"), Some("5.1.1"));
    assert_eq!(field(bob, "Remote-MTA"), Some("dns; mx.other.test"));
    assert_eq!(field(bob, "Diagnostic-Code"), Some("smtp; 550 5.1.1 <bob@other.test>: User unknown"));
    assert_eq!(field(bob, "Last-Attempt-Date"), Some("Sun, 22 Nov 2026 05:55:56 +0000"));
    assert_eq!(field(bob, "Will-Retry-Until"), None);

    let headers = &parts[2].1;
    assert!(headers.contains("Subject: Quarterly figures\r\n"), "{headers}");
    assert!(headers.contains("Message-ID: <orig-1@example.test>\r\n"));
    assert!(!String::from_utf8_lossy(&dsn).contains("secret body"));
}

#[test]
fn each_failed_recipient_has_its_block() {
    let recipients = [
        failed("bob@other.test", "550 5.1.1 <bob@other.test>: User unknown"),
        DsnRecipient {
            status: (5, 2, 2),
            remote_mta: Some("mx2.third.test".into()),
            // A multi-line reply arrives as one line.
            diagnostic: Some("552-5.2.2 Mailbox full\r\n552 5.2.2 Try later".into()),
            ..failed("dave@third.test", "")
        },
        DsnRecipient { remote_mta: None, diagnostic: None, ..failed("erin@fourth.test", "") },
    ];
    let dsn = build(&DsnRequest { postmaster: Some("postmaster@example.test"), ..request(&recipients) });
    assert_crlf_only(&dsn);
    let message = MessageParser::default().parse(&dsn[..]).expect("parses");
    assert_eq!(message.header_raw("From").map(str::trim), Some("Mail Delivery System <postmaster@example.test>"));

    let parts = parts(&dsn);
    let blocks = status_blocks(&parts[1].1);
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    let finals: Vec<_> = blocks[1..].iter().map(|b| field(b, "Final-Recipient")).collect();
    assert_eq!(
        finals,
        [Some("rfc822; bob@other.test"), Some("rfc822; dave@third.test"), Some("rfc822; erin@fourth.test")]
    );
    assert_eq!(field(&blocks[2], "Status"), Some("5.2.2"));
    assert_eq!(field(&blocks[2], "Remote-MTA"), Some("dns; mx2.third.test"));
    assert_eq!(field(&blocks[2], "Diagnostic-Code"), Some("smtp; 552-5.2.2 Mailbox full 552 5.2.2 Try later"));
    assert_eq!(field(&blocks[3], "Remote-MTA"), None);
    assert_eq!(field(&blocks[3], "Diagnostic-Code"), None);
    for who in ["<bob@other.test>", "<dave@third.test>", "<erin@fourth.test>"] {
        assert!(parts[0].1.contains(who), "{who} missing from the text");
    }
}

#[test]
fn an_all_delayed_dsn_says_so() {
    let recipients = [delayed("carol@other.test")];
    let dsn = build(&request(&recipients));
    assert_crlf_only(&dsn);
    let message = MessageParser::default().parse(&dsn[..]).expect("parses");
    assert_eq!(message.subject(), Some("Delayed Mail (still being retried)"));
    let parts = parts(&dsn);
    let blocks = status_blocks(&parts[1].1);
    let carol = &blocks[1];
    assert_eq!(field(carol, "Action"), Some("delayed"));
    assert_eq!(field(carol, "Status"), Some("4.4.1"));
    // Not a reply from a server: typed as our own diagnostic.
    assert_eq!(
        field(carol, "Diagnostic-Code"),
        Some("X-Mailroom; connect to mx.other.test[192.0.2.7]:25: Connection refused")
    );
    assert_eq!(field(carol, "Will-Retry-Until"), Some("Fri, 27 Nov 2026 05:55:56 +0000"));
    assert!(parts[0].1.contains("will keep trying"));

    // One failed recipient among delayed ones makes it a bounce.
    let mixed = [delayed("carol@other.test"), failed("bob@other.test", "550 5.1.1 no")];
    let message_bytes = build(&request(&mixed));
    let message = MessageParser::default().parse(&message_bytes[..]).expect("parses");
    assert_eq!(message.subject(), Some("Undelivered Mail Returned to Sender"));
}

#[test]
fn a_message_without_a_body_is_quoted_whole_and_bare_lf_is_mended() {
    let recipients = [failed("bob@other.test", "550 5.1.1 no")];
    let dsn = build(&DsnRequest { original: b"Subject: only headers\nX-A: b", ..request(&recipients) });
    assert_crlf_only(&dsn);
    let parts = parts(&dsn);
    assert_eq!(parts[2].1, "Subject: only headers\r\nX-A: b\r\n");
}

/// Python's `email` package, a parser we did not write, reads the same
/// structure and fields.
#[test]
fn python_email_reads_the_report() {
    let recipients =
        [failed("bob@other.test", "550 5.1.1 <bob@other.test>: User unknown"), delayed("carol@other.test")];
    let dsn = build(&request(&recipients));
    let script = r#"
import sys, email
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
print(msg.get_content_type(), msg.get_param("report-type"))
parts = msg.get_payload()
print(" ".join(p.get_content_type() for p in parts))
blocks = parts[1].get_payload()
print("Reporting-MTA:", blocks[0]["Reporting-MTA"])
for b in blocks[1:]:
    print("|".join(str(b[f]) for f in ("Final-Recipient", "Action", "Status", "Diagnostic-Code")))
print("original subject:", parts[2].get_content().count("Subject: Quarterly figures"))
print("defects:", sum(len(p.defects) for p in msg.walk()))
"#;
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    child.stdin.take().expect("stdin").write_all(&dsn).expect("write");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "multipart/report delivery-status\n\
         text/plain message/delivery-status text/rfc822-headers\n\
         Reporting-MTA: dns; mx.example.test\n\
         rfc822; bob@other.test|failed|5.1.1|smtp; 550 5.1.1 <bob@other.test>: User unknown\n\
         rfc822; carol@other.test|delayed|4.4.1|X-Mailroom; connect to mx.other.test[192.0.2.7]:25: Connection refused\n\
         original subject: 1\n\
         defects: 0\n"
    );
}
