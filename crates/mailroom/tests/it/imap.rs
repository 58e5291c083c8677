//! IMAP end to end: a server started in-process with SMTP and IMAP on
//! loopback port 0; messages go in over real SMTP (and IMAP APPEND) and
//! are read and changed with real IMAP clients — Python's imaplib, curl,
//! mbsync (isync) syncing a Maildir both ways, and a Rust client built on
//! imap-next — each checked against the store byte for byte.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mailroom_services::config::HumanDuration;
use mailroom_store::{FlagOp, MailStore, MessageRecord};
use mailroom_types::{Address, Flags, Uid};

use crate::common::{
    InProcess, awkward_messages, mailbox_messages, require_tool, run_with_timeout, send_mail, show, split_trace,
};

const TOOL_TIMEOUT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@example.test";
/// InProcess gives every user the password `pw-USER`.
const ALICE_PW: &str = "pw-alice@example.test";
const BOB: &str = "bob@example.test";

/// A server with SMTP and IMAP on port 0; failed logins wait 100 ms,
/// doubling up to 400 ms.
fn server() -> InProcess {
    InProcess::start_with(|c| {
        c.listen.imap = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        c.auth.failure_delay = HumanDuration(Duration::from_millis(100));
        c.auth.failure_delay_max = HumanDuration(Duration::from_millis(400));
    })
}

/// A server holding the three [`awkward_messages`] in alice's INBOX (UIDs 1-3).
fn server_with_mail() -> (InProcess, Vec<Vec<u8>>) {
    let server = server();
    let originals = awkward_messages();
    for m in &originals {
        send_mail(server.addr, BOB, ALICE, m);
    }
    assert_eq!(server.inbox(ALICE).len(), originals.len());
    (server, originals)
}

/// `user`'s mailbox `name` (which must exist) with blob bytes.
fn mailbox(server: &InProcess, user: &str, name: &str) -> Vec<(MessageRecord, Vec<u8>)> {
    server.rt.block_on(mailbox_messages(&server.store, user, name)).unwrap_or_else(|| panic!("no mailbox {name}"))
}

fn mailbox_exists(server: &InProcess, user: &str, name: &str) -> bool {
    server.rt.block_on(mailbox_messages(&server.store, user, name)).is_some()
}

/// Changes flags of `uid` in `user`'s mailbox `name` straight in the
/// store, as another front end would.
fn store_flags(server: &InProcess, user: &str, name: &str, uid: u32, op: FlagOp, flags: Flags) {
    server.rt.block_on(async {
        let account = server.store.account(&Address::parse(user).unwrap()).await.unwrap().expect("account");
        let mailbox = server.store.mailbox(account.id, name).await.unwrap().expect("mailbox");
        let changed =
            server.store.store_flags(mailbox.id, &[Uid::new(uid).unwrap()], op, flags, &[], None).await.unwrap();
        assert_eq!(changed.len(), 1, "flag change of uid {uid} in {name}");
    });
}

fn uids(messages: &[(MessageRecord, Vec<u8>)]) -> Vec<u32> {
    messages.iter().map(|(m, _)| m.uid.get()).collect()
}

fn flag_names(record: &MessageRecord) -> Vec<&'static str> {
    record.flags.names().collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex from python: {hex}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex from python")).collect()
}

/// Bytes with CRLF line ends turned into LF, as Maildir clients keep them.
fn lf(message: &[u8]) -> Vec<u8> {
    show(message).replace("\r\n", "\n").into_bytes()
}

/// The text between the first `[` and `]` of an IMAP response, such as
/// `COPYUID 123 1 1`.
fn code(response: &str) -> &str {
    let start = response.find('[').unwrap_or_else(|| panic!("no response code in {response:?}")) + 1;
    let end = response[start..].find(']').unwrap_or_else(|| panic!("unterminated code in {response:?}")) + start;
    &response[start..end]
}

// ---------------------------------------------------------------------------
// Python imaplib
// ---------------------------------------------------------------------------

/// One session with imaplib doing everything a simple client does. Prints
/// `key<TAB>value` lines (bytes in hex); any NO/BAD ends it with a message.
const IMAPLIB: &str = r#"
import imaplib, re, smtplib, sys
imap_port, smtp_port, user, password, idle_msg = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], bytes.fromhex(sys.argv[5])
def put(k, v):
    if isinstance(v, bytes):
        v = v.hex()
    print(f"{k}\t{v}")
def ok(r, what):
    typ, data = r
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data}")
    return data
def fetched(data):
    """(header, literal) pairs of a FETCH answer; header without the literal."""
    out = []
    for item in data:
        if isinstance(item, tuple):
            out.append((item[0].decode(), item[1]))
        elif item not in (b")",) and item is not None:
            out.append((item.decode(), None))
    return out

M = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
put("greeting", M.welcome.decode())
put("capabilities", " ".join(M.capabilities))
put("login", ok(M.login(user, password), "LOGIN")[0].decode())
for line in ok(M.list(), "LIST"):
    put("list", line.decode())
put("exists", ok(M.select("INBOX"), "SELECT")[0].decode())
put("uidvalidity", M.response("UIDVALIDITY")[1][0].decode())

# Every message by UID, peeking: the bytes exactly, and no \Seen.
for head, body in fetched(ok(M.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])"), "UID FETCH")):
    uid = re.search(r"UID (\d+)", head).group(1)
    size = re.search(r"RFC822.SIZE (\d+)", head).group(1)
    put("peek", f"{uid} {size} {body.hex()}")
for head, _ in fetched(ok(M.fetch("1:*", "(UID FLAGS)"), "FETCH FLAGS")):
    put("flags_after_peek", head)

# A body fetch without PEEK sets \Seen (RFC 9051 section 6.4.5).
text = fetched(ok(M.fetch("1", "(BODY[TEXT])"), "FETCH BODY[TEXT]"))
put("text1", text[0][1])
put("text1_head", " ".join(head for head, _ in text))
for head, _ in fetched(ok(M.fetch("1", "(FLAGS)"), "FETCH 1 FLAGS")):
    put("flags1_after_text", head)

# STORE, COPY, MOVE, EXPUNGE.
for head, _ in fetched(ok(M.store("2", "+FLAGS", "(\\Flagged $Important)"), "STORE")):
    put("store", head)
