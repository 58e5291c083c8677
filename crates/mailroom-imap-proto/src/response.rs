//! Response encoders (RFC 9051 §7): status responses with their codes,
//! and the untagged data the driver writes. Each takes the output buffer
//! ([`crate::Server::output_mut`]) and writes one complete response with
//! its CRLF; strings go through [`crate::wire`] so nothing is mis-quoted,
//! and mailbox names through [`crate::mailbox`] in the client's encoding.
//!
//! ENVELOPE and BODYSTRUCTURE are encoded by the message analysis
//! ([`crate::message`]); [`FetchResponse::item`] takes them pre-encoded.

mod fetch;

pub use fetch::FetchResponse;

use crate::command::{Flag, StatusItem};
use crate::mailbox;
use crate::sequence::write_compressed;
use crate::wire;

/// The status of a status response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO: the command failed.
    No,
    /// BAD: the command was not understood.
    Bad,
    /// BYE: the server is closing the connection.
    Bye,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
        }
    }
}

/// A response code (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162), sent in
/// brackets so that clients act on causes without parsing text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// ALERT: show the text to the user.
    Alert,
    /// ALREADYEXISTS: CREATE or RENAME onto an existing name.
    AlreadyExists,
    /// APPENDUID (RFC 4315): the new message's UIDVALIDITY and UID.
    AppendUid {
        /// The destination's UIDVALIDITY.
        uid_validity: u32,
        /// The new message's UID.
        uid: u32,
    },
    /// AUTHENTICATIONFAILED: wrong credentials (or unknown user).
    AuthenticationFailed,
    /// AUTHORIZATIONFAILED: the credentials are fine, but the identity
    /// may not act as the asked authorization identity.
    AuthorizationFailed,
    /// BADCHARSET: a SEARCH charset we do not support; lists ours.
    BadCharset,
    /// CANNOT: the operation can never succeed (e.g. a bad name).
    Cannot,
    /// CAPABILITY: the capability list.
    Capability(Vec<String>),
    /// CLIENTBUG: the client did something wrong but harmless.
    ClientBug,
    /// CLOSED: the previous mailbox was closed (RFC 7162 §3.2.11).
    Closed,
    /// CONTACTADMIN.
    ContactAdmin,
    /// COPYUID (RFC 4315): source and destination UIDs, in corresponding
    /// order.
    CopyUid {
        /// The destination's UIDVALIDITY.
        uid_validity: u32,
        /// The source UIDs.
        source: Vec<u32>,
        /// The destination UIDs, one per source UID.
        dest: Vec<u32>,
    },
    /// CORRUPTION: the store is damaged.
    Corruption,
    /// EXPIRED: the credentials expired.
    Expired,
    /// EXPUNGEISSUED: messages were expunged meanwhile.
    ExpungeIssued,
    /// HASCHILDREN: DELETE of a mailbox with children that may not go.
    HasChildren,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.2.1).
    HighestModSeq(u64),
    /// INUSE: the resource is busy.
    InUse,
    /// LIMIT: an administrative limit was hit.
    Limit,
    /// MODIFIED (RFC 7162 §3.1.3): these failed UNCHANGEDSINCE.
    Modified(Vec<u32>),
    /// NOMODSEQ: the mailbox has no modseqs.
    NoModSeq,
    /// NONEXISTENT: no such mailbox.
    NonExistent,
    /// NOPERM: not allowed.
    NoPerm,
    /// OVERQUOTA.
    OverQuota,
    /// PARSE: a message could not be parsed.
    Parse,
    /// PERMANENTFLAGS: the flags that can be stored; `keywords` adds
    /// `\*` (new keywords may be created).
    PermanentFlags {
        /// The flags.
        flags: Vec<Flag>,
        /// New keywords may be created.
        keywords: bool,
    },
    /// PRIVACYREQUIRED: the operation needs a protected connection.
    PrivacyRequired,
    /// READ-ONLY: the mailbox was selected read-only.
    ReadOnly,
    /// READ-WRITE: the mailbox was selected read-write.
    ReadWrite,
    /// SERVERBUG: our fault.
    ServerBug,
    /// TOOBIG: the data is larger than the server accepts.
    TooBig,
    /// TRYCREATE: the destination mailbox does not exist.
    TryCreate,
    /// UIDNEXT.
    UidNext(u32),
    /// UIDVALIDITY.
    UidValidity(u32),
    /// UNAVAILABLE: a temporary failure.
    Unavailable,
    /// UNKNOWN-CTE (RFC 3516): a content transfer encoding we cannot
    /// decode for BINARY.
    UnknownCte,
}

