//! Files: metadata read, list, update, finalize and delete; uploads and downloads live in their
//! own modules. Changes need `writer`, reads need `reader`.

pub mod download;
mod multipart;
pub mod upload;

pub use download::content;
// The parsers the property tests drive.
#[cfg(test)]
pub(super) use download::{not_modified, wanted, Wanted};
#[cfg(test)]
pub(super) use multipart::{meta_from_part, MetadataPart};
pub use upload::{batch, upload, UploadQuery};

use std::time::{Duration, UNIX_EPOCH};

use artstore_actors::query::FileFilter;
use artstore_client::wire::{ErrorResponse, FileInfo, FileList, FinalizeState, UpdateFile};
use artstore_raft::{FileChanges, FileRecord, RetentionPolicy, Role};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::admin::rfc3339;
use super::auth::Caller;
use super::json::JsonBody;
use super::{bounds, ApiError, AppState};

pub fn wire(f: FileRecord) -> FileInfo {
    let replicas = f.holders();
    let missing = f.chunks.iter().map(|c| c.missing.len() as u64).sum();
    let custom_attributes = match serde_json::from_str(&f.attributes_json) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Default::default(),
    };
    FileInfo {
        chunks: f.chunks.len() as u64,
        id: f.id,
        name: f.name,
        size: f.size,
        sha256: f.sha256,
        content_type: f.content_type,
        version: f.version,
        created_at: rfc3339(f.created_at),
        updated_at: rfc3339(f.updated_at),
        created_by: f.created_by,
        description: f.description,
        tags: f.tags,
        custom_attributes,
        retention_policy: match f.policy {
            RetentionPolicy::Temporary => "temporary".into(),
            RetentionPolicy::Permanent => "permanent".into(),
        },
        expires_at: f.expires_at.map(rfc3339),
        retention_until: f.retention_until.map(rfc3339),
        replicas,
        missing_replicas: missing,
    }
}

/// An RFC 3339 time as unix milliseconds: any UTC offset (`Z`, `+05:30`, `-08:00`), `T` or a
/// space between date and time, either case, fractional seconds; a time without an offset is UTC.
pub(crate) fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    let bad = |why: String| {
        ApiError::bad_request("invalid_time", format!("{field}: {value:?} is not an RFC 3339 time: {why}"))
    };
    let text = value.trim().to_ascii_uppercase();
    // humantime reads UTC only: take the offset off and apply it after.
    // `split_at_checked`: the text is any client input, and an offset is six ASCII bytes.
    let (utc, offset_secs) = match text.len().checked_sub(6).and_then(|i| text.split_at_checked(i)) {
        Some((base, offset)) if base.contains('T') || base.contains(' ') => match offset.as_bytes() {
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) => {
                let digit = |d: &u8| i64::from(d - b'0');
                let (hours, minutes) = (digit(h1) * 10 + digit(h2), digit(m1) * 10 + digit(m2));
                if hours > 23 || minutes > 59 {
                    return Err(bad(format!("offset {offset} is out of range")));
                }
                let secs = hours * 3600 + minutes * 60;
                (format!("{base}Z"), if *sign == b'+' { secs } else { -secs })
            }
            _ => (text.clone(), 0),
        },
        _ => (text.clone(), 0),
    };
    let t = humantime::parse_rfc3339_weak(&utc).map_err(|e| bad(e.to_string()))?;
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64;
    Ok(ms - offset_secs * 1000)
}

fn check_attributes(s: &AppState, json: &str) -> Result<String, ApiError> {
    bounds::attributes(&s.limits, s.max_attributes_bytes, json)
}

/// The live record of `id` as of every change committed before the call (Raft read index first,
/// so a lagging node never answers from stale state).
async fn live(s: &AppState, id: &str) -> Result<FileRecord, ApiError> {
    Ok(s.ingest.live_file(id).await?)
}

