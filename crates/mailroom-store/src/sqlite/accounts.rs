//! Domains, accounts and aliases: the SQL behind the admin commands and
//! recipient resolution.
//!
//! Write functions run on the writer's connection inside a job's savepoint;
//! read functions run on a pooled reader. Every check that picks an error
//! (duplicate, unknown domain, conflicting alias) is an explicit query in
//! the same transaction, so callers get the precise [`StoreError`] rather
//! than a bare constraint violation.

use mailroom_types::{AccountId, Address, Domain, DomainId};
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use super::mailboxes;
use super::writer::Effects;
use crate::{AccountRecord, AliasRecord, AliasSource, DomainRecord, Resolution, Result, StoreError};

/// The row id of a local domain, if it is one.
fn domain_id(conn: &Connection, name: &Domain) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM domains WHERE name = ?1")
        .db()?
        .query_row([name.as_str()], |r| r.get(0))
        .optional()
        .db()
}

/// The row id of a local domain, or NotFound.
fn require_domain(conn: &Connection, name: &Domain) -> Result<i64> {
    domain_id(conn, name)?.ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
}

/// The row id of the account with this lookup key.
fn account_id(conn: &Connection, key: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM accounts WHERE address = ?1")
        .db()?
        .query_row([key], |r| r.get(0))
        .optional()
        .db()
}

pub(crate) fn add_domain(conn: &Connection, name: &Domain) -> Result<DomainId> {
    if domain_id(conn, name)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("domain {name}")));
    }
    conn.prepare_cached("INSERT INTO domains (name) VALUES (?1)").db()?.execute([name.as_str()]).db()?;
    Ok(DomainId(conn.last_insert_rowid()))
}

pub(crate) fn delete_domain(conn: &Connection, name: &Domain) -> Result<()> {
    let id = require_domain(conn, name)?;
    let (accounts, aliases): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE domain_id = ?1),
                    (SELECT COUNT(*) FROM aliases WHERE domain_id = ?1)",
        )
        .db()?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    if accounts > 0 || aliases > 0 {
        return Err(StoreError::Conflict(format!(
            "domain {name} still has {accounts} account(s) and {aliases} alias(es)"
        )));
    }
    conn.prepare_cached("DELETE FROM domains WHERE id = ?1").db()?.execute([id]).db()?;
    Ok(())
}

pub(crate) fn add_account(conn: &Connection, now: i64, address: &Address, password_hash: &str) -> Result<AccountId> {
    let domain = require_domain(conn, address.domain())?;
    let key = address.key();
    if account_id(conn, &key)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("account {key}")));
    }
    let aliased: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM aliases WHERE source = ?1)")
        .db()?
        .query_row([&key], |r| r.get(0))
        .db()?;
    if aliased {
        return Err(StoreError::Conflict(format!("{key} is already an alias")));
    }
    conn.prepare_cached("INSERT INTO accounts (domain_id, address, password_hash) VALUES (?1, ?2, ?3)")
        .db()?
        .execute((domain, &key, password_hash))
        .db()?;
    let account = AccountId(conn.last_insert_rowid());
    mailboxes::create_defaults(conn, now, account)?;
    Ok(account)
}

pub(crate) fn set_password(conn: &Connection, address: &Address, password_hash: &str) -> Result<()> {
    let key = address.key();
    let n = conn
        .prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE address = ?1")
        .db()?
        .execute((&key, password_hash))
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("account {key}")));
    }
    Ok(())
}

/// Deletes the account; mailboxes, messages, expunge records, subscriptions
/// and aliases pointing at it go by `ON DELETE CASCADE`. Its blobs are handed to the
/// writer, which deletes those no remaining row references after commit.
pub(crate) fn delete_account(conn: &Connection, effects: &mut Effects, address: &Address) -> Result<()> {
    let key = address.key();
    let id = account_id(conn, &key)?.ok_or_else(|| StoreError::NotFound(format!("account {key}")))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE b.account_id = ?1",
        )
        .db()?;
    let mut rows = stmt.query([id]).db()?;
    while let Some(row) = rows.next().db()? {
        let blob: String = row.get(0).db()?;
        effects.released_blobs.push(convert::blob_id(&blob)?);
    }
    drop(rows);
    conn.prepare_cached("DELETE FROM accounts WHERE id = ?1").db()?.execute([id]).db()?;
    Ok(())
}

