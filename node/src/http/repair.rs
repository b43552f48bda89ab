//! `GET /api/v1/repair/status` (operator): the repair queue and this node's scrub progress.

use artstore_client::wire::RepairStatus;
use artstore_raft::Role;
use axum::extract::State;
use axum::Json;

use super::auth::Caller;
use super::{ApiError, AppState};

pub async fn status(State(s): State<AppState>, caller: Caller) -> Result<Json<RepairStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    // The queue as of every change committed before the request.
    s.node.read_barrier().await?;
    Ok(Json(s.repair.status().await?))
}
