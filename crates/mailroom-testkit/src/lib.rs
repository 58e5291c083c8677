//! Test-only helpers shared by the protocol crates (a dev-dependency only;
//! it never depends on a front end, which keeps dev-dependency graphs free
//! of cycles).
//!
//! - [`transcript`]: the runner for `*.transcript` session scripts (style
//!   guide §3), protocol-neutral; each protocol's tests supply a
//!   [`transcript::World`] that opens sessions and handles its own
//!   directives.
//! - [`dnsmasq`]: a real DNS server on loopback serving a test's records,
//!   for end-to-end tests of resolution and delivery.

pub mod dnsmasq;
pub mod transcript;
