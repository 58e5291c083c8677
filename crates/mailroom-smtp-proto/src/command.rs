//! SMTP command syntax (RFC 5321 §4.1) and the MAIL/RCPT parameters of the
//! extensions we offer (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
//! RFC 3030 BDAT, RFC 4954 AUTH).
//!
//! [`Command::parse`] only checks syntax; whether a command is allowed now
//! (sequence, limits, SMTPUTF8 requirements) is the server's business,
//! because it depends on session state.
//!
//! Implementation notes:
//! - Verbs and parameter keywords are case-insensitive (RFC 5321 §2.4).
//! - We are lenient where RFC 5321 §4.1.2 is commonly broken and the
//!   meaning is still clear: extra spaces between arguments, and one space
//!   after `FROM:`/`TO:`. Paths must still be in angle brackets.

use mailroom_types::{Address, Domain, Secret};

use crate::reply::Reply;
use crate::reply::fixed::*;

/// The sender of a transaction (RFC 5321 §4.1.1.2 `Reverse-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `MAIL FROM:<>`: the null path used by bounces, so that a bounce is
    /// never bounced again (RFC 5321 §4.5.5).
    Null,
    /// An ordinary sender address (any source route dropped).
    Address(Address),
}

/// One recipient (RFC 5321 §4.1.1.3 `Forward-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `RCPT TO:<Postmaster>` without a domain, which every server MUST
    /// accept (RFC 5321 §4.1.1.3); it means the postmaster of this host.
    Postmaster,
    /// An ordinary recipient address (any source route dropped).
    Address(Address),
}

/// The declared body type (RFC 6152 §3 `BODY=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`: only 7-bit octets.
    SevenBit,
    /// `BODY=8BITMIME`: 8-bit MIME content; delivery needs no conversion,
    /// but a relay must know to downgrade toward non-8BITMIME servers.
    EightBitMime,
}

/// The MAIL parameters we understand (RFC 5321 §4.1.1.2 `Mail-parameters`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`: the client's estimate of the message size in octets
    /// (RFC 1870 §6), used to refuse big messages before they are sent.
    pub size: Option<u64>,
    /// `BODY=`: the declared body type (RFC 6152).
    pub body: Option<Body>,
    /// `SMTPUTF8`: the transaction may carry UTF-8 addresses and headers
    /// (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `AUTH=`: the identity that submitted the message to the client, as
    /// the client claims it (RFC 4954 §5), xtext-decoded; `<>` when the
    /// client does not know it. Informational: nothing acts on it.
    pub auth: Option<String>,
}

impl MailParams {
    /// The keyword of the first parameter present, used to name it in a
    /// refusal when parameters are not allowed at all (after HELO).
    pub(crate) fn first_name(&self) -> Option<&'static str> {
        if self.size.is_some() {
            Some("SIZE")
        } else if self.body.is_some() {
            Some("BODY")
        } else if self.smtputf8 {
            Some("SMTPUTF8")
        } else if self.auth.is_some() {
            Some("AUTH")
        } else {
            None
        }
    }
}

/// The RCPT parameters we understand: none yet (no DSN), so every RCPT
/// parameter is refused; the type exists so that adding one is not an API
/// break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {}

/// A parsed SMTP command line (RFC 5321 §4.1.1 and RFC 3030 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO domain`: a client without extensions (RFC 5321 §4.1.1.1).
    Helo(String),
    /// `EHLO domain`: a client that wants the extension list.
    Ehlo(String),
    /// `MAIL FROM:<path> [params]`: starts a transaction.
    Mail(ReversePath, MailParams),
    /// `RCPT TO:<path> [params]`: adds a recipient.
    Rcpt(ForwardPath, RcptParams),
    /// `DATA`: the message follows, dot-stuffed, up to `<CRLF>.<CRLF>`.
    Data,
    /// `BDAT size [LAST]`: exactly `size` raw octets follow (RFC 3030 §2).
    Bdat {
        /// The chunk size in octets.
        size: u64,
        /// True for the final chunk of the message.
        last: bool,
    },
    /// `RSET`: aborts the transaction.
    Rset,
    /// `NOOP [text]`: does nothing, keeps the connection alive.
    Noop,
    /// `VRFY string`: asks whether a user exists (we never tell).
    Vrfy(String),
    /// `EXPN string`: asks for a list's members (never supported).
    Expn(String),
    /// `HELP [topic]`: lists the commands.
    Help,
    /// `QUIT`: ends the session.
    Quit,
    /// `STARTTLS` (RFC 3207): parsed so it can be answered precisely.
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The mechanism name, upper-cased (it may be one we do not offer).
        mechanism: String,
        /// The base64 initial response as sent, `=` for an empty one. It is
        /// a credential, so it is kept `Secret` and never shows in `Debug`.
        initial_response: Option<Secret<String>>,
    },
}