impl Code {
    /// Writes the code without brackets.
    fn write(&self, out: &mut Vec<u8>) {
        let simple = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Code::Alert => simple(out, "ALERT"),
            Code::AlreadyExists => simple(out, "ALREADYEXISTS"),
            Code::AppendUid { uid_validity, uid } => simple(out, &format!("APPENDUID {uid_validity} {uid}")),
            Code::AuthenticationFailed => simple(out, "AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => simple(out, "AUTHORIZATIONFAILED"),
            Code::BadCharset => simple(out, "BADCHARSET (UTF-8 US-ASCII)"),
            Code::Cannot => simple(out, "CANNOT"),
            Code::Capability(caps) => simple(out, &format!("CAPABILITY {}", caps.join(" "))),
            Code::ClientBug => simple(out, "CLIENTBUG"),
            Code::Closed => simple(out, "CLOSED"),
            Code::ContactAdmin => simple(out, "CONTACTADMIN"),
            Code::CopyUid { uid_validity, source, dest } => {
                simple(out, &format!("COPYUID {uid_validity} "));
                write_compressed(out, source);
                out.push(b' ');
                write_compressed(out, dest);
            }
            Code::Corruption => simple(out, "CORRUPTION"),
            Code::Expired => simple(out, "EXPIRED"),
            Code::ExpungeIssued => simple(out, "EXPUNGEISSUED"),
            Code::HasChildren => simple(out, "HASCHILDREN"),
            Code::HighestModSeq(m) => simple(out, &format!("HIGHESTMODSEQ {m}")),
            Code::InUse => simple(out, "INUSE"),
            Code::Limit => simple(out, "LIMIT"),
            Code::Modified(set) => {
                simple(out, "MODIFIED ");
                write_compressed(out, set);
            }
            Code::NoModSeq => simple(out, "NOMODSEQ"),
            Code::NonExistent => simple(out, "NONEXISTENT"),
            Code::NoPerm => simple(out, "NOPERM"),
            Code::OverQuota => simple(out, "OVERQUOTA"),
            Code::Parse => simple(out, "PARSE"),
            Code::PermanentFlags { flags, keywords } => {
                simple(out, "PERMANENTFLAGS ");
                write_flags(out, flags, *keywords);
            }
            Code::PrivacyRequired => simple(out, "PRIVACYREQUIRED"),
            Code::ReadOnly => simple(out, "READ-ONLY"),
            Code::ReadWrite => simple(out, "READ-WRITE"),
            Code::ServerBug => simple(out, "SERVERBUG"),
            Code::TooBig => simple(out, "TOOBIG"),
            Code::TryCreate => simple(out, "TRYCREATE"),
            Code::UidNext(n) => simple(out, &format!("UIDNEXT {n}")),
            Code::UidValidity(n) => simple(out, &format!("UIDVALIDITY {n}")),
            Code::Unavailable => simple(out, "UNAVAILABLE"),
            Code::UnknownCte => simple(out, "UNKNOWN-CTE"),
        }
    }
}

/// `(\Seen \Answered kw)`, with `\*` last when `keywords`.
fn write_flags(out: &mut Vec<u8>, flags: &[Flag], keywords: bool) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_wire().as_bytes());
    }
    if keywords {
        if !flags.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\\*");
    }
    out.push(b')');
}

/// Writes `text` as resp-text: CR and LF cannot end the line early, and
/// empty text (not allowed by the grammar) becomes "done".
fn write_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.extend_from_slice(b"done");
    }
    out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
}

/// A status response: `tag OK [code] text` (tagged) or `* OK [code] text`
/// when `tag` is `None`.
pub fn status(out: &mut Vec<u8>, tag: Option<&str>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(tag.unwrap_or("*").as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    if let Some(code) = code {
        out.push(b'[');
        code.write(out);
        out.extend_from_slice(b"] ");
    }
    write_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// `* CAPABILITY ...`.
pub fn capability(out: &mut Vec<u8>, caps: &[&str]) {
    out.extend_from_slice(b"* CAPABILITY ");
    out.extend_from_slice(caps.join(" ").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `* n EXISTS`.
pub fn exists(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes());
}

/// `* n RECENT`, for IMAP4rev1 clients after SELECT (always 0 here).
pub fn recent(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(format!("* {n} RECENT\r\n").as_bytes());
}

/// `* n EXPUNGE`.
pub fn expunge(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
}

/// `* VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10), for QRESYNC
/// clients. Writes nothing for no UIDs.
pub fn vanished(out: &mut Vec<u8>, earlier: bool, uids: &[u32]) {
    if uids.is_empty() {
        return;
    }
    out.extend_from_slice(if earlier { b"* VANISHED (EARLIER) " as &[u8] } else { b"* VANISHED " });
    write_compressed(out, uids);
    out.extend_from_slice(b"\r\n");
}

/// `* FLAGS (...)`: the flags defined in the mailbox.
pub fn flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.extend_from_slice(b"* FLAGS ");
    write_flags(out, flags, false);
    out.extend_from_slice(b"\r\n");
}

/// One mailbox of a LIST or LSUB answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListItem<'a> {
    /// Attributes with their backslash (`\HasNoChildren`, `\Sent`,
    /// `\Subscribed`...).
    pub attributes: &'a [&'a str],
    /// The hierarchy delimiter, `None` for a flat name space (NIL).
    pub delimiter: Option<char>,
    /// The name (UTF-8; encoded for the client by the encoder).
    pub name: &'a str,
    /// CHILDINFO ("SUBSCRIBED") extended data (RFC 5258 §3.5): the
    /// mailbox is listed because a child matched RECURSIVEMATCH.
    pub child_info_subscribed: bool,
    /// OLDNAME extended data (RFC 9051 §7.3.1): the name before a
    /// RENAME, for a client that asked for it by the old name.
    pub old_name: Option<&'a str>,
}

