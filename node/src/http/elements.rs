//! Storage elements: list (reader) and forward-only mode changes (operator, audited).

use artstore_client::wire::{ElementModeChange, ErrorResponse, StorageElementInfo, StorageElements};
use artstore_raft::{ElementMode, Role};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

use super::auth::Caller;
use super::json::JsonBody;
use super::{ApiError, AppState};

fn wire(e: artstore_raft::StorageElement) -> StorageElementInfo {
    StorageElementInfo {
        node_id: e.node_id,
        name: e.name,
        mode: e.mode.as_str().into(),
        priority: e.priority,
        used_bytes: e.used_bytes,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements",
    operation_id = "list_storage_elements",
    tag = "storage",
    summary = "List every node's storage elements",
    responses((status = 200, description = "The elements with their modes and use.", body = StorageElements)),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<StorageElements>, ApiError> {
    caller.principal.require(Role::Reader)?;
    Ok(Json(StorageElements { elements: s.storage.elements()?.into_iter().map(wire).collect() }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/storage-elements/{node_id}/{name}",
    operation_id = "set_storage_element_mode",
    tag = "storage",
    summary = "Change a storage element's mode",
    description = "Modes move forward only: `rw` → `ro` → `ar`; `edit` stays `edit`. Audited.",
    params(
        ("node_id" = u64, Path, description = "The node holding the element."),
        ("name" = String, Path, description = "The element's name on that node."),
    ),
    request_body = ElementModeChange,
    responses(
        (status = 200, description = "The element in its new mode.", body = StorageElementInfo),
        (status = 400, description = "`mode` is not one of `edit`, `rw`, `ro`, `ar`.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_mode"])))),
        (status = 404, description = "No such element.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The change would move the mode backwards.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn set_mode(
    State(s): State<AppState>,
    caller: Caller,
    path: Result<Path<(u64, String)>, PathRejection>,
    body: Result<JsonBody<ElementModeChange>, ApiError>,
) -> Result<Json<StorageElementInfo>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path((node_id, name)) = path?;
    let JsonBody(req) = body?;
    let mode = ElementMode::parse(&req.mode)
        .ok_or_else(|| ApiError::bad_request("invalid_mode", format!("mode {:?}: use edit, rw, ro or ar", req.mode)))?;
    let e = s.storage.set_element_mode(node_id, &name, mode, &caller.principal.client_id, caller.source).await?;
    Ok(Json(wire(e)))
}
