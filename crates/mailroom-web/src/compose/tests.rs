use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders};
use mailroom_types::Address;

use super::*;

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn alice() -> Sender {
    Sender { name: Some("Alice Example".into()), address: addr("alice@example.test") }
}

fn draft(to: &str, cc: &str, bcc: &str) -> Draft {
    Draft {
        to: to.into(),
        cc: cc.into(),
        bcc: bcc.into(),
        subject: "Hello".into(),
        body: "Hi Bob,\nsee you.\n".into(),
        ..Draft::default()
    }
}

const DATE: i64 = 1_795_326_956; // Sun, 22 Nov 2026 05:55:56 +0000
const LIMIT: u64 = 10 << 20;

fn parsed(bytes: &[u8]) -> Message<'_> {
    MessageParser::default().parse(bytes).expect("parses")
}

fn addresses(list: Option<&mail_parser::Address<'_>>) -> Vec<(Option<String>, String)> {
    list.map(|l| {
        l.iter().map(|a| (a.name().map(str::to_string), a.address().unwrap_or_default().to_string())).collect()
    })
    .unwrap_or_default()
}

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(3000).chain([0, b'\r', b'\n', b'\n', b'\r', 0xff]).collect()
}

// Recipient lists.

#[test]
fn recipients_accept_names_quotes_and_angles() {
    let list = parse_recipients(
        " \"Doe, Jane\" <jane@x.test>, Bob <bob@example.test>,<carol@x.test>, dave@x.test,  \"Q \\\"uote\\\"\" <q@x.test>, ",
    )
    .unwrap();
    let got: Vec<(Option<&str>, String)> = list.iter().map(|r| (r.name.as_deref(), r.address.to_string())).collect();
    assert_eq!(
        got,
        [
            (Some("Doe, Jane"), "jane@x.test".to_string()),
            (Some("Bob"), "bob@example.test".to_string()),
            (None, "carol@x.test".to_string()),
            (None, "dave@x.test".to_string()),
            (Some("Q \"uote\""), "q@x.test".to_string()),
        ]
    );
}

#[test]
fn recipients_name_the_bad_entry() {
    for (list, bad) in [
        ("bob@x.test, not an address, carol@x.test", "not an address"),
        ("Bob <bob@x.test", "Bob <bob@x.test"),
        ("bob@x.test, Eve <eve@>", "Eve <eve@>"),
        ("<a@x.test> trailing", "<a@x.test> trailing"),
        ("\"Unterminated <u@x.test>", "\"Unterminated <u@x.test>"),
    ] {
        assert_eq!(parse_recipients(list).unwrap_err(), ComposeError::BadAddress(bad.into()), "{list}");
    }
}

#[test]
fn empty_recipient_lists_are_empty() {
    assert!(parse_recipients("").unwrap().is_empty());
    assert!(parse_recipients("  , ,").unwrap().is_empty());
}

// Sending.