put("copy", ok(M.copy("1", "Archive"), "COPY")[0].decode())
M.untagged_responses.pop("EXPUNGE", None)
ok(M.uid("MOVE", "3", "Trash"), "UID MOVE")
put("move_copyuid", M.untagged_responses.pop("COPYUID", [b""])[-1].decode())
put("move_expunge", b" ".join(M.untagged_responses.pop("EXPUNGE", [])).decode())
ok(M.store("1", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
put("expunge", b" ".join(x for x in ok(M.expunge(), "EXPUNGE") if x).decode())

# APPEND with a flag and a date.
appended = b"From: alice@example.test\r\nSubject: appended\r\n\r\nwritten by imaplib\r\n"
r = ok(M.append("INBOX", "(\\Seen)", '"01-Feb-2026 10:11:12 +0100"', appended), "APPEND")
put("append", r[0].decode())

# SEARCH: INBOX now holds UID 2 (\Flagged) and UID 4 (the appended one).
put("search_all", ok(M.search(None, "ALL"), "SEARCH ALL")[0].decode())
put("search_flagged", ok(M.search(None, "FLAGGED"), "SEARCH FLAGGED")[0].decode())
put("search_keyword", ok(M.uid("SEARCH", "KEYWORD", "$Important"), "SEARCH KEYWORD")[0].decode())
put("search_seen", ok(M.uid("SEARCH", "SEEN"), "SEARCH SEEN")[0].decode())
put("search_subject", ok(M.uid("SEARCH", "SUBJECT", "second"), "SEARCH SUBJECT")[0].decode())
put("search_body", ok(M.uid("SEARCH", "BODY", "imaplib"), "SEARCH BODY")[0].decode())
put("search_not", ok(M.uid("SEARCH", "NOT", "SEEN"), "SEARCH NOT SEEN")[0].decode())
put("search_before", ok(M.uid("SEARCH", "BEFORE", "2-Feb-2026", "SINCE", "1-Feb-2026"), "SEARCH BEFORE")[0].decode())

# IDLE (imaplib has no helper): a delivery over SMTP wakes it up.
tag = M._new_tag().decode()
M.send(f"{tag} IDLE\r\n".encode())
put("idle_continuation", M.readline().decode().rstrip("\r\n"))
s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
s.sendmail("bob@example.test", [user], idle_msg)
s.quit()
while True:
    line = M.readline().decode().rstrip("\r\n")
    put("idle_untagged", line)
    if line.endswith(" EXISTS"):
        break
M.send(b"DONE\r\n")
while True:
    line = M.readline().decode().rstrip("\r\n")
    if line.startswith(tag + " "):
        put("idle_done", line[len(tag) + 1:])
        break
    put("idle_untagged", line)
for head, body in fetched(ok(M.uid("FETCH", "5", "(BODY.PEEK[])"), "UID FETCH 5")):
    put("idle_fetch", body)
put("logout", M.logout()[0])
"#;

/// The `key<TAB>value` lines a script printed.
fn fields(stdout: &[u8]) -> Vec<(String, String)> {
    show(stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or_else(|| panic!("bad line {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn all<'a>(fields: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn one<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    match all(fields, key)[..] {
        [v] => v,
        ref v => panic!("expected one {key}, got {v:?} in {fields:?}"),
    }
}

#[test]
fn python_imaplib_session() {
    if !require_tool("python3") {
        return;
    }
    let (server, originals) = server_with_mail();
    let inbox = server.inbox(ALICE);
    let idle_msg = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: during idle\r\n\r\nwake up\r\n";
    let hex: String = idle_msg.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", IMAPLIB])
        .arg(server.imap_addr().port().to_string())
        .arg(server.addr.port().to_string())
        .args([ALICE, ALICE_PW, &hex]);
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    assert!(out.status.success(), "imaplib failed ({:?}): {}\n{}", out.status, show(&out.stderr), show(&out.stdout));
    let f = fields(&out.stdout);

    assert!(one(&f, "greeting").starts_with("* OK"), "{f:?}");
    let caps = one(&f, "capabilities");
    assert!(caps.split(' ').any(|c| c == "IMAP4REV2") && caps.split(' ').any(|c| c == "IMAP4REV1"), "{caps}");
    assert!(one(&f, "login").contains("Logged in"), "{f:?}");
    let list = all(&f, "list");
    for name in ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"] {
        assert!(list.iter().any(|l| l.ends_with(&format!("\"/\" {name}"))), "LIST lacks {name}: {list:?}");
    }
    assert!(list.iter().any(|l| l.contains("\\Trash") && l.ends_with(" Trash")), "{list:?}");
    assert_eq!(one(&f, "exists"), "3");

    // BODY.PEEK[] of every message: the stored bytes exactly (the trace
    // headers and what was sent), RFC822.SIZE the stored size.
    let peeks = all(&f, "peek");
    assert_eq!(peeks.len(), 3, "{peeks:?}");
    for (peek, ((record, raw), original)) in peeks.iter().zip(inbox.iter().zip(&originals)) {
        let mut parts = peek.split(' ');
        let (uid, size, body) = (parts.next().unwrap(), parts.next().unwrap(), unhex(parts.next().unwrap()));
        assert_eq!(uid, record.uid.get().to_string());
        assert_eq!(size, record.size.to_string());
        assert!(body == *raw, "UID {uid}: imaplib got {:?}, stored {:?}", show(&body), show(raw));
        assert_eq!(split_trace(&body).rest, &original[..]);
    }
    for flags in all(&f, "flags_after_peek") {
        assert!(!flags.contains("\\Seen"), "BODY.PEEK[] set \\Seen: {flags}");
    }
    // BODY[TEXT] is the body after the blank line, and sets \Seen.
    let raw1 = &inbox[0].1;
    let body_start = raw1.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(show(&unhex(one(&f, "text1"))), show(&raw1[body_start..]));
    let seen = format!("{} {}", one(&f, "text1_head"), one(&f, "flags1_after_text"));
    assert!(seen.contains("\\Seen"), "a FETCH of BODY[TEXT] did not set \\Seen: {seen}");

    // STORE answered the new flags; COPY and MOVE answered COPYUID with
    // the target's UIDVALIDITY; MOVE and EXPUNGE expunged sequence 3, then 1.
    let store = one(&f, "store");
    assert!(store.contains("\\Flagged") && store.contains("$Important"), "{store}");
    let archive = mailbox(&server, ALICE, "Archive");
    let trash = mailbox(&server, ALICE, "Trash");
    let validity = |name: &str| {
        server.rt.block_on(async {
            let account = server.store.account(&Address::parse(ALICE).unwrap()).await.unwrap().unwrap();
            server.store.mailbox(account.id, name).await.unwrap().unwrap().uid_validity.get()
        })
    };
    assert_eq!(code(one(&f, "copy")), format!("COPYUID {} 1 1", validity("Archive")));
    assert_eq!(one(&f, "move_copyuid"), format!("{} 3 1", validity("Trash")));
    assert_eq!(one(&f, "move_expunge"), "3");
    assert_eq!(one(&f, "expunge"), "1");
    assert_eq!(code(one(&f, "append")), format!("APPENDUID {} 4", validity("INBOX")));

    // SEARCH over UID 2 (flagged, $Important) and UID 4 (appended, seen,
    // dated 1 Feb 2026).
    assert_eq!(one(&f, "search_all"), "1 2");
    assert_eq!(one(&f, "search_flagged"), "1");
    assert_eq!(one(&f, "search_keyword"), "2");
    assert_eq!(one(&f, "search_seen"), "4");
    assert_eq!(one(&f, "search_subject"), "2");
    assert_eq!(one(&f, "search_body"), "4");
    assert_eq!(one(&f, "search_not"), "2");
    assert_eq!(one(&f, "search_before"), "4");

    // IDLE: the continuation, then the delivery's EXISTS at once.
    assert!(one(&f, "idle_continuation").starts_with("+ "), "{f:?}");
    let untagged = all(&f, "idle_untagged");
    assert_eq!(untagged.last(), Some(&"* 3 EXISTS"), "{untagged:?}");
    assert!(one(&f, "idle_done").starts_with("OK"), "{f:?}");

    // The store agrees with everything the client saw.
    let after = server.inbox(ALICE);
    assert_eq!(uids(&after), [2, 4, 5]);
    assert_eq!(after[0].1, inbox[1].1);
    assert_eq!(flag_names(&after[0].0), ["\\Flagged"]);
    assert_eq!(after[0].0.keywords, ["$Important"]);
    assert_eq!(after[1].1, b"From: alice@example.test\r\nSubject: appended\r\n\r\nwritten by imaplib\r\n");
    assert_eq!(flag_names(&after[1].0), ["\\Seen"]);
    let date = after[1].0.internal_date.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(date, 1_769_937_072, "APPEND's date 01-Feb-2026 10:11:12 +0100");
    assert_eq!(split_trace(&after[2].1).rest, idle_msg);
    assert_eq!(unhex(one(&f, "idle_fetch")), after[2].1);
    // COPY kept the original (with \Seen from BODY[TEXT]); MOVE moved it.
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].1, inbox[0].1);
    assert_eq!(flag_names(&archive[0].0), ["\\Seen"]);
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].1, inbox[2].1);
}

