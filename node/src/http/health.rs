//! Liveness, readiness and Prometheus metrics.

use artstore_client::wire::{ErrorResponse, Health};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::{ApiError, AppState};

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "health",
    summary = "Whether the process serves HTTP",
    responses((status = 200, description = "The node is serving.", body = Health)),
)]
pub async fn live(State(s): State<AppState>) -> Json<Health> {
    Json(Health { status: "live".into(), node_id: s.admin.node_id() })
}

/// A leader is known, this node's catalog has caught up with it (see `RaftNode::readiness`), and
/// security is bootstrapped, so tokens can be issued.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "health",
    summary = "Whether this node is ready to serve",
    description = "Ready: a leader is known, this node's catalog has caught up with it, and the bootstrap \
        admin account and signing key exist. Load balancers send traffic only to ready nodes.",
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "Not ready yet; the message says why.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_ready", "no_leader", "unavailable"])))),
    ),
)]
pub async fn ready(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    match s.admin.readiness() {
        Ok(()) => Ok(Json(Health { status: "ready".into(), node_id: s.admin.node_id() })),
        Err(reason) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason)),
    }
}

/// Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    summary = "Prometheus metrics",
    description = "Every metric under `artstore_`, in the Prometheus text exposition format 0.0.4. On the \
        `[metrics] listen` address instead of the API's when one is configured.",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}
