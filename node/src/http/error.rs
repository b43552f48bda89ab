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
    /// `WWW-Authenticate` challenge for 401 responses.
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), challenge: None }
    }

    /// 401 with a Bearer challenge (RFC 6750 §3); `bearer_error` is its `error` attribute.
    pub fn unauthorized(code: &'static str, message: impl Into<String>, bearer_error: Option<&str>) -> Self {
        let message = message.into();
        let challenge = match bearer_error {
            Some(e) => {
                format!("Bearer realm=\"artstore\", error=\"{e}\", error_description=\"{}\"", message.replace('"', "'"))
            }
            None => "Bearer realm=\"artstore\"".to_string(),
        };
        Self { status: StatusCode::UNAUTHORIZED, code, message, challenge: Some(challenge) }
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
            E::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large"),
            E::Transport(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            E::Stopped(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
            E::Storage(_) | E::Tls(..) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }
}

/// The catalog's refusals, by kind: the one place they become statuses.
impl From<artstore_raft::Refusal> for ApiError {
    fn from(r: artstore_raft::Refusal) -> Self {
        use artstore_raft::Refusal as R;
        match r {
            R::NotFound(m) => Self::not_found(m),
            R::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            R::Invalid(m) => Self::bad_request("invalid_request", m),
            R::Store(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

impl From<artstore_actors::AdminError> for ApiError {
    fn from(e: artstore_actors::AdminError) -> Self {
        use artstore_actors::AdminError as E;
        match e {
            E::InvalidClient => Self::new(StatusCode::UNAUTHORIZED, "invalid_client", e.to_string()),
            E::ClientCertificate(m) | E::SecretExpired(m) => Self::new(StatusCode::UNAUTHORIZED, "invalid_client", m),
            E::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            E::RateLimited(_) => Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", e.to_string()),
            E::InvalidToken(m) => Self::unauthorized("invalid_token", m, Some("invalid_token")),
            E::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            E::NotFound(m) => Self::not_found(m),
            E::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            E::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            E::Raft(r) => r.into(),
            E::Internal(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

impl From<artstore_actors::StorageError> for ApiError {
    fn from(e: artstore_actors::StorageError) -> Self {
        use artstore_actors::StorageError as E;
        match e {
            E::NoSpace(m) => Self::new(StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage", m),
            E::Quorum(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "replication_failed", m),
            E::DigestMismatch(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "digest_mismatch", m),
            E::Invalid(m) => Self::bad_request("invalid_upload", m),
            E::NotFound(m) => Self::not_found(m),
            E::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            E::IdempotencyKeyReused(m) => Self::new(StatusCode::CONFLICT, "idempotency_key_reused", m),
            E::ReadOnly(m) => Self::new(StatusCode::CONFLICT, "read_only", m),
            E::Io(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_io", m),
            E::Damaged(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "data_damaged", m),
            E::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", m),
            E::ShuttingDown(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", m),
            E::Raft(r) => r.into(),
        }
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
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}

impl From<artstore_actors::QueryError> for ApiError {
    fn from(e: artstore_actors::QueryError) -> Self {
        use artstore_actors::QueryError as E;
        match e {
            E::BadRequest(m) => Self::bad_request("invalid_search", m),
            E::Limit { code, message } => Self::bad_request(code, message),
            E::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "index_behind", m),
            E::Index(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

/// Every error leaves the node as `{"error": {"code", "message"}}`: a rejection produced by a
/// framework layer or extractor as plain text (a body over its limit, a bad header) is rewritten
/// here, so no route can answer a client with an unstructured error.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // The console answers people with pages of its own.
    let console = req.uri().path() == "/console" || req.uri().path().starts_with("/console/");
    let resp = next.run(req).await;
    if console {
        return resp;
    }
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Framework rejections are one short line; never buffer more than a few KiB of anything.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// 431 when the request line and headers together exceed `limits.max_header_bytes`.
pub async fn header_limit(
    axum::extract::State(limits): axum::extract::State<std::sync::Arc<artstore_cluster_config::Limits>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let size =
        req.uri().to_string().len() + req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>();
    if size > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request line and headers are {size} bytes; the limit is {} (limits.max_header_bytes)",
                limits.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// A handler that panicked answers a JSON 500 (and the panic is logged) instead of dropping the
/// connection; the node keeps serving.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown".into());
    tracing::error!(panic = %what, "a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed inside the node").into_response()
}
