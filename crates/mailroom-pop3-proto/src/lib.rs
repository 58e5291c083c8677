//! A sans-IO POP3 server (RFC 1939) with the extensions Mailroom offers:
//! CAPA, RESP-CODES, PIPELINING, TOP, UIDL, USER, EXPIRE and
//! IMPLEMENTATION (RFC 2449), the AUTH-RESP-CODE and SYS response codes
//! (RFC 3206), and SASL authentication with the PLAIN mechanism (RFC 5034,
//! RFC 4616).
//!
//! The [`Server`] owns what the RFCs fix: the session states
//! (AUTHORIZATION → TRANSACTION → UPDATE), command syntax, line limits,
//! message numbering and deletion marks over a snapshot of the maildrop,
//! pipelining, and byte-stuffing of message content. It does no I/O and
//! makes no policy or storage decision: bytes go in through
//! [`Server::feed`]; output comes out of [`Server::take_output`]; decisions
//! (are these credentials good, what does this message contain, were the
//! marked messages removed) are [`Event`]s the driver answers with
//! [`Server::accept_login`], [`Server::message`], [`Server::update_done`]
//! and their negative counterparts.
//!
//! What it deliberately does not do: sockets, timers, storage, TLS (the
//! driver says with [`ServerConfig::allow_plaintext`] whether passwords may
//! be sent), password checks, and login throttling.
//!
//! Protocol refusals are values ([`Reply`]), never errors.
#![warn(missing_docs)]

mod command;
mod content;
mod reply;
mod server;

pub use reply::{Code, Reply};
pub use server::{Event, KEEP_OUTPUT_CAPACITY, Limits, MaildropEntry, Server, ServerConfig};
