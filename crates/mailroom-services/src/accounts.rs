//! Accounts, domains and aliases: password hashing and the administrative
//! operations behind `mailroom domain|user|alias`, with their validation.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
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
/// matches.
pub fn verify_password(hash: &str, password: &Secret<String>) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.expose().as_bytes(), &h).is_ok())
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