impl Command {
    /// Parses one command line, given without its CRLF.
    ///
    /// Errors are the replies to send: `500` for an unknown verb or
    /// non-UTF-8 line, `501` for bad arguments, `555` for unsupported
    /// MAIL/RCPT parameters (RFC 5321 §4.2.4, RFC 1869 §6).
    pub fn parse(line: &[u8]) -> Result<Command, Reply> {
        // RFC 6531 §3.3 allows UTF-8 in commands; anything else is garbage.
        let line = std::str::from_utf8(line).map_err(|_| r500_bad_utf8())?;
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim_matches(' ')),
            None => (line, ""),
        };
        // RFC 5321 §2.4: verbs are case-insensitive.
        match verb.to_ascii_uppercase().as_str() {
            "HELO" => hostname(arg, "HELO hostname").map(Command::Helo),
            "EHLO" => hostname(arg, "EHLO hostname").map(Command::Ehlo),
            "MAIL" => parse_mail(arg),
            "RCPT" => parse_rcpt(arg),
            "DATA" => no_argument(arg, "DATA", Command::Data),
            "BDAT" => parse_bdat(arg),
            "RSET" => no_argument(arg, "RSET", Command::Rset),
            "NOOP" => Ok(Command::Noop),
            "VRFY" => required(arg, "VRFY address").map(Command::Vrfy),
            "EXPN" => required(arg, "EXPN mailing-list").map(Command::Expn),
            "HELP" => Ok(Command::Help),
            "QUIT" => no_argument(arg, "QUIT", Command::Quit),
            // RFC 3207 §4: STARTTLS takes no parameters.
            "STARTTLS" => no_argument(arg, "STARTTLS", Command::StartTls),
            "AUTH" => auth_mechanism(arg),
            _ => Err(r500_unrecognized()),
        }
    }
}

/// Commands such as DATA take nothing (RFC 5321 §4.1.1.4).
fn no_argument(arg: &str, syntax: &str, command: Command) -> Result<Command, Reply> {
    if arg.is_empty() { Ok(command) } else { Err(r501_syntax(syntax)) }
}

fn required(arg: &str, syntax: &str) -> Result<String, Reply> {
    if arg.is_empty() { Err(r501_syntax(syntax)) } else { Ok(arg.to_string()) }
}

/// RFC 5321 §4.1.1.1: one Domain or address-literal. We do not insist on a
/// resolvable or even valid name (many clients send junk); one token of
/// printable characters is enough to log and to answer.
fn hostname(arg: &str, syntax: &str) -> Result<String, Reply> {
    if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(r501_syntax(syntax));
    }
    Ok(arg.to_string())
}

/// RFC 4954 §4: `"AUTH" SP sasl-mech [SP initial-response]`.
fn auth_mechanism(arg: &str) -> Result<Command, Reply> {
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let (Some(mechanism), initial_response, None) = (words.next(), words.next(), words.next()) else {
        return Err(r501_syntax("AUTH mechanism"));
    };
    let initial_response = initial_response.map(|r| Secret::new(r.to_string()));
    Ok(Command::Auth { mechanism: mechanism.to_ascii_uppercase(), initial_response })
}

fn parse_mail(arg: &str) -> Result<Command, Reply> {
    let syntax = || r501_syntax("MAIL FROM:<address>");
    let rest = strip_prefix_ci(arg, "FROM:").ok_or_else(syntax)?;
    let (path, params) = split_path(rest).ok_or_else(syntax)?;
    let reverse_path = match path_mailbox(path).ok_or_else(r501_bad_sender)? {
        "" => ReversePath::Null,
        mailbox => ReversePath::Address(Address::parse(mailbox).map_err(|_| r501_bad_sender())?),
    };
    let params = mail_params(params, "MAIL FROM:<address>")?;
    Ok(Command::Mail(reverse_path, params))
}

