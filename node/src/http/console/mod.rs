//! The web console at `/console`: server-rendered pages (maud) over the API's own handlers, so a
//! page can do exactly what its signed-in account may do through the API, with the same checks,
//! limits and audit records.
//!
//! Invariants:
//! - The session is the account's access token in an `HttpOnly`, `SameSite=Strict` cookie scoped to
//!   `/console` (`Secure` under TLS) that expires with the token. Any node accepts it, since every
//!   node validates tokens; nothing about a session is stored on the server.
//! - Every state-changing request is a POST carrying a CSRF token (a form field or the
//!   `X-CSRF-Token` header) derived from the session token; a missing or wrong one is a 403 before
//!   anything else happens.
//! - Every response carries a strict Content-Security-Policy: scripts and styles come only from
//!   `/console/assets`, nothing inline, no framing.
//! - Outside loopback the console is served only over HTTPS, because it takes secrets.

mod accounts;
mod assets;
mod cluster;
mod dashboard;
mod files;
mod history;
mod i18n;
mod layout;
mod session;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::AppState;
pub use session::Session;

/// What the console needs to know about how the node serves it.
#[derive(Clone)]
pub struct ConsoleSettings {
    /// The API is served over TLS: the session cookie is `Secure`.
    pub tls: bool,
    /// The console may sign people in: TLS, or a loopback listener.
    pub enabled: bool,
    /// Fractions of an element's capacity at which it is in warning and critical (for the bars).
    pub warning_fraction: f64,
    pub critical_fraction: f64,
    /// The charts' recent samples, filled by [`ConsoleSettings::sampler`].
    pub history: Arc<history::History>,
}

impl ConsoleSettings {
    pub fn new(http: &artstore_cluster_config::HttpConfig, thresholds: &artstore_cluster_config::Thresholds) -> Self {
        let tls = http.tls.is_some();
        let loopback = http
            .listen
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or_else(|_| http.listen.starts_with("localhost:"));
        Self {
            tls,
            enabled: tls || loopback,
            warning_fraction: (1.0 - thresholds.warning_percent / 100.0).clamp(0.0, 1.0),
            critical_fraction: (1.0 - thresholds.critical_percent / 100.0).clamp(0.0, 1.0),
            history: Arc::default(),
        }
    }

    /// The background worker that samples what the dashboard's charts show.
    pub fn sampler(&self, state: AppState) -> history::Sampler {
        history::Sampler { history: self.history.clone(), state }
    }
}

/// The console's routes, nested under `/console` by the API router.
pub fn router(settings: ConsoleSettings) -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/live.json", get(dashboard::live))
        .route("/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/lang/{lang}", get(session::set_lang))
        .route("/assets/{name}", get(assets::serve))
        .route("/files", get(files::search))
        .route("/files/upload", post(files::upload).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/files/{id}", get(files::detail).post(files::edit))
        .route("/files/{id}/content", get(files::download))
        .route("/files/{id}/finalize", post(files::finalize))
        .route("/files/{id}/delete", get(files::confirm_delete).post(files::delete))
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route("/accounts/{client_id}", get(accounts::detail).post(accounts::update))
        .route("/accounts/{client_id}/rotate", post(accounts::rotate))
        .route("/accounts/{client_id}/delete", get(accounts::confirm_delete).post(accounts::delete))
        .route("/keys", get(accounts::keys).post(accounts::rotate_keys))
        .route("/audit", get(accounts::audit))
        .route("/audit/verify", post(accounts::verify_audit))
        .route("/cluster", get(cluster::page))
        .route("/cluster/elements/{node_id}/{name}", get(cluster::confirm_mode).post(cluster::set_mode))
        .route("/cluster/members/{node_id}/drain", post(cluster::drain))
        .route("/cluster/members/{node_id}/remove", get(cluster::confirm_remove).post(cluster::remove))
        .fallback(layout::not_found)
        .method_not_allowed_fallback(layout::method_not_allowed)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(Extension(Arc::new(settings)))
}

/// A POST from a page of another site: its `Origin` (or, failing that, `Sec-Fetch-Site`) says so.
/// This is what guards sign-in, which has no session to derive a CSRF token from.
fn cross_site(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // HTTP/1.1 names the host in `Host`, HTTP/2 in the `:authority` of the URI.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        return origin == "null" || origin_host != host;
    }
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "cross-site")
}

