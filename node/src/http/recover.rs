//! `POST /api/v1/admin/recover` (admin): commits file records rebuilt from disk by
//! `artstore recover`. The request and answer types are shared with the CLI in this crate.

use artstore_client::wire::ErrorResponse;
use artstore_raft::{FileRecord, Role};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::json::JsonBody;
use super::{ApiError, AppState};

/// Largest batch one request may carry.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoverRequest {
    /// File records as `artstore recover` rebuilt them from the disks' sidecars (at most 1000).
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<FileRecord>,
    /// Replace records that already exist (otherwise such a batch is refused with 409).
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoverResponse {
    /// Records committed.
    pub recovered: u64,
    /// The Raft log index of the commit.
    pub log_index: u64,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/recover",
    operation_id = "recover_files",
    tag = "storage",
    summary = "Commit file records rebuilt from the disks",
    description = "Used by `artstore recover` after the catalog was lost. Audited. The body may be up to 64 MiB.",
    request_body = RecoverRequest,
    responses(
        (status = 200, description = "Committed.", body = RecoverResponse),
        (status = 400, description = "Over 1000 files, or a file with a chunk that has no replica.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["batch_too_large", "incomplete_file"])))),
        (status = 409, description = "A record exists and `overwrite` is not set.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn recover(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<RecoverRequest>, ApiError>,
) -> Result<Json<RecoverResponse>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let JsonBody(req) = body?;
    if req.files.len() > MAX_BATCH {
        return Err(ApiError::bad_request("batch_too_large", format!("at most {MAX_BATCH} files per request")));
    }
    if let Some(f) = req.files.iter().find(|f| f.chunks.iter().any(|c| c.replicas.is_empty())) {
        return Err(ApiError::bad_request("incomplete_file", format!("file {} has a chunk with no replica", f.id)));
    }
    let n = req.files.len() as u64;
    let log_index =
        s.storage.commit_recovered(req.files, req.overwrite, &caller.principal.client_id, caller.source).await?;
    Ok(Json(RecoverResponse { recovered: n, log_index }))
}
