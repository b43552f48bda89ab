//! Typed errors of the SDK, carrying the server's message.

use crate::wire::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The arguments cannot form a request (bad URL, no URL at all).
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("bad request ({code}): {message}")]
    BadRequest { code: String, message: String },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {reason}")]
    Conflict { reason: String },
    /// Too many requests (the token endpoint's rate limit).
    #[error("rate limited: {message} (retry after {retry_after_secs} s)")]
    RateLimited { retry_after_secs: u64, message: String },
    /// No storage element can take the upload (HTTP 507).
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// No node could serve the request (all unreachable, or no leader).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Any other non-success status.
    #[error("server error {status} ({code}): {message}")]
    Server { status: u16, code: String, message: String },
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
