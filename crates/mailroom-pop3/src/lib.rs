//! Mailroom's POP3 front end (RFC 1939, RFC 2449, RFC 5034): the tokio
//! driver that runs the sans-IO [`mailroom_pop3_proto::Server`] over a
//! socket and answers its decisions with the store and services.
//!
//! - [`listener`]: the accept loop (shared with every protocol).
//! - [`session`]: one connection; generic over the stream so transcript
//!   tests run it in memory.
//! - [`locks`]: one POP3 session per maildrop at a time (RFC 1939 §8).
//!
//! The maildrop is the account's INBOX, as a snapshot taken at login:
//! messages arriving later appear in the next session. DELE only marks;
//! the marked messages are expunged when QUIT moves the session to UPDATE,
//! and a dropped connection deletes nothing.

pub mod listener;
pub mod locks;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use mailroom_services::auth::Authenticator;
use mailroom_services::net::ConnectionLimiter;
use mailroom_store::AnyStore;

pub use listener::serve;
pub use locks::MaildropLocks;
pub use session::run_session;

/// Everything a POP3 session needs, shared by all sessions of a listener.
pub struct Pop3Context {
    /// The name in the greeting.
    pub hostname: String,
    /// Protocol limits handed to the state machine.
    pub limits: mailroom_pop3_proto::Limits,
    /// Idle time allowed between commands.
    pub idle_timeout: Duration,
    /// Where the maildrops are.
    pub store: AnyStore,
    /// Password checks and their throttling, shared with other protocols.
    pub auth: Arc<Authenticator>,
    /// Which maildrops have a session in TRANSACTION state.
    pub locks: Arc<MaildropLocks>,
    /// Connection limits shared with every other listener.
    pub connections: Arc<ConnectionLimiter>,
}
