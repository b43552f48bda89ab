//! Typed errors of the SDK, carrying the server's message.

use crate::wire::ErrorBody;

/// Everything a call can fail with. Variants follow the HTTP status the server answered with, and
/// carry its `{"error": {"code", "message"}}` message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The arguments cannot form a request (bad URL, no URL at all, unreadable local file).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The server refused the request as malformed (400, 413, 415, 422).
    #[error("bad request ({code}): {message}")]
    BadRequest {
        /// Machine-readable code, such as `digest_mismatch`.
        code: String,
        /// What is wrong, in the server's words.
        message: String,
    },
    /// No valid credentials (401), also after fetching a fresh token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The account lacks the role the call needs (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such file, account or element (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The element's mode, the file's retention or the cluster's state forbids it (409).
    #[error("conflict: {reason}")]
    Conflict {
        /// Why, in the server's words.
        reason: String,
    },
    /// Too many requests (the token endpoint's rate limit).
    #[error("rate limited: {message} (retry after {retry_after_secs} s)")]
    RateLimited {
        /// Seconds to wait before asking again.
        retry_after_secs: u64,
        /// The server's message.
        message: String,
    },
    /// No storage element can take the upload (HTTP 507).
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// A node's HTTPS certificate cannot be trusted: it does not cover the host in the URL (the
    /// message names both), or no trusted CA issued it. Not retried: another attempt would meet
    /// the same certificate.
    #[error("TLS: {0}")]
    Tls(String),
    /// No node could serve the request (all unreachable, or no leader), after every retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A download's bytes do not hash to the file's SHA-256 (nothing is left at the target path).
    #[error("checksum mismatch: file {id} should hash to {expected} but the downloaded bytes hash to {actual}")]
    ChecksumMismatch {
        /// The file's id.
        id: String,
        /// SHA-256 recorded in the catalog (hex).
        expected: String,
        /// SHA-256 of the bytes received (hex).
        actual: String,
    },
    /// Any other non-success status.
    #[error("server error {status} ({code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: String,
        /// The server's message.
        message: String,
    },
}

impl ClientError {
    pub(crate) fn from_status(status: u16, body: Option<ErrorBody>) -> Self {
        let (code, message) = match body {
            Some(b) => (b.code, b.message),
            None => ("unknown".to_string(), format!("HTTP {status}")),
        };
        match status {
            400 | 413 | 415 | 422 => ClientError::BadRequest { code, message },
            401 => ClientError::Unauthorized(message),
            403 => ClientError::Forbidden(message),
            404 => ClientError::NotFound(message),
            409 => ClientError::Conflict { reason: message },
            429 => ClientError::RateLimited { retry_after_secs: 1, message },
            503 => ClientError::Unavailable(message),
            507 => ClientError::InsufficientStorage(message),
            _ => ClientError::Server { status, code, message },
        }
    }
}
