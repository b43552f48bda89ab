//! Authentication on the HTTP API: the OAuth 2.0 token endpoint (RFC 6749 §4.4, errors per §5.2),
//! JWKS, and the [`Caller`] extractor every protected handler takes.

use std::net::SocketAddr;

use artstore_actors::admin::{ClientCertificate, Principal};
use artstore_actors::AdminError;
use artstore_client::wire::{ErrorResponse, TokenResponse};
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
        match state.admin.validate(token, certificate).await {
            Ok(principal) => Ok(Caller { principal, source }),
            Err(AdminError::InvalidToken(m)) => Err(ApiError::unauthorized("invalid_token", m, Some("invalid_token"))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The form (or JSON) of a token request.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials")]
    grant_type: Option<String>,
    /// The service account's id, when it is not sent by HTTP Basic.
    client_id: Option<String>,
    /// Its secret, when it is not sent by HTTP Basic.
    client_secret: Option<String>,
    /// Ignored: a token always carries every role of its account.
    #[allow(dead_code)]
    scope: Option<String>,
}

/// An error as RFC 6749 §5.2 shapes it (the token endpoint's own errors).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `too_many_requests` or
    /// `temporarily_unavailable`.
    #[schema(value_type = String)]
    error: &'static str,
    /// What went wrong, for a human.
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
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    operation_id = "issue_token",
    tag = "auth",
    summary = "Issue an access token (OAuth 2.0 client credentials)",
    description = "RFC 6749 §4.4: `grant_type=client_credentials` with the service account's credentials, \
        either by HTTP Basic (`client_id:client_secret`, form-urlencoded then base64) or in the body, not \
        both. The form is the standard; a JSON body with the same fields is also accepted. Rate-limited \
        per client and per source address. Errors are RFC 6749 §5.2 bodies `{\"error\", \
        \"error_description\"}`; the codes listed are their `error`.",
    request_body(
        description = "The grant and, unless sent by HTTP Basic, the credentials.",
        content(
            (TokenRequest = "application/x-www-form-urlencoded"),
            (TokenRequest = "application/json"),
        ),
    ),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A token.", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "The request is malformed: a body that is not the form or JSON, a \
            missing or unsupported `grant_type`, missing credentials, or credentials given twice.",
            body = OAuthError, extensions(("x-error-codes" = json!(["invalid_request", "unsupported_grant_type"])))),
        (status = 401, description = "Unknown client, wrong secret, or a disabled or deleted account.",
            body = OAuthError, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"artstore\"` \
            when the credentials came by HTTP Basic")), extensions(("x-error-codes" = json!(["invalid_client"])))),
        (status = 413, description = "The body is over `limits.max_token_body_bytes`.", body = OAuthError,
            extensions(("x-error-codes" = json!(["invalid_request"])))),
        (status = 429, description = "Too many token requests from this client or source address.",
            body = OAuthError, headers(("Retry-After" = u64, description = "Seconds to wait")),
            extensions(("x-error-codes" = json!(["too_many_requests"])))),
        (status = 503, description = "The cluster cannot issue tokens now; retry.", body = OAuthError,
            extensions(("x-error-codes" = json!(["temporarily_unavailable"])))),
        (status = 504, description = "The cluster did not answer in time; retry.", body = OAuthError,
            extensions(("x-error-codes" = json!(["temporarily_unavailable"])))),
    ),
)]
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
                token_type: "Bearer".into(),
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
        Err(AdminError::ClientCertificate(m) | AdminError::SecretExpired(m)) => {
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", m)
        }
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
        Err(e) => {
            // The cluster's own failures keep the RFC 6749 shape too; only a failure inside the
            // node is the API's common 500.
            let e = ApiError::from(e);
            match e.status {
                StatusCode::INTERNAL_SERVER_ERROR => e.into_response(),
                s if s.is_server_error() => oauth_error(s, "temporarily_unavailable", e.message),
                s => oauth_error(s, e.code, e.message),
            }
        }
    }
}

/// `GET /.well-known/jwks.json`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "auth",
    summary = "The public keys that verify tokens (JWKS)",
    description = "RFC 7517: every signing key that may still have valid tokens, so applications can \
        verify tokens themselves. Cacheable for a minute.",
    responses(
        (status = 200, description = "The key set.", body = Jwks),
        (status = 503, description = "The catalog cannot be read now.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["no_leader", "unavailable", "stopping"])))),
    ),
)]
pub async fn jwks(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let jwks = s.admin.jwks()?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(jwks)))
}

/// The JSON Web Key Set as `GET /.well-known/jwks.json` serves it (RFC 7517), for the document;
/// the response itself is `artstore_actors::admin::Jwks`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    /// The keys.
    keys: Vec<Jwk>,
}

/// One public key: `OKP`/`Ed25519` with `x` (RFC 8037), or `RSA` with `n` and `e`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    /// `OKP` or `RSA`.
    kty: String,
    /// Key id, as in the `kid` header of the tokens it signs.
    kid: String,
    /// `EdDSA` or `RS256`.
    alg: String,
    /// Always `sig`.
    #[schema(rename = "use")]
    use_: String,
    /// `Ed25519` for OKP keys.
    crv: Option<String>,
    /// OKP public key, base64url.
    x: Option<String>,
    /// RSA modulus, base64url.
    n: Option<String>,
    /// RSA exponent, base64url.
    e: Option<String>,
}
