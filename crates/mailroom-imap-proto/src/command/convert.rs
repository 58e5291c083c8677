//! One complete command's bytes to the command model: LIST and SEARCH's
//! RETURN are read here, everything else by imap-codec, whose values are
//! converted at once so that none of its types leave this module.

use imap_codec::imap_types::command::{CommandBody, FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section as CodecSection};
use imap_codec::imap_types::flag::{Flag as CodecFlag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet as CodecSet};
use imap_codec::imap_types::status::StatusDataItemName;
use imap_codec::{CommandCodec, decode::Decoder as _};
use mailroom_types::Secret;

use super::lexer::{self, Lexer};
use super::{
    Command, FetchItem, Flag, InternalDate, Qresync, Refusal, Search, StatusItem, StoreFlags, StoreMode, list, search,
};
use crate::mailbox;
use crate::message::{Partial, Section, SectionText};
use crate::sequence::{SeqNumber, SeqRange, SequenceSet};

/// What a command line asks for, before the state is checked.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// For the driver, in the authenticated or selected state.
    Command(Command),
    Capability,
    Logout,
    StartTls,
    Namespace,
    Idle,
    Login {
        user: String,
        password: Secret<String>,
    },
    Authenticate {
        mechanism: String,
        initial: Option<Secret<Vec<u8>>>,
    },
    /// The capability names, upper-cased.
    Enable(Vec<String>),
}

/// A parse failure: the tag when one could be read, and the refusal.
pub(crate) type Failure = (Option<String>, Refusal);

/// Parses one complete command (CRLF-terminated, literals included).
/// `utf8` says how mailbox names are encoded (see [`crate::mailbox`]).
pub(crate) fn parse(msg: &[u8], utf8: bool) -> Result<(String, Parsed), Failure> {
    let Some((tag, name)) = lexer::peek_name(msg) else {
        let tag = lexer::peek_tag(msg);
        let text = if tag.is_some() { "Missing command" } else { "Invalid tag" };
        return Err((tag, Refusal::bad(text)));
    };
    let fail = |r: Refusal| (Some(tag.clone()), r);
    if name == "LIST" {
        let mut lx = Lexer::new(msg);
        let _ = (lx.tag(), lx.sp(), lx.atom());
        let list = list::parse(&mut lx, utf8).map_err(fail)?;
        return Ok((tag, Parsed::Command(Command::List(list))));
    }
    let mut ret = None;
    let peeled;
    let mut bytes = msg;
    if (name == "SEARCH" || name == "UID SEARCH")
        && let Some((r, rest)) = search::peel_return(msg).map_err(fail)?
    {
        ret = Some(r);
        peeled = rest;
        bytes = &peeled;
    }
    let command = match CommandCodec::default().decode(bytes) {
        Ok(([], command)) => command,
        _ => return Err(fail(syntax_error(&name))),
    };
    let parsed = body(command.body, utf8, ret).map_err(fail)?;
    Ok((tag, parsed))
}

/// The BAD text for a line imap-codec refused: unknown command or bad
/// arguments.
fn syntax_error(name: &str) -> Refusal {
    const KNOWN: &[&str] = &[
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "AUTHENTICATE",
        "LOGIN",
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "ID",
        "UID SEARCH",
        "UID FETCH",
        "UID STORE",
        "UID COPY",
        "UID MOVE",
        "UID EXPUNGE",
    ];
    if KNOWN.contains(&name) {
        Refusal::bad(format!("Invalid arguments to {name}"))
    } else {
        Refusal::bad(format!("Unknown command {name}"))
    }
}

fn bad_name(e: mailbox::MailboxNameError) -> Refusal {
    Refusal::bad(e.to_string())
}

fn mailbox_name(m: &Mailbox<'_>, utf8: bool) -> Result<String, Refusal> {
    match m {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => mailbox::decode_name(other.as_ref(), utf8).map_err(bad_name),
    }
}

/// An astring as UTF-8, or `None` when it is not.
pub(super) fn astring(s: &AString<'_>) -> Option<String> {
    std::str::from_utf8(s.as_ref()).ok().map(str::to_string)
}

pub(super) fn flag_from_atom(atom: &str) -> Flag {
    Flag::Keyword(atom.to_string())
}

