//! Every command through `parse`, mostly with the examples of RFC 9051
//! and the extension RFCs.

use super::*;
use crate::message::SectionText;

fn ok(line: &str) -> Parsed {
    let msg = format!("{line}\r\n");
    match parse(msg.as_bytes(), false) {
        Ok((_, parsed)) => parsed,
        Err((_, refusal)) => panic!("{line}: {refusal:?}"),
    }
}

fn cmd(line: &str) -> Command {
    match ok(line) {
        Parsed::Command(c) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn refused(line: &str) -> Refusal {
    let msg = format!("{line}\r\n");
    match parse(msg.as_bytes(), false) {
        Ok(parsed) => panic!("{line}: parsed as {parsed:?}"),
        Err((_, refusal)) => refusal,
    }
}

fn set(s: &str) -> SequenceSet {
    SequenceSet::parse(s).unwrap()
}

#[test]
fn any_state_and_login_commands() {
    assert!(matches!(ok("abcd CAPABILITY"), Parsed::Capability));
    assert!(matches!(ok("a002 NOOP"), Parsed::Command(Command::Noop)));
    assert!(matches!(ok("A023 LOGOUT"), Parsed::Logout));
    assert!(matches!(ok("a001 STARTTLS"), Parsed::StartTls));
    let Parsed::Login { user, password } = ok("a001 LOGIN SMITH SESAME") else { panic!() };
    assert_eq!((user.as_str(), password.expose().as_str()), ("SMITH", "SESAME"));
    let Parsed::Authenticate { mechanism, initial } = ok("A01 AUTHENTICATE plain dGVzdAB0ZXN0AHRlc3Q=") else {
        panic!()
    };
    assert_eq!((mechanism.as_str(), initial.unwrap().expose().as_slice()), ("PLAIN", &b"test\0test\0test"[..]));
    let Parsed::Authenticate { initial, .. } = ok("A01 AUTHENTICATE PLAIN =") else { panic!() };
    assert_eq!(initial.unwrap().expose().as_slice(), b"");
    let Parsed::Enable(names) = ok("t2 ENABLE CONDSTORE qresync UTF8=ACCEPT IMAP4rev2 X-FOO") else { panic!() };
    assert_eq!(names, ["CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2", "X-FOO"]);
    assert!(matches!(ok("a IDLE"), Parsed::Idle));
    assert!(matches!(ok("a NAMESPACE"), Parsed::Namespace));
    assert_eq!(cmd("a ID NIL"), Command::Id { params: None });
}

#[test]
fn mailbox_commands() {
    assert_eq!(
        cmd("A142 SELECT INBOX"),
        Command::Select { mailbox: "INBOX".into(), read_only: false, condstore: false, qresync: None }
    );
    assert_eq!(
        cmd("A932 EXAMINE blurdybloop (CONDSTORE)"),
        Command::Select { mailbox: "blurdybloop".into(), read_only: true, condstore: true, qresync: None }
    );
    let Command::Select { qresync: Some(q), .. } =
        cmd("A02 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:9 5:13)))")
    else {
        panic!()
    };
    assert_eq!((q.uid_validity, q.modseq), (67890007, 90060115194045000));
    assert_eq!(q.known_uids, Some(set("41:211,214:541")));
    assert_eq!(q.seq_match, Some((set("1:9"), set("5:13"))));
    assert_eq!(cmd("A003 CREATE owatagusiam/"), Command::Create { mailbox: "owatagusiam/".into() });
    assert_eq!(cmd("A004 DELETE \"blurdybloop\""), Command::Delete { mailbox: "blurdybloop".into() });
    assert_eq!(cmd("A005 CREATE &ZeVnLIqe-"), Command::Create { mailbox: "日本語".into() });
    assert_eq!(
        cmd("A683 RENAME blurdybloop sarasoop"),
        Command::Rename { from: "blurdybloop".into(), to: "sarasoop".into() }
    );
    assert_eq!(
        cmd("A002 SUBSCRIBE #news.comp.mail.mime"),
        Command::Subscribe { mailbox: "#news.comp.mail.mime".into() }
    );
    assert_eq!(cmd("A002 UNSUBSCRIBE inbox"), Command::Unsubscribe { mailbox: "INBOX".into() });
    assert_eq!(
        cmd("A002 LSUB \"#news.\" \"comp.mail.*\""),
        Command::Lsub { reference: "#news.".into(), pattern: "comp.mail.*".into() }
    );
    assert_eq!(
        cmd("A042 STATUS blurdybloop (UIDNEXT MESSAGES SIZE HIGHESTMODSEQ DELETED UNSEEN UIDVALIDITY)"),
        Command::Status {
            mailbox: "blurdybloop".into(),
            items: vec![
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::Size,
                StatusItem::HighestModSeq,
                StatusItem::Deleted,
                StatusItem::Unseen,
                StatusItem::UidValidity
            ]
        }
    );
    let Command::List(list) = cmd("A101 LIST \"\" \"\"") else { panic!() };
    assert_eq!(list.patterns, [""]);
}

#[test]
fn append() {
    let msg = "A003 APPEND saved-messages (\\Seen $Forwarded) \"05-Jul-1994 02:44:25 -0700\" {5+}\r\nHello\r\n";
    let Ok((_, Parsed::Command(Command::Append { mailbox, flags, date, message, binary }))) =
        parse(msg.as_bytes(), false)
    else {
        panic!()
    };
    assert_eq!(mailbox, "saved-messages");
    assert_eq!(flags, [Flag::Seen, Flag::Keyword("$Forwarded".into())]);
    assert_eq!(date, Some(InternalDate { unix_seconds: 773_401_465, offset_minutes: -420 }));
    assert_eq!((message.as_slice(), binary), (&b"Hello"[..], false));
    let msg = "A APPEND x ~{3}\r\na\0b\r\n";
    let Ok((_, Parsed::Command(Command::Append { message, binary, .. }))) = parse(msg.as_bytes(), false) else {
        panic!()
    };
    assert_eq!((message.as_slice(), binary), (&b"a\0b"[..], true));
}

#[test]
fn selected_state_commands() {
    assert_eq!(cmd("FXXZ CHECK"), Command::Check);
    assert_eq!(cmd("A341 CLOSE"), Command::Close);
    assert_eq!(cmd("A342 UNSELECT"), Command::Unselect);
    assert_eq!(cmd("A202 EXPUNGE"), Command::Expunge { uids: None });
    assert_eq!(cmd("A003 UID EXPUNGE 3000:3002"), Command::Expunge { uids: Some(set("3000:3002")) });
    assert_eq!(cmd("A003 COPY 2:4 MEETING"), Command::Copy { uid: false, set: set("2:4"), mailbox: "MEETING".into() });
    assert_eq!(cmd("a UID MOVE 42:69 foo"), Command::Move { uid: true, set: set("42:69"), mailbox: "foo".into() });
    assert_eq!(
        cmd("A003 STORE 2:4 +FLAGS.SILENT (\\Deleted)"),
        Command::Store {
            uid: false,
            set: set("2:4"),
            flags: StoreFlags { mode: StoreMode::Add, silent: true, flags: vec![Flag::Deleted], unchanged_since: None }
        }
    );
    assert_eq!(
        cmd("d105 UID STORE 7,5,9 (UNCHANGEDSINCE 320162338) -FLAGS ($MDNSent)"),
        Command::Store {
            uid: true,
            set: set("7,5,9"),
            flags: StoreFlags {
                mode: StoreMode::Remove,
                silent: false,
                flags: vec![Flag::Keyword("$MDNSent".into())],
                unchanged_since: Some(320162338)
            }
        }
    );
    let Command::Store { flags, .. } = cmd("a STORE 1 FLAGS ()") else { panic!() };
    assert_eq!((flags.mode, flags.flags.len()), (StoreMode::Replace, 0));
}

#[test]
fn fetch_items_and_macros() {
    let Command::Fetch { uid, set: s, items, .. } = cmd("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    else {
        panic!()
    };
    assert!(!uid);
    assert_eq!(s, set("2:4"));
    assert_eq!(
        items,
        [
            FetchItem::Flags,
            FetchItem::BodySection {
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]))
                },
                partial: None,
                peek: false
            }
        ]
    );
    let Command::Fetch { items, .. } = cmd("a FETCH 1 ALL") else { panic!() };
    assert_eq!(items, [FetchItem::Flags, FetchItem::InternalDate, FetchItem::Rfc822Size, FetchItem::Envelope]);
    let Command::Fetch { items, .. } = cmd("a FETCH 1 FAST") else { panic!() };
    assert_eq!(items.len(), 3);
    let Command::Fetch { items, .. } = cmd("a FETCH 1 full") else { panic!() };
    assert_eq!(items.last(), Some(&FetchItem::Body));
    let Command::Fetch { uid, items, .. } =
        cmd("a UID FETCH 1:* (UID BODY.PEEK[1.2.MIME]<0.2048> BODY[2.TEXT] BODY[] BINARY.PEEK[1]<5.10> \
         BINARY.SIZE[2] RFC822 RFC822.HEADER RFC822.TEXT BODYSTRUCTURE MODSEQ BODY[3.HEADER.FIELDS.NOT (X-A)])")
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(
        items,
        [
            FetchItem::Uid,
            FetchItem::BodySection {
                section: Section { part: vec![1, 2], text: Some(SectionText::Mime) },
                partial: Some(Partial { origin: 0, count: 2048 }),
                peek: true
            },
            FetchItem::BodySection {
                section: Section { part: vec![2], text: Some(SectionText::Text) },
                partial: None,
                peek: false
            },
            FetchItem::BodySection { section: Section::default(), partial: None, peek: false },
            FetchItem::Binary { part: vec![1], partial: Some(Partial { origin: 5, count: 10 }), peek: true },
            FetchItem::BinarySize { part: vec![2] },
            FetchItem::Rfc822,
            FetchItem::Rfc822Header,
            FetchItem::Rfc822Text,
            FetchItem::BodyStructure,
            FetchItem::ModSeq,
            FetchItem::BodySection {
                section: Section { part: vec![3], text: Some(SectionText::HeaderFieldsNot(vec!["X-A".into()])) },
                partial: None,
                peek: false
            },
        ]
    );
    let Command::Fetch { changed_since, vanished, .. } =
        cmd("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    else {
        panic!()
    };
    assert_eq!((changed_since, vanished), (Some(12345), true));
    assert!(refused("a FETCH 1:* (FLAGS) (VANISHED)").text.contains("VANISHED"));
}