#[test]
fn build_writes_headers_and_keeps_bcc_off_the_message() {
    let mut d = draft("Bob <bob@example.test>, \"Doe, Jane\" <jane@x.test>", "carol@x.test", "secret@hidden.test");
    d.in_reply_to = Some("orig@x.test".into());
    d.references = vec!["root@x.test".into(), "<orig@x.test>".into()];
    let built = build(&alice(), &d, &[], DATE, "new-1@example.test", LIMIT).unwrap();
    let text = String::from_utf8(built.bytes.clone()).unwrap();
    assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
    assert!(!text.contains("secret@hidden.test"), "{text}");
    assert!(text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'), "CRLF only");

    let msg = parsed(&built.bytes);
    assert_eq!(addresses(msg.from()), [(Some("Alice Example".into()), "alice@example.test".into())]);
    assert_eq!(
        addresses(msg.to()),
        [(Some("Bob".into()), "bob@example.test".into()), (Some("Doe, Jane".into()), "jane@x.test".into())]
    );
    assert_eq!(addresses(msg.cc()), [(None, "carol@x.test".into())]);
    assert!(msg.bcc().is_none());
    assert_eq!(msg.subject(), Some("Hello"));
    assert_eq!(msg.header_raw(HeaderName::Date).map(str::trim), Some("Sun, 22 Nov 2026 05:55:56 +0000"));
    assert_eq!(msg.date().map(|d| d.to_timestamp()), Some(DATE));
    assert_eq!(msg.message_id(), Some("new-1@example.test"));
    assert_eq!(msg.in_reply_to(), &HeaderValue::Text("orig@x.test".into()));
    assert_eq!(msg.references(), &HeaderValue::TextList(vec!["root@x.test".into(), "orig@x.test".into()]));
    assert_eq!(msg.header_raw(HeaderName::MimeVersion).map(str::trim), Some("1.0"));
    let ct = msg.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype(), ct.attribute("charset")), ("text", Some("plain"), Some("utf-8")));

    assert_eq!(
        built.recipients,
        [addr("bob@example.test"), addr("jane@x.test"), addr("carol@x.test"), addr("secret@hidden.test")]
    );
}

#[test]
fn envelope_is_deduplicated_in_order() {
    let d = draft("bob@x.test, Carol <carol@x.test>", "BOB@x.test", "carol@X.TEST, dan@x.test");
    let built = build(&alice(), &d, &[], DATE, "id@x.test", LIMIT).unwrap();
    assert_eq!(built.recipients, [addr("bob@x.test"), addr("carol@x.test"), addr("dan@x.test")]);
}

#[test]
fn only_bcc_is_enough() {
    let built = build(&alice(), &draft("", "", "hidden@x.test"), &[], DATE, "id@x.test", LIMIT).unwrap();
    assert_eq!(built.recipients, [addr("hidden@x.test")]);
    let msg = parsed(&built.bytes);
    assert!(msg.to().is_none() && msg.bcc().is_none());
}

#[test]
fn build_refuses_no_recipients_and_bad_addresses() {
    assert_eq!(build(&alice(), &draft(" ", "", ","), &[], DATE, "i@x.test", LIMIT), Err(ComposeError::NoRecipients));
    assert_eq!(
        build(&alice(), &draft("bob@x.test", "", "oops@"), &[], DATE, "i@x.test", LIMIT),
        Err(ComposeError::BadAddress("oops@".into()))
    );
}

#[test]
fn non_ascii_subject_and_names_are_encoded_and_round_trip() {
    let mut d = draft("Jörg Müller <joerg@x.test>", "", "");
    d.subject = "Grüße aus Köln — 日本語の件名も長くしてみましょう、折り返しが必要になるまで".into();
    let sender = Sender { name: Some("Zoë, the sender".into()), address: addr("zoe@example.test") };
    let built = build(&sender, &d, &[], DATE, "id@x.test", LIMIT).unwrap();
    assert!(built.bytes.is_ascii(), "headers are 7-bit with encoded words");
    for line in built.bytes.split(|b| *b == b'\n') {
        assert!(line.len() <= 78, "{}", String::from_utf8_lossy(line));
    }
    let msg = parsed(&built.bytes);
    assert_eq!(msg.subject(), Some(d.subject.as_str()));
    assert_eq!(addresses(msg.to()), [(Some("Jörg Müller".into()), "joerg@x.test".into())]);
    assert_eq!(addresses(msg.from()), [(Some("Zoë, the sender".into()), "zoe@example.test".into())]);
}