fn flag(f: &CodecFlag<'_>) -> Flag {
    match f {
        CodecFlag::Answered => Flag::Answered,
        CodecFlag::Deleted => Flag::Deleted,
        CodecFlag::Draft => Flag::Draft,
        CodecFlag::Flagged => Flag::Flagged,
        CodecFlag::Seen => Flag::Seen,
        CodecFlag::Keyword(atom) => flag_from_atom(atom.as_ref()),
        other => {
            let text = other.to_string();
            Flag::Extension(text.strip_prefix('\\').unwrap_or(&text).to_string())
        }
    }
}

pub(super) fn sequence_set(s: &CodecSet) -> SequenceSet {
    let number = |n: &SeqOrUid| match n {
        SeqOrUid::Value(v) => SeqNumber::Value(v.get()),
        SeqOrUid::Asterisk => SeqNumber::Last,
    };
    let ranges =
        s.0.as_ref()
            .iter()
            .map(|seq| match seq {
                Sequence::Single(n) => SeqRange { start: number(n), end: number(n) },
                Sequence::Range(a, b) => SeqRange { start: number(a), end: number(b) },
            })
            .collect();
    // imap-codec's set is a Vec1, so never empty.
    SequenceSet::from_ranges(ranges).unwrap_or_else(|| SequenceSet::single(1))
}

fn section(s: &Option<CodecSection<'_>>) -> Section {
    let part = |p: &Option<imap_codec::imap_types::fetch::Part>| {
        p.as_ref().map(|p| p.0.as_ref().iter().map(|n| n.get()).collect()).unwrap_or_default()
    };
    let names = |v: &imap_codec::imap_types::core::Vec1<AString<'_>>| {
        v.as_ref().iter().map(|a| String::from_utf8_lossy(a.as_ref()).into_owned()).collect()
    };
    match s {
        None => Section::default(),
        Some(CodecSection::Part(p)) => Section { part: part(&Some(p.clone())), text: None },
        Some(CodecSection::Header(p)) => Section { part: part(p), text: Some(SectionText::Header) },
        Some(CodecSection::HeaderFields(p, n)) => {
            Section { part: part(p), text: Some(SectionText::HeaderFields(names(n))) }
        }
        Some(CodecSection::HeaderFieldsNot(p, n)) => {
            Section { part: part(p), text: Some(SectionText::HeaderFieldsNot(names(n))) }
        }
        Some(CodecSection::Text(p)) => Section { part: part(p), text: Some(SectionText::Text) },
        Some(CodecSection::Mime(p)) => Section { part: part(&Some(p.clone())), text: Some(SectionText::Mime) },
    }
}

fn partial(p: &Option<(u32, std::num::NonZeroU32)>) -> Option<Partial> {
    p.map(|(origin, count)| Partial { origin: u64::from(origin), count: u64::from(count.get()) })
}

fn fetch_item(item: &MessageDataItemName<'_>) -> FetchItem {
    let numbers = |v: &Vec<std::num::NonZeroU32>| v.iter().map(|n| n.get()).collect();
    match item {
        MessageDataItemName::Body => FetchItem::Body,
        MessageDataItemName::BodyExt { section: s, partial: p, peek } => {
            FetchItem::BodySection { section: section(s), partial: partial(p), peek: *peek }
        }
        MessageDataItemName::BodyStructure => FetchItem::BodyStructure,
        MessageDataItemName::Envelope => FetchItem::Envelope,
        MessageDataItemName::Flags => FetchItem::Flags,
        MessageDataItemName::InternalDate => FetchItem::InternalDate,
        MessageDataItemName::Rfc822 => FetchItem::Rfc822,
        MessageDataItemName::Rfc822Header => FetchItem::Rfc822Header,
        MessageDataItemName::Rfc822Size => FetchItem::Rfc822Size,
        MessageDataItemName::Rfc822Text => FetchItem::Rfc822Text,
        MessageDataItemName::Uid => FetchItem::Uid,
        MessageDataItemName::Binary { section: s, partial: p, peek } => {
            FetchItem::Binary { part: numbers(s), partial: partial(p), peek: *peek }
        }
        MessageDataItemName::BinarySize { section: s } => FetchItem::BinarySize { part: numbers(s) },
        MessageDataItemName::ModSeq => FetchItem::ModSeq,
    }
}

