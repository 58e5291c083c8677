//! Mailroom's services: what the protocol front ends share.
//!
//! - [`config`]: the TOML configuration, its defaults and validation.
//! - [`accounts`]: password hashing and the administrative operations on
//!   domains, accounts and aliases, with their validation.
//! - [`authenticate`]: SPF, DKIM and DMARC checks of received mail, the
//!   `Authentication-Results:` field, and removal of forged ones.
//! - [`auth`]: password logins with throttling that reveals no user names.
//! - [`delivery`]: local delivery of an accepted message into mailboxes.
//! - [`dkim`]: DKIM keys (`data_dir/dkim`) and the signatures of outbound mail.
//! - [`dns`]: the process's one resolver (MX, addresses, TXT), cached.
//! - [`dsn`]: delivery status notifications (RFC 3464).
//! - [`message`]: small helpers over mail-parser (the header cache).
//! - [`net`]: what every listener shares: connection limits and shutdown.
//! - [`sendfile`]: stored message bytes sent to a plain TCP client straight
//!   from the page cache.
//! - [`submission`]: the rules of authenticated submission (sender
//!   ownership, rate limit, `Date:` and `Message-ID:`) and the
//!   [`submission::Outbound`] path that commits mail and wakes the queue.
//! - [`tls`]: the TLS identity: configured, or self-signed once.
//!
//! Front ends (SMTP, and later IMAP, POP3, webmail) never call each other;
//! they meet here and in the store. This crate reads no wall clock and no
//! environment: it receives a [`mailroom_types::Clock`] and a [`config::Config`].

pub mod accounts;
pub mod auth;
pub mod authenticate;
pub mod config;
pub mod delivery;
pub mod dkim;
pub mod dns;
pub mod dsn;
pub mod message;
pub mod net;
pub mod sendfile;
pub mod submission;
pub mod tls;
