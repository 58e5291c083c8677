//! End-to-end tests of the `mailroom` program: real clients, the real
//! binary, crashes and graceful shutdown, the webmail in a headless
//! Chromium. Everything binds loopback port 0.

mod cli;
mod common;
mod crash;
mod dkim;
mod e2e;
mod imap;
mod limits;
mod outbound;
mod pop3;
mod shutdown;
mod tls;
mod webmail;
mod webmail_browser;
