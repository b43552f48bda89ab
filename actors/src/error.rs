//! The error type of the actors crate.

/// Why an admin operation failed. The HTTP layer maps each variant to one status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// RFC 6749 `invalid_client`: unknown client, wrong secret, disabled or deleted account.
    #[error("client authentication failed")]
    InvalidClient,
    /// The secret was right but the client certificate is missing or names another account.
    #[error("{0}")]
    ClientCertificate(String),
    /// The secret was right but older than `[auth] secret_max_age_days` (RFC 6749 `invalid_client`).
    #[error("{0}")]
    SecretExpired(String),
    /// The request is malformed (RFC 6749 `invalid_request` for the token endpoint).
    #[error("{0}")]
    InvalidRequest(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many token requests; retry in {0} s")]
    RateLimited(u64),
    /// Bearer token missing, malformed, expired, badly signed, or its account is no longer active.
    #[error("{0}")]
    InvalidToken(String),
    /// Authenticated but lacking the role.
    #[error("this needs the {0} role")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// The catalog refused the change (e.g. deleting the bootstrap admin).
    #[error("{0}")]
    Conflict(String),
    /// Security is not initialised yet (no leader has bootstrapped it) or Raft is unavailable.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Raft(#[from] artstore_raft::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a storage or ingest operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No element can take the data (none writable for this retention policy, or all full).
    #[error("insufficient storage: {0}")]
    NoSpace(String),
    /// Not enough replicas could be written to reach the write quorum.
    #[error("replication failed: {0}")]
    Quorum(String),
    /// The client's digest does not match what arrived.
    #[error("digest mismatch: {0}")]
    DigestMismatch(String),
    #[error("invalid upload: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The catalog refused the change (mode, retention).
    #[error("{0}")]
    Conflict(String),
    /// The file lives on an element that no longer takes writes (`ro`, `ar`).
    #[error("{0}")]
    ReadOnly(String),
    /// An idempotency key came back with a different file.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// A replica is missing or does not hash to its name (it needs repair).
    #[error("damaged replica: {0}")]
    Damaged(String),
    /// A chunk could not be read from any replica, or a disk failed.
    #[error("storage I/O: {0}")]
    Io(String),
    /// A file too large for its record to fit one catalog entry (too many chunks).
    #[error("{0}")]
    TooLarge(String),
    /// The node is stopping and takes no new uploads (another node will).
    #[error("{0}")]
    ShuttingDown(String),
    #[error(transparent)]
    Raft(#[from] artstore_raft::Error),
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request is malformed (bad query syntax, a bad filter or cursor).
    #[error("{0}")]
    BadRequest(String),
    /// The request exceeds one of the configured limits; `code` names which.
    #[error("{message}")]
    Limit { code: &'static str, message: String },
    /// `consistent=true` and the index did not catch up in time, or Raft is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The index failed.
    #[error("search index: {0}")]
    Index(String),
}

impl From<artstore_raft::Refusal> for AdminError {
    fn from(r: artstore_raft::Refusal) -> Self {
        use artstore_raft::Refusal as R;
        match r {
            R::NotFound(m) => AdminError::NotFound(m),
            R::Conflict(m) => AdminError::Conflict(m),
            R::Invalid(m) => AdminError::InvalidRequest(m),
            R::Store(m) => AdminError::Internal(m),
        }
    }
}

impl From<artstore_raft::Refusal> for StorageError {
    fn from(r: artstore_raft::Refusal) -> Self {
        use artstore_raft::Refusal as R;
        match r {
            R::NotFound(m) => StorageError::NotFound(m),
            R::Conflict(m) => StorageError::Conflict(m),
            R::Invalid(m) => StorageError::Invalid(m),
            R::Store(m) => StorageError::Io(m),
        }
    }
}
