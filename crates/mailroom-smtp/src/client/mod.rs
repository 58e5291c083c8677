//! The outbound SMTP client the queue runner delivers with (RFC 5321):
//! one [`Connection`] per server, reused for message after message.
//!
//! - [`reply`]: replies read and bounded, with RFC 3463 codes.
//! - [`extensions`]: what the EHLO reply offers.
//! - `session` (private): connect, greeting, EHLO/HELO, STARTTLS, AUTH, QUIT.
//! - `transaction` (private): MAIL, RCPT, DATA or BDAT, pipelined when offered.
//! - [`tls`]: opportunistic STARTTLS that records certificate verification.
//!
//! What it deliberately does not do: resolve MX records, retry, or decide
//! what a failure means for the queue; it reports each recipient's outcome
//! and whether a failure condemns the destination ([`ClientError::is_permanent`]).

mod data;
pub mod extensions;
pub mod reply;
mod session;
pub mod tls;
mod transaction;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_types::Secret;

pub use extensions::Extensions;
pub use reply::Reply;
pub use tls::TlsInfo;

/// How the client behaves toward every server it delivers to.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our host name, sent in EHLO/HELO.
    pub helo: String,
    /// Time allowed for the TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for each reply but the last of a message, and for the
    /// TLS handshake (RFC 5321 §4.5.3.2: five minutes).
    pub command_timeout: Duration,
    /// Time allowed for writing the message and for the reply after it
    /// (RFC 5321 §4.5.3.2: ten minutes for the final reply).
    pub data_timeout: Duration,
    /// Whether to use STARTTLS.
    pub tls: TlsPolicy,
    /// Login for a smarthost, sent only under TLS (or to loopback).
    pub auth: Option<Credentials>,
    /// Trust anchors to verify server certificates against, for the
    /// record only ([`TlsInfo::certificate_verified`]); without them no
    /// certificate counts as verified.
    pub roots: Option<Arc<rustls::RootCertStore>>,
    /// The longest reply line accepted, in octets without CRLF (RFC 5321
    /// §4.5.3.1.5 allows 512; servers exceed it).
    pub max_reply_line: usize,
    /// The most lines one reply may have (an EHLO reply is the longest).
    pub max_reply_lines: usize,
}

impl ClientConfig {
    /// The RFC 5321 timeouts, opportunistic TLS, no login.
    pub fn new(helo: impl Into<String>) -> ClientConfig {
        ClientConfig {
            helo: helo.into(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(10 * 60),
            tls: TlsPolicy::Opportunistic,
            auth: None,
            roots: None,
            max_reply_line: 4096,
            max_reply_lines: 100,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig::new("localhost")
    }
}

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never, even when offered.
    Disabled,
    /// When offered (RFC 7435); certificate problems are logged, never
    /// fatal, and a failed handshake is followed by a new plain connection.
    Opportunistic,
    /// Always: a server without STARTTLS, or a failed handshake, is an error.
    Required,
}

/// A login for a smarthost (RFC 4954), by AUTH PLAIN or else LOGIN.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret<String>,
}

/// The envelope of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; `None` is the null path `<>` of bounces.
    pub sender: Option<String>,
    /// The forward paths, without angle brackets.
    pub recipients: Vec<String>,
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The server took responsibility for the message (the final reply).
    Delivered(Reply),
    /// Try again later (a 4xx, a 421, or a reply out of sequence).
    Transient(Reply),
    /// Give up and bounce (a 5xx).
    Permanent(Reply),
}

impl RecipientOutcome {
    /// The reply the outcome rests on.
    pub fn reply(&self) -> &Reply {
        match self {
            RecipientOutcome::Delivered(r) | RecipientOutcome::Transient(r) | RecipientOutcome::Permanent(r) => r,
        }
    }

    /// A failure from a reply that is not the final one: 5xx is
    /// permanent, anything else (4xx, or a code out of sequence) transient.
    fn failure(reply: Reply) -> RecipientOutcome {
        if reply.is_permanent() { RecipientOutcome::Permanent(reply) } else { RecipientOutcome::Transient(reply) }
    }

    /// The outcome of the reply after the message.
    fn last(reply: Reply) -> RecipientOutcome {
        if reply.is_positive() { RecipientOutcome::Delivered(reply) } else { RecipientOutcome::failure(reply) }
    }
}

/// Why a connection could not be opened or a transaction not finished.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection failed.
    #[error("connecting: {0}")]
    Connect(io::Error),
    /// No reply (or no progress) within the stage's time limit.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// Reading or writing failed, or the server closed the connection.
    #[error("I/O: {0}")]
    Io(io::Error),
    /// The server broke the protocol: a malformed or oversized reply.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The greeting was not 220.
    #[error("greeting: {0}")]
    Greeting(Reply),
    /// EHLO failed, and HELO too when EHLO got a 5xx.
    #[error("EHLO/HELO refused: {0}")]
    Ehlo(Reply),
    /// TLS is required but the server does not offer STARTTLS.
    #[error("TLS required but STARTTLS not offered")]
    TlsRequired,
    /// STARTTLS was refused or the handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The login was refused.
    #[error("authentication failed: {0}")]
    Auth(Reply),
    /// Credentials are configured but the connection is neither under TLS
    /// nor to loopback.
    #[error("refusing to send credentials without TLS")]
    AuthWithoutTls,
    /// Credentials are configured but the server offers neither PLAIN nor
    /// LOGIN (or no AUTH at all).
    #[error("no usable AUTH mechanism offered (PLAIN, LOGIN)")]
    AuthUnavailable,
    /// The server said 421: it is closing the connection.
    #[error("server closing the connection: {0}")]
    Closed(Reply),
    /// The connection failed earlier or was closed by the server.
    #[error("the connection is no longer usable")]
    Unusable,
}

impl ClientError {
    /// Whether the server refused every message to it, for good: a 5xx
    /// greeting, or a 5xx to both EHLO and HELO. Everything else (refused
    /// connections, timeouts, 4xx, TLS trouble) may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            ClientError::Greeting(r) | ClientError::Ehlo(r) => r.is_permanent(),
            _ => false,
        }
    }
}

/// One SMTP session with one server, plain or under TLS.
pub struct Connection {
    wire: wire::Wire,
    peer: SocketAddr,
    server_name: String,
    extensions: Extensions,
    tls: Option<TlsInfo>,
    usable: bool,
    command_timeout: Duration,
    data_timeout: Duration,
}

impl Connection {
    /// The TLS session, when STARTTLS succeeded.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// What the server's last EHLO reply offered (nothing after HELO).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The name the server was reached by (the MX host).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Whether another message may be sent: false after an I/O error, a
    /// timeout, a protocol violation, or a 421.
    pub fn is_usable(&self) -> bool {
        self.usable
    }
}