#[test]
fn header_fields_cannot_inject_headers() {
    let mut d = draft("bob@x.test", "", "");
    d.subject = "hi\r\nBcc: victim@x.test".into();
    let built = build(&alice(), &d, &[], DATE, "id@x.test", LIMIT).unwrap();
    let text = String::from_utf8(built.bytes.clone()).unwrap();
    assert!(!text.contains("\nBcc:"), "{text}");
    assert_eq!(parsed(&built.bytes).subject(), Some("hi  Bcc: victim@x.test"));
    for bad in ["", "<>", "id@x.test\r\nX-Evil: 1", "a b@x.test", "a<b@x.test"] {
        assert_eq!(build(&alice(), &d, &[], DATE, bad, LIMIT), Err(ComposeError::BadMessageId(bad.into())), "{bad:?}");
        assert_eq!(build_draft(&alice(), &d, &[], DATE, bad, LIMIT), Err(ComposeError::BadMessageId(bad.into())));
    }
    let angled = build(&alice(), &d, &[], DATE, "<id@x.test>", LIMIT).unwrap();
    assert_eq!(parsed(&angled.bytes).message_id(), Some("id@x.test"));
}

#[test]
fn body_round_trips() {
    let body = "From the start\n.\n.. two dots\nFrom me\n>From quoted\n\
        ünïcödé ✓ 日本語\n\ntrailing space \n"
        .to_string()
        + &"long line ".repeat(40)
        + "\n"
        + &"x".repeat(1200)
        + "\nend";
    for body in [body.clone(), body.replace('\n', "\r\n"), String::new(), "no newline".into()] {
        let d = Draft { body: body.clone(), ..draft("bob@x.test", "", "") };
        let built = build(&alice(), &d, &[], DATE, "id@x.test", LIMIT).unwrap();
        for line in built.bytes.split(|b| *b == b'\n') {
            assert!(line.len() <= 998, "line too long for SMTP");
        }
        let msg = parsed(&built.bytes);
        let got = msg.body_text(0).unwrap_or_default().replace("\r\n", "\n");
        assert_eq!(got, body.replace("\r\n", "\n"));
    }
}

fn uploads() -> Vec<Upload> {
    vec![
        Upload { filename: "data.bin".into(), content_type: "application/octet-stream".into(), bytes: binary() },
        Upload {
            filename: "C:\\fakepath\\Jahresabschluß, 2024 — 日本.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
        },
        // Text with bare LFs, a long line and a byte that is not UTF-8: a
        // text attachment must come back exactly, not as decoded text.
        Upload {
            filename: "notes.txt".into(),
            content_type: "Text/Plain; charset=latin1".into(),
            bytes: [b"line\nline\r\n".as_slice(), &[b'a'; 100], b"\ncaf\xe9\n"].concat(),
        },
        Upload { filename: "empty".into(), content_type: "not a type".into(), bytes: Vec::new() },
    ]
}

#[test]
fn attachments_round_trip_exactly() {
    let up = uploads();
    let built = build(&alice(), &draft("bob@x.test", "", ""), &up, DATE, "id@x.test", LIMIT).unwrap();
    let msg = parsed(&built.bytes);
    let ct = msg.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("mixed")));
    assert_eq!(msg.body_text(0).as_deref().map(|t| t.replace("\r\n", "\n")).as_deref(), Some("Hi Bob,\nsee you.\n"));
    let text = String::from_utf8_lossy(&built.bytes);
    assert!(text.contains("filename*=UTF-8''") || text.contains("filename*0*=UTF-8''"), "RFC 2231");
    assert!(text.contains("Content-Disposition: attachment"), "{text}");

    let attached: Vec<&mail_parser::MessagePart<'_>> = msg.attachments().collect();
    assert_eq!(attached.len(), 4);
    assert_eq!(attached[0].contents(), binary().as_slice());
    assert_eq!(attached[0].attachment_name(), Some("data.bin"));
    assert_eq!(attached[1].attachment_name(), Some("Jahresabschluß, 2024 — 日本.pdf"));
    assert_eq!(attached[1].contents(), up[1].bytes.as_slice());
    assert!(attached.iter().all(|p| p.content_disposition().is_some_and(|d| d.is_attachment())));

    // The resumed uploads carry the exact bytes, text attachments included.
    let (_, back) = resume(&built.bytes);
    let expect: Vec<Upload> = vec![
        up[0].clone(),
        Upload { filename: "Jahresabschluß, 2024 — 日本.pdf".into(), ..up[1].clone() },
        Upload { content_type: "text/plain".into(), ..up[2].clone() },
        Upload { content_type: "application/octet-stream".into(), ..up[3].clone() },
    ];
    assert_eq!(back, expect);
}