/// `* LIST (attrs) "/" name [extended data]`.
pub fn list(out: &mut Vec<u8>, item: &ListItem<'_>, utf8: bool) {
    list_like(out, "LIST", item, utf8);
}

/// `* LSUB (attrs) "/" name` (IMAP4rev1).
pub fn lsub(out: &mut Vec<u8>, item: &ListItem<'_>, utf8: bool) {
    list_like(out, "LSUB", item, utf8);
}

fn list_like(out: &mut Vec<u8>, kind: &str, item: &ListItem<'_>, utf8: bool) {
    out.extend_from_slice(format!("* {kind} (").as_bytes());
    out.extend_from_slice(item.attributes.join(" ").as_bytes());
    out.extend_from_slice(b") ");
    match item.delimiter {
        Some(d) => {
            let mut buf = [0u8; 4];
            wire::write_string(out, d.encode_utf8(&mut buf).as_bytes());
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    mailbox::write_name(out, item.name, utf8);
    let mut extended = Vec::new();
    if item.child_info_subscribed {
        extended.extend_from_slice(b"\"CHILDINFO\" (\"SUBSCRIBED\")");
    }
    if let Some(old) = item.old_name {
        if !extended.is_empty() {
            extended.push(b' ');
        }
        extended.extend_from_slice(b"\"OLDNAME\" (");
        mailbox::write_name(&mut extended, old, utf8);
        extended.push(b')');
    }
    if !extended.is_empty() {
        out.extend_from_slice(b" (");
        out.extend_from_slice(&extended);
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

/// `* STATUS name (ITEM n ...)`.
pub fn status_data(out: &mut Vec<u8>, mailbox_name: &str, items: &[(StatusItem, u64)], utf8: bool) {
    out.extend_from_slice(b"* STATUS ");
    mailbox::write_name(out, mailbox_name, utf8);
    out.extend_from_slice(b" (");
    for (i, (item, value)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{} {value}", item.as_str()).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}

/// `* SEARCH n...` (IMAP4rev1), with `(MODSEQ m)` when the search used
/// MODSEQ and something matched (RFC 7162 §3.1.5).
pub fn search(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SEARCH");
    for n in numbers {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The values of an ESEARCH response; `None` items are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Esearch {
    /// MIN.
    pub min: Option<u32>,
    /// MAX.
    pub max: Option<u32>,
    /// COUNT.
    pub count: Option<u32>,
    /// ALL, written compressed; left out when empty (RFC 4731 §3.1).
    pub all: Option<Vec<u32>>,
    /// MODSEQ (RFC 7162 §3.1.5).
    pub modseq: Option<u64>,
}

/// `* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set [MODSEQ m]`
/// (RFC 4731 §3.1, RFC 9051 §7.3.4).
pub fn esearch(out: &mut Vec<u8>, tag: Option<&str>, uid: bool, result: &Esearch) {
    out.extend_from_slice(b"* ESEARCH");
    if let Some(tag) = tag {
        out.extend_from_slice(b" (TAG ");
        wire::write_string(out, tag.as_bytes());
        out.push(b')');
    }
    if uid {
        out.extend_from_slice(b" UID");
    }
    for (name, value) in [("MIN", result.min), ("MAX", result.max), ("COUNT", result.count)] {
        if let Some(v) = value {
            out.extend_from_slice(format!(" {name} {v}").as_bytes());
        }
    }
    if let Some(all) = result.all.as_deref().filter(|a| !a.is_empty()) {
        out.extend_from_slice(b" ALL ");
        write_compressed(out, all);
    }
    if let Some(m) = result.modseq {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ENABLED ...` (RFC 5161 §3.2).
pub fn enabled(out: &mut Vec<u8>, names: &[&str]) {
    out.extend_from_slice(b"* ENABLED");
    for n in names {
        out.push(b' ');
        out.extend_from_slice(n.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ID (...)` or `* ID NIL` (RFC 2971 §3.2).
pub fn id(out: &mut Vec<u8>, params: Option<&[(&str, Option<&str>)]>) {
    out.extend_from_slice(b"* ID ");
    match params {
        Some(params) if !params.is_empty() => {
            out.push(b'(');
            for (i, (k, v)) in params.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                wire::write_string(out, k.as_bytes());
                out.push(b' ');
                wire::write_nstring(out, v.map(str::as_bytes));
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.extend_from_slice(b"\r\n");
}

/// `* NAMESPACE (("" "/")) NIL NIL`: one personal namespace (RFC 2342).
pub fn namespace(out: &mut Vec<u8>, delimiter: char) {
    out.extend_from_slice(format!("* NAMESPACE ((\"\" \"{delimiter}\")) NIL NIL\r\n").as_bytes());
}

#[cfg(test)]
mod tests;