fn parse_rcpt(arg: &str) -> Result<Command, Reply> {
    let syntax = || r501_syntax("RCPT TO:<address>");
    let rest = strip_prefix_ci(arg, "TO:").ok_or_else(syntax)?;
    let (path, params) = split_path(rest).ok_or_else(syntax)?;
    let forward_path = match path_mailbox(path).ok_or_else(r501_bad_recipient)? {
        "" => return Err(r501_bad_recipient()),
        // RFC 5321 §4.1.1.3: "Postmaster" without a domain, any case.
        p if p.eq_ignore_ascii_case("postmaster") => ForwardPath::Postmaster,
        mailbox => ForwardPath::Address(Address::parse(mailbox).map_err(|_| r501_bad_recipient())?),
    };
    // We support no RCPT parameter yet (RFC 1869 §6: 555 for unknown ones).
    if let Some((key, _)) = parameters(params, "RCPT TO:<address>")?.first() {
        return Err(r555_unsupported(key));
    }
    Ok(Command::Rcpt(forward_path, RcptParams {}))
}

fn parse_bdat(arg: &str) -> Result<Command, Reply> {
    let syntax = || r501_syntax("BDAT size [LAST]");
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let size = words.next().filter(|w| w.bytes().all(|b| b.is_ascii_digit())).ok_or_else(syntax)?;
    // RFC 3030 §3: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF
    let size = size.parse::<u64>().map_err(|_| syntax())?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax()),
    };
    if words.next().is_some() {
        return Err(syntax());
    }
    Ok(Command::Bdat { size, last })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Splits `[SP]<path>[ params]` into the bracketed path and the parameter