fn status_item(item: &StatusDataItemName) -> Result<StatusItem, Refusal> {
    Ok(match item {
        StatusDataItemName::Messages => StatusItem::Messages,
        StatusDataItemName::Recent => StatusItem::Recent,
        StatusDataItemName::UidNext => StatusItem::UidNext,
        StatusDataItemName::UidValidity => StatusItem::UidValidity,
        StatusDataItemName::Unseen => StatusItem::Unseen,
        StatusDataItemName::Deleted => StatusItem::Deleted,
        StatusDataItemName::Size => StatusItem::Size,
        StatusDataItemName::HighestModSeq => StatusItem::HighestModSeq,
        other => return Err(Refusal::bad(format!("Unsupported STATUS item {other:?}"))),
    })
}

/// Reads SELECT/EXAMINE parameters.
fn select(mailbox: &Mailbox<'_>, read_only: bool, params: &[SelectParameter], utf8: bool) -> Result<Command, Refusal> {
    let mut condstore = false;
    let mut qresync = None;
    for p in params {
        match p {
            SelectParameter::CondStore => condstore = true,
            SelectParameter::QResync { uid_validity, mod_sequence_value, known_uids, seq_match_data } => {
                qresync = Some(Qresync {
                    uid_validity: uid_validity.get(),
                    modseq: mod_sequence_value.get(),
                    known_uids: known_uids.as_ref().map(sequence_set),
                    seq_match: seq_match_data.as_ref().map(|(a, b)| (sequence_set(a), sequence_set(b))),
                })
            }
        }
    }
    Ok(Command::Select { mailbox: mailbox_name(mailbox, utf8)?, read_only, condstore, qresync })
}

