//! Integration tests of the SMTP driver: transcripts (client lines in, exact
//! server replies out) over an in-memory duplex with a temp store.

mod authenticate;
mod client;
mod dkim;
mod harness;
mod queue;
mod transcripts;
