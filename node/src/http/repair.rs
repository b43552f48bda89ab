//! `GET /api/v1/repair/status` (operator): the repair queue and this node's scrub progress.

use artstore_client::wire::RepairStatus;
use artstore_raft::Role;
use axum::extract::State;
use axum::Json;

use super::auth::Caller;
use super::{ApiError, AppState};

#[utoipa::path(
    get,
    path = "/api/v1/repair/status",
    operation_id = "repair_status",
    tag = "storage",
    summary = "The repair queue and this node's scrub",
    responses((status = 200, description = "Repair and scrub state.", body = RepairStatus)),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn status(State(s): State<AppState>, caller: Caller) -> Result<Json<RepairStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    // The queue as of every change committed before the request.
    s.node.read_barrier().await?;
    Ok(Json(s.repair.status().await?))
}
