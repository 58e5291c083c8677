//! A sans-IO IMAP server (RFC 9051 IMAP4rev2, serving IMAP4rev1 clients
//! too) with the extensions Mailroom offers: LITERAL+ (RFC 7888), SASL-IR
//! (RFC 4959), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
//! NAMESPACE (RFC 2342), UIDPLUS (RFC 4315), MOVE (RFC 6851), UNSELECT
//! (RFC 3691), LIST-EXTENDED (RFC 5258), CHILDREN, SPECIAL-USE (RFC 6154),
//! LIST-STATUS (RFC 5819), ESEARCH (RFC 4731), CONDSTORE and QRESYNC
//! (RFC 7162), BINARY (RFC 3516), STATUS=SIZE (RFC 8438), WITHIN
//! (RFC 5032), UTF8=ACCEPT (RFC 6855).
//!
//! The [`Server`] owns what the RFCs fix: session states, command framing
//! and literals with their limits, syntax (through imap-codec, wrapped so
//! its alpha API does not leak), CAPABILITY, LOGIN/AUTHENTICATE, ENABLE,
//! IDLE and LOGOUT. Every mailbox and message operation is a [`Command`]
//! (module [`command`]) the driver carries out, writing untagged data with
//! the encoders of [`response`] and answering with a tagged status.
//!
//! What it deliberately does not do: sockets, timers, storage, TLS,
//! password checks, mailbox state (message numbers, flags, modseqs belong
//! to the driver's view of the selected mailbox).
//!
//! Main types: [`Server`], [`Event`], [`command::Command`],
//! [`sequence::SequenceSet`], [`response::Code`],
//! [`response::FetchResponse`].
#![warn(missing_docs)]

mod capability;
pub mod command;
mod framing;
pub mod mailbox;
pub mod message;
pub mod response;
pub mod sequence;
mod server;
pub mod wire;

pub use command::Command;
pub use server::{DELIMITER, Deferred, Event, KEEP_OUTPUT_CAPACITY, Limits, Server, ServerConfig, SessionState};
