//! Cross-origin requests from browser applications (`[http.cors]`): off unless origins are
//! listed; methods and headers are exactly those the API uses.
//!
//! Invariant: an origin that is not listed gets no `Access-Control-Allow-*` header at all, so a
//! browser refuses the page's call; the request itself is still authorised as any other (CORS
//! protects browsers' users, it is not access control).

use std::time::Duration;

use artstore_cluster_config::CorsConfig;
use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers a page may send: the API's own and the standard ones it reads.
pub const ALLOWED_HEADERS: [&str; 8] = [
    "authorization",
    "content-type",
    "x-request-id",
    "idempotency-key",
    "x-checksum-sha256",
    "x-artstore-attributes",
    "range",
    "if-none-match",
];

/// Response headers a page may read beyond the CORS-safelisted ones.
const EXPOSED_HEADERS: [HeaderName; 6] = [
    header::ETAG,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CONTENT_DISPOSITION,
    header::RETRY_AFTER,
    HeaderName::from_static("x-request-id"),
];

/// The layer for `config`, or `None` when no origin is listed.
pub fn layer(config: &CorsConfig) -> Option<CorsLayer> {
    if config.allowed_origins.is_empty() {
        return None;
    }
    let origins = if config.allowed_origins.iter().any(|o| o == "*") {
        // Accepted in dev mode only (validated at start-up).
        AllowOrigin::any()
    } else {
        AllowOrigin::list(config.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS)
            .max_age(Duration::from_secs(config.max_age_secs)),
    )
}
