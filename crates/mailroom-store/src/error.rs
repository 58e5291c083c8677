/// Why a store operation failed.
///
/// Callers turn these into protocol replies: [`StoreError::is_temporary`]
/// picks between "try again later" (SMTP 4xx, IMAP NO) and a permanent
/// refusal, so the distinction must survive every `?`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (a domain, account, alias, mailbox).
    #[error("{0} not found")]
    NotFound(String),
    /// The thing already exists (a duplicate account, domain or alias).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request contradicts the stored state (deleting a domain that
    /// still has accounts, an alias to a non-local target).
    #[error("{0}")]
    Conflict(String),
    /// A mailbox name the store refuses (RFC 9051 §5.1): empty, an empty
    /// hierarchy level, a control or wildcard character, or too long. The
    /// message says which rule it broke.
    #[error("invalid mailbox name: {0}")]
    InvalidName(String),
    /// The database is busy, locked, or out of space: try again.
    #[error("store temporarily unavailable: {0}")]
    Unavailable(String),
    /// A blob file could not be written, synced or read.
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data is not what this version expects (a failed
    /// migration, an unparsable address in a row).
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when retrying later may succeed (SMTP 4xx rather than 5xx).
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Io(_))
    }
}