pub(crate) fn add_alias(conn: &Connection, source: &AliasSource, target: &Address) -> Result<()> {
    let domain = require_domain(conn, source.domain())?;
    let source_key = source.key();
    if let AliasSource::Address(_) = source
        && account_id(conn, &source_key)?.is_some()
    {
        return Err(StoreError::Conflict(format!("{source_key} is an account")));
    }
    let target_key = target.key();
    let Some(target_id) = account_id(conn, &target_key)? else {
        return Err(match domain_id(conn, target.domain())? {
            Some(_) => StoreError::NotFound(format!("account {target_key}")),
            None => StoreError::Conflict(format!("alias target {target_key} is not a local account")),
        });
    };
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO aliases (domain_id, source, target_id) VALUES (?1, ?2, ?3)")
        .db()?
        .execute((domain, &source_key, target_id))
        .db()?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(format!("alias {source_key} -> {target_key}")));
    }
    Ok(())
}

pub(crate) fn delete_alias(conn: &Connection, source: &AliasSource, target: Option<&Address>) -> Result<()> {
    let source_key = source.key();
    let n = match target {
        Some(target) => conn
            .prepare_cached(
                "DELETE FROM aliases WHERE source = ?1
                 AND target_id = (SELECT id FROM accounts WHERE address = ?2)",
            )
            .db()?
            .execute((&source_key, target.key()))
            .db()?,
        None => conn.prepare_cached("DELETE FROM aliases WHERE source = ?1").db()?.execute([&source_key]).db()?,
    };
    if n == 0 {
        let what = match target {
            Some(t) => format!("alias {source_key} -> {}", t.key()),
            None => format!("alias {source_key}"),
        };
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

pub(crate) fn list_domains(conn: &Connection) -> Result<Vec<DomainRecord>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM domains ORDER BY name").db()?;
    let mut rows = stmt.query([]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        let name: String = row.get(1).db()?;
        out.push(DomainRecord { id: DomainId(row.get(0).db()?), name: convert::domain(&name)? });
    }
    Ok(out)
}

fn account_row(row: &rusqlite::Row<'_>) -> Result<AccountRecord> {
    let address: String = row.get(1).db()?;
    Ok(AccountRecord {
        id: AccountId(row.get(0).db()?),
        address: convert::address(&address)?,
        password_hash: row.get(2).db()?,
    })
}

pub(crate) fn list_accounts(conn: &Connection, domain: Option<&Domain>) -> Result<Vec<AccountRecord>> {
    let domain = domain.map(|d| require_domain(conn, d)).transpose()?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, address, password_hash FROM accounts
             WHERE ?1 IS NULL OR domain_id = ?1 ORDER BY address",
        )
        .db()?;
    let mut rows = stmt.query([domain]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(account_row(row)?);
    }
    Ok(out)
}

pub(crate) fn account(conn: &Connection, address: &Address) -> Result<Option<AccountRecord>> {
    let mut stmt = conn.prepare_cached("SELECT id, address, password_hash FROM accounts WHERE address = ?1").db()?;
    let mut rows = stmt.query([address.key()]).db()?;
    match rows.next().db()? {
        Some(row) => account_row(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn list_aliases(conn: &Connection, domain: Option<&Domain>) -> Result<Vec<AliasRecord>> {
    let domain = domain.map(|d| require_domain(conn, d)).transpose()?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.source, t.address FROM aliases a JOIN accounts t ON t.id = a.target_id
             WHERE ?1 IS NULL OR a.domain_id = ?1 ORDER BY a.source, t.address",
        )
        .db()?;
    let mut rows = stmt.query([domain]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        let source: String = row.get(0).db()?;
        let target: String = row.get(1).db()?;
        let source = AliasSource::parse(&source)
            .map_err(|e| StoreError::Corrupt(format!("stored alias source {source:?}: {e}")))?;
        out.push(AliasRecord { source, target: convert::address(&target)? });
    }
    Ok(out)
}

/// Account first, then exact aliases, then the domain's catch-all
/// (RFC 5321 §4.1.1.3: the answer decides the RCPT reply).
pub(crate) fn resolve_recipient(conn: &Connection, address: &Address) -> Result<Resolution> {
    if domain_id(conn, address.domain())?.is_none() {
        return Ok(Resolution::NotLocal);
    }
    let key = address.key();
    if let Some(id) = account_id(conn, &key)? {
        return Ok(Resolution::Accounts(vec![AccountId(id)]));
    }
    let mut stmt = conn.prepare_cached("SELECT target_id FROM aliases WHERE source = ?1 ORDER BY target_id").db()?;
    for source in [key, format!("@{}", address.domain())] {
        let targets = stmt.query_map([&source], |r| r.get(0).map(AccountId)).db()?;
        let targets = targets.collect::<rusqlite::Result<Vec<_>>>().db()?;
        if !targets.is_empty() {
            return Ok(Resolution::Accounts(targets));
        }
    }
    Ok(Resolution::Unknown)
}
