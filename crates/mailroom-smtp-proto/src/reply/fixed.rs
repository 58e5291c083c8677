//! The replies the state machine sends on its own, named by number and
//! meaning (style guide §5), so tests and code agree on one wording.

use super::{EnhancedCode, Reply};

/// Shorthand for a reply with an enhanced code.
fn r(code: u16, e: (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode(e.0, e.1, e.2)), text)
}

/// RFC 5321 §4.3.1: the greeting; no enhanced code before EHLO.
pub(crate) fn r220_greeting(host: &str) -> Reply {
    Reply::new(220, None, format!("{host} ESMTP Mailroom"))
}

/// RFC 5321 §4.1.1.1: HELO answer; HELO clients get no enhanced codes.
pub(crate) fn r250_helo(host: &str) -> Reply {
    Reply::new(250, None, host)
}

/// RFC 5321 §4.1.1.1: EHLO answer listing the extensions (RFC 1869 §4.3).
/// AUTH (RFC 4954 §3) is listed only when it may be used now.
pub(crate) fn r250_ehlo(host: &str, max_size: u64, starttls: bool, auth: bool) -> Reply {
    let starttls = if starttls { "\nSTARTTLS" } else { "" };
    let auth = if auth { "\nAUTH PLAIN LOGIN" } else { "" };
    let text = format!(
        "{host}\nPIPELINING\nSIZE {max_size}\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\nCHUNKING{starttls}{auth}"
    );
    Reply::new(250, None, text)
}

pub(crate) fn r220_ready_for_tls() -> Reply {
    r(220, (2, 0, 0), "Ready to start TLS")
}

pub(crate) fn r503_ehlo_first() -> Reply {
    r(503, (5, 5, 1), "Error: send EHLO first")
}

pub(crate) fn r503_transaction_in_progress() -> Reply {
    r(503, (5, 5, 1), "Error: MAIL transaction in progress")
}

pub(crate) fn r250_mail_ok() -> Reply {
    r(250, (2, 1, 0), "Ok")
}

pub(crate) fn r250_rcpt_ok() -> Reply {
    r(250, (2, 1, 5), "Ok")
}

pub(crate) fn r250_ok() -> Reply {
    r(250, (2, 0, 0), "Ok")
}

/// RFC 3030 §2: a non-LAST chunk was received in full.
pub(crate) fn r250_chunk_received(size: u64) -> Reply {
    r(250, (2, 0, 0), format!("{size} octets received"))
}

pub(crate) fn r354_start_data() -> Reply {
    Reply::new(354, None, "End data with <CR><LF>.<CR><LF>")
}

/// RFC 5321 §3.5.3: 252 when we will not verify but will try to deliver.
pub(crate) fn r252_cannot_vrfy() -> Reply {
    r(252, (2, 5, 0), "Cannot VRFY user, but will accept message and attempt delivery")
}

pub(crate) fn r214_help() -> Reply {
    r(214, (2, 0, 0), "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT")
}

pub(crate) fn r221_bye() -> Reply {
    r(221, (2, 0, 0), "Bye")
}

pub(crate) fn r421_shutting_down(host: &str) -> Reply {
    r(421, (4, 3, 2), format!("{host} Service shutting down"))
}

pub(crate) fn r452_too_many_recipients() -> Reply {
    r(452, (4, 5, 3), "Error: too many recipients")
}

pub(crate) fn r500_unrecognized() -> Reply {
    r(500, (5, 5, 2), "Error: command not recognized")
}

pub(crate) fn r500_bare_cr_lf() -> Reply {
    r(500, (5, 5, 2), "Error: bare <CR> or <LF> received")
}

pub(crate) fn r500_line_too_long() -> Reply {
    r(500, (5, 5, 2), "Error: line too long")
}

pub(crate) fn r500_bad_utf8() -> Reply {
    r(500, (5, 5, 2), "Error: command line is not valid UTF-8")
}

/// `what` is the command's grammar, e.g. `MAIL FROM:<address>`.
pub(crate) fn r501_syntax(what: &str) -> Reply {
    r(501, (5, 5, 4), format!("Syntax: {what}"))
}

pub(crate) fn r501_bad_sender() -> Reply {
    r(501, (5, 1, 7), "Bad sender address syntax")
}

pub(crate) fn r501_bad_recipient() -> Reply {
    r(501, (5, 1, 3), "Bad recipient address syntax")
}

pub(crate) fn r501_bad_param_value(name: &str) -> Reply {
    r(501, (5, 5, 4), format!("Bad {name} parameter syntax"))
}

