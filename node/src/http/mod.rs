//! The HTTP API (axum): routes, shared state, and the layers every request passes through
//! (request id generated or echoed in `X-Request-ID`, a tracing span carrying it, request metrics).

mod admin;
mod auth;
mod bounds;
mod cluster;
pub mod console;
mod cors;
mod elements;
mod error;
mod files;
#[cfg(test)]
mod fuzz;
mod health;
mod json;
pub mod listener;
mod multipart_guard;
mod openapi;
pub mod recover;
mod repair;
mod search;
pub mod tls;

use std::time::Instant;

use artstore_actors::admin::AdminHandle;
use artstore_actors::ingest::IngestHandle;
use artstore_actors::query::QueryHandle;
use artstore_actors::storage::repair::RepairHandle;
use artstore_cluster_config::HttpConfig;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub admin: AdminHandle,
    pub ingest: IngestHandle,
    pub storage: artstore_actors::storage::StorageHandle,
    pub query: QueryHandle,
    pub repair: RepairHandle,
    /// The node's background workers (their status is part of the repair status).
    pub workers: std::sync::Arc<artstore_actors::worker::Workers>,
    pub metrics: PrometheusHandle,
    pub max_attributes_bytes: usize,
    /// Every bound on what a client may send (`[limits]`).
    pub limits: std::sync::Arc<artstore_cluster_config::Limits>,
}

/// The API. `/metrics` is on it unless `[metrics] listen` gives it a listener of its own.
/// The console is nested under `/console`, with its own pages for errors.
pub fn router(state: AppState, http: &HttpConfig, with_metrics: bool, console: console::ConsoleSettings) -> Router {
    let limits = state.limits.clone();
    let api = Router::new().route("/health/live", get(health::live)).route("/health/ready", get(health::ready));
    let api = if with_metrics { api.route("/metrics", get(health::metrics)) } else { api };
    let api = api
        .route("/api/v1/auth/token", post(auth::token).layer(DefaultBodyLimit::max(limits.max_token_body_bytes)))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/service-accounts", get(admin::list).post(admin::create))
        .route("/api/v1/service-accounts/{client_id}", get(admin::get).patch(admin::update).delete(admin::delete))
        .route("/api/v1/service-accounts/{client_id}/rotate-secret", post(admin::rotate_secret))
        .route("/api/v1/admin/keys/rotate", post(admin::rotate_keys))
        .route("/api/v1/auth/revoke", post(admin::revoke))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/audit/verify", get(admin::verify_audit))
        // Bodies of any size stream through these two; the 2 MB default limit is for JSON bodies.
        .route("/api/v1/files", get(files::list).post(files::upload).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/files/batch", post(files::batch).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/files/{id}", get(files::get).patch(files::update).delete(files::delete))
        .route("/api/v1/files/{id}/content", get(files::content))
        .route("/api/v1/files/{id}/finalize", get(files::finalize_state).post(files::finalize))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/repair/status", get(repair::status))
        .route("/api/v1/admin/recover", post(recover::recover).layer(DefaultBodyLimit::max(64 << 20)))
        .route("/api/v1/storage-elements", get(elements::list))
        .route("/api/v1/storage-elements/{node_id}/{name}", axum::routing::patch(elements::set_mode))
        .route("/api/v1/cluster/status", get(cluster::status))
        .route("/api/v1/cluster/members", post(cluster::join))
        .route("/api/v1/cluster/members/{node_id}", delete(cluster::remove))
        .route(
            "/api/v1/cluster/members/{node_id}/drain",
            get(cluster::get_drain).post(cluster::start_drain).delete(cluster::stop_drain),
        )
        .route("/api/v1/cluster/backup", get(cluster::backup))
        .route("/api/v1/cluster/digest", post(cluster::take_digest))
        .route("/api/v1/cluster/digest/{index}", get(cluster::get_digest))
        .route("/api/v1/cluster/settings", get(cluster::list_settings))
        .route(
            "/api/v1/cluster/settings/{key}",
            get(cluster::get_setting).put(cluster::put_setting).delete(cluster::delete_setting),
        )
        .nest("/console", console::router(console))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let api = common_layers(api, &limits).with_state(state);
    match cors::layer(&http.cors) {
        Some(cors) => api.layer(cors),
        None => api,
    }
}

/// `/metrics` and the health checks alone, for `[metrics] listen`.
pub fn metrics_router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let r = Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    common_layers(r, &limits).with_state(state)
}

/// What every request passes through: body bounds, panics caught, JSON errors, header bounds,
/// metrics, and the request id with its tracing span.
fn common_layers(r: Router<AppState>, limits: &std::sync::Arc<artstore_cluster_config::Limits>) -> Router<AppState> {
    r
        // JSON bodies are bounded everywhere; the upload routes above lift it for their streams.
        .layer(DefaultBodyLimit::max(limits.max_json_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(limits.clone(), error::header_limit))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

async fn not_found(req: Request) -> Response {
    // Nested at `/console`, the console's own root is `/console`; the slash is a common typo.
    if req.uri().path() == "/console/" {
        return axum::response::Redirect::permanent("/console").into_response();
    }
    ApiError::not_found(format!("no route for {} {}", req.method(), req.uri().path())).into_response()
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Labels come from a fixed set: invented methods must not mint new time series.
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("artstore_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("artstore_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
