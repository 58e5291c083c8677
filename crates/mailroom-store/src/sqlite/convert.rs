//! Mapping between SQLite and the store's types: errors, ids, times, flags.

use std::time::{Duration, SystemTime};

use mailroom_types::{Address, BlobId, Domain, ModSeq, Uid, UidValidity};
use rusqlite::ErrorCode;

use crate::{Result, SpecialUse, StoreError};

/// Turns SQLite errors into [`StoreError`]s with `.db()`, keeping the
/// temporary/permanent distinction (style §6).
pub(crate) trait Db<T> {
    /// Maps the error, if any.
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(db_error)
    }
}

/// Classifies one SQLite error.
///
/// Busy, locked, full and I/O failures are temporary: the caller answers
/// 4xx/NO and the client retries. A constraint violation that the explicit
/// checks did not catch first is a conflict with stored state. A malformed
/// file or row is corruption. Anything else is an unexpected condition we
/// would rather retry than bounce mail for, so it is temporary too.
pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(format!("constraint violated: {e}")),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// A stored address key back as an [`Address`].
pub(crate) fn address(key: &str) -> Result<Address> {
    Address::parse(key).map_err(|e| StoreError::Corrupt(format!("stored address {key:?}: {e}")))
}

/// A stored domain name back as a [`Domain`].
pub(crate) fn domain(name: &str) -> Result<Domain> {
    Domain::parse(name).map_err(|e| StoreError::Corrupt(format!("stored domain {name:?}: {e}")))
}

/// A stored UID; zero or out of range means a broken row.
pub(crate) fn uid(n: i64) -> Result<Uid> {
    u32::try_from(n).ok().and_then(Uid::new).ok_or_else(|| StoreError::Corrupt(format!("stored UID {n} out of range")))
}

/// A stored UIDVALIDITY.
pub(crate) fn uid_validity(n: i64) -> Result<UidValidity> {
    u32::try_from(n)
        .ok()
        .and_then(UidValidity::new)
        .ok_or_else(|| StoreError::Corrupt(format!("stored UIDVALIDITY {n} out of range")))
}

/// A stored mod-sequence (always positive).
pub(crate) fn modseq(n: i64) -> Result<ModSeq> {
    u64::try_from(n).map(ModSeq).map_err(|_| StoreError::Corrupt(format!("stored modseq {n} is negative")))
}

/// A mod-sequence for a query parameter; RFC 7162 caps them at 2^63-1, so
/// larger values are clamped, which means "everything".
pub(crate) fn modseq_param(m: ModSeq) -> i64 {
    i64::try_from(m.0).unwrap_or(i64::MAX)
}

/// A stored blob id.
pub(crate) fn blob_id(s: &str) -> Result<BlobId> {
    BlobId::parse(s).ok_or_else(|| StoreError::Corrupt(format!("stored blob id {s:?} is malformed")))
}

/// A stored size in octets.
pub(crate) fn size(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("stored size {n} is negative")))
}

/// A size for storage; nothing we store comes near 2^63 octets.
pub(crate) fn size_param(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Unix seconds back as a time.
pub(crate) fn time(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { SystemTime::UNIX_EPOCH + d } else { SystemTime::UNIX_EPOCH - d }
}

/// The stored form of a special-use role: its RFC 6154 attribute.
pub(crate) fn special_use_param(s: Option<SpecialUse>) -> Option<&'static str> {
    s.map(SpecialUse::attribute)
}

/// A stored special-use attribute back as a role.
pub(crate) fn special_use(s: Option<String>) -> Result<Option<SpecialUse>> {
    let Some(s) = s else { return Ok(None) };
    SpecialUse::DEFAULT_MAILBOXES
        .iter()
        .map(|(_, u)| *u)
        .find(|u| u.attribute() == s)
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt(format!("stored special-use {s:?} is unknown")))
}

/// Keywords sorted and deduplicated, checked for what the space-separated
/// storage cannot hold.
///
/// IMAP keywords are atoms (RFC 9051 §9 `flag-keyword`), so the front end
/// never sends whitespace; the check keeps a bug there from corrupting the
/// stored list.
pub(crate) fn normalize_keywords(keywords: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(keywords.len());
    for k in keywords {
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Conflict(format!("invalid keyword {k:?}")));
        }
        out.push(k.clone());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The stored form of normalized keywords.
pub(crate) fn keywords_param(keywords: &[String]) -> String {
    keywords.join(" ")
}

/// Stored keywords back as a list (already sorted and deduplicated).
pub(crate) fn keywords(s: &str) -> Vec<String> {
    s.split(' ').filter(|k| !k.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sorted_deduplicated_and_round_trip() {
        let k = normalize_keywords(&["b".into(), "$Junk".into(), "b".into()]).unwrap();
        assert_eq!(k, ["$Junk", "b"]);
        assert_eq!(keywords(&keywords_param(&k)), k);
        assert!(keywords("").is_empty());
        assert!(normalize_keywords(&["a b".into()]).is_err());
        assert!(normalize_keywords(&[String::new()]).is_err());
    }

    #[test]
    fn times_round_trip_around_the_epoch() {
        assert_eq!(mailroom_types::time::unix_seconds(time(-5)), -5);
        assert_eq!(mailroom_types::time::unix_seconds(time(1_700_000_000)), 1_700_000_000);
    }

    #[test]
    fn busy_is_temporary_and_constraint_is_conflict() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert!(db_error(busy).is_temporary());
        let constraint = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(19), None);
        assert!(matches!(db_error(constraint), StoreError::Conflict(_)));
    }
}
