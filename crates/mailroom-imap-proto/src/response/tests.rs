//! Every encoder against exact bytes.

use super::*;
use crate::message::{Section, SectionText};

fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn status_responses_with_codes() {
    type Case<'a> = (Option<&'a str>, Status, Option<Code>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (Some("a1"), Status::Ok, None, "done", "a1 OK done\r\n"),
        (
            None,
            Status::Ok,
            Some(Code::UidValidity(3857529045)),
            "UIDs valid",
            "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        ),
        (
            None,
            Status::Ok,
            Some(Code::UidNext(4392)),
            "Predicted next UID",
            "* OK [UIDNEXT 4392] Predicted next UID\r\n",
        ),
        (
            None,
            Status::Ok,
            Some(Code::HighestModSeq(715194045007)),
            "Highest",
            "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
        ),
        (None, Status::Ok, Some(Code::NoModSeq), "Sorry", "* OK [NOMODSEQ] Sorry\r\n"),
        (
            None,
            Status::Ok,
            Some(Code::PermanentFlags { flags: vec![Flag::Deleted, Flag::Seen], keywords: true }),
            "Limited",
            "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        ),
        (
            Some("A003"),
            Status::Ok,
            Some(Code::AppendUid { uid_validity: 38505, uid: 3955 }),
            "APPEND completed",
            "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        ),
        (
            Some("A004"),
            Status::Ok,
            Some(Code::CopyUid { uid_validity: 38505, source: vec![304, 319, 320], dest: vec![3956, 3957, 3958] }),
            "Done",
            "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        ),
        (
            Some("d105"),
            Status::Ok,
            Some(Code::Modified(vec![7, 9])),
            "Conditional STORE failed",
            "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
        ),
        (Some("A005"), Status::No, Some(Code::TryCreate), "No such mailbox", "A005 NO [TRYCREATE] No such mailbox\r\n"),
        (Some("t"), Status::No, Some(Code::NonExistent), "x", "t NO [NONEXISTENT] x\r\n"),
        (Some("t"), Status::No, Some(Code::AlreadyExists), "x", "t NO [ALREADYEXISTS] x\r\n"),
        (None, Status::Ok, Some(Code::Closed), "x", "* OK [CLOSED] x\r\n"),
        (Some("t"), Status::No, Some(Code::TooBig), "x", "t NO [TOOBIG] x\r\n"),
        (Some("t"), Status::No, Some(Code::Cannot), "x", "t NO [CANNOT] x\r\n"),
        (Some("t"), Status::No, Some(Code::InUse), "x", "t NO [INUSE] x\r\n"),
        (Some("t"), Status::No, Some(Code::ServerBug), "x", "t NO [SERVERBUG] x\r\n"),
        (
            None,
            Status::Ok,
            Some(Code::Alert),
            "System shutdown in 10 minutes",
            "* OK [ALERT] System shutdown in 10 minutes\r\n",
        ),
        (Some("t"), Status::No, Some(Code::BadCharset), "x", "t NO [BADCHARSET (UTF-8 US-ASCII)] x\r\n"),
        (None, Status::Bye, None, "line\r\nbreak", "* BYE line  break\r\n"),
        (Some("t"), Status::Bad, None, "", "t BAD done\r\n"),
    ];
    for (tag, st, code, txt, expected) in cases {
        assert_eq!(text(|o| status(o, tag, st, code.as_ref(), txt)), expected);
    }
}

#[test]
fn untagged_data() {
    assert_eq!(text(|o| exists(o, 23)), "* 23 EXISTS\r\n");
    assert_eq!(text(|o| recent(o, 0)), "* 0 RECENT\r\n");
    assert_eq!(text(|o| expunge(o, 8)), "* 8 EXPUNGE\r\n");
    assert_eq!(text(|o| vanished(o, true, &[41, 43, 44, 45, 300])), "* VANISHED (EARLIER) 41,43:45,300\r\n");
    assert_eq!(text(|o| vanished(o, false, &[405, 407, 408])), "* VANISHED 405,407:408\r\n");
    assert_eq!(text(|o| vanished(o, false, &[])), "");
    assert_eq!(
        text(|o| flags(
            o,
            &[Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft, Flag::Keyword("$Junk".into())]
        )),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n"
    );
    assert_eq!(
        text(|o| status_data(o, "blurdybloop", &[(StatusItem::Messages, 231), (StatusItem::UidNext, 44292)], false)),
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    );
    assert_eq!(
        text(|o| status_data(o, "Entwürfe", &[(StatusItem::Size, 0)], false)),
        "* STATUS Entw&APw-rfe (SIZE 0)\r\n"
    );
    assert_eq!(text(|o| search(o, &[2, 84, 882], None)), "* SEARCH 2 84 882\r\n");
    assert_eq!(text(|o| search(o, &[2, 10], Some(917162500))), "* SEARCH 2 10 (MODSEQ 917162500)\r\n");
    assert_eq!(text(|o| search(o, &[], Some(5))), "* SEARCH\r\n");
    assert_eq!(text(|o| enabled(o, &["CONDSTORE", "QRESYNC"])), "* ENABLED CONDSTORE QRESYNC\r\n");
    assert_eq!(text(|o| enabled(o, &[])), "* ENABLED\r\n");
    assert_eq!(
        text(|o| id(o, Some(&[("name", Some("Mailroom")), ("version", None)]))),
        "* ID (\"name\" \"Mailroom\" \"version\" NIL)\r\n"
    );
    assert_eq!(text(|o| id(o, None)), "* ID NIL\r\n");
    assert_eq!(text(|o| namespace(o, '/')), "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    assert_eq!(text(|o| capability(o, &["IMAP4rev2", "IDLE"])), "* CAPABILITY IMAP4rev2 IDLE\r\n");
}

#[test]
fn esearch_responses() {
    // RFC 4731 §3.1 and RFC 9051 §7.3.4 examples.
    let r = Esearch { min: Some(2), count: Some(3), ..Default::default() };
    assert_eq!(text(|o| esearch(o, Some("A282"), false, &r)), "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n");
    let r = Esearch { all: Some(vec![2, 10, 11]), ..Default::default() };
    assert_eq!(text(|o| esearch(o, Some("A283"), true, &r)), "* ESEARCH (TAG \"A283\") UID ALL 2,10:11\r\n");
    let r = Esearch { count: Some(0), all: Some(vec![]), ..Default::default() };
    assert_eq!(text(|o| esearch(o, Some("A284"), false, &r)), "* ESEARCH (TAG \"A284\") COUNT 0\r\n");
    let r = Esearch { min: Some(1), max: Some(9), modseq: Some(7), ..Default::default() };
    assert_eq!(text(|o| esearch(o, None, true, &r)), "* ESEARCH UID MIN 1 MAX 9 MODSEQ 7\r\n");
}

#[test]
fn list_responses() {
    let item = ListItem {
        attributes: &["\\HasNoChildren", "\\Sent"],
        delimiter: Some('/'),
        name: "Sent",
        ..Default::default()
    };
    assert_eq!(text(|o| list(o, &item, false)), "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n");
    let item = ListItem { attributes: &[], delimiter: None, name: "", ..Default::default() };
    assert_eq!(text(|o| list(o, &item, false)), "* LIST () NIL \"\"\r\n");
    let item = ListItem {
        attributes: &["\\NonExistent"],
        delimiter: Some('/'),
        name: "Foo",
        child_info_subscribed: true,
        old_name: None,
    };
    assert_eq!(text(|o| list(o, &item, true)), "* LIST (\\NonExistent) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
    let item = ListItem {
        attributes: &[],
        delimiter: Some('/'),
        name: "Entwürfe",
        child_info_subscribed: false,
        old_name: Some("Drafts"),
    };
    assert_eq!(text(|o| list(o, &item, false)), "* LIST () \"/\" Entw&APw-rfe (\"OLDNAME\" (Drafts))\r\n");
    assert_eq!(text(|o| list(o, &item, true)), "* LIST () \"/\" \"Entwürfe\" (\"OLDNAME\" (Drafts))\r\n");
    let item = ListItem { attributes: &["\\Subscribed"], delimiter: Some('/'), name: "a b", ..Default::default() };
    assert_eq!(text(|o| lsub(o, &item, false)), "* LSUB (\\Subscribed) \"/\" \"a b\"\r\n");
}

#[test]
fn fetch_responses() {
    let mut out = Vec::new();
    let mut f = FetchResponse::start(&mut out, 12);
    f.uid(4827)
        .flags(&[Flag::Seen, Flag::Keyword("$Forwarded".into())], true)
        .modseq(624140003)
        .internal_date(crate::command::InternalDate { unix_seconds: 837_596_665, offset_minutes: -420 })
        .rfc822_size(44827)
        .item("ENVELOPE", b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    f.finish();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 12 FETCH (UID 4827 FLAGS (\\Seen $Forwarded \\Recent) MODSEQ (624140003) \
         INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    );
    let mut out = Vec::new();
    let mut f = FetchResponse::start(&mut out, 1);
    let fields = Section { part: vec![], text: Some(SectionText::HeaderFields(vec!["From".into(), "X y".into()])) };
    f.body_section(&fields, None, Some(b"From: a\r\n\r\n"))
        .body_section(&Section { part: vec![1, 2], text: Some(SectionText::Mime) }, Some(5), None)
        .body_section_literal(&Section::default(), Some(0), 3)
        .data(b"abc")
        .body_section(
            &Section { part: vec![3], text: Some(SectionText::HeaderFieldsNot(vec!["A".into()])) },
            None,
            Some(b""),
        )
        .binary(&[1], None, Some(b"a\0"))
        .binary(&[], Some(2), Some(b"ok"))
        .binary_size(&[2], 77)
        .rfc822("RFC822.HEADER", b"X: y\r\n\r\n");
    f.finish();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 1 FETCH (BODY[HEADER.FIELDS (From \"X y\")] {11}\r\nFrom: a\r\n\r\n BODY[1.2.MIME]<5> NIL BODY[]<0> {3}\r\nabc \
         BODY[3.HEADER.FIELDS.NOT (A)] {0}\r\n BINARY[1] ~{2}\r\na\0 BINARY[]<2> {2}\r\nok BINARY.SIZE[2] 77 \
         RFC822.HEADER {8}\r\nX: y\r\n\r\n)\r\n"
    );
}

#[test]
fn dates_before_1970_and_east_of_utc() {
    use crate::command::InternalDate;
    assert_eq!(
        fetch::format_date_time(InternalDate { unix_seconds: -1, offset_minutes: 0 }),
        "\"31-Dec-1969 23:59:59 +0000\""
    );
    assert_eq!(
        fetch::format_date_time(InternalDate { unix_seconds: 0, offset_minutes: 330 }),
        "\"01-Jan-1970 05:30:00 +0530\""
    );
}