#[test]
fn too_large_is_refused() {
    let up = vec![Upload { filename: "big".into(), content_type: "application/zip".into(), bytes: vec![7; 3000] }];
    let d = draft("bob@x.test", "", "");
    // Content alone fits, but base64 makes it larger than the limit.
    assert_eq!(build(&alice(), &d, &up, DATE, "id@x.test", 3500), Err(ComposeError::TooLarge { limit: 3500 }));
    assert_eq!(build(&alice(), &d, &up, DATE, "id@x.test", 100), Err(ComposeError::TooLarge { limit: 100 }));
    assert_eq!(build_draft(&alice(), &d, &up, DATE, "id@x.test", 3500), Err(ComposeError::TooLarge { limit: 3500 }));
    // MIME boundaries vary in length by a few bytes, so no exact limit here.
    let ok = build(&alice(), &d, &up, DATE, "id@x.test", 6000).unwrap();
    assert!(ok.bytes.len() > 4000 && ok.bytes.len() <= 6000, "{}", ok.bytes.len());
}

// Drafts.

#[test]
fn draft_round_trips_with_bcc_and_attachments() {
    let d = Draft {
        to: "\"Doe, Jane\" <jane@x.test>, Jörg <joerg@x.test>".into(),
        cc: "carol@x.test".into(),
        bcc: "Secret Agent <secret@hidden.test>".into(),
        subject: "Entwurf: Grüße".into(),
        body: "first\n.\nFrom here\n".into(),
        in_reply_to: Some("orig@x.test".into()),
        references: vec!["root@x.test".into(), "orig@x.test".into()],
    };
    let up = uploads();
    let raw = build_draft(&alice(), &d, &up, DATE, "draft-1@example.test", LIMIT).unwrap();
    assert_eq!(addresses(parsed(&raw).bcc()), [(Some("Secret Agent".into()), "secret@hidden.test".into())]);
    let (back, files) = resume(&raw);
    assert_eq!(back, d);
    assert_eq!(files.len(), up.len());
    for (got, sent) in files.iter().zip(&up) {
        assert_eq!(got.bytes, sent.bytes, "{}", sent.filename);
    }
    assert_eq!(files[1].filename, "Jahresabschluß, 2024 — 日本.pdf");
    assert_eq!(files[1].content_type, "application/pdf");
}

#[test]
fn draft_keeps_invalid_and_empty_recipients_as_typed() {
    let d = Draft {
        to: "bob@x.test, half-typed@, Jörg <".into(),
        cc: String::new(),
        bcc: "carol@".into(),
        subject: String::new(),
        body: String::new(),
        in_reply_to: None,
        references: Vec::new(),
    };
    let raw = build_draft(&alice(), &d, &[], DATE, "draft-2@example.test", LIMIT).unwrap();
    let (back, files) = resume(&raw);
    assert_eq!(back, d);
    assert!(files.is_empty());
    let empty = build_draft(&alice(), &Draft::default(), &[], DATE, "d@x.test", LIMIT).unwrap();
    assert_eq!(resume(&empty), (Draft::default(), Vec::new()));
}

// Replies and forwards.

