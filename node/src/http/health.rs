//! Liveness, readiness and Prometheus metrics.

use artstore_client::wire::Health;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::{ApiError, AppState};

/// The process is up and serving HTTP.
pub async fn live(State(s): State<AppState>) -> Json<Health> {
    Json(Health { status: "live".into(), node_id: s.node.id() })
}

/// A leader is known, this node's catalog has caught up with it (see `RaftNode::readiness`), and
/// security is bootstrapped, so tokens can be issued.
pub async fn ready(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !s.node.catalog().security_initialized()? {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "waiting for the leader to create the bootstrap admin account and signing key",
        ));
    }
    match s.node.readiness() {
        Ok(()) => Ok(Json(Health { status: "ready".into(), node_id: s.node.id() })),
        Err(reason) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason)),
    }
}

/// Prometheus text exposition format.
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}