/// `GET /api/v1/files/{id}`: read-after-write from any node (Raft read index first).
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    operation_id = "get_file",
    tag = "files",
    summary = "Read a file's metadata",
    description = "Reflects every write acknowledged before the call, whichever node took it.",
    params(("id" = String, Path, description = "The file's id (UUIDv7).")),
    responses(
        (status = 200, description = "The file's metadata.", body = FileInfo),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<FileInfo>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(id) = id?;
    Ok(Json(wire(live(&s, &id).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `next_cursor` of the previous page (a file id): list files after it.
    #[serde(default)]
    after: String,
    /// Files per page (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only files of this media type (case-insensitive).
    content_type: Option<String>,
    /// Only files with this tag.
    tag: Option<String>,
    /// Only files uploaded by this client id.
    created_by: Option<String>,
    /// RFC 3339: only files created at or after.
    #[param(format = DateTime)]
    created_after: Option<String>,
    /// RFC 3339: only files created at or before.
    #[param(format = DateTime)]
    created_before: Option<String>,
}

/// `GET /api/v1/files?after=ID&limit=N&content_type=…&tag=…&created_by=…&created_after=…&created_before=…`:
/// in id (= creation) order, deleted files left out, read-after-write consistent on any node.
#[utoipa::path(
    get,
    path = "/api/v1/files",
    operation_id = "list_files",
    tag = "files",
    summary = "List files",
    description = "In id (= creation) order, deleted files left out, consistent with every acknowledged \
        upload. A page may hold fewer than `limit` files when the filters are selective: continue with \
        `next_cursor` until it is absent.",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of files.", body = FileList),
        (status = 400, description = "A parameter is unknown or not of its type, `limit` is out of range, or a \
            time is not RFC 3339.", body = ErrorResponse, extensions(("x-error-codes" = json!(["invalid_query", "invalid_time"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<FileList>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit: must be between 1 and 1000"));
    }
    let filter = FileFilter {
        content_type: q.content_type,
        tag: q.tag,
        created_by: q.created_by,
        created_after: q.created_after.as_deref().map(|v| parse_time("created_after", v)).transpose()?,
        created_before: q.created_before.as_deref().map(|v| parse_time("created_before", v)).transpose()?,
    };
    let (files, next_cursor) = s.query.list_files(filter, q.after, limit).await?;
    Ok(Json(FileList { files: files.into_iter().map(wire).collect(), next_cursor }))
}

/// `PATCH /api/v1/files/{id}`: metadata only; bumps `version` and rewrites the sidecars.
#[utoipa::path(
    patch,
    path = "/api/v1/files/{id}",
    operation_id = "update_file",
    tag = "files",
    summary = "Change a file's metadata",
    description = "Absent fields stay as they are; `version` goes up by one. Only while every element \
        holding the file is `edit` or `rw`; `retention_until` can only be extended.",
    params(("id" = String, Path, description = "The file's id (UUIDv7).")),
    request_body = UpdateFile,
    responses(
        (status = 200, description = "The changed metadata.", body = FileInfo),
        (status = 400, description = "A field is invalid; the message names it.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_name", "invalid_tag", "too_many_tags", "invalid_attributes", "attributes_too_deep", "invalid_time"])))),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The file is on a read-only element, or the change breaks retention.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["read_only", "conflict"])))),
        (status = 413, description = "The description or the attributes are over their limit.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["description_too_long", "attributes_too_large"])))),
    ),
    extensions(("x-required-role" = json!("writer"))),
)]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateFile>, ApiError>,
) -> Result<Json<FileInfo>, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Path(id) = id?;
    let JsonBody(req) = body?;
    if let Some(n) = &req.name {
        bounds::name(&s.limits, n)?;
    }
    if let Some(d) = &req.description {
        bounds::description(&s.limits, d)?;
    }
    if let Some(t) = &req.tags {
        bounds::tags(&s.limits, t)?;
    }
    let changes = FileChanges {
        name: req.name,
        description: req.description,
        tags: req.tags,
        attributes_json: req
            .custom_attributes
            .map(|m| serde_json::Value::Object(m).to_string())
            .map(|j| check_attributes(&s, &j))
            .transpose()?,
        retention_until: req.retention_until.as_deref().map(|t| parse_time("retention_until", t)).transpose()?,
    };
    Ok(Json(wire(s.ingest.update_metadata(&id, changes).await?)))
}