const ORIGINAL: &str = "From: Bob Sender <bob@example.test>\r\n\
To: Alice <Alice@Example.test>, carol@x.test, \"Dan\" <dan@x.test>\r\n\
Cc: ALICE@example.test, erin@x.test, Carol <CAROL@x.test>, alias@example.test\r\n\
Subject: Lunch plans\r\n\
Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\
Message-ID: <m3@example.test>\r\n\
In-Reply-To: <m2@example.test>\r\n\
References: <m1@example.test> <m2@example.test>\r\n\
\r\n\
Shall we?\r\n\
> earlier\r\n\
\r\n\
Bob\r\n";

fn me() -> Vec<Address> {
    vec![addr("alice@example.test"), addr("alias@example.test")]
}

#[test]
fn reply_goes_to_sender_and_quotes() {
    let (d, up) = prepare(ORIGINAL.as_bytes(), ReplyKind::Reply, &me());
    assert!(up.is_empty());
    assert_eq!(d.to, "Bob Sender <bob@example.test>");
    assert_eq!(d.cc, "");
    assert_eq!(d.subject, "Re: Lunch plans");
    assert_eq!(d.in_reply_to.as_deref(), Some("m3@example.test"));
    assert_eq!(d.references, ["m1@example.test", "m2@example.test", "m3@example.test"]);
    assert_eq!(
        d.body,
        "\n\nOn Mon, 2 Mar 2026 10:00:00 +0100, Bob Sender wrote:\n> Shall we?\n> > earlier\n> \n> Bob\n"
    );
    // The prepared draft is sendable as it is.
    build(&alice(), &d, &up, DATE, "r@x.test", LIMIT).unwrap();
}

#[test]
fn reply_prefers_reply_to_and_keeps_existing_prefixes() {
    let original = ORIGINAL
        .replace("Subject: Lunch plans", "Subject: RE: Lunch plans")
        .replace("Message-ID:", "Reply-To: \"List, The\" <list@x.test>\r\nMessage-ID:");
    let (d, _) = prepare(original.as_bytes(), ReplyKind::Reply, &me());
    assert_eq!(d.to, "\"List, The\" <list@x.test>");
    assert_eq!(d.subject, "RE: Lunch plans");
    for (subject, kind, want) in [
        ("Re[2]: x", ReplyKind::Reply, "Re[2]: x"),
        ("re: x", ReplyKind::ReplyAll, "re: x"),
        ("Regarding x", ReplyKind::Reply, "Re: Regarding x"),
        ("Fwd: x", ReplyKind::Reply, "Re: Fwd: x"),
        ("FW: x", ReplyKind::Forward, "FW: x"),
        ("fwd: x", ReplyKind::Forward, "fwd: x"),
        ("Re: x", ReplyKind::Forward, "Fwd: Re: x"),
    ] {
        let original = ORIGINAL.replace("Subject: Lunch plans", &format!("Subject: {subject}"));
        assert_eq!(prepare(original.as_bytes(), kind, &me()).0.subject, want, "{subject}");
    }
}

#[test]
fn references_fall_back_to_in_reply_to() {
    let original = ORIGINAL.replace("References: <m1@example.test> <m2@example.test>\r\n", "");
    let (d, _) = prepare(original.as_bytes(), ReplyKind::Reply, &me());
    assert_eq!(d.references, ["m2@example.test", "m3@example.test"]);
    let first = "From: b@x.test\r\nSubject: s\r\nMessage-ID: <only@x.test>\r\n\r\nhi\r\n";
    let (d, _) = prepare(first.as_bytes(), ReplyKind::Reply, &me());
    assert_eq!(d.references, ["only@x.test"]);
    assert_eq!(d.body, "\n\nb@x.test wrote:\n> hi\n");
}

#[test]
fn reply_all_excludes_me_and_dedups() {
    let (d, _) = prepare(ORIGINAL.as_bytes(), ReplyKind::ReplyAll, &me());
    assert_eq!(d.to, "Bob Sender <bob@example.test>");
    assert_eq!(d.cc, "carol@x.test, Dan <dan@x.test>, erin@x.test");
    // Whoever is in To is not repeated in Cc.
    let original = ORIGINAL.replace("Cc: ", "Cc: Bob Again <BOB@example.test>, ");
    assert_eq!(prepare(original.as_bytes(), ReplyKind::ReplyAll, &me()).0.cc, d.cc);
}

