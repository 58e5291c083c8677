//! Accounts, domains and aliases: password hashing and the administrative
//! operations behind `mailroom domain|user|alias`, with their validation.

use argon2::Argon2;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use mailroom_store::{AccountRecord, AliasRecord, AliasSource, DomainRecord, MailStore, StoreError};
use mailroom_types::{Address, Domain, Secret};

/// Why an administrative operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The text is not a valid address.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress {
        /// What was given.
        input: String,
        /// Why it is invalid.
        reason: mailroom_types::AddressError,
    },
    /// The text is not a valid domain name.
    #[error("invalid domain {input:?}: {reason}")]
    InvalidDomain {
        /// What was given.
        input: String,
        /// Why it is invalid.
        reason: mailroom_types::AddressError,
    },
    /// An empty password was given.
    #[error("the password must not be empty")]
    EmptyPassword,
    /// Hashing failed (out of memory, or a broken parameter set).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &Secret<String>) -> Result<String, AdminError> {
    if password.expose().is_empty() {
        return Err(AdminError::EmptyPassword);
    }
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC hash. A malformed hash never
/// matches. Allocates the hash's work area for this one check; a thread
/// that checks many passwords keeps a [`Verifier`].
pub fn verify_password(hash: &str, password: &Secret<String>) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.expose().as_bytes(), &h).is_ok())
}

/// Checks passwords against PHC hashes in one argon2 work area, kept and
/// reused: 19 MiB with the default parameters.
///
/// Why: allocated afresh per check, the freed areas were carved up by the
/// small allocations made in between and could not serve the next check,
/// so a burst of logins (a benchmark's 20 connections) left the process
/// hundreds of MiB larger for good, whatever the number of checking
/// threads.
#[derive(Default)]
pub struct Verifier {
    blocks: Vec<argon2::Block>,
}

impl Verifier {
    /// Work areas larger than this (64 MiB, a hash made with unusual
    /// parameters) are allocated per check rather than kept.
    const MAX_KEPT_BLOCKS: usize = 64 * 1024;

    /// A verifier with no work area yet.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// As [`verify_password`], in the kept work area.
    pub fn verify(&mut self, hash: &str, password: &Secret<String>) -> bool {
        let Ok(h) = PasswordHash::new(hash) else { return false };
        let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else { return false };
        let Ok(params) = argon2::Params::try_from(&h) else { return false };
        let Ok(algorithm) = argon2::Algorithm::try_from(h.algorithm.as_str()) else { return false };
        let version = match h.version.map(argon2::Version::try_from) {
            None => argon2::Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let need = params.block_count();
        if need > Self::MAX_KEPT_BLOCKS {
            return verify_password(hash, password);
        }
        if self.blocks.len() < need {
            self.blocks.resize(need, argon2::Block::default());
        }
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let Some(out) = buffer.get_mut(..expected.len()) else { return false };
        let hasher = Argon2::new(algorithm, version, params);
        if hasher
            .hash_password_into_with_memory(password.expose().as_bytes(), salt, &mut *out, &mut self.blocks[..need])
            .is_err()
        {
            return false;
        }
        // `Output` compares in constant time.
        Output::new(out).is_ok_and(|computed| &computed == expected)
    }
}

/// A random password of 20 characters from an unambiguous alphabet
/// (about 110 bits).
pub fn generate_password() -> Result<Secret<String>, AdminError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| AdminError::Hash(format!("no randomness: {e}")))?;
    // 256 % 57 != 0 gives a slight bias; irrelevant at this length.
    Ok(Secret::new(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()))
}

fn parse_address(input: &str) -> Result<Address, AdminError> {
    Address::parse(input).map_err(|reason| AdminError::InvalidAddress { input: input.into(), reason })
}

fn parse_domain(input: &str) -> Result<Domain, AdminError> {
    Domain::parse(input).map_err(|reason| AdminError::InvalidDomain { input: input.into(), reason })
}

fn parse_alias_source(input: &str) -> Result<AliasSource, AdminError> {
    AliasSource::parse(input).map_err(|reason| AdminError::InvalidAddress { input: input.into(), reason })
}

/// The administrative operations, over any store.
pub struct Admin<'a, S> {
    store: &'a S,
}

impl<'a, S: MailStore> Admin<'a, S> {
    /// Operations on `store`.
    pub fn new(store: &'a S) -> Self {
        Admin { store }
    }

    /// Adds a local domain.
    pub async fn add_domain(&self, name: &str) -> Result<Domain, AdminError> {
        let domain = parse_domain(name)?;
        self.store.add_domain(&domain).await?;
        Ok(domain)
    }

    /// Lists local domains.
    pub async fn list_domains(&self) -> Result<Vec<DomainRecord>, AdminError> {
        Ok(self.store.list_domains().await?)
    }

    /// Removes a domain without accounts or aliases.
    pub async fn delete_domain(&self, name: &str) -> Result<(), AdminError> {
        Ok(self.store.delete_domain(&parse_domain(name)?).await?)
    }

    /// Adds an account with the given password.
    pub async fn add_user(&self, address: &str, password: &Secret<String>) -> Result<Address, AdminError> {
        let address = parse_address(address)?;
        let hash = hash_password(password)?;
        self.store.add_account(&address, &hash).await?;
        Ok(address)
    }

    /// Lists accounts, optionally of one domain.
    pub async fn list_users(&self, domain: Option<&str>) -> Result<Vec<AccountRecord>, AdminError> {
        let domain = domain.map(parse_domain).transpose()?;
        Ok(self.store.list_accounts(domain.as_ref()).await?)
    }

    /// Replaces an account's password.
    pub async fn set_password(&self, address: &str, password: &Secret<String>) -> Result<(), AdminError> {
        let address = parse_address(address)?;
        let hash = hash_password(password)?;
        Ok(self.store.set_password(&address, &hash).await?)
    }

    /// Removes an account and everything it owns.
    pub async fn delete_user(&self, address: &str) -> Result<(), AdminError> {
        Ok(self.store.delete_account(&parse_address(address)?).await?)
    }

    /// Adds an alias (`user@domain` or the catch-all `@domain`) to a local account.
    pub async fn add_alias(&self, source: &str, target: &str) -> Result<(), AdminError> {
        let source = parse_alias_source(source)?;
        let target = parse_address(target)?;
        Ok(self.store.add_alias(&source, &target).await?)
    }

    /// Lists aliases, optionally of one domain.
    pub async fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<AliasRecord>, AdminError> {
        let domain = domain.map(parse_domain).transpose()?;
        Ok(self.store.list_aliases(domain.as_ref()).await?)
    }

    /// Removes one alias target, or the whole alias.
    pub async fn delete_alias(&self, source: &str, target: Option<&str>) -> Result<(), AdminError> {
        let source = parse_alias_source(source)?;
        let target = target.map(parse_address).transpose()?;
        Ok(self.store.delete_alias(&source, target.as_ref()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let pw = Secret::new("correct horse".to_string());
        let a = hash_password(&pw).unwrap();
        let mut verifier = Verifier::new();
        assert!(verifier.verify(&a, &pw), "the kept work area gives the same answer");
        assert!(!verifier.verify(&a, &Secret::new("other".into())));
        assert!(verifier.verify(&a, &pw), "and again, reused");
        assert!(!verifier.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$broken", &pw));
        let b = hash_password(&pw).unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password(&a, &pw));
        assert!(!verify_password(&a, &Secret::new("wrong".into())));
        assert!(!verify_password("not a hash", &pw));
        assert!(matches!(hash_password(&Secret::new(String::new())), Err(AdminError::EmptyPassword)));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a, generate_password().unwrap());
    }
}