/// `POST /api/v1/files/{id}/finalize`: a temporary file becomes permanent (writer).
#[utoipa::path(
    post,
    path = "/api/v1/files/{id}/finalize",
    operation_id = "finalize_file",
    tag = "files",
    summary = "Make a temporary file permanent",
    description = "Its chunks are copied to `rw` elements under the same id. A permanent file answers as it is.",
    params(("id" = String, Path, description = "The file's id (UUIDv7).")),
    responses(
        (status = 200, description = "The now permanent file.", body = FileInfo),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The switch was refused.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
        (status = 500, description = "A chunk could not be read or written.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["storage_io", "data_damaged"])))),
        (status = 503, description = "The copies could not be written to a quorum.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["replication_failed"])))),
        (status = 507, description = "No node has an `rw` element accepting files.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["insufficient_storage"])))),
    ),
    extensions(("x-required-role" = json!("writer"))),
)]
pub async fn finalize(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<FileInfo>, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Path(id) = id?;
    live(&s, &id).await?;
    Ok(Json(wire(s.ingest.finalize(&id).await?)))
}

/// `GET /api/v1/files/{id}/finalize`: `{"id", "state": "temporary" | "permanent"}`.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}/finalize",
    operation_id = "get_finalize_state",
    tag = "files",
    summary = "Whether a file is temporary or permanent",
    params(("id" = String, Path, description = "The file's id (UUIDv7).")),
    responses(
        (status = 200, description = "Its state.", body = FinalizeState),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn finalize_state(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<FinalizeState>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(id) = id?;
    let f = live(&s, &id).await?;
    let state = match f.policy {
        RetentionPolicy::Temporary => "temporary",
        RetentionPolicy::Permanent => "permanent",
    };
    Ok(Json(FinalizeState { id: f.id, state: state.into(), expires_at: f.expires_at.map(rfc3339) }))
}

/// `DELETE /api/v1/files/{id}`: temporary files only, never before `retention_until`. Audited.
#[utoipa::path(
    delete,
    path = "/api/v1/files/{id}",
    operation_id = "delete_file",
    tag = "files",
    summary = "Delete a file",
    description = "Only while every element holding the file is `edit` or `rw`, and never before its \
        `retention_until`. Audited.",
    params(("id" = String, Path, description = "The file's id (UUIDv7).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The file is on a read-only element, or under retention.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["read_only", "conflict"])))),
    ),
    extensions(("x-required-role" = json!("writer"))),
)]
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Path(id) = id?;
    s.ingest.delete_file(&id, &caller.principal.client_id, caller.source).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn rfc3339_times_are_read_with_any_offset() {
        let utc = parse_time("t", "2030-01-01T00:00:00Z").unwrap();
        assert_eq!(utc, 1_893_456_000_000);
        assert_eq!(parse_time("t", "2030-01-01T01:00:00+01:00").unwrap(), utc);
        assert_eq!(parse_time("t", "2029-12-31T18:30:00-05:30").unwrap(), utc);
        assert_eq!(parse_time("t", "2030-01-01t00:00:00.500z").unwrap(), utc + 500);
        assert_eq!(parse_time("t", "2030-01-01 00:00:00").unwrap(), utc);
        for bad in [
            "",
            "yesterday",
            "2030-01-01T00:00:00+0é:00",
            "годовой отчёт",
            "2030-01-01T00:00:00+24:00",
            "2030-01-01T00:00:00+01:60",
            "2030-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_time("t", bad).unwrap_err().code, "invalid_time", "{bad:?}");
        }
    }
}