#[test]
fn replying_to_my_own_message_goes_to_its_recipients() {
    let original = ORIGINAL.replace("From: Bob Sender <bob@example.test>", "From: Alice <alice@EXAMPLE.test>");
    let (d, _) = prepare(original.as_bytes(), ReplyKind::ReplyAll, &me());
    assert_eq!(d.to, "carol@x.test, Dan <dan@x.test>");
    assert_eq!(d.cc, "erin@x.test");
}

#[test]
fn reply_to_html_only_quotes_readable_text() {
    let original = "From: Shop <news@shop.test>\r\nSubject: Deals\r\nMessage-ID: <h@shop.test>\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n\
        <html><head><style>.x{color:red}</style></head><body><p>Dear&nbsp;Alice,</p>\
        <p>Fish &amp; chips<br>now   cheaper</p><script>track()</script></body></html>\r\n";
    let (d, _) = prepare(original.as_bytes(), ReplyKind::Reply, &me());
    assert_eq!(d.body, "\n\nShop wrote:\n> Dear Alice,\n> \n> Fish & chips\n> now cheaper\n");
}

#[test]
fn forward_carries_headers_text_and_attachments() {
    let up = uploads();
    let mut d = draft("bob@x.test", "carol@x.test", "");
    d.subject = "Report".into();
    d.body = "See attached.\n> not a quote\n".into();
    let original = build(&alice(), &d, &up, DATE, "orig@example.test", LIMIT).unwrap().bytes;
    let (f, files) = prepare(&original, ReplyKind::Forward, &me());
    assert_eq!(f.to, "");
    assert_eq!(f.cc, "");
    assert_eq!(f.subject, "Fwd: Report");
    assert_eq!(f.in_reply_to, None);
    assert_eq!(f.references, ["orig@example.test"]);
    assert_eq!(
        f.body,
        "\n\n---------- Forwarded message ---------\n\
         From: Alice Example <alice@example.test>\n\
         Date: Sun, 22 Nov 2026 05:55:56 +0000\n\
         Subject: Report\n\
         To: bob@x.test\n\
         Cc: carol@x.test\n\
         \n\
         See attached.\n> not a quote\n"
    );
    assert_eq!(files.len(), up.len());
    for (got, sent) in files.iter().zip(&up) {
        assert_eq!(got.bytes, sent.bytes);
    }
    assert_eq!(files[0].filename, "data.bin");
    assert_eq!(files[0].content_type, "application/octet-stream");
}

#[test]
fn garbage_never_panics() {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"no headers at all".to_vec(),
        b"Subject: =?utf-8?q?unterminated\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n".to_vec(),
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64".to_vec(),
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\
          Content-Disposition: attachment\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n--b--"
            .to_vec(),
        b"From: <>\r\nTo: ,,,;;:\r\nReply-To: group:;\r\nDate: Mon, 99 Foo 99999 99:99:99 +9999\r\n\
          References: <<<>>>\r\nIn-Reply-To: \r\nContent-Type: text/html\r\n\r\n<<<a <!-- <script"
            .to_vec(),
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n\xff\xfe".to_vec(),
    ];
    let alphabet = b"<>&;:\r\n =?\"-boundary\xff";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [1, 7, 64, 500, 4000] {
        inputs.push(
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect(),
        );
    }
    for input in &inputs {
        let _ = resume(input);
        for kind in [ReplyKind::Reply, ReplyKind::ReplyAll, ReplyKind::Forward] {
            let _ = prepare(input, kind, &me());
        }
    }
    assert_eq!(prepare(b"", ReplyKind::Reply, &me()).0.subject, "Re: ");
}
