//! A sans-IO SMTP server (RFC 5321) with the extensions Mailroom offers:
//! PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
//! ENHANCEDSTATUSCODES (RFC 2034, codes from RFC 3463), SMTPUTF8 (RFC 6531),
//! CHUNKING (RFC 3030) and AUTH (RFC 4954) with the PLAIN (RFC 4616) and
//! LOGIN mechanisms.
//!
//! The [`Server`] owns what the RFCs fix: command order, syntax, line and
//! message limits, dot-unstuffing, BDAT chunk counting, and the refusal of
//! bare CR and LF that makes SMTP smuggling impossible. It does no I/O and
//! makes no policy decision: bytes go in through [`Server::feed`]; output
//! comes out of [`Server::take_output`]; decisions (is this sender welcome,
//! is this recipient ours, is the message stored) are [`Event`]s the driver
//! answers with [`Server::accept`] or [`Server::reject`]. AUTH is run to
//! the end here (challenges, base64, the PLAIN message); the credentials
//! are an [`Event::Auth`] decision.
//!
//! What it deliberately does not do: sockets, timers, storage, TLS,
//! checking passwords.
//!
//! Protocol refusals are values ([`Reply`]), never errors.
#![warn(missing_docs)]

mod command;
mod reply;
mod sasl;
mod server;

pub use command::{Body, Command, ForwardPath, MailParams, RcptParams, ReversePath};
pub use reply::{EnhancedCode, Reply};
pub use sasl::Mechanism;
pub use server::{Event, Limits, Server, ServerConfig};
