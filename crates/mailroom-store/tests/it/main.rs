//! Integration tests of the SQLite store: the whole conformance suite in a
//! temporary directory, and the schema migrations.

mod conformance;
mod migrate;
mod summaries;

use std::path::Path;
use std::sync::Arc;

use mailroom_store::{SqliteStore, StoreOptions};
use mailroom_types::FixedClock;

/// Options for a store in `dir` with a clock that never moves, so every
/// UIDVALIDITY is handed out "in the same second".
pub fn options(dir: &Path) -> StoreOptions {
    StoreOptions::new(dir, Arc::new(FixedClock::at_unix(1_800_000_000)))
}

/// Opens the store in `dir`, panicking on failure.
pub async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&options(dir)).await.expect("open store")
}
