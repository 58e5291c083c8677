//! Known-answer tests over whole messages: the exact bytes FETCH would
//! send, section contents, BINARY decoding, SEARCH matching, and
//! robustness on truncated and garbage input.

use super::*;

/// Test messages are written with `\n`; the store holds CRLF.
fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn env_bytes(raw: &[u8]) -> String {
    let mut out = Vec::new();
    write_envelope(&mut out, &Envelope::parse(raw));
    String::from_utf8(out).unwrap()
}

fn bs_bytes(raw: &[u8], extensible: bool) -> String {
    let mut out = Vec::new();
    write_body_structure(&mut out, &BodyStructure::parse(raw), extensible);
    String::from_utf8(out).unwrap()
}

/// Parses `1.2.MIME`-style section text as the command parser would.
fn sec(spec: &str) -> Section {
    let mut part = Vec::new();
    let mut text = None;
    for (i, item) in spec.split('.').enumerate() {
        if item.is_empty() {
            continue;
        }
        if let Ok(n) = item.parse() {
            part.push(n);
            continue;
        }
        let rest: Vec<&str> = spec.split('.').skip(i).collect();
        text = Some(match rest.join(".").as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" => SectionText::Mime,
            other => panic!("unknown section text {other}"),
        });
        break;
    }
    Section { part, text }
}

fn section_str(raw: &[u8], spec: &str) -> Option<String> {
    let got = section_bytes(raw, &sec(spec)).map(|b| String::from_utf8_lossy(&b).into_owned());
    // The cached form must agree with the one-shot function.
    let parsed = ParsedMessage::new(raw);
    assert_eq!(got, parsed.section(&sec(spec)).map(|b| String::from_utf8_lossy(&b).into_owned()));
    got
}

/// The message of the FETCH example in RFC 9051 §7.5.2 (header as the
/// RFC's ENVELOPE implies; a body of 3028 octets in 92 lines).
fn rfc9051_example() -> Vec<u8> {
    let mut raw = crlf(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n\
         From: Terry Gray <gray@cac.washington.edu>\n\
         Subject: IMAP4rev2 WG mtg summary and minutes\n\
         To: imap@cac.washington.edu\n\
         cc: minutes@CNRI.Reston.VA.US,\n \
         John Klensin <KLENSIN@MIT.EDU>\n\
         Message-Id: <B27397-0100000@cac.washington.edu>\n\
         MIME-Version: 1.0\n\
         Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n\
         \n",
    );
    for _ in 0..91 {
        raw.extend_from_slice(b"The quick brown fox jumps over.\r\n"); // 33 octets
    }
    raw.extend_from_slice(b"Last line of minutes...\r\n"); // 25 octets
    raw
}