pub(crate) fn r501_duplicate_param(name: &str) -> Reply {
    r(501, (5, 5, 4), format!("Duplicate parameter: {name}"))
}

pub(crate) fn r502_expn() -> Reply {
    r(502, (5, 5, 1), "Error: EXPN not supported")
}

pub(crate) fn r502_not_implemented() -> Reply {
    r(502, (5, 5, 1), "Error: command not implemented")
}

pub(crate) fn r503_helo_first() -> Reply {
    r(503, (5, 5, 1), "Error: send HELO/EHLO first")
}

pub(crate) fn r503_nested_mail() -> Reply {
    r(503, (5, 5, 1), "Error: nested MAIL command")
}

pub(crate) fn r503_need_mail() -> Reply {
    r(503, (5, 5, 1), "Error: need MAIL command")
}

pub(crate) fn r503_data_after_bdat() -> Reply {
    r(503, (5, 5, 1), "Error: DATA not allowed after BDAT")
}

pub(crate) fn r503_rcpt_after_bdat() -> Reply {
    r(503, (5, 5, 1), "Error: RCPT not allowed after BDAT")
}

/// RFC 1870 §6 and RFC 5321 §4.5.3.1.10: the message is over our limit.
pub(crate) fn r552_too_big() -> Reply {
    r(552, (5, 3, 4), "Error: message file too big")
}

pub(crate) fn r553_smtputf8_required() -> Reply {
    r(553, (5, 6, 7), "Error: SMTPUTF8 required for non-ASCII address")
}

pub(crate) fn r554_no_valid_recipients() -> Reply {
    r(554, (5, 5, 1), "Error: no valid recipients")
}

pub(crate) fn r554_bare_cr_lf_in_data() -> Reply {
    r(554, (5, 6, 0), "Error: bare <CR> or <LF> in message data")
}

pub(crate) fn r554_long_line(max: usize) -> Reply {
    r(554, (5, 6, 0), format!("Error: message line longer than {max} octets"))
}

/// RFC 1869 §6: an unknown MAIL/RCPT parameter.
pub(crate) fn r555_unsupported(name: &str) -> Reply {
    r(555, (5, 5, 4), format!("Unsupported option: {name}"))
}

/// RFC 4954 §4: the server challenge; `text` is already base64 (LOGIN's
/// prompts) or empty (PLAIN asks for its one message). No enhanced code:
/// 334 is an intermediate reply (RFC 2034 §4 covers completion replies).
pub(crate) fn r334_challenge(text: &str) -> Reply {
    Reply::new(334, None, text)
}

/// RFC 4954 §6.
pub(crate) fn r235_authenticated() -> Reply {
    r(235, (2, 7, 0), "Authentication successful")
}

/// RFC 4954 §4: the client cancelled the exchange with `*`.
pub(crate) fn r501_auth_aborted() -> Reply {
    r(501, (5, 0, 0), "Authentication aborted")
}

pub(crate) fn r501_auth_bad_base64() -> Reply {
    r(501, (5, 5, 2), "Error: invalid base64 data")
}

/// RFC 4616 §2: not `authzid NUL authcid NUL passwd`.
pub(crate) fn r501_auth_malformed() -> Reply {
    r(501, (5, 5, 2), "Error: malformed authentication response")
}

pub(crate) fn r501_auth_not_utf8() -> Reply {
    r(501, (5, 5, 2), "Error: credentials are not valid UTF-8")
}

/// RFC 4954 §4: a mechanism we do not offer.
pub(crate) fn r504_unrecognized_mechanism() -> Reply {
    r(504, (5, 5, 4), "Unrecognized authentication type")
}

/// Postfix's wording for AUTH where it is not offered at all.
pub(crate) fn r503_auth_not_enabled() -> Reply {
    r(503, (5, 5, 1), "Error: authentication not enabled")
}

pub(crate) fn r503_already_authenticated() -> Reply {
    r(503, (5, 5, 1), "Error: already authenticated")
}

/// RFC 4954 §6: AUTH that will be offered once TLS is on.
pub(crate) fn r538_encryption_required() -> Reply {
    r(538, (5, 7, 11), "Encryption required for requested authentication mechanism")
}

/// RFC 4954 §6: MAIL before AUTH where AUTH is required.
pub(crate) fn r530_auth_required() -> Reply {
    r(530, (5, 7, 0), "Authentication required")
}

/// RFC 4954 §4: a response line over 12288 octets.
pub(crate) fn r500_auth_line_too_long() -> Reply {
    r(500, (5, 5, 6), "Authentication exchange line is too long")
}
