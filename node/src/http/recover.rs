//! `POST /api/v1/admin/recover` (admin): commits file records rebuilt from disk by
//! `artstore recover`. The request and answer types are shared with the CLI in this crate.

use artstore_client::wire::ErrorResponse;
use artstore_raft::{FileRecord, Role};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::bounds;
use super::json::JsonBody;
use super::{ApiError, AppState};

/// Largest batch one request may carry.
pub const MAX_BATCH: usize = 1000;

/// Largest chunk a record may name (`storage.chunk_size_bytes` is at most this).
const MAX_CHUNK_SIZE: u64 = 64 << 20;

/// Replicas (and missing replicas) one chunk may list.
const MAX_REPLICAS: usize = 16;

/// Whether `s` is a UUID as the node writes file ids (lowercase, hyphenated).
fn is_file_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A rebuilt record is held to what an upload could have written: the same bounds on its
/// metadata, a well-formed id and digests (a chunk's digest becomes a path on disk), chunks
/// that add up to the file, and replicas on elements with valid names.
fn check_record(s: &AppState, f: &FileRecord) -> Result<(), ApiError> {
    let shown: String = f.id.chars().take(40).collect();
    let bad = |what: String| ApiError::bad_request("invalid_record", format!("file {shown:?}: {what}"));
    if !is_file_id(&f.id) {
        return Err(bad("id: not a UUID in lowercase hyphenated form".into()));
    }
    let named = |mut e: ApiError| {
        e.message = format!("file {shown}: {}", e.message);
        e
    };
    bounds::name(&s.limits, &f.name).map_err(named)?;
    bounds::description(&s.limits, &f.description).map_err(named)?;
    bounds::tags(&s.limits, &f.tags).map_err(named)?;
    bounds::content_type(&f.content_type).map_err(named)?;
    bounds::attributes(&s.limits, s.max_attributes_bytes, &f.attributes_json).map_err(named)?;
    if f.created_by.len() > 256 || f.created_by.chars().any(char::is_control) {
        return Err(bad("created_by: at most 256 bytes, no control characters".into()));
    }
    if !is_sha256(&f.sha256) {
        return Err(bad("sha256: not 64 lowercase hex digits".into()));
    }
    if f.chunk_size > MAX_CHUNK_SIZE || (f.chunk_size == 0 && !f.chunks.is_empty()) {
        return Err(bad(format!("chunk_size: {} is not 1 to {MAX_CHUNK_SIZE} bytes", f.chunk_size)));
    }
    let mut total: u64 = 0;
    for (i, c) in f.chunks.iter().enumerate() {
        if !is_sha256(&c.sha256) {
            return Err(bad(format!("chunks[{i}].sha256: not 64 lowercase hex digits")));
        }
        if c.size == 0 || c.size > f.chunk_size {
            return Err(bad(format!("chunks[{i}].size: {} is not 1 to chunk_size ({}) bytes", c.size, f.chunk_size)));
        }
        total = total.saturating_add(c.size);
        if c.replicas.len() > MAX_REPLICAS || c.missing.len() > MAX_REPLICAS {
            return Err(bad(format!("chunks[{i}]: at most {MAX_REPLICAS} replicas and {MAX_REPLICAS} missing")));
        }
        let element_ok = |e: &str| {
            !e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if let Some(r) = c.replicas.iter().find(|r| r.node_id == 0 || !element_ok(&r.element)) {
            let element: String = r.element.chars().take(40).collect();
            return Err(bad(format!("chunks[{i}].replicas: node {} element {element:?} is not a replica", r.node_id)));
        }
    }
    if total != f.size {
        return Err(bad(format!("size: {} bytes, but the chunks hold {total}", f.size)));
    }
    Ok(())
}

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
        (status = 400, description = "Over 1000 files, a record no upload could have written (bad id, digest, name, tags, content type, attributes, chunk sizes that do not add up, a malformed replica), or a file with a chunk that has no replica.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["batch_too_large", "invalid_record", "incomplete_file", "invalid_name", "too_many_tags", "invalid_tag", "invalid_content_type", "invalid_attributes", "attributes_too_deep"])))),
        (status = 413, description = "A description or custom attributes over their limits, or records that together exceed one catalog entry (8 MiB encoded; `artstore recover` sends batches of at most 1 MiB).", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["description_too_long", "attributes_too_large", "entry_too_large"])))),
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
    for f in &req.files {
        check_record(&s, f)?;
    }
    if let Some(f) = req.files.iter().find(|f| f.chunks.iter().any(|c| c.replicas.is_empty())) {
        return Err(ApiError::bad_request("incomplete_file", format!("file {} has a chunk with no replica", f.id)));
    }
    let n = req.files.len() as u64;
    let log_index =
        s.storage.commit_recovered(req.files, req.overwrite, &caller.principal.client_id, caller.source).await?;
    Ok(Json(RecoverResponse { recovered: n, log_index }))
}
