//! The CAPABILITY list per state (RFC 9051 §6.1.1, §7.2.2): only what may
//! be used now is announced, so a client never tries a password in the
//! clear where that is refused.

/// What the server offers after login: every extension the command model
/// and the driver implement.
const AUTHENTICATED: &[&str] = &[
    "IMAP4rev2",
    "IMAP4rev1",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "CONDSTORE",
    "QRESYNC",
    "BINARY",
    "STATUS=SIZE",
    "WITHIN",
];

/// The capabilities of the not-authenticated state. `plaintext`: a
/// password may be sent (else LOGINDISABLED, RFC 9051 §6.2.3, and no
/// AUTH=PLAIN); `starttls`: STARTTLS may be used (RFC 9051 §6.2.1).
pub(crate) fn before_login(plaintext: bool, starttls: bool) -> Vec<&'static str> {
    let mut caps = vec!["IMAP4rev2", "IMAP4rev1"];
    if starttls {
        caps.push("STARTTLS");
    }
    if !plaintext {
        caps.push("LOGINDISABLED");
    }
    caps.extend(["SASL-IR", "LITERAL+", "ID", "ENABLE"]);
    if plaintext {
        caps.push("AUTH=PLAIN");
    }
    caps
}

/// The capabilities once logged in.
pub(crate) fn after_login() -> Vec<&'static str> {
    AUTHENTICATED.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(before_login(true, false).join(" "), "IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ID ENABLE AUTH=PLAIN");
        assert_eq!(
            before_login(false, true).join(" "),
            "IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED SASL-IR LITERAL+ ID ENABLE"
        );
        assert!(after_login().contains(&"QRESYNC"));
    }
}
