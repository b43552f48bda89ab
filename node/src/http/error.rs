//! The API error type: the one place where failures become HTTP statuses and JSON bodies
//! (`{"error": {"code", "message"}}`).

use artstore_client::wire::{ErrorBody, ErrorResponse};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<artstore_raft::Error> for ApiError {
    fn from(e: artstore_raft::Error) -> Self {
        use artstore_raft::Error as E;
        let (status, code) = match &e {
            E::NoLeader(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_leader"),
            E::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            E::Rejected(_) => (StatusCode::CONFLICT, "conflict"),
            E::Transport(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            E::Stopped(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
            E::Storage(_) | E::Tls(..) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::new(e.status(), "invalid_body", e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorResponse { error: ErrorBody { code: self.code.to_string(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}
