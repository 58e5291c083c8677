//! Integration tests of the POP3 driver: transcripts (client lines in, exact
//! server replies out) over an in-memory duplex with a temp store, plus a
//! few timing-sensitive cases written as plain tests.

mod harness;
mod sessions;
mod transcripts;