// ---------------------------------------------------------------------------
// curl imap://
// ---------------------------------------------------------------------------

/// Runs curl -v with `args` for alice on `imap://HOST:PORT/path`; returns
/// stdout and the verbose log.
/// Fetches whole messages three ways and writes each literal to a file
/// named `<uid>.<how>` in the directory given: `UID FETCH 1:* (UID
/// BODY.PEEK[])` and `FETCH 1:* (RFC822)` (sent from where the bytes lie),
/// and `UID FETCH 1:* (BODY.PEEK[] BODY.PEEK[HEADER])` (read first).
const IMAPLIB_WHOLE: &str = r#"
import imaplib, os, re, sys
port, user, password, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
M = imaplib.IMAP4("127.0.0.1", port, timeout=10)
M.login(user, password)
M.select("INBOX")
def save(how, command, *args):
    typ, data = command(*args)
    if typ != "OK":
        sys.exit(f"{how}: {typ} {data}")
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0]) or re.match(rb"(\d+) ", item[0])
            open(os.path.join(out, f"{int(uid.group(1))}.{how}"), "wb").write(item[1])
save("peek", M.uid, "FETCH", "1:*", "(UID BODY.PEEK[])")
save("rfc822", M.fetch, "1:*", "(RFC822)")
save("mixed", M.uid, "FETCH", "1:*", "(BODY.PEEK[HEADER] UID BODY.PEEK[])")
M.logout()
"#;

