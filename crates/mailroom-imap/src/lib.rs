//! Mailroom's IMAP front end (RFC 9051, IMAP4rev1 clients too): the tokio
//! driver that runs the sans-IO [`mailroom_imap_proto::Server`] over a
//! socket and answers its commands with the store and services.
//!
//! - [`listener`]: the accept loop (shared with every protocol).
//! - [`session`]: one connection; generic over the stream so transcript
//!   tests run it in memory. Commands are carried out by `mailboxes`
//!   (LIST, CREATE, STATUS, APPEND...), `selected` (the selected
//!   mailbox's view: sequence numbers and the updates other sessions
//!   cause), `fetch`, `search` and `messages` (STORE, COPY, MOVE,
//!   EXPUNGE).
//!
//! Every session sees the store's change feed: arrivals, flag changes and
//! expunges made anywhere (SMTP, POP3, other IMAP sessions) reach it as
//! untagged responses at the moments RFC 9051 §7 allows, and at once in
//! IDLE (RFC 2177).

mod fetch;
mod flags;
pub mod listener;
mod mailboxes;
mod messages;
mod search;
mod selected;
pub mod session;
mod uidmap;

use std::sync::Arc;
use std::time::Duration;

use mailroom_services::auth::Authenticator;
use mailroom_services::net::ConnectionLimiter;
use mailroom_store::AnyStore;
use mailroom_types::{Clock, IdGenerator};

pub use listener::serve;
pub use session::run_session;

/// Everything an IMAP session needs, shared by all sessions of a listener.
pub struct ImapContext {
    /// The name in the greeting.
    pub hostname: String,
    /// Protocol limits handed to the state machine.
    pub limits: mailroom_imap_proto::Limits,
    /// Idle time allowed between commands and in IDLE.
    pub idle_timeout: Duration,
    /// Where the mailboxes are.
    pub store: AnyStore,
    /// Password checks and their throttling, shared with other protocols.
    pub auth: Arc<Authenticator>,
    /// Connection limits shared with every other listener.
    pub connections: Arc<ConnectionLimiter>,
    /// Arrival times of appended messages without a date, and WITHIN.
    pub clock: Arc<dyn Clock>,
    /// Blob ids for appended messages.
    pub ids: Arc<IdGenerator>,
}
