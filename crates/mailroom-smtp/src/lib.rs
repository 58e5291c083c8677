//! Mailroom's SMTP front end (RFC 5321): the tokio driver that runs the
//! sans-IO [`mailroom_smtp_proto::Server`] over a socket and answers its
//! decisions with the store and services.
//!
//! - [`listener`]: the accept loop, connection limits, graceful shutdown.
//! - [`session`]: one connection: read, feed, decide, write; generic over
//!   the stream so tests run it over an in-memory duplex.
//! - [`trace`]: the `Return-Path:` and `Received:` headers (RFC 5321 §4.4).
//! - [`client`]: the outbound SMTP client; [`QueueRunner`] (with the
//!   private `route` and `notice` modules): delivery of the queue to
//!   other domains' servers, retries and bounces.
//!
//! - [`submit`]: the submission role's decisions (RFC 6409): logins,
//!   sender ownership, rate limit, and handing mail to the queue.
//!
//! - [`submit`]: the submission role's decisions (RFC 6409): logins,
//!   sender ownership, rate limit, and handing mail to the queue.
//!
//! What it deliberately does not do: parse SMTP (the proto crate does), or
//! know SQL (the store does). The `smtp` listener accepts mail for local
//! domains only: it is never an open relay. Only an authenticated user of
//! a submission listener may send mail to other domains.

pub mod client;
mod content;
pub mod listener;
mod notice;
mod route;
mod runner;
pub mod session;
mod sink;
mod submit;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use mailroom_services::auth::Authenticator;
use mailroom_services::authenticate::InboundChecks;
use mailroom_services::dkim::DkimKeys;
use mailroom_services::net::ConnectionLimiter;
use mailroom_services::submission::{Outbound, RateLimiter};
use mailroom_store::AnyStore;
use mailroom_types::{Clock, IdGenerator};

pub use listener::serve;
pub use runner::QueueRunner;
pub use session::run_session;

/// Everything an SMTP session needs, shared by all sessions of a listener.
pub struct SmtpContext {
    /// The name in the greeting and in `Received:` headers.
    pub hostname: String,
    /// Protocol limits handed to the state machine.
    pub limits: mailroom_smtp_proto::Limits,
    /// Idle time allowed while waiting for a command.
    pub command_timeout: Duration,
    /// Idle time allowed while waiting for message data.
    pub data_timeout: Duration,
    /// Where mail is delivered.
    pub store: AnyStore,
    /// The time source for `Received:` dates and INTERNALDATE.
    pub clock: Arc<dyn Clock>,
    /// Queue and blob ids.
    pub ids: Arc<IdGenerator>,
    /// Connection limits shared with every other listener.
    pub connections: Arc<ConnectionLimiter>,
    /// Which listener this is: the MTA or a submission port.
    pub role: Role,
    /// SPF, DKIM and DMARC checks of received mail (the MTA role only;
    /// `None` checks nothing and adds no `Authentication-Results:`).
    pub inbound: Option<Arc<InboundChecks>>,
}

/// What a listener is for.
#[derive(Clone)]
pub enum Role {
    /// Port 25: mail from anyone, for local domains only.
    Mta,
    /// Ports 587 and 465: mail from authenticated users, to anywhere.
    Submission(Arc<SubmissionPolicy>),
}

/// What the submission role needs besides the store.
pub struct SubmissionPolicy {
    /// Checks passwords, throttling failures.
    pub auth: Arc<Authenticator>,
    /// Each user's sending rate, shared with the webmail.
    pub rate: Arc<RateLimiter>,
    /// Commits accepted mail and wakes the queue runner.
    pub outbound: Outbound<AnyStore>,
    /// Signs each submitted message from a domain with DKIM keys.
    pub dkim: Arc<DkimKeys>,
}
