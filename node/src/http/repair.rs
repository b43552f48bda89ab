//! `GET /api/v1/repair/status` (operator): the repair queue, this node's scrub progress, and its
//! background workers.

use artstore_client::wire::{RepairStatus, WorkerInfo};
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
    let mut status = s.repair.status().await?;
    status.workers = s
        .workers
        .statuses()
        .into_iter()
        .map(|w| WorkerInfo {
            name: w.name.into(),
            state: w.state.into(),
            steps: w.steps,
            errors: w.errors,
            last_error: w.last_error,
            last_step_ms: w.last_step_ms,
        })
        .collect();
    Ok(Json(status))
}