fn body(body: CommandBody<'_>, utf8: bool, ret: Option<search::SearchReturn>) -> Result<Parsed, Refusal> {
    let cmd = |c: Command| Ok(Parsed::Command(c));
    match body {
        CommandBody::Capability => Ok(Parsed::Capability),
        CommandBody::Noop => cmd(Command::Noop),
        CommandBody::Logout => Ok(Parsed::Logout),
        CommandBody::StartTLS => Ok(Parsed::StartTls),
        CommandBody::Authenticate { mechanism, initial_response } => Ok(Parsed::Authenticate {
            mechanism: mechanism.as_ref().to_ascii_uppercase(),
            initial: initial_response.map(|r| Secret::new(r.declassify().to_vec())),
        }),
        CommandBody::Login { username, password } => {
            let user = astring(&username).ok_or_else(|| Refusal::bad("User name must be UTF-8"))?;
            let password = astring(password.declassify()).ok_or_else(|| Refusal::bad("Password must be UTF-8"))?;
            Ok(Parsed::Login { user, password: Secret::new(password) })
        }
        CommandBody::Select { mailbox, parameters } => cmd(select(&mailbox, false, &parameters, utf8)?),
        CommandBody::Examine { mailbox, parameters } => cmd(select(&mailbox, true, &parameters, utf8)?),
        CommandBody::Unselect => cmd(Command::Unselect),
        CommandBody::Create { mailbox } => cmd(Command::Create { mailbox: mailbox_name(&mailbox, utf8)? }),
        CommandBody::Delete { mailbox } => cmd(Command::Delete { mailbox: mailbox_name(&mailbox, utf8)? }),
        CommandBody::Rename { from, to } => {
            cmd(Command::Rename { from: mailbox_name(&from, utf8)?, to: mailbox_name(&to, utf8)? })
        }
        CommandBody::Subscribe { mailbox } => cmd(Command::Subscribe { mailbox: mailbox_name(&mailbox, utf8)? }),
        CommandBody::Unsubscribe { mailbox } => cmd(Command::Unsubscribe { mailbox: mailbox_name(&mailbox, utf8)? }),
        CommandBody::Lsub { reference, mailbox_wildcard } => {
            let reference = match &reference {
                Mailbox::Inbox => "INBOX".to_string(),
                Mailbox::Other(o) => mailbox::decode_pattern(o.as_ref(), utf8).map_err(bad_name)?,
            };
            let raw: Vec<u8> = match &mailbox_wildcard {
                imap_codec::imap_types::mailbox::ListMailbox::Token(t) => t.as_ref().to_vec(),
                imap_codec::imap_types::mailbox::ListMailbox::String(s) => s.as_ref().to_vec(),
            };
            let pattern = mailbox::decode_pattern(&raw, utf8).map_err(bad_name)?;
            cmd(Command::Lsub { reference, pattern })
        }
        CommandBody::Status { mailbox, item_names } => {
            let items = item_names.iter().map(status_item).collect::<Result<_, _>>()?;
            cmd(Command::Status { mailbox: mailbox_name(&mailbox, utf8)?, items })
        }
        CommandBody::Append { mailbox, flags, date, message } => {
            let (message, binary) = match message {
                LiteralOrLiteral8::Literal(l) => (l.into_inner().into_owned(), false),
                LiteralOrLiteral8::Literal8(l) => (l.data.into_owned(), true),
            };
            let date = date.map(|d| {
                let d = d.as_ref();
                InternalDate { unix_seconds: d.timestamp(), offset_minutes: d.offset().local_minus_utc() / 60 }
            });
            let flags = flags.iter().map(flag).collect();
            cmd(Command::Append { mailbox: mailbox_name(&mailbox, utf8)?, flags, date, message, binary })
        }
        CommandBody::Check => cmd(Command::Check),
        CommandBody::Close => cmd(Command::Close),
        CommandBody::Expunge => cmd(Command::Expunge { uids: None }),
        CommandBody::ExpungeUid { sequence_set: s } => cmd(Command::Expunge { uids: Some(sequence_set(&s)) }),
        CommandBody::Search { charset, criteria, uid } => {
            if let Some(charset) = charset {
                let name = charset.as_ref().to_ascii_uppercase();
                if name != "UTF-8" && name != "US-ASCII" {
                    return Err(Refusal::no(
                        Some(crate::response::Code::BadCharset),
                        format!("Unsupported charset {name}"),
                    ));
                }
            }
            let mut keys: Vec<_> = criteria.as_ref().iter().map(search::key).collect::<Result<_, _>>()?;
            let key = if keys.len() == 1 { keys.remove(0) } else { search::SearchKey::And(keys) };
            cmd(Command::Search(Search { uid, key, ret }))
        }
        CommandBody::Fetch { sequence_set: s, macro_or_item_names, uid, modifiers } => {
            let items = match macro_or_item_names {
                MacroOrMessageDataItemNames::Macro(m) => m.expand().iter().map(fetch_item).collect(),
                MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.iter().map(fetch_item).collect(),
            };
            let mut changed_since = None;
            let mut vanished = false;
            for m in &modifiers {
                match m {
                    FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                    FetchModifier::Vanished => vanished = true,
                }
            }
            // RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
            if vanished && (!uid || changed_since.is_none()) {
                return Err(Refusal::bad("VANISHED needs UID FETCH with CHANGEDSINCE"));
            }
            cmd(Command::Fetch { uid, set: sequence_set(&s), items, changed_since, vanished })
        }
        CommandBody::Store { sequence_set: s, kind, response, flags, uid, modifiers } => {
            let mode = match kind {
                StoreType::Add => StoreMode::Add,
                StoreType::Remove => StoreMode::Remove,
                StoreType::Replace => StoreMode::Replace,
            };
            let unchanged_since = modifiers.iter().map(|StoreModifier::UnchangedSince(n)| *n).next_back();
            let flags = StoreFlags {
                mode,
                silent: response == StoreResponse::Silent,
                flags: flags.iter().map(flag).collect(),
                unchanged_since,
            };
            cmd(Command::Store { uid, set: sequence_set(&s), flags })
        }
        CommandBody::Copy { sequence_set: s, mailbox, uid } => {
            cmd(Command::Copy { uid, set: sequence_set(&s), mailbox: mailbox_name(&mailbox, utf8)? })
        }
        CommandBody::Move { sequence_set: s, mailbox, uid } => {
            cmd(Command::Move { uid, set: sequence_set(&s), mailbox: mailbox_name(&mailbox, utf8)? })
        }
        CommandBody::Idle => Ok(Parsed::Idle),
        CommandBody::Enable { capabilities } => {
            Ok(Parsed::Enable(capabilities.as_ref().iter().map(|c| c.to_string().to_ascii_uppercase()).collect()))
        }
        CommandBody::Id { parameters } => {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let params = parameters
                .map(|ps| ps.iter().map(|(k, v)| (text(k.as_ref()), v.0.as_ref().map(|v| text(v.as_ref())))).collect());
            cmd(Command::Id { params })
        }
        CommandBody::Namespace => Ok(Parsed::Namespace),
        other => Err(Refusal::bad(format!("Unknown command {}", other.name()))),
    }
}
