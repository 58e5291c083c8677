//! Value types shared by every Mailroom crate.
//!
//! Everything here is plain data with validating constructors, so that an
//! invalid address or a zero UID cannot exist past the parser that made it.
//! The crate does no I/O and reads no clock of its own: time comes in through
//! the [`Clock`] trait, which only the composition root implements with the
//! wall clock.
//!
//! Main types: [`Address`] and [`Domain`] (RFC 5321 §4.1.2, RFC 6531 for
//! UTF-8), the store ids ([`AccountId`], [`MailboxId`], [`Uid`],
//! [`UidValidity`], [`ModSeq`], [`BlobId`], [`QueueId`]), [`Flags`], and
//! [`Secret`] for values that must never reach a log.
#![warn(missing_docs)]

mod address;
mod clock;
mod flags;
mod ids;
mod secret;
pub mod time;

pub use address::{Address, AddressError, Domain};
pub use clock::{Clock, FixedClock, SystemClock};
pub use flags::Flags;
pub use ids::{AccountId, BlobId, DomainId, IdGenerator, MailboxId, ModSeq, QueueId, Uid, UidValidity};
pub use secret::Secret;
