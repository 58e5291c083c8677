//! Real SMTP clients (swaks, curl, lettre, Python's smtplib, and a raw
//! client for SMTPUTF8) against a server started in-process; each delivery
//! is then checked in the store: one copy in the INBOX, `Return-Path:` and
//! `Received:` on top, the original bytes intact after them, and the
//! record's size equal to the blob's length.

use std::process::Command;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::{Message, SmtpTransport, Transport};

use crate::common::{InProcess, SmtpClient, assert_delivered, dot_stuff, require_tool, run_with_timeout, show};

const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// The message swaks sent, rebuilt from its transcript: the ` -> ` lines
/// between the 354 reply and the lone `.`, dot-unstuffed, CRLF-terminated.
fn swaks_message(transcript: &str) -> Vec<u8> {
    let mut in_data = false;
    let mut out = Vec::new();
    for line in transcript.lines() {
        if !in_data {
            in_data = line.starts_with("<-  354");
            continue;
        }
        let Some(text) = line.strip_prefix(" -> ") else { continue };
        if text == "." {
            return out;
        }
        out.extend_from_slice(text.strip_prefix('.').unwrap_or(text).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    panic!("no complete DATA section in the swaks transcript:\n{transcript}");
}

/// Runs swaks against `server` with `extra` arguments; returns its transcript.
fn swaks(server: &InProcess, extra: &[&str]) -> String {
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", "127.0.0.1", "--port", &server.addr.port().to_string()])
        .args(["--from", "bob@example.test", "--to", "alice@example.test", "--timeout", "10"])
        .args(extra);
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    let transcript = show(&out.stdout);
    assert!(out.status.success(), "swaks failed ({:?}):\n{transcript}\n{}", out.status, show(&out.stderr));
    transcript
}

/// The only message in alice's INBOX, checked against `original`.
fn check_single(server: &InProcess, user: &str, protocol: &str, original: &[u8]) -> mailroom_store::MessageRecord {
    let inbox = server.inbox(user);
    assert_eq!(inbox.len(), 1, "expected exactly one message in {user}'s INBOX");
    let (record, raw) = &inbox[0];
    assert_delivered(record, raw, "bob@example.test", user, protocol, original);
    record.clone()
}

#[test]
fn swaks_plain() {
    if !require_tool("swaks") {
        return;
    }
    let server = InProcess::start();
    let transcript = swaks(
        &server,
        &["--header", "Subject: via swaks", "--body", "first line\n.a line with a leading dot\nlast line"],
    );
    let original = swaks_message(&transcript);
    let text = show(&original);
    assert!(text.contains("\r\nSubject: via swaks\r\n"), "{text}");
    assert!(text.contains("\r\n\r\nfirst line\r\n.a line with a leading dot\r\nlast line\r\n"), "{text}");
    check_single(&server, "alice@example.test", "ESMTP", &original);
}

#[test]
fn swaks_pipelining() {
    if !require_tool("swaks") {
        return;
    }
    let server = InProcess::start();
    let transcript =
        swaks(&server, &["--pipeline", "--header", "Subject: via swaks pipelined", "--body", "pipelined\n."]);
    // The client really pipelined: MAIL, RCPT and DATA left before the first reply to them.
    let data_sent = transcript.find(" -> DATA").expect("DATA sent");
    let mail_ok = transcript.find("<-  250 2.1.0").expect("MAIL accepted");
    assert!(data_sent < mail_ok, "swaks did not pipeline:\n{transcript}");
    let original = swaks_message(&transcript);
    assert!(show(&original).contains("\r\n\r\npipelined\r\n.\r\n"), "{}", show(&original));
    check_single(&server, "alice@example.test", "ESMTP", &original);
}

#[test]
fn swaks_data_file_with_dot_lines() {
    if !require_tool("swaks") {
        return;
    }
    let server = InProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.txt");
    let content = "From: bob@example.test\nTo: alice@example.test\nSubject: via swaks --data\n\n\
                   line one\n.leading dot\n..two dots\n.\n. space after dot\nend\n";
    std::fs::write(&file, content).unwrap();
    let data_arg = format!("@{}", file.display());
    let transcript = swaks(&server, &["--protocol", "ESMTP", "--data", &data_arg]);
    let original = swaks_message(&transcript);
    // Independently of the transcript: the file, with CRLF, arrives unstuffed.
    let file_crlf = content.replace('\n', "\r\n");
    assert!(original.starts_with(file_crlf.as_bytes()), "swaks sent {:?}", show(&original));
    let record = check_single(&server, "alice@example.test", "ESMTP", &original);
    assert_eq!(record.headers.subject, "via swaks --data");
}

#[test]
fn curl_upload() {
    if !require_tool("curl") {
        return;
    }
    let server = InProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    let message = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: via curl\r\n\r\n\
                    hello from curl\r\n.a dot line\r\n.\r\n..\r\nbye\r\n";
    std::fs::write(&file, message).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", &format!("smtp://127.0.0.1:{}", server.addr.port())])
        .args(["--mail-from", "bob@example.test", "--mail-rcpt", "alice@example.test", "--upload-file"])
        .arg(&file);
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    assert!(out.status.success(), "curl failed ({:?}): {}", out.status, show(&out.stderr));
    let record = check_single(&server, "alice@example.test", "ESMTP", message);
    assert_eq!(record.headers.subject, "via curl");
}

#[test]
fn lettre_utf8_subject_and_8bit_body() {
    let server = InProcess::start();
    let subject = "Grüße aus Köln — ünïcödé ✓";
    let body = "Hällo Älice,\r\nthis body is raw 8-bit UTF-8: ✓ 日本語 ñ\r\n.a line with a leading dot\r\nEnde.\r\n";
    let message = Message::builder()
        .from("Bob <bob@example.test>".parse::<Mailbox>().unwrap())
        .to("Alice <alice@example.test>".parse::<Mailbox>().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(Body::new_with_encoding(body.to_string(), ContentTransferEncoding::EightBit).expect("8bit body"))
        .unwrap();
    let formatted = message.formatted();
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let response = mailer.send(&message).expect("lettre send");
    assert!(response.is_positive(), "{response:?}");
    // lettre ends the data with CRLF "." CRLF after the formatted message.
    let mut original = formatted.clone();
    original.extend_from_slice(b"\r\n");
    let text = show(&original);
    assert!(text.contains("Content-Transfer-Encoding: 8bit\r\n"), "{text}");
    assert!(original.windows(body.len()).any(|w| w == body.as_bytes()), "8-bit body not sent raw: {text}");
    let record = check_single(&server, "alice@example.test", "ESMTP", &original);
    assert_eq!(record.headers.subject, subject, "the header cache decodes the RFC 2047 subject");
}

#[test]
fn lettre_smtputf8_recipient() {
    let server = InProcess::start();
    let raw = "From: bob@example.test\r\nTo: jörg@example.test\r\nSubject: für Jörg\r\n\r\nGrüße ✓\r\n";
    let envelope = lettre::address::Envelope::new(
        Some("bob@example.test".parse().unwrap()),
        vec!["jörg@example.test".parse().expect("lettre parses a UTF-8 local part")],
    )
    .unwrap();
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let response = mailer.send_raw(&envelope, raw.as_bytes()).expect("lettre send_raw with SMTPUTF8");
    assert!(response.is_positive(), "{response:?}");
    let mut original = raw.as_bytes().to_vec();
    original.extend_from_slice(b"\r\n");
    let record = check_single(&server, "jörg@example.test", "UTF8SMTP", &original);
    assert_eq!(record.headers.subject, "für Jörg");
    assert!(server.inbox("alice@example.test").is_empty());
}

#[test]
fn raw_smtputf8_round_trip() {
    let server = InProcess::start();
    let mut c = SmtpClient::connect(server.addr).unwrap();
    assert_eq!(c.read_reply().unwrap().code, 220);
    let ehlo = c.command("EHLO client.test").unwrap();
    assert_eq!(ehlo.code, 250, "{ehlo}");
    for ext in ["SMTPUTF8", "8BITMIME", "PIPELINING"] {
        assert!(ehlo.lines.iter().any(|l| &l[4..] == ext), "{ext} not advertised: {ehlo}");
    }
    // RFC 6531 §3.4: a UTF-8 mailbox outside an SMTPUTF8 transaction is refused.
    assert_eq!(c.command("MAIL FROM:<bob@example.test>").unwrap().code, 250);
    let refused = c.command("RCPT TO:<jörg@example.test>").unwrap();
    assert_eq!(refused.code, 553, "{refused}");
    assert!(refused.text().starts_with("5.6.7 "), "{refused}");
    assert_eq!(c.command("RSET").unwrap().code, 250);

    let message = "From: Jörg <jörg@example.test>\r\nTo: jörg@example.test\r\nSubject: Ünïcödé ✓\r\n\r\n\
                   Grüße — 日本語\r\n.dot line ✓\r\n";
    assert_eq!(c.command("MAIL FROM:<jörg@example.test> SMTPUTF8 BODY=8BITMIME").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<jörg@example.test>").unwrap().code, 250);
    assert_eq!(c.command("DATA").unwrap().code, 354);
    c.send(&dot_stuff(message.as_bytes())).unwrap();
    let done = c.read_reply().unwrap();
    assert_eq!(done.code, 250, "{done}");
    assert_eq!(c.command("QUIT").unwrap().code, 221);

    let inbox = server.inbox("jörg@example.test");
    assert_eq!(inbox.len(), 1);
    let (record, raw) = &inbox[0];
    assert_delivered(record, raw, "jörg@example.test", "jörg@example.test", "UTF8SMTP", message.as_bytes());
    assert_eq!(record.headers.subject, "Ünïcödé ✓");
}

const PYTHON_CLIENT: &str = r#"
import email.generator, io, smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Bob <bob@example.test>"
m["To"] = "Alice <alice@example.test>"
m["Subject"] = "via Python smtplib ✓"
m.set_content("hello from python\n.a line with a leading dot\n.\nlast line\n")
# The bytes send_message transmits: flattened with CRLF (smtplib.py).
buf = io.BytesIO()
email.generator.BytesGenerator(buf, policy=m.policy.clone(linesep="\r\n")).flatten(m, linesep="\r\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=10) as s:
    refused = s.send_message(m)
    assert not refused, refused
sys.stdout.write(buf.getvalue().hex())
"#;

#[test]
fn python_smtplib() {
    if !require_tool("python3") {
        return;
    }
    let server = InProcess::start();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PYTHON_CLIENT, &server.addr.port().to_string()]);
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    assert!(out.status.success(), "python failed ({:?}): {}", out.status, show(&out.stderr));
    let hex = show(&out.stdout);
    let original: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex from python")).collect();
    assert!(original.ends_with(b"\r\n"), "{}", show(&original));
    let record = check_single(&server, "alice@example.test", "ESMTP", &original);
    assert_eq!(record.headers.subject, "via Python smtplib ✓");
}
