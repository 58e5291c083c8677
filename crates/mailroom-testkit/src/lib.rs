//! Test-only helpers shared by the protocol crates (a dev-dependency only;
//! it never depends on a front end, which keeps dev-dependency graphs free
//! of cycles).
//!
//! - [`transcript`]: the runner for `*.transcript` session scripts (style
//!   guide §3), protocol-neutral; each protocol's tests supply a
//!   [`transcript::World`] that opens sessions and handles its own
//!   directives.

pub mod transcript;