#[test]
fn rfc9051_fetch_example_envelope_and_body() {
    let raw = rfc9051_example();
    assert_eq!(
        env_bytes(&raw),
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((NIL NIL \"imap\" \"cac.washington.edu\")) \
         ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
         NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
    // The RFC shows ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT"
    // 3028 92); like Dovecot, parameter names are lowercased and the
    // default encoding is "7bit".
    assert_eq!(bs_bytes(&raw, false), "(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92)");
    assert_eq!(
        bs_bytes(&raw, true),
        "(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92 NIL NIL NIL NIL)"
    );
}

const MIXED: &str = "From: Alice <alice@example.test>
To: Bob <bob@example.test>
Subject: Report
Date: Mon, 2 Mar 2026 10:00:00 +0100
Message-ID: <m1@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"mixed\"

This is a multi-part message in MIME format.
--mixed
Content-Type: multipart/alternative; boundary=\"alt\"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 report attached.
--alt
Content-Type: text/html; charset=utf-8
Content-Language: en, de

<p>Caf&eacute; report attached.</p>
--alt--

--mixed
Content-Type: application/pdf; name=\"report.pdf\"
Content-Disposition: attachment; filename=\"report.pdf\"
Content-Transfer-Encoding: base64
Content-ID: <pdf1@example.test>
Content-Description: The report

JVBERi0xLjQK
--mixed--
";

#[test]
fn multipart_mixed_with_alternative_and_attachment() {
    let raw = crlf(MIXED);
    assert_eq!(
        bs_bytes(&raw, true),
        "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 26 0 NIL NIL NIL NIL)\
         (\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 35 0 NIL NIL (\"en\" \"de\") NIL) \
         \"alternative\" (\"boundary\" \"alt\") NIL NIL NIL)\
         (\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<pdf1@example.test>\" \"The report\" \"base64\" 12 \
         NIL (\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL) \
         \"mixed\" (\"boundary\" \"mixed\") NIL NIL NIL)"
    );
    assert_eq!(
        bs_bytes(&raw, false),
        "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 26 0)\
         (\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 35 0) \"alternative\")\
         (\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<pdf1@example.test>\" \"The report\" \"base64\" 12) \
         \"mixed\")"
    );
    assert_eq!(section_str(&raw, "1.1").as_deref(), Some("Caf=C3=A9 report attached."));
    assert_eq!(
        section_str(&raw, "1.2.MIME").as_deref(),
        Some("Content-Type: text/html; charset=utf-8\r\nContent-Language: en, de\r\n\r\n")
    );
    assert_eq!(section_str(&raw, "2").as_deref(), Some("JVBERi0xLjQK"));
    let parsed = ParsedMessage::new(&raw);
    assert_eq!(parsed.binary(&[2]).unwrap().as_deref(), Some(&b"%PDF-1.4\n"[..]));
    assert_eq!(parsed.binary(&[1, 1]).unwrap().as_deref(), Some("Café report attached.".as_bytes()));
}

#[test]
fn message_rfc822_attachment() {
    let raw = crlf(
        "From: a@x.test
Subject: Fwd: hello
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

See below.
--b
Content-Type: message/rfc822

From: \"Carol \\\"C\\\" Doe\" <carol@y.test>
Subject: hello
Message-ID: <inner@y.test>

Hi there.
--b--
",
    );
    assert_eq!(
        bs_bytes(&raw, true),
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 95 \
         (NIL \"hello\" ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) \
         ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) NIL NIL NIL NIL \"<inner@y.test>\") \
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) \
         \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"
    );
    assert_eq!(
        bs_bytes(&raw, false),
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 95 \
         (NIL \"hello\" ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) \
         ((\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"y.test\")) NIL NIL NIL NIL \"<inner@y.test>\") \
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0) 4) \"mixed\")"
    );
    assert_eq!(
        section_str(&raw, "2.HEADER").as_deref(),
        Some("From: \"Carol \\\"C\\\" Doe\" <carol@y.test>\r\nSubject: hello\r\nMessage-ID: <inner@y.test>\r\n\r\n")
    );
    assert_eq!(section_str(&raw, "2.TEXT").as_deref(), Some("Hi there."));
    // The encapsulated message is not multipart: its part 1 is its body.
    assert_eq!(section_str(&raw, "2.1").as_deref(), Some("Hi there."));
    assert_eq!(section_str(&raw, "2.1.TEXT"), None);
    assert_eq!(section_str(&raw, "2.MIME").as_deref(), Some("Content-Type: message/rfc822\r\n\r\n"));
    assert!(section_str(&raw, "2").unwrap().starts_with("From: \"Carol"));
}

/// The example structure of RFC 9051 §6.4.5.
const NESTED: &str = "Subject: top
Content-Type: multipart/mixed; boundary=top

--top
Content-Type: text/plain

part 1
--top
Content-Type: application/octet-stream

part 2
--top
Content-Type: message/rfc822

Subject: three
Content-Type: multipart/mixed; boundary=three

--three
Content-Type: text/plain

part 3.1
--three
Content-Type: application/octet-stream

part 3.2
--three--
--top
Content-Type: multipart/mixed; boundary=four

--four
Content-Type: image/gif

part 4.1
--four
Content-Type: message/rfc822

Subject: four-two
Content-Type: multipart/mixed; boundary=fourtwo

--fourtwo
Content-Type: text/plain

part 4.2.1
--fourtwo
Content-Type: multipart/alternative; boundary=alt

--alt
Content-Type: text/plain

part 4.2.2.1
--alt
Content-Type: text/richtext

part 4.2.2.2
--alt--
--fourtwo--
--four--
--top--
";

#[test]
fn rfc9051_part_numbering() {
    let raw = crlf(NESTED);
    let cases: &[(&str, Option<&str>)] = &[
        ("HEADER", Some("Subject: top\r\nContent-Type: multipart/mixed; boundary=top\r\n\r\n")),
        ("1", Some("part 1")),
        ("2", Some("part 2")),
        ("3.HEADER", Some("Subject: three\r\nContent-Type: multipart/mixed; boundary=three\r\n\r\n")),
        ("3.1", Some("part 3.1")),
        ("3.2", Some("part 3.2")),
        ("3.MIME", Some("Content-Type: message/rfc822\r\n\r\n")),
        ("4.1", Some("part 4.1")),
        ("4.1.MIME", Some("Content-Type: image/gif\r\n\r\n")),
        ("4.2.HEADER", Some("Subject: four-two\r\nContent-Type: multipart/mixed; boundary=fourtwo\r\n\r\n")),
        ("4.2.1", Some("part 4.2.1")),
        ("4.2.2.1", Some("part 4.2.2.1")),
        ("4.2.2.2", Some("part 4.2.2.2")),
        ("4.2.2.2.MIME", Some("Content-Type: text/richtext\r\n\r\n")),
        // Nonexistent sections.
        ("5", None),
        ("0", None),
        ("1.1", None),
        ("2.HEADER", None),
        ("4.TEXT", None),
        ("MIME", None),
        ("4.2.2.3", None),
    ];
    for (spec, want) in cases {
        assert_eq!(section_str(&raw, spec).as_deref(), *want, "section {spec}");
    }
    let text = section_str(&raw, "4.2.TEXT").unwrap();
    assert!(text.starts_with("--fourtwo\r\nContent-Type: text/plain\r\n"), "{text}");
    assert!(text.ends_with("--alt--\r\n--fourtwo--"), "{text}");
    let three = section_str(&raw, "3").unwrap();
    assert!(three.starts_with("Subject: three\r\n") && three.ends_with("--three--"), "{three}");
    assert_eq!(section_str(&raw, "").map(|s| s.len()), Some(raw.len()));
    assert!(section_str(&raw, "TEXT").unwrap().starts_with("--top\r\n"));
}

#[test]
fn single_part_message_numbering() {
    let raw = crlf("Subject: x\nContent-Type: text/plain\n\nhello\n");
    assert_eq!(section_str(&raw, "1").as_deref(), Some("hello\r\n"));
    assert_eq!(section_str(&raw, "TEXT").as_deref(), Some("hello\r\n"));
    assert_eq!(section_str(&raw, "1.MIME").as_deref(), Some("Subject: x\r\nContent-Type: text/plain\r\n\r\n"));
    assert_eq!(section_str(&raw, "2"), None);
    assert_eq!(section_str(&raw, "1.1"), None);
}

#[test]
fn header_fields_keep_folding_and_order() {
    let raw = crlf(
        "Received: from a\n by b\nSubject: Hello\n world\nFROM: x@y\nTo: z@w\nsubject: again\n\nbody: not a header\n",
    );
    let fields = |names: &[&str], not: bool| {
        let names = names.iter().map(|s| s.to_string()).collect();
        let text = if not { SectionText::HeaderFieldsNot(names) } else { SectionText::HeaderFields(names) };
        let got = section_bytes(&raw, &Section { part: vec![], text: Some(text) }).unwrap();
        String::from_utf8(got.into_owned()).unwrap()
    };
    assert_eq!(fields(&["subject", "From"], false), "Subject: Hello\r\n world\r\nFROM: x@y\r\nsubject: again\r\n\r\n");
    assert_eq!(fields(&["SUBJECT", "received"], true), "FROM: x@y\r\nTo: z@w\r\n\r\n");
    assert_eq!(fields(&["body", "x-none"], false), "\r\n");
}

#[test]
fn partial_ranges() {
    let data = b"0123456789";
    let p = |origin, count| Some(Partial { origin, count });
    assert_eq!(apply_partial(data, None), data);
    assert_eq!(apply_partial(data, p(2, 3)), b"234");
    assert_eq!(apply_partial(data, p(8, 100)), b"89");
    assert_eq!(apply_partial(data, p(10, 1)), b"");
    assert_eq!(apply_partial(data, p(u64::MAX, u64::MAX)), b"");
    assert_eq!(apply_partial(data, p(0, 0)), b"");
}

#[test]
fn binary_decodes_base64_and_quoted_printable() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream
Content-Transfer-Encoding: BASE64

AAEC
/w==
--b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 =
soft=3D  
--b
Content-Type: text/plain
Content-Transfer-Encoding: x-uuencode

begin 644 x
--b
Content-Type: text/plain

plain
--b--
",
    );
    let parsed = ParsedMessage::new(&raw);
    assert_eq!(parsed.binary(&[1]).unwrap().as_deref(), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(parsed.binary_size(&[1]), Ok(Some(4)));
    assert_eq!(parsed.binary(&[2]).unwrap().as_deref(), Some(&b"caf\xe9 soft="[..]));
    assert_eq!(parsed.binary(&[3]), Err(BinaryError::UnknownCte(b"x-uuencode".to_vec())));
    assert_eq!(parsed.binary(&[3]).unwrap_err().to_string(), "unknown content transfer encoding x-uuencode");
    assert_eq!(parsed.binary(&[4]).unwrap().as_deref(), Some(&b"plain"[..]));
    assert_eq!(parsed.binary(&[5]), Ok(None));
    assert_eq!(parsed.binary(&[]).unwrap().as_deref(), Some(&raw[..]));
    assert_eq!(binary_size(&raw, &[2]), Ok(Some(10)));
}

const SEARCHABLE: &str = "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
Subject: =?UTF-8?B?w5xiZXJwcsO8ZnVuZw==?= des
 Systems
Date: Tue, 3 Mar 2026 23:30:00 -0800
X-Empty:
Content-Type: multipart/alternative; boundary=s

--s
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus K=F6ln
--s
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGI+w5xuw69jb2RlPC9iPiBIRUxMTw==
--s
Content-Type: application/octet-stream

secret-binary-word
--s--
";

#[test]
fn search_decodes_encoded_words_and_bodies() {
    let raw = crlf(SEARCHABLE);
    let m = ParsedMessage::new(&raw);
    assert!(m.header_contains("subject", "ÜBERPRÜFUNG"));
    assert!(m.header_contains("SUBJECT", "des sys"));
    assert!(m.header_contains("From", "andré pirard"));
    assert!(m.header_contains("from", "pirard@VM1"));
    assert!(!m.header_contains("subject", "xyz"));
    assert!(!m.header_contains("to", "pirard"));
    assert!(m.header_contains("x-empty", ""));
    assert!(m.header_contains("subject", ""));
    assert!(!m.header_contains("cc", ""));
    assert!(m.body_contains("grüße aus köln"));
    assert!(m.body_contains("ÜNÏCODE"));
    assert!(m.body_contains("hello"));
    assert!(m.body_contains(""));
    assert!(!m.body_contains("überprüfung"), "BODY does not look at the header");
    assert!(!m.body_contains("secret-binary-word"), "only text parts are searched");
    assert!(m.text_contains("überprüfung"));
    assert!(m.text_contains("KÖLN"));
    assert!(m.text_contains("x-empty"));
    assert!(!m.text_contains("nowhere"));
    // Free functions agree.
    assert!(header_contains(&raw, "Subject", "überprüfung"));
    assert!(body_contains(&raw, "köln"));
    assert!(text_contains(&raw, "andré"));
}

/// Plain ASCII parts are searched in place, other parts decoded: both
/// fold case the same way, and a needle that folds to ASCII (the Kelvin
/// sign folds to `k`) is found in either.
#[test]
fn search_treats_ascii_and_decoded_parts_alike() {
    let raw = crlf(
        "Subject: parts\n\
Content-Type: multipart/mixed; boundary=b\n\
\n\
--b\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
Meet at the KIOSK on Monday\n\
--b\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Straße 5, Zürich\n\
--b\n\
Content-Type: text/plain; charset=iso-2022-jp\n\
\n\
plain words\n\
--b--\n",
    );
    let m = ParsedMessage::new(&raw);
    assert!(m.body_contains("kiosk on monday"));
    assert!(m.body_contains("\u{212A}IOSK"), "the Kelvin sign folds to k");
    assert!(!m.body_contains("STRASSE"), "folding is lowercase, not full case folding (ß stays)");
    assert!(m.body_contains("STRAßE"));
    assert!(m.body_contains("ZÜRICH"));
    assert!(!m.body_contains("zürich monday"), "no match across parts");
    assert!(m.body_contains("plain words"), "an ASCII body in another charset is decoded");
    assert!(!m.body_contains("é"));
}

#[test]
fn sent_date_is_in_the_header_zone() {
    let raw = crlf(SEARCHABLE);
    // 23:30 -0800 is already 4 March in UTC; SENTON uses the header's date.
    assert_eq!(sent_date(&raw), Some(SentDate { year: 2026, month: 3, day: 3 }));
    assert_eq!(
        sent_date(&crlf("Date: Mon, 2 Mar 2026 10:00:00 +0100\n\n")),
        Some(SentDate { year: 2026, month: 3, day: 2 })
    );
    assert_eq!(sent_date(&crlf("Subject: none\n\n")), None);
    assert_eq!(sent_date(&crlf("Date: yesterday-ish\n\n")), None);
    assert!(SentDate { year: 2026, month: 3, day: 2 } < SentDate { year: 2026, month: 3, day: 3 });
}

#[test]
fn odd_strings_are_quoted_or_literal() {
    let long = "x".repeat(1100);
    let raw = crlf(&format!("Subject: He said \"hi\" \\ bye\nIn-Reply-To: {long}\n\n"));
    let got = env_bytes(&raw);
    assert!(got.starts_with("(NIL \"He said \\\"hi\\\" \\\\ bye\" NIL NIL NIL NIL NIL NIL {1100}\r\nxxx"), "{got}");
    assert!(got.ends_with("xxx NIL)"), "{got}");
}

#[test]
fn encoded_message_rfc822_is_shown_as_octet_stream() {
    let raw = crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5\n");
    assert_eq!(bs_bytes(&raw, false), "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 22)");
}

#[test]
fn empty_multipart_gets_one_empty_text_part() {
    let raw = crlf("Content-Type: multipart/mixed\n\nno boundary\n");
    assert_eq!(
        bs_bytes(&raw, true),
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)"
    );
}

/// Runs every analysis on `raw`; it must not panic.
fn exercise(raw: &[u8]) {
    let m = ParsedMessage::new(raw);
    let mut out = Vec::new();
    write_envelope(&mut out, &m.envelope());
    write_body_structure(&mut out, &m.body_structure(), true);
    write_body_structure(&mut out, &m.body_structure(), false);
    for spec in ["", "HEADER", "TEXT", "1", "1.MIME", "2.HEADER", "2.1", "3.1.2", "4.2.2.1", "4.2.TEXT"] {
        if let Some(bytes) = m.section(&sec(spec)) {
            let _ = apply_partial(&bytes, Some(Partial { origin: 3, count: 5 }));
        }
    }
    let fields = SectionText::HeaderFields(vec!["subject".into(), "from".into()]);
    let _ = m.section(&Section { part: vec![], text: Some(fields) });
    for part in [&[][..], &[1], &[2], &[1, 1], &[4, 2, 2, 1]] {
        let _ = m.binary(part);
    }
    let _ = m.header_contains("subject", "a");
    let _ = m.body_contains("é");
    let _ = m.text_contains("x");
    let _ = m.sent_date();
}

#[test]
fn truncated_messages_never_panic() {
    for message in [crlf(MIXED), crlf(NESTED), crlf(SEARCHABLE), rfc9051_example()] {
        for end in 0..message.len() {
            exercise(&message[..end]);
        }
    }
}

#[test]
fn garbage_never_panics() {
    let alphabet: &[u8] =
        b"--b\r\n:;<>\"()[]@,.=?\\ \tContent-Type: multipart/mixed; boundary=b message/rfc822 base64\xff\x00";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        let mut raw = Vec::new();
        for _ in 0..400 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            raw.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        exercise(&raw);
    }
    exercise(b"");
    exercise(b"\r\n");
    exercise(b":");
    exercise(b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n");
}

#[test]
fn huge_headers_stay_linear() {
    // 200,000 addresses on one logical line and 50,000 fields: each pass
    // is linear, so this finishes quickly even unoptimised.
    let mut raw = b"To: ".to_vec();
    for i in 0..200_000 {
        raw.extend_from_slice(format!("u{i}@x.test,\r\n ").as_bytes());
    }
    raw.extend_from_slice(b"last@x.test\r\n");
    for i in 0..50_000 {
        raw.extend_from_slice(format!("X-F{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\nbody\r\n");
    let m = ParsedMessage::new(&raw);
    assert_eq!(m.envelope().to.len(), 200_001);
    assert!(m.header_contains("to", "last@x.test"));
    assert!(!m.header_contains("subject", ""));
    let names = SectionText::HeaderFields(vec!["x-f49999".into()]);
    assert_eq!(m.section(&Section { part: vec![], text: Some(names) }).as_deref(), Some(&b"X-F49999: v\r\n\r\n"[..]));
}

#[test]
fn plain_message_as_dovecot_reports_it() {
    // Dovecot 2.3 answers this message with exactly these bytes.
    let raw = crlf("Subject: x\n\nhello\n");
    assert_eq!(
        bs_bytes(&raw, true),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL)"
    );
    assert_eq!(bs_bytes(&raw, false), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
}

#[test]
fn raw_utf8_headers_pass_through_unchanged() {
    // Unchanged, as literals: an IMAP4rev1 client takes 8-bit text only
    // in a literal (RFC 3501 §4.3), and every client takes literals.
    let raw = crlf("Subject: Grüße =?utf-8?q?aus?= Köln\nFrom: Jörg <jörg@bücher.test>\n\n");
    let jorg = "(({5}\r\nJörg NIL {5}\r\njörg {12}\r\nbücher.test))";
    assert_eq!(
        env_bytes(&raw),
        format!("(NIL {{29}}\r\nGrüße =?utf-8?q?aus?= Köln {jorg} {jorg} {jorg} NIL NIL NIL NIL NIL)")
    );
    assert!(header_contains(&raw, "subject", "GRÜßE AUS KÖLN"));
    assert!(header_contains(&raw, "from", "jörg@bücher"));
}

#[test]
fn multipart_without_subtype_is_x_unknown() {
    let raw = crlf("Content-Type: multipart; boundary=b\n\n--b\n\nx\n--b--\n");
    assert_eq!(
        bs_bytes(&raw, false),
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) \"x-unknown\")"
    );
}