/// text. The closing bracket is found outside quoted strings, since a
/// quoted local part may contain `>` (RFC 5321 §4.1.2 `Quoted-string`).
fn split_path(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if !rest.starts_with('<') {
        return None;
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let (path, after) = rest.split_at(i + 1);
                return match after {
                    "" => Some((path, "")),
                    _ if after.starts_with(' ') => Some((path, after.trim_start_matches(' '))),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    None
}

/// The mailbox inside `<...>`, with any source route removed, or `None`
/// when the path is too long or the route is malformed. An empty result is
/// the null path.
fn path_mailbox(path: &str) -> Option<&str> {
    // RFC 5321 §4.5.3.1.3: a path is at most 256 octets, brackets included.
    if path.len() > 256 {
        return None;
    }
    let inner = path.strip_prefix('<')?.strip_suffix('>')?;
    if !inner.starts_with('@') {
        return Some(inner);
    }
    // RFC 5321 §4.1.1.3 and Appendix C: accept a source route
    // `@a,@b:mailbox`, and ignore it.
    let colon = route_end(inner)?;
    let valid_route =
        inner[..colon].split(',').all(|hop| hop.strip_prefix('@').is_some_and(|d| Domain::parse(d).is_ok()));
    valid_route.then(|| &inner[colon + 1..])
}

/// The index of the `:` ending a source route; colons inside an address
/// literal such as `[IPv6:::1]` do not count.
fn route_end(s: &str) -> Option<usize> {
    let mut in_literal = false;
    for (i, c) in s.char_indices() {
        match c {
            '[' => in_literal = true,
            ']' => in_literal = false,
            ':' if !in_literal => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits `KEY[=VALUE] ...` (RFC 5321 §4.1.2 `esmtp-param`), checking the
/// keyword syntax; values are judged by the parameter they belong to.
fn parameters<'a>(s: &'a str, syntax: &str) -> Result<Vec<(&'a str, Option<&'a str>)>, Reply> {
    let mut out = Vec::new();
    for param in s.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (param, None),
        };
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        let key_ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // esmtp-value excludes "=", SP and controls (RFC 6531 §3.3 adds UTF-8).
        let value_ok = value.is_none_or(|v| !v.chars().any(|c| c == '=' || c.is_control()));
        if !key_ok || !value_ok {
            return Err(r501_syntax(syntax));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn mail_params(s: &str, syntax: &str) -> Result<MailParams, Reply> {
    let mut params = MailParams::default();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in parameters(s, syntax)? {
        let upper = key.to_ascii_uppercase();
        if seen.contains(&upper) {
            return Err(r501_duplicate_param(&upper));
        }
        match upper.as_str() {
            "SIZE" => params.size = Some(size_value(value)?),
            "BODY" => params.body = Some(body_value(value)?),
            // RFC 6531 §3.4: SMTPUTF8 takes no value.
            "SMTPUTF8" if value.is_none() => params.smtputf8 = true,
            "SMTPUTF8" => return Err(r501_bad_param_value("SMTPUTF8")),
            "AUTH" => params.auth = Some(auth_value(value)?),
            // RFC 1869 §6: 555 for a parameter we do not recognise.
            _ => return Err(r555_unsupported(key)),
        }
        seen.push(upper);
    }
    Ok(params)
}

/// RFC 1870 §6: `SIZE=1*20DIGIT`. A number beyond u64 is saturated: it is
/// certainly over any limit, which the server then reports as 552.
fn size_value(value: Option<&str>) -> Result<u64, Reply> {
    match value {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(v.parse().unwrap_or(u64::MAX)),
        _ => Err(r501_bad_param_value("SIZE")),
    }
}

/// RFC 4954 §5: `AUTH=<>` or `AUTH=` an xtext-encoded mailbox
/// (RFC 3461 §4). The mailbox is not parsed further: it is only reported.
fn auth_value(value: Option<&str>) -> Result<String, Reply> {
    value.filter(|v| !v.is_empty()).and_then(xtext_decode).ok_or_else(|| r501_bad_param_value("AUTH"))
}

/// Decodes xtext (RFC 3461 §4): `*( xchar / hexchar )`, where an xchar is
/// `!` to `~` except `+` and `=`, and a hexchar is `+` and two upper-case
/// hex digits. `None` for anything else or a non-UTF-8 result.
fn xtext_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => {
                let hex = |d: u8| match d {
                    b'0'..=b'9' => Some(d - b'0'),
                    b'A'..=b'F' => Some(d - b'A' + 10),
                    _ => None,
                };
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                out.push(high << 4 | low);
            }
            b'!'..=b'~' if b != b'=' => out.push(b),
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 6152 §3: `BODY=7BIT|8BITMIME`. BINARYMIME (RFC 3030 §3) is not
/// offered, so it is refused like any unknown value.
fn body_value(value: Option<&str>) -> Result<Body, Reply> {
    match value {
        Some(v) if v.eq_ignore_ascii_case("7BIT") => Ok(Body::SevenBit),
        Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Ok(Body::EightBitMime),
        Some(v) => Err(r555_unsupported(&format!("BODY={v}"))),
        None => Err(r501_bad_param_value("BODY")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        Command::parse(line.as_bytes()).unwrap_or_else(|r| panic!("{line:?} failed: {r}"))
    }

    fn err(line: &str) -> String {
        match Command::parse(line.as_bytes()) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(r) => r.to_string(),
        }
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(ok("helo client.test"), Command::Helo("client.test".into()));
        assert_eq!(ok("EhLo [192.0.2.1]"), Command::Ehlo("[192.0.2.1]".into()));
        assert_eq!(ok("data"), Command::Data);
        assert_eq!(ok("Rset"), Command::Rset);
        assert_eq!(ok("quit"), Command::Quit);
        assert_eq!(ok("noop anything at all"), Command::Noop);
        assert_eq!(ok("help mail"), Command::Help);
        assert_eq!(ok("vrfy bob"), Command::Vrfy("bob".into()));
        assert_eq!(ok("expn staff"), Command::Expn("staff".into()));
        assert_eq!(ok("starttls"), Command::StartTls);
        let auth = Command::Auth { mechanism: "PLAIN".into(), initial_response: Some(Secret::new("c2VjcmV0".into())) };
        assert_eq!(ok("auth plain c2VjcmV0"), auth);
    }

    #[test]
    fn mail_paths() {
        let plain = Command::Mail(ReversePath::Address(addr("a@x.test")), MailParams::default());
        assert_eq!(ok("MAIL FROM:<a@x.test>"), plain);
        assert_eq!(ok("mail from: <a@x.test>"), plain);
        assert_eq!(ok("MAIL FROM:<@relay.test,@r2.test:a@x.test>"), plain);
        assert_eq!(ok("MAIL FROM:<@[IPv6:::1]:a@x.test>"), plain);
        assert_eq!(ok("MAIL FROM:<>"), Command::Mail(ReversePath::Null, MailParams::default()));
        let quoted = Command::Mail(ReversePath::Address(addr("\"a> b\"@x.test")), MailParams::default());
        assert_eq!(ok("MAIL FROM:<\"a> b\"@x.test>"), quoted);
    }

    #[test]
    fn mail_params_parse() {
        let Command::Mail(_, p) = ok("MAIL FROM:<a@x.test> size=100 Body=8bitmime SMTPUTF8") else { panic!() };
        assert_eq!(p, MailParams { size: Some(100), body: Some(Body::EightBitMime), smtputf8: true, auth: None });
        let Command::Mail(_, p) = ok("MAIL FROM:<a@x.test>  BODY=7BIT ") else { panic!() };
        assert_eq!(p.body, Some(Body::SevenBit));
        let Command::Mail(_, p) = ok("MAIL FROM:<a@x.test> SIZE=99999999999999999999999") else { panic!() };
        assert_eq!(p.size, Some(u64::MAX));
    }

    #[test]
    fn mail_errors() {
        assert_eq!(err("MAIL"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL TO:<a@x.test>"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL FROM:a@x.test"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL FROM:<a@x.test"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL FROM:<a@x.test>SIZE=1"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL FROM:<a@x.test> =1"), "501 5.5.4 Syntax: MAIL FROM:<address>");
        assert_eq!(err("MAIL FROM:<a b@x.test>"), "501 5.1.7 Bad sender address syntax");
        assert_eq!(err("MAIL FROM:<@bad_route:a@x.test>"), "501 5.1.7 Bad sender address syntax");
        assert_eq!(err("MAIL FROM:<a@x.test> SIZE=1k"), "501 5.5.4 Bad SIZE parameter syntax");
        assert_eq!(err("MAIL FROM:<a@x.test> SIZE"), "501 5.5.4 Bad SIZE parameter syntax");
        assert_eq!(err("MAIL FROM:<a@x.test> SMTPUTF8=yes"), "501 5.5.4 Bad SMTPUTF8 parameter syntax");
        assert_eq!(err("MAIL FROM:<a@x.test> BODY=BINARYMIME"), "555 5.5.4 Unsupported option: BODY=BINARYMIME");
        assert_eq!(err("MAIL FROM:<a@x.test> BODY=9BIT"), "555 5.5.4 Unsupported option: BODY=9BIT");
        assert_eq!(err("MAIL FROM:<a@x.test> RET=HDRS"), "555 5.5.4 Unsupported option: RET");
        assert_eq!(err("MAIL FROM:<a@x.test> SIZE=1 size=2"), "501 5.5.4 Duplicate parameter: SIZE");
    }

    /// A domain of exactly `n` octets built from valid labels.
    fn domain_of_len(n: usize) -> String {
        let mut d = String::new();
        while n - d.len() > 60 {
            d.push_str(&"d".repeat(50));
            d.push('.');
        }
        d.push_str(&"e".repeat(n - d.len()));
        d
    }

    #[test]
    fn path_length_limit_is_256_octets_with_brackets() {
        // RFC 5321 §4.5.3.1.3: 256 octets including the angle brackets.
        let at_limit = format!("<{}@{}>", "a".repeat(64), domain_of_len(256 - 2 - 65));
        assert_eq!(at_limit.len(), 256);
        assert!(matches!(ok(&format!("RCPT TO:{at_limit}")), Command::Rcpt(..)));
        assert!(matches!(ok(&format!("MAIL FROM:{at_limit}")), Command::Mail(..)));
        let over = format!("<{}@{}>", "a".repeat(64), domain_of_len(256 - 2 - 64));
        assert_eq!(over.len(), 257);
        assert_eq!(err(&format!("RCPT TO:{over}")), "501 5.1.3 Bad recipient address syntax");
        assert_eq!(err(&format!("MAIL FROM:{over}")), "501 5.1.7 Bad sender address syntax");
    }

    #[test]
    fn rcpt_paths_and_params() {
        assert_eq!(ok("RCPT TO:<b@x.test>"), Command::Rcpt(ForwardPath::Address(addr("b@x.test")), RcptParams {}));
        assert_eq!(ok("rcpt to: <PostMaster>"), Command::Rcpt(ForwardPath::Postmaster, RcptParams {}));
        let pm = Command::Rcpt(ForwardPath::Address(addr("postmaster@x.test")), RcptParams {});
        assert_eq!(ok("RCPT TO:<postmaster@x.test>"), pm);
        assert_eq!(err("RCPT TO:<>"), "501 5.1.3 Bad recipient address syntax");
        assert_eq!(err("RCPT TO:<bob>"), "501 5.1.3 Bad recipient address syntax");
        assert_eq!(err("RCPT FROM:<b@x.test>"), "501 5.5.4 Syntax: RCPT TO:<address>");
        assert_eq!(err("RCPT"), "501 5.5.4 Syntax: RCPT TO:<address>");
        assert_eq!(err("RCPT TO:<b@x.test> NOTIFY=NEVER"), "555 5.5.4 Unsupported option: NOTIFY");
    }

    #[test]
    fn bdat_syntax() {
        assert_eq!(ok("BDAT 10"), Command::Bdat { size: 10, last: false });
        assert_eq!(ok("bdat 0 last"), Command::Bdat { size: 0, last: true });
        for bad in ["BDAT", "BDAT x", "BDAT -1", "BDAT 10 FIRST", "BDAT 1 LAST x", "BDAT 99999999999999999999999"] {
            assert_eq!(err(bad), "501 5.5.4 Syntax: BDAT size [LAST]", "{bad}");
        }
    }

    #[test]
    fn argument_errors() {
        assert_eq!(err("HELO"), "501 5.5.4 Syntax: HELO hostname");
        assert_eq!(err("EHLO "), "501 5.5.4 Syntax: EHLO hostname");
        assert_eq!(err("EHLO a b"), "501 5.5.4 Syntax: EHLO hostname");
        assert_eq!(err("DATA x"), "501 5.5.4 Syntax: DATA");
        assert_eq!(err("RSET x"), "501 5.5.4 Syntax: RSET");
        assert_eq!(err("QUIT now"), "501 5.5.4 Syntax: QUIT");
        assert_eq!(err("VRFY"), "501 5.5.4 Syntax: VRFY address");
        assert_eq!(err("EXPN"), "501 5.5.4 Syntax: EXPN mailing-list");
        assert_eq!(err("STARTTLS x"), "501 5.5.4 Syntax: STARTTLS");
        assert_eq!(err("AUTH"), "501 5.5.4 Syntax: AUTH mechanism");
        assert_eq!(err("AUTH PLAIN a b"), "501 5.5.4 Syntax: AUTH mechanism");
    }

    #[test]
    fn unknown_and_invalid_lines() {
        assert_eq!(err(""), "500 5.5.2 Error: command not recognized");
        assert_eq!(err("FOO bar"), "500 5.5.2 Error: command not recognized");
        assert_eq!(err("MAILFROM:<a@x.test>"), "500 5.5.2 Error: command not recognized");
        let r = Command::parse(b"HELO \xff").unwrap_err();
        assert_eq!(r.to_string(), "500 5.5.2 Error: command line is not valid UTF-8");
    }

    #[test]
    fn auth_command() {
        let auth = |m: &str, ir: Option<&str>| Command::Auth {
            mechanism: m.into(),
            initial_response: ir.map(|r| Secret::new(r.to_string())),
        };
        assert_eq!(ok("AUTH login"), auth("LOGIN", None));
        assert_eq!(ok("AUTH  Plain  ="), auth("PLAIN", Some("=")));
        assert_eq!(ok("AUTH X-UNKNOWN"), auth("X-UNKNOWN", None));
        // The initial response is a credential: never in Debug output.
        assert!(!format!("{:?}", ok("AUTH PLAIN c2VjcmV0")).contains("c2VjcmV0"));
    }

    #[test]
    fn mail_auth_parameter_is_xtext() {
        // RFC 4954 §5 and RFC 3461 §4.
        for (param, expected) in
            [("AUTH=<>", "<>"), ("auth=bob@x.test", "bob@x.test"), ("AUTH=a+2Bb+3D@x.test", "a+b=@x.test")]
        {
            let Command::Mail(_, p) = ok(&format!("MAIL FROM:<a@x.test> {param}")) else { panic!() };
            assert_eq!(p.auth.as_deref(), Some(expected), "{param}");
        }
        for bad in ["AUTH", "AUTH=", "AUTH=a+2b@x.test", "AUTH=a+2", "AUTH=a+ZZ", "AUTH=a+FF", "AUTH=jöran@x.test"] {
            assert_eq!(err(&format!("MAIL FROM:<a@x.test> {bad}")), "501 5.5.4 Bad AUTH parameter syntax", "{bad}");
        }
        assert_eq!(err("MAIL FROM:<a@x.test> AUTH=<> AUTH=<>"), "501 5.5.4 Duplicate parameter: AUTH");
    }

    #[test]
    fn utf8_addresses_parse() {
        let Command::Mail(ReversePath::Address(a), _) = ok("MAIL FROM:<jöran@bücher.test> SMTPUTF8") else {
            panic!()
        };
        assert!(!a.is_ascii());
    }
}
