//! `POST /api/v1/admin/recover` (admin): commits file records rebuilt from disk by
//! `artstore recover`. The request and answer types are shared with the CLI in this crate.

use artstore_actors::storage::{is_chunk_name, MAX_CHUNK};
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

/// Fixed bounds on a rebuilt record's fields. They are wider than today's `[limits]` on purpose:
/// a record is rebuilt as it was written, perhaps by an earlier release or under other limits,
/// and recovery must not drop it for that; these only keep a hostile record from costing more
/// than any real one.
const MAX_ID_BYTES: usize = 128;
/// The longest name an upload may have (`limits.max_name_chars` is at most 4 096 characters).
const MAX_NAME_BYTES: usize = 4 * 4096;
/// Versions far below where counting on could overflow.
const MAX_VERSION: u64 = 1 << 53;
const MAX_TEXT_BYTES: usize = 64 << 10;
const MAX_DESCRIPTION_BYTES: usize = 1 << 20;
const MAX_TAGS: usize = 1024;
const MAX_ATTRIBUTES_BYTES: usize = 1 << 20;
const MAX_ATTRIBUTES_DEPTH: usize = 64;
/// Replicas (and missing replicas) one chunk may list.
const MAX_REPLICAS: usize = 64;

/// A file id as it may become part of a sidecar's path and a catalog key: letters, digits, `-`,
/// `_` and `.`, not starting with a dot (UUIDs today; ids of the original system too).
fn is_file_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_BYTES
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A rebuilt record must be safe to hold and serve: an id and chunk digests that can become
/// paths (a chunk's digest names its file on disk), chunks that add up to the file, replicas on
/// elements with valid names, and every field within the fixed bounds above.
fn check_record(f: &FileRecord) -> Result<(), ApiError> {
    let shown: String = f.id.chars().take(40).collect();
    let bad = |what: String| ApiError::bad_request("invalid_record", format!("file {shown:?}: {what}"));
    if !is_file_id(&f.id) {
        return Err(bad(format!("id: 1 to {MAX_ID_BYTES} letters, digits, '-', '_' or '.', not starting with '.'")));
    }
    if f.name.trim().is_empty() || f.name.len() > MAX_NAME_BYTES || f.name.chars().any(char::is_control) {
        return Err(bad(format!("name: 1 to {MAX_NAME_BYTES} bytes, no control characters")));
    }
    if f.created_by.len() > MAX_TEXT_BYTES || f.created_by.chars().any(char::is_control) {
        return Err(bad(format!("created_by: at most {MAX_TEXT_BYTES} bytes, no control characters")));
    }
    // Both go out in response headers as they are (Content-Type, ETag).
    if f.content_type.len() > 255 || !f.content_type.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("content_type: at most 255 printable ASCII characters".into()));
    }
    if f.sha256.len() > 128 || !f.sha256.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=:_-".contains(&b)) {
        return Err(bad("sha256: at most 128 letters, digits or '+/=:_-'".into()));
    }
    // Every later change adds one to the version; times show as RFC 3339 (four-digit years).
    if f.version > MAX_VERSION {
        return Err(bad(format!("version: at most {MAX_VERSION}")));
    }
    for (field, t) in [
        ("created_at", Some(f.created_at)),
        ("updated_at", Some(f.updated_at)),
        ("expires_at", f.expires_at),
        ("retention_until", f.retention_until),
        ("deleted_at", f.deleted_at),
    ] {
        if t.is_some_and(|t| !(0..=artstore_raft::LAST_RFC3339_MS).contains(&t)) {
            return Err(bad(format!("{field}: Unix milliseconds from 0 to the end of year 9999")));
        }
    }
    if f.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(bad(format!("description: at most {MAX_DESCRIPTION_BYTES} bytes")));
    }
    if f.tags.len() > MAX_TAGS || f.tags.iter().any(|t| t.len() > MAX_TEXT_BYTES) {
        return Err(bad(format!("tags: at most {MAX_TAGS} of at most {MAX_TEXT_BYTES} bytes each")));
    }
    if f.attributes_json.len() > MAX_ATTRIBUTES_BYTES {
        return Err(bad(format!("attributes_json: at most {MAX_ATTRIBUTES_BYTES} bytes")));
    }
    if !f.attributes_json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&f.attributes_json) {
            Ok(v @ serde_json::Value::Object(_)) if bounds::depth(&v) <= MAX_ATTRIBUTES_DEPTH => {}
            _ => return Err(bad(format!("attributes_json: a JSON object nested at most {MAX_ATTRIBUTES_DEPTH} deep"))),
        }
    }
    if f.chunk_size > MAX_CHUNK || (f.chunk_size == 0 && !f.chunks.is_empty()) {
        return Err(bad(format!("chunk_size: {} is not 1 to {MAX_CHUNK} bytes", f.chunk_size)));
    }
    let mut total: u64 = 0;
    for (i, c) in f.chunks.iter().enumerate() {
        if !is_chunk_name(&c.sha256) {
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
            !e.is_empty() && e.len() <= 255 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
    /// Records of the batch that were not safe to hold, each with why (the rest were committed).
    #[serde(default)]
    pub refused: Vec<RefusedRecord>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefusedRecord {
    pub id: String,
    pub error: String,
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
        (status = 200, description = "Committed, but for the records listed in `refused` (each with why).", body = RecoverResponse),
        (status = 400, description = "Over 1000 files, no file, every record not safe to hold (an id or chunk digest that cannot name a file, chunks that do not add up to the file, a malformed replica, a field over its fixed bound, a chunk with no replica on a member of the cluster).",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["batch_too_large", "invalid_record"])))),
        (status = 503, description = "This node does not know the cluster's members yet.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["unavailable"])))),
        (status = 413, description = "Records that together exceed one catalog entry (8 MiB encoded; `artstore recover` sends batches of at most 1 MiB).", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["entry_too_large"])))),
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
    if req.files.is_empty() {
        return Err(ApiError::bad_request("invalid_record", "no files given"));
    }
    // One unsafe record is refused alone: the rest of its batch is still recovered.
    let (mut ids, mut files, mut refused) = (std::collections::HashSet::new(), Vec::new(), Vec::new());
    let mut first_refusal = None;
    let members: std::collections::HashSet<u64> = s.admin.cluster_status().members.iter().map(|m| m.node_id).collect();
    if members.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node does not know the cluster's members yet; try another node or again shortly",
        ));
    }
    for mut f in req.files {
        // Replicas on nodes that are not members (disks of a retired node) are left out: repair
        // would look for them on every pass. A chunk left with none makes the record unsafe.
        for c in &mut f.chunks {
            c.replicas.retain(|r| members.contains(&r.node_id));
        }
        let checked = check_record(&f)
            .and_then(|()| match ids.insert(f.id.clone()) {
                true => Ok(()),
                false => Err(ApiError::bad_request("invalid_record", format!("file {:?} is listed twice", f.id))),
            })
            .and_then(|()| match f.chunks.iter().position(|c| c.replicas.is_empty()) {
                Some(i) => Err(ApiError::bad_request(
                    "invalid_record",
                    format!("file {:?}: chunks[{i}] has no replica on a member of the cluster", f.id),
                )),
                None => Ok(()),
            });
        match checked {
            Ok(()) => files.push(f),
            Err(e) => {
                refused.push(RefusedRecord { id: f.id.chars().take(MAX_ID_BYTES).collect(), error: e.message.clone() });
                first_refusal.get_or_insert(e);
            }
        }
    }
    if files.is_empty() {
        return Err(first_refusal.unwrap_or_else(|| ApiError::bad_request("invalid_record", "no files given")));
    }
    let n = files.len() as u64;
    let log_index =
        s.storage.commit_recovered(files, req.overwrite, &caller.principal.client_id, caller.source).await?;
    Ok(Json(RecoverResponse { recovered: n, log_index, refused }))
}
