//! Integration tests of the IMAP driver: transcripts (client lines in,
//! exact server replies out) over an in-memory duplex with a temp store and
//! a fixed clock.

mod harness;
mod transcripts;