/// Whole messages of every size (kept in packs, or in files of their own
/// past 256 KiB), many in one FETCH so that they stream, arrive byte for
/// byte over plain TCP, whichever way the server sends them.
#[test]
fn whole_messages_of_every_size_fetched_byte_for_byte() {
    if !require_tool("python3") {
        return;
    }
    let server = server();
    let sizes = [300, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 40_000, 100_000, 262_000, 300_000, 1 << 20, 5000];
    for (n, size) in sizes.iter().enumerate() {
        let mut m =
            format!("From: bob@example.test\r\nTo: alice@example.test\r\nSubject: size {n}\r\n\r\n").into_bytes();
        let mut line = 0;
        while m.len() < *size {
            m.extend_from_slice(format!("{n:02}-{line:06} the quick brown fox jumps over the lazy dog\r\n").as_bytes());
            line += 1;
        }
        send_mail(server.addr, BOB, ALICE, &m);
    }
    let stored = mailbox(&server, ALICE, "INBOX");
    assert_eq!(stored.len(), sizes.len());
    let out = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", IMAPLIB_WHOLE]).arg(server.imap_addr().port().to_string()).args([ALICE, ALICE_PW]).arg(out.path());
    let run = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    assert!(run.status.success(), "imaplib failed ({:?}): {}\n{}", run.status, show(&run.stderr), show(&run.stdout));
    for (n, (record, bytes)) in stored.iter().enumerate() {
        for how in ["peek", "rfc822", "mixed"] {
            let name = format!("{}.{how}", if how == "rfc822" { n as u32 + 1 } else { record.uid.get() });
            let got = std::fs::read(out.path().join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(got == *bytes, "{name}: {} octets fetched, {} stored", got.len(), bytes.len());
        }
    }
}

fn curl(server: &InProcess, path: &str, args: &[&str]) -> (Vec<u8>, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-v", "--max-time", "15", "-u", &format!("{ALICE}:{ALICE_PW}")])
        .args(args)
        .arg(format!("imap://127.0.0.1:{}/{path}", server.imap_addr().port()));
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    let log = show(&out.stderr);
    assert!(out.status.success(), "curl {args:?} {path} failed ({:?}): {log}", out.status);
    (out.stdout, log)
}

#[test]
fn curl_list_fetch_search_append() {
    if !require_tool("curl") {
        return;
    }
    let (server, originals) = server_with_mail();
    // UID 1 expunged (as by another client), so UIDs and sequence numbers
    // differ: UID 2 is message 1.
    server.rt.block_on(async {
        let account = server.store.account(&Address::parse(ALICE).unwrap()).await.unwrap().unwrap();
        let inbox = server.store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
        server.store.expunge(inbox.id, &[Uid::new(1).unwrap()]).await.unwrap();
    });
    let inbox = server.inbox(ALICE);
    assert_eq!(uids(&inbox), [2, 3]);

    // The mailbox list (curl logs in with AUTHENTICATE PLAIN).
    let (list, log) = curl(&server, "", &[]);
    assert!(log.contains("> A002 AUTHENTICATE PLAIN "), "{log}");
    let list = show(&list);
    for line in [
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n",
    ] {
        assert!(list.contains(line), "LIST lacks {line:?}: {list:?}");
    }

    // Each message by UID: the stored bytes exactly (what was sent after
    // the trace headers), and \Seen set by the non-PEEK fetch.
    for ((record, raw), original) in inbox.iter().zip(&originals[1..]) {
        let uid = record.uid.get();
        let (got, log) = curl(&server, &format!("INBOX;UID={uid}"), &[]);
        assert!(log.contains(&format!("> A004 UID FETCH {uid} BODY[]")), "{log}");
        assert!(got == *raw, "UID {uid}: curl got {:?}, stored {:?}", show(&got), show(raw));
        assert_eq!(split_trace(&got).rest, &original[..]);
    }
    for (record, _) in server.inbox(ALICE) {
        assert_eq!(flag_names(&record), ["\\Seen"], "UID {} after BODY[]", record.uid.get());
    }

    // SEARCH answers sequence numbers: "third" is UID 3, message 2.
    let (found, _) = curl(&server, "INBOX?SUBJECT%20third", &[]);
    assert_eq!(show(&found), "* SEARCH 2\r\n");

    // Upload: APPEND to Drafts, stored byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("draft.eml");
    let draft =
        "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: draft über curl\r\n\r\n.dot line\r\nend\r\n";
    std::fs::write(&upload, draft).unwrap();
    let (_, log) = curl(&server, "Drafts", &["-T", upload.to_str().unwrap()]);
    assert!(log.contains(&format!("> A003 APPEND Drafts (\\Seen) {{{}}}", draft.len())), "{log}");
    assert!(log.contains("< A003 OK [APPENDUID "), "{log}");
    let drafts = mailbox(&server, ALICE, "Drafts");
    assert_eq!(drafts.len(), 1);
    assert_eq!(show(&drafts[0].1), draft);
    assert_eq!(flag_names(&drafts[0].0), ["\\Seen"]);
}

// ---------------------------------------------------------------------------
// mbsync (isync)
// ---------------------------------------------------------------------------

/// Runs `mbsync -a` for alice between the server and the Maildir root
/// `maildir`, logging in with SASL mechanism `auth` (`LOGIN` is the LOGIN
/// command).
fn mbsync(server: &InProcess, home: &Path, maildir: &Path, auth: &str) -> String {
    let rc = home.join("mbsyncrc");
    // SSLType (isync 1.4) is still understood by 1.5, which calls it TLSType.
    let text = format!(
        "IMAPAccount mailroom\nHost 127.0.0.1\nPort {port}\nUser {ALICE}\nPass {ALICE_PW}\n\
         SSLType None\nAuthMechs {auth}\nTimeout 10\n\n\
         IMAPStore remote\nAccount mailroom\n\n\
         MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
         Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
        port = server.imap_addr().port(),
        root = maildir.display(),
    );
    std::fs::write(&rc, text).unwrap();
    let mut cmd = Command::new("mbsync");
    cmd.env("HOME", home).args(["-V", "-c"]).arg(&rc).arg("-a");
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    let log = format!("{}{}", show(&out.stdout), show(&out.stderr));
    assert!(out.status.success(), "mbsync failed ({:?}):\n{log}", out.status);
    log
}

/// `message` without the `X-TUID:` field mbsync adds at the end of the
/// header of every message it copies (its journal finds interrupted copies
/// by it); the rest must be untouched.
fn without_tuid(message: &[u8]) -> Vec<u8> {
    let text = show(message);
    let header_end = text.find("\n\n").or_else(|| text.find("\r\n\r\n")).expect("a header section");
    let Some(start) = text[..header_end + 1].find("X-TUID: ") else { return message.to_vec() };
    assert!(start == 0 || text.as_bytes()[start - 1] == b'\n', "X-TUID inside a line: {text:?}");
    let end = start + text[start..].find('\n').unwrap() + 1;
    [&message[..start], &message[end..]].concat()
}

/// One message file of a Maildir folder.
#[derive(Debug)]
struct MaildirFile {
    path: PathBuf,
    /// The `U=` mbsync puts in the name (0 for a file it has not synced).
    uid: u32,
    /// The flag letters after `:2,`.
    flags: String,
    bytes: Vec<u8>,
}

/// The message files in `folder`'s new/ and cur/, by UID.
fn maildir(folder: &Path) -> Vec<MaildirFile> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let uid = name
                .split(',')
                .find_map(|p| p.strip_prefix("U="))
                .map(|u| u.split(':').next().unwrap().parse().unwrap())
                .unwrap_or(0);
            let flags = name.split_once(":2,").map(|(_, f)| f.to_string()).unwrap_or_default();
            out.push(MaildirFile { bytes: std::fs::read(&path).unwrap(), path, uid, flags });
        }
    }
    out.sort_by_key(|f| f.uid);
    out
}