#[test]
fn search_keys() {
    let Command::Search(s) = cmd("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"") else { panic!() };
    assert!(!s.uid && s.ret.is_none());
    assert_eq!(
        s.key,
        SearchKey::And(vec![
            SearchKey::Flag(Flag::Flagged),
            SearchKey::Since(Date { year: 1994, month: 2, day: 1 }),
            SearchKey::Not(Box::new(SearchKey::From("Smith".into()))),
        ])
    );
    let Command::Search(s) =
        cmd("A283 UID SEARCH RETURN (MIN MAX) CHARSET UTF-8 OR TEXT foo (1:5 UID 7:*) UNKEYWORD $Junk")
    else {
        panic!()
    };
    assert!(s.uid);
    assert_eq!(s.ret, Some(SearchReturn { min: true, max: true, ..Default::default() }));
    assert_eq!(
        s.key,
        SearchKey::And(vec![
            SearchKey::Or(
                Box::new(SearchKey::Text("foo".into())),
                Box::new(SearchKey::And(vec![SearchKey::SequenceSet(set("1:5")), SearchKey::Uid(set("7:*"))]))
            ),
            SearchKey::NotFlag(Flag::Keyword("$Junk".into())),
        ])
    );
    let Command::Search(s) = cmd("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 LARGER 10 YOUNGER 3600") else {
        panic!()
    };
    assert!(s.key.uses_modseq());
    let Command::Search(s) = cmd("a SEARCH HEADER X-Spam \"\" SENTON 5-Jan-2024 BODY {3+}\r\nb c") else { panic!() };
    assert_eq!(
        s.key,
        SearchKey::And(vec![
            SearchKey::Header("X-Spam".into(), String::new()),
            SearchKey::SentOn(Date { year: 2024, month: 1, day: 5 }),
            SearchKey::Body("b c".into()),
        ])
    );
    let r = refused("a SEARCH CHARSET KOI8-R ALL");
    assert_eq!((r.no, r.code), (true, Some(Code::BadCharset)));
    assert!(refused("a SEARCH RETURN (SAVE) ALL").text.contains("SAVE"));
}

#[test]
fn refusals_name_the_problem() {
    assert_eq!(refused("a FROB").text, "Unknown command FROB");
    assert_eq!(refused("a UID FROB 1").text, "Unknown command UID FROB");
    assert_eq!(refused("a FETCH").text, "Invalid arguments to FETCH");
    assert_eq!(refused("a GETQUOTAROOT INBOX").text, "Unknown command GETQUOTAROOT");
    assert_eq!(refused("a SELECT &Jjo").text, "mailbox name is not valid modified UTF-7");
    assert_eq!(refused("a STATUS x (DELETED-STORAGE)").text, "Unsupported STATUS item DeletedStorage");
}

#[test]
fn utf8_mode_takes_names_as_they_are() {
    let Ok((_, Parsed::Command(Command::Create { mailbox }))) = parse("a CREATE \"Entwürfe &\"\r\n".as_bytes(), true)
    else {
        panic!()
    };
    assert_eq!(mailbox, "Entwürfe &");
}