/// The headers every console response carries; POSTs from other sites are refused first.
async fn security_headers(req: Request, next: Next) -> Response {
    let tls = req.extensions().get::<Arc<ConsoleSettings>>().is_some_and(|s| s.tls);
    let path = req.uri().path().to_string();
    let lang = session::lang_of(req.headers());
    let mut resp = if req.method() == axum::http::Method::POST && cross_site(&req) {
        if session::scripted(req.uri().path()) {
            let e = crate::http::ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "cross_site",
                "a page of another site cannot call the console",
            );
            return with_headers(e.into_response(), tls);
        }
        layout::error_page(
            lang,
            axum::http::StatusCode::FORBIDDEN,
            "cross_site",
            lang.pick(
                "A form from another site cannot act on the console.",
                "Форма с другого сайта не может действовать в консоли.",
            ),
        )
    } else {
        next.run(req).await
    };
    // Framework refusals (a path that does not parse, a body over the limit) come as plain text:
    // people get a page, scripts JSON.
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.starts_with("text/plain"));
    if (status.is_client_error() || status.is_server_error()) && plain {
        let (_, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
        resp = if session::scripted(&path) {
            crate::http::ApiError::new(status, "bad_request", message).into_response()
        } else {
            layout::error_page(lang, status, "bad_request", &message)
        };
    }
    with_headers(resp, tls)
}

fn with_headers(mut resp: Response, tls: bool) -> Response {
    let h = resp.headers_mut();
    // A download sets its own, stricter policy.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A 303 to a console page, the answer to every successful form.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The console's parsers of what a browser sends: a clean value or a clean refusal, never a
/// panic (they run in the long fuzz pass of CI with the API's own).
#[cfg(test)]
mod fuzz {
    use axum::http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    const KNOWN: [&str; 11] = [
        "q",
        "tag",
        "content_type",
        "size_min",
        "size_max",
        "created_after",
        "created_before",
        "sort",
        "order",
        "cursor",
        "consistent",
    ];

    proptest! {
        #[test]
        fn any_search_query_is_parsed_or_refused(raw in "[a-z_=&%0-9A-F.;<>+ -]{0,300}", attrs in "[a-z0-9=<>; .-]{0,80}") {
            // Whatever the form becomes, it is only parameters the API's search knows.
            for query in [super::files::fuzz_parse(&raw), super::files::fuzz_attrs(&attrs)].into_iter().flatten() {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).expect("the console writes valid forms");
                for (k, _) in pairs {
                    prop_assert!(KNOWN.contains(&k.as_str()) || k.starts_with("attr."), "unexpected parameter {}", k);
                }
            }
        }

        #[test]
        fn any_cookie_header_is_read_safely(text in "[ -~]{0,400}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&text) {
                h.insert(axum::http::header::COOKIE, v.clone());
                h.insert(axum::http::header::ACCEPT_LANGUAGE, v);
            }
            let _ = super::session::cookie(&h, super::session::SESSION_COOKIE);
            let _ = super::session::lang_of(&h);
        }

        #[test]
        fn any_form_body_is_decoded_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = super::session::form::<Vec<(String, String)>>(&bytes);
        }

        #[test]
        fn a_form_with_bytes_that_are_not_text_is_refused(
            pairs in proptest::collection::vec(("[a-z_]{1,8}", "[a-z0-9 ]{0,12}"), 0..4),
            bad in 0x80u8..=0xFF,
        ) {
            // A lone byte of 0x80 or above is never UTF-8 on its own.
            let body = format!("{}&x=a%{bad:02X}b", serde_urlencoded::to_string(&pairs).unwrap());
            prop_assert!(super::session::form::<Vec<(String, String)>>(body.as_bytes()).is_err());
        }

        #[test]
        fn text_forms_survive_the_decoder(pairs in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,20}"), 0..6)) {
            let body = serde_urlencoded::to_string(&pairs).unwrap();
            let back: Vec<(String, String)> = super::session::form(body.as_bytes()).unwrap();
            prop_assert_eq!(back, pairs);
        }

        #[test]
        fn a_return_address_never_leaves_the_console(next in "[ -~]{0,300}") {
            let safe = super::session::fuzz_safe_next(&next);
            prop_assert!(safe == "/console" || safe.starts_with("/console/"));
            prop_assert!(!safe.contains("//") && !safe.contains('\\'));
        }
    }
}