#[test]
fn mbsync_both_ways() {
    if !require_tool("mbsync") {
        return;
    }
    let (server, _) = server_with_mail();
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Mail");
    std::fs::create_dir(&root).unwrap();

    // First sync: every folder created locally, the three messages in
    // INBOX with the stored bytes (as LF lines) and no flags.
    let log = mbsync(&server, home.path(), &root, "LOGIN");
    let stored = server.inbox(ALICE);
    let local = maildir(&root.join("INBOX"));
    assert_eq!(local.iter().map(|f| f.uid).collect::<Vec<_>>(), [1, 2, 3], "{local:?}\n{log}");
    for (file, (_, raw)) in local.iter().zip(&stored) {
        let got = without_tuid(&file.bytes);
        assert!(got == lf(raw), "{}: {:?} vs stored {:?}", file.path.display(), show(&got), show(raw));
        assert_eq!(file.flags, "", "{}", file.path.display());
    }
    for name in ["Archive", "Drafts", "Junk", "Sent", "Trash"] {
        assert!(root.join(name).join("cur").is_dir(), "mbsync did not create {name} locally:\n{log}");
    }

    // Local changes: 1 read, 2 deleted, a new folder with one message.
    let one = &local[0].path;
    let seen_name = format!("{}S", one.file_name().unwrap().to_str().unwrap());
    std::fs::rename(one, root.join("INBOX/cur").join(seen_name)).unwrap();
    std::fs::remove_file(&local[1].path).unwrap();
    let projects = root.join("Projects");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(projects.join(sub)).unwrap();
    }
    let written = b"From: alice@example.test\nTo: bob@example.test\nSubject: made in the maildir\n\n.dot\nlocal body\n";
    std::fs::write(projects.join("new/1769900000.P1Q1.client.test"), written).unwrap();

    // Second sync: the server has them all.
    let log = mbsync(&server, home.path(), &root, "LOGIN");
    let inbox = server.inbox(ALICE);
    assert_eq!(uids(&inbox), [1, 3], "the locally deleted message must be expunged:\n{log}");
    assert_eq!(flag_names(&inbox[0].0), ["\\Seen"], "{log}");
    assert_eq!(flag_names(&inbox[1].0), Vec::<&str>::new(), "{log}");
    assert!(mailbox_exists(&server, ALICE, "Projects"), "mbsync did not create Projects:\n{log}");
    let remote = mailbox(&server, ALICE, "Projects");
    assert_eq!(remote.len(), 1, "{log}");
    assert_eq!(show(&without_tuid(&remote[0].1)), show(written).replace('\n', "\r\n"), "uploaded bytes");

    // Changes on the server: a new delivery, a flag set by another front end.
    let later = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: later\r\n\r\narrived between syncs\r\n";
    send_mail(server.addr, BOB, ALICE, later);
    store_flags(&server, ALICE, "INBOX", 3, FlagOp::Add, Flags::FLAGGED);

    // Third sync: the Maildir has them.
    let log = mbsync(&server, home.path(), &root, "LOGIN");
    let stored = server.inbox(ALICE);
    assert_eq!(uids(&stored), [1, 3, 4]);
    let local = maildir(&root.join("INBOX"));
    let summary: Vec<(u32, &str)> = local.iter().map(|f| (f.uid, f.flags.as_str())).collect();
    assert_eq!(summary, [(1, "S"), (3, "F"), (4, "")], "{log}");
    for (file, (_, raw)) in local.iter().zip(&stored) {
        let got = without_tuid(&file.bytes);
        assert!(got == lf(raw), "{}: {:?} vs stored {:?}", file.path.display(), show(&got), show(raw));
    }
    assert_eq!(split_trace(&stored[2].1).rest, later);
    let local_projects = maildir(&projects);
    assert_eq!(local_projects.len(), 1, "{local_projects:?}");
    assert_eq!(without_tuid(&local_projects[0].bytes), written);

    // A fourth sync (AUTHENTICATE PLAIN this time) with nothing changed
    // changes nothing on either side.
    let log = mbsync(&server, home.path(), &root, "PLAIN");
    assert_eq!(server.inbox(ALICE), stored, "{log}");
    let again = maildir(&root.join("INBOX"));
    assert_eq!(
        again.iter().map(|f| (&f.path, &f.bytes)).collect::<Vec<_>>(),
        local.iter().map(|f| (&f.path, &f.bytes)).collect::<Vec<_>>(),
        "{log}"
    );
    assert_eq!(mailbox(&server, ALICE, "Projects").len(), 1, "{log}");
}

