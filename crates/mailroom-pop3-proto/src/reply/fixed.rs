//! The replies the state machine sends on its own, named by status and
//! meaning (style guide §5), so tests and code agree on one wording.

use super::{Code, Reply};

/// RFC 1939 §4: the greeting.
pub(crate) fn ok_greeting(host: &str) -> Reply {
    Reply::ok(format!("{host} POP3 server ready"))
}

/// A bare `+OK` (USER, NOOP, and the first line of some listings).
pub(crate) fn ok() -> Reply {
    Reply::ok("")
}

/// RFC 2449 §5: the first line of the CAPA listing.
pub(crate) fn ok_capabilities() -> Reply {
    Reply::ok("Capability list follows")
}

pub(crate) fn ok_logged_in(messages: usize, octets: u64) -> Reply {
    Reply::ok(format!("Logged in, {messages} messages ({octets} octets)."))
}

/// QUIT in the AUTHORIZATION state (RFC 1939 §6): nothing to update.
pub(crate) fn ok_logging_out() -> Reply {
    Reply::ok("Logging out.")
}

/// QUIT in the TRANSACTION state once the UPDATE state is done
/// (RFC 1939 §6).
pub(crate) fn ok_logging_out_deleted(removed: usize) -> Reply {
    Reply::ok(format!("Logging out, {removed} messages deleted."))
}

/// RFC 1939 §5 STAT: the drop listing, exactly `count octets`.
pub(crate) fn ok_stat(count: usize, octets: u64) -> Reply {
    Reply::ok(format!("{count} {octets}"))
}

/// LIST without argument and RSET.
pub(crate) fn ok_summary(count: usize, octets: u64) -> Reply {
    Reply::ok(format!("{count} messages ({octets} octets)"))
}

/// RFC 1939 §5 LIST n: the scan listing `n size`.
pub(crate) fn ok_scan(msg: usize, size: u64) -> Reply {
    Reply::ok(format!("{msg} {size}"))
}

/// RFC 1939 §7 UIDL n: the unique-id listing `n uid`.
pub(crate) fn ok_unique_id(msg: usize, uid: &str) -> Reply {
    Reply::ok(format!("{msg} {uid}"))
}

pub(crate) fn ok_marked_deleted() -> Reply {
    Reply::ok("Marked to be deleted.")
}

/// The first line of a RETR or TOP answer.
pub(crate) fn ok_octets(octets: u64) -> Reply {
    Reply::ok(format!("{octets} octets"))
}

pub(crate) fn err_unknown_command() -> Reply {
    Reply::err(None, "Unknown command.")
}

/// A bare CR inside a line (RFC 1939 §3: lines end in CRLF).
pub(crate) fn err_invalid_line() -> Reply {
    Reply::err(None, "Invalid line.")
}

pub(crate) fn err_line_too_long() -> Reply {
    Reply::err(None, "Line too long.")
}

/// A missing or extra argument.
pub(crate) fn err_invalid_arguments() -> Reply {
    Reply::err(None, "Invalid arguments.")
}

/// A message number that is not a positive decimal number.
pub(crate) fn err_invalid_message_number() -> Reply {
    Reply::err(None, "Invalid message number.")
}

/// The line count of TOP is not a non-negative decimal number.
pub(crate) fn err_invalid_line_count() -> Reply {
    Reply::err(None, "Invalid number of lines.")
}

pub(crate) fn err_no_such_message() -> Reply {
    Reply::err(None, "No such message.")
}

/// RFC 1939 §5: a message marked as deleted may not be referred to.
pub(crate) fn err_message_deleted() -> Reply {
    Reply::err(None, "Message is deleted.")
}

/// The message went away after the snapshot (another session expunged it).
pub(crate) fn err_message_gone(msg: usize) -> Reply {
    Reply::err(None, format!("Message {msg} no longer exists."))
}

pub(crate) fn err_not_logged_in() -> Reply {
    Reply::err(None, "Not logged in.")
}

pub(crate) fn ok_begin_tls() -> Reply {
    Reply::ok("Begin TLS negotiation now.")
}

pub(crate) fn err_stls_unavailable() -> Reply {
    Reply::err(None, "STLS is not available.")
}

pub(crate) fn err_already_logged_in() -> Reply {
    Reply::err(None, "Already logged in.")
}

/// RFC 1939 §7: PASS is only valid right after a successful USER.
pub(crate) fn err_no_username() -> Reply {
    Reply::err(None, "No username given.")
}

/// RFC 1939 §13: USER/PASS and AUTH PLAIN send the password in the
/// clear, so they are refused until the connection is protected.
pub(crate) fn err_plaintext_disallowed() -> Reply {
    Reply::err(Some(Code::Auth), "Plaintext authentication disallowed on non-secure connections.")
}

/// RFC 5034 §4: the client answered a continuation with `*`.
pub(crate) fn err_auth_aborted() -> Reply {
    Reply::err(None, "Authentication aborted.")
}

pub(crate) fn err_auth_invalid_data() -> Reply {
    Reply::err(Some(Code::Auth), "Invalid authentication data.")
}

/// RFC 4616 §2: we do not let one user act as another.
pub(crate) fn err_authzid_unsupported() -> Reply {
    Reply::err(Some(Code::Auth), "Authorization identity not supported.")
}

pub(crate) fn err_unsupported_mechanism() -> Reply {
    Reply::err(None, "Unsupported authentication mechanism.")
}

/// RFC 1939 §6: the UPDATE state failed; RFC 3206 §4 says it is temporary.
pub(crate) fn err_update_failed() -> Reply {
    Reply::err(Some(Code::SysTemp), "Deleting messages failed, none were deleted.")
}
