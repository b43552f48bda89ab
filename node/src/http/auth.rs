//! Authentication on the HTTP API: the OAuth 2.0 token endpoint (RFC 6749 §4.4, errors per §5.2),
//! JWKS, and the [`Caller`] extractor every protected handler takes.

use std::net::SocketAddr;

use artstore_actors::admin::{ClientCertificate, Principal};
use artstore_actors::AdminError;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};

/// An authenticated caller: a valid bearer token of an active account.
pub struct Caller {
    pub principal: Principal,
    pub source: Option<std::net::IpAddr>,
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let source = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(value) = value else {
            return Err(ApiError::unauthorized("missing_token", "an Authorization: Bearer token is required", None));
        };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "the Authorization header must be `Bearer <token>`",
                    Some("invalid_request"),
                ))
            }
        };
        let certificate = parts.extensions.get::<ClientCertificate>();
        match state.admin.validate(token, certificate) {
            Ok(principal) => Ok(Caller { principal, source }),
            Err(AdminError::InvalidToken(m)) => Err(ApiError::unauthorized("invalid_token", m, Some("invalid_token"))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The form (or JSON) of a token request.
#[derive(Deserialize, Default)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

/// An error as RFC 6749 §5.2 shapes it.
#[derive(Serialize)]
struct OAuthError {
    error: &'static str,
    error_description: String,
}

fn oauth_error(status: StatusCode, error: &'static str, description: impl Into<String>) -> Response {
    let mut resp = (status, Json(OAuthError { error, error_description: description.into() })).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-urlencoded, then base64).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, String> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err("malformed Authorization header".into()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("token requests authenticate with HTTP Basic or form credentials".into());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| "Basic credentials are not valid base64".to_string())?;
    let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8".to_string())?;
    let (id, secret) = text.split_once(':').ok_or("Basic credentials must be client_id:client_secret")?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
            .unwrap_or_else(|| s.to_string())
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// `POST /api/v1/auth/token`.
pub async fn token(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return oauth_error(e.status(), "invalid_request", format!("request body: {}", e.body_text())),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let form: TokenRequest = if content_type.starts_with("application/json") {
        match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", format!("invalid JSON body: {e}"))
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") || content_type.is_empty() {
        match serde_urlencoded::from_bytes(&body) {
            Ok(f) => f,
            Err(e) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", format!("invalid form body: {e}"))
            }
        }
    } else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/x-www-form-urlencoded (or application/json)",
        );
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported; use client_credentials"),
            )
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
    }
    let basic = match basic_credentials(&headers) {
        Ok(b) => b,
        Err(m) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", m),
    };
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form.client_id, form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "give credentials either by HTTP Basic or in the body, not both",
            )
        }
        (Some(b), None, None) => b,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id and client_secret are required")
        }
    };
    let certificate = certificate.as_ref().map(|c| &c.0);
    match s.admin.issue_token(&client_id, &secret, Some(addr.ip()), certificate).await {
        Ok(t) => {
            let body = TokenResponse {
                access_token: t.access_token,
                token_type: "Bearer",
                expires_in: t.expires_in,
                scope: t.scope,
            };
            let mut resp = Json(body).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(AdminError::InvalidClient) => {
            let mut resp = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
            if used_basic {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"artstore\""));
            }
            resp
        }
        Err(AdminError::ClientCertificate(m)) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", m),
        Err(AdminError::RateLimited(secs)) => {
            let mut resp =
                oauth_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", format!("retry in {secs} s"));
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(AdminError::Unavailable(m)) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", m),
        Err(AdminError::InvalidRequest(m)) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", m),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let jwks = s.admin.jwks()?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(jwks)))
}