// ---------------------------------------------------------------------------
// A Rust client: imap-next (sans-IO, on the imap-codec the server uses)
// over a tokio TcpStream
// ---------------------------------------------------------------------------

pub(crate) mod rust_client {
    use std::time::Duration;

    use imap_next::client::{Client, Event, Options};
    use imap_next::imap_types::command::{Command, CommandBody};
    use imap_next::imap_types::core::Tag;
    use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName};
    use imap_next::imap_types::response::{Data, Status, StatusKind};
    use imap_next::{Interrupt, Io, State};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const WAIT: Duration = Duration::from_secs(10);

    /// imap-next's client state machine driven over a socket, every read
    /// bounded.
    pub struct Session {
        stream: TcpStream,
        client: Client,
        tags: u32,
    }

    impl Session {
        /// Connects and waits for the greeting.
        pub async fn connect(addr: std::net::SocketAddr) -> Session {
            let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect").expect("connect");
            let mut s = Session { stream, client: Client::new(Options::default()), tags: 0 };
            match s.next().await {
                Event::GreetingReceived { greeting } => {
                    assert_eq!(greeting.kind, imap_next::imap_types::response::GreetingKind::Ok, "{greeting:?}")
                }
                other => panic!("expected a greeting, got {other:?}"),
            }
            s
        }

        /// The next event, doing the I/O the client asks for.
        pub async fn next(&mut self) -> Event {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match self.client.next() {
                    Ok(event) => return event,
                    Err(Interrupt::Io(Io::Output(bytes))) => self.stream.write_all(&bytes).await.expect("write"),
                    Err(Interrupt::Io(Io::NeedMoreInput)) => {
                        let n = tokio::time::timeout(WAIT, self.stream.read(&mut buf))
                            .await
                            .expect("the server answered within 10 s")
                            .expect("read");
                        assert!(n > 0, "the server closed the connection");
                        self.client.enqueue_input(&buf[..n]);
                    }
                    Err(Interrupt::Error(e)) => panic!("imap-next could not read the server's answer: {e:?}"),
                }
            }
        }

        fn tag(&mut self) -> Tag<'static> {
            self.tags += 1;
            Tag::try_from(format!("R{}", self.tags)).unwrap()
        }

        /// Sends `body`; returns the untagged data received until its
        /// tagged status, which must be OK.
        pub async fn run(&mut self, body: CommandBody<'static>) -> Vec<Data<'static>> {
            let tag = self.tag();
            self.client.enqueue_command(Command::new(tag.clone(), body).unwrap());
            let mut data = Vec::new();
            loop {
                match self.next().await {
                    Event::DataReceived { data: d } => data.push(d),
                    Event::StatusReceived { status: Status::Tagged(t) } if t.tag == tag => {
                        assert_eq!(t.body.kind, StatusKind::Ok, "{t:?}");
                        return data;
                    }
                    Event::CommandSent { .. } | Event::StatusReceived { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }

        /// Enters IDLE; returns once the server accepted it.
        pub async fn idle(&mut self) {
            let tag = self.tag();
            self.client.enqueue_command(Command::new(tag, CommandBody::Idle).unwrap());
            loop {
                match self.next().await {
                    Event::IdleCommandSent { .. } => {}
                    Event::IdleAccepted { .. } => return,
                    other => panic!("unexpected {other:?} before IDLE was accepted"),
                }
            }
        }

        /// Waits in IDLE for untagged data; returns the first.
        pub async fn idle_update(&mut self) -> Data<'static> {
            loop {
                match self.next().await {
                    Event::DataReceived { data } => return data,
                    Event::StatusReceived { status: Status::Untagged(_) } => {}
                    other => panic!("unexpected {other:?} in IDLE"),
                }
            }
        }

        /// Sends DONE and waits for IDLE's tagged OK.
        pub async fn idle_done(&mut self) -> Vec<Data<'static>> {
            self.client.set_idle_done().expect("in IDLE");
            let mut data = Vec::new();
            loop {
                match self.next().await {
                    Event::IdleDoneSent { .. } => {}
                    Event::DataReceived { data: d } => data.push(d),
                    Event::StatusReceived { status: Status::Tagged(t) } => {
                        assert_eq!(t.body.kind, StatusKind::Ok, "{t:?}");
                        return data;
                    }
                    other => panic!("unexpected {other:?} after DONE"),
                }
            }
        }
    }

    /// `UID FETCH uid (UID BODY.PEEK[])`: the body bytes.
    pub fn fetch_body(uid: u32) -> CommandBody<'static> {
        CommandBody::fetch(
            uid,
            vec![MessageDataItemName::Uid, MessageDataItemName::BodyExt { section: None, partial: None, peek: true }],
            true,
        )
        .unwrap()
    }

    /// `UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)`.
    pub fn fetch_metadata() -> CommandBody<'static> {
        CommandBody::fetch(
            "1:*",
            vec![
                MessageDataItemName::Uid,
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
                MessageDataItemName::BodyStructure,
            ],
            true,
        )
        .unwrap()
    }

    /// The ENVELOPE subjects in `data`, in order.
    pub fn subjects(data: &[Data<'static>]) -> Vec<String> {
        data.iter()
            .filter_map(|d| match d {
                Data::Fetch { items, .. } => items.as_ref().iter().find_map(|i| match i {
                    MessageDataItem::Envelope(e) => {
                        Some(e.subject.0.as_ref().map(|s| String::from_utf8_lossy(s.as_ref()).into_owned()))
                    }
                    _ => None,
                }),
                _ => None,
            })
            .map(|s| s.unwrap_or_default())
            .collect()
    }

    /// The BODY[] bytes of the one FETCH response in `data`.
    pub fn body_of(data: &[Data<'static>]) -> Vec<u8> {
        let mut bodies = data.iter().filter_map(|d| match d {
            Data::Fetch { items, .. } => items.as_ref().iter().find_map(|i| match i {
                MessageDataItem::BodyExt { section: None, data, .. } => {
                    Some(data.0.as_ref().map(|s| s.as_ref().to_vec()).unwrap_or_default())
                }
                _ => None,
            }),
            _ => None,
        });
        let body = bodies.next().unwrap_or_else(|| panic!("no BODY[] in {data:?}"));
        assert!(bodies.next().is_none(), "more than one BODY[] in {data:?}");
        body
    }
}

#[test]
fn rust_imap_next_client() {
    let (server, originals) = server_with_mail();
    let inbox = server.inbox(ALICE);
    let addr = server.imap_addr();
    let smtp = server.addr;
    let late = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: wake up\r\n\r\nnew mail\r\n";
    let (bodies, exists, after_done) = server.rt.block_on(async {
        use imap_next::imap_types::command::CommandBody;
        use imap_next::imap_types::response::Data;

        let mut s = rust_client::Session::connect(addr).await;
        s.run(CommandBody::login(ALICE, ALICE_PW).unwrap()).await;
        let selected = s.run(CommandBody::select("INBOX").unwrap()).await;
        assert!(selected.iter().any(|d| matches!(d, Data::Exists(3))), "{selected:?}");
        // The metadata a client lists a mailbox with parses (imap-next
        // refuses malformed responses), one FETCH per message.
        let listing = s.run(rust_client::fetch_metadata()).await;
        let fetches = listing.iter().filter(|d| matches!(d, Data::Fetch { items, .. } if items.as_ref().len() == 6));
        assert_eq!(fetches.count(), 3, "{listing:?}");
        assert_eq!(rust_client::subjects(&listing), ["first", "second", "third"]);
        let mut bodies = Vec::new();
        for uid in 1..=3 {
            bodies.push(rust_client::body_of(&s.run(rust_client::fetch_body(uid)).await));
        }
        // IDLE, then a delivery over SMTP from another thread: EXISTS at once.
        s.idle().await;
        let deliver = std::thread::spawn(move || send_mail(smtp, BOB, ALICE, late));
        let exists = tokio::time::timeout(Duration::from_secs(10), s.idle_update()).await.expect("EXISTS during IDLE");
        deliver.join().expect("delivery");
        let after_done = s.idle_done().await;
        bodies.push(rust_client::body_of(&s.run(rust_client::fetch_body(4)).await));
        s.run(CommandBody::Logout).await;
        (bodies, exists, after_done)
    });
    for (i, ((_, raw), original)) in inbox.iter().zip(&originals).enumerate() {
        assert!(bodies[i] == *raw, "UID {}: got {:?}, stored {:?}", i + 1, show(&bodies[i]), show(raw));
        assert_eq!(split_trace(&bodies[i]).rest, &original[..]);
    }
    assert!(
        matches!(exists, imap_next::imap_types::response::Data::Exists(4)),
        "expected * 4 EXISTS in IDLE, got {exists:?} (then {after_done:?})"
    );
    let stored = server.inbox(ALICE);
    assert_eq!(uids(&stored), [1, 2, 3, 4]);
    assert_eq!(bodies[3], stored[3].1);
    assert_eq!(split_trace(&bodies[3]).rest, late);
    // PEEK left every message unseen.
    assert!(
        stored.iter().all(|(m, _)| m.flags.is_empty()),
        "{:?}",
        stored.iter().map(|(m, _)| m.flags).collect::<Vec<_>>()
    );
}
