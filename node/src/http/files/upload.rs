//! Uploads: `POST /api/v1/files` (a raw body with metadata in the query and headers, or one
//! multipart file) and `POST /api/v1/files/batch`. Every piece of metadata is bounded before a
//! byte of the body is stored; a stalled body answers 408 whatever layer noticed.

use artstore_actors::ingest::UploadMeta;
use artstore_client::wire::{BatchResult, BatchResults, ErrorBody, ErrorResponse, FileInfo};
use artstore_cluster_config::Limits;
use artstore_raft::{RetentionPolicy, Role};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::multipart::{bounded_multipart, head_status, upload_parts, UploadForm};
use super::{check_attributes, parse_time, wire};
use crate::http::auth::Caller;
use crate::http::{bounds, ApiError, AppState};

pub(super) fn parse_policy(value: Option<&str>) -> Result<RetentionPolicy, ApiError> {
    match value {
        None | Some("permanent") => Ok(RetentionPolicy::Permanent),
        Some("temporary") => Ok(RetentionPolicy::Temporary),
        Some(other) => Err(ApiError::bad_request(
            "invalid_policy",
            format!("retention_policy {other:?}: use permanent or temporary"),
        )),
    }
}

/// A temporary file's lifetime in seconds: `ttl_seconds` (1 s–365 days) or `ttl_days` (1–365,
/// default 30).
pub(super) fn parse_ttl(days: Option<u32>, seconds: Option<u64>) -> Result<u64, ApiError> {
    match (seconds, days) {
        (Some(secs), _) if (1..=365 * 86_400).contains(&secs) => Ok(secs),
        (Some(_), _) => Err(ApiError::bad_request("invalid_ttl", "ttl_seconds must be between 1 and 31536000")),
        (None, None) => Ok(30 * 86_400),
        (None, Some(d)) if (1..=365).contains(&d) => Ok(u64::from(d) * 86_400),
        (None, Some(_)) => Err(ApiError::bad_request("invalid_ttl", "ttl_days must be between 1 and 365")),
    }
}

/// Name, description, tags and content type of a new file, within `[limits]`.
pub(super) fn check_meta(
    limits: &Limits,
    name: &str,
    description: &str,
    tags: &[String],
    content_type: &str,
) -> Result<(), ApiError> {
    bounds::name(limits, name)?;
    bounds::description(limits, description)?;
    bounds::tags(limits, tags)?;
    bounds::content_type(content_type)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name (any Unicode, 1 to `limits.max_name_chars` characters); required for a raw
    /// body, ignored for multipart (which names files in its `metadata` part).
    #[param(min_length = 1)]
    name: Option<String>,
    /// Free text (at most `limits.max_description_bytes`).
    #[serde(default)]
    description: String,
    /// Comma-separated tags.
    #[serde(default)]
    tags: Option<String>,
    /// RFC 3339: the file cannot be deleted or changed before then (write-once-read-many).
    #[serde(default)]
    #[param(format = DateTime)]
    retention_until: Option<String>,
    /// `permanent` (default) or `temporary`.
    #[serde(default)]
    #[param(pattern = "^(permanent|temporary)$")]
    retention_policy: Option<String>,
    /// Temporary files: days until they expire (1 to 365, default 30).
    #[serde(default)]
    #[param(minimum = 1, maximum = 365)]
    ttl_days: Option<u32>,
    /// Finer-grained alternative to `ttl_days` (1 s to 365 days).
    #[serde(default)]
    #[param(minimum = 1, maximum = 31536000)]
    ttl_seconds: Option<u64>,
    /// `zstd` stores chunks compressed; `none` (default) as they are.
    #[serde(default)]
    #[param(pattern = "^(zstd|none)$")]
    compression: Option<String>,
}

/// A client-declared SHA-256 as lower-case hex, or a 400 naming `field`.
pub(super) fn sha256_hex(field: &str, value: &str) -> Result<String, ApiError> {
    let hex = value.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("invalid_digest", format!("{field} must be 64 hex digits")));
    }
    Ok(hex)
}

/// The hex SHA-256 a client declared, from `X-Checksum-SHA256` or `Content-Digest: sha-256=:…:`.
fn expected_digest(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get("x-checksum-sha256") {
        return sha256_hex("X-Checksum-SHA256", v.to_str().unwrap_or_default()).map(Some);
    }
    if let Some(v) = headers.get("content-digest") {
        let text = v.to_str().unwrap_or_default();
        for item in text.split(',') {
            if let Some((alg, value)) = item.trim().split_once('=') {
                if alg.trim().eq_ignore_ascii_case("sha-256") {
                    let b64 = value.trim().trim_matches(':');
                    let raw = STANDARD.decode(b64).ok().filter(|r| r.len() == 32).ok_or_else(|| {
                        ApiError::bad_request("invalid_digest", "Content-Digest sha-256 must be 32 bytes in base64")
                    })?;
                    return Ok(Some(hex::encode(raw)));
                }
            }
        }
    }
    Ok(None)
}

/// The flag the listener raises when this request's body stalled.
fn stall_flag(req: &axum::extract::Request) -> crate::http::listener::BodyStall {
    req.extensions().get::<crate::http::listener::BodyStall>().cloned().unwrap_or_default()
}

/// A failure of an upload whose body stalled becomes 408, whatever the layer that noticed.
fn stall_status(stalled: &crate::http::listener::BodyStall, secs: u64, what: &str, e: ApiError) -> ApiError {
    if stalled.happened() {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("no body bytes arrived for {secs} s (limits.body_idle_timeout_secs); {what}"),
        );
    }
    e
}

/// `POST /api/v1/files`: the raw body is the file; metadata comes in the query and headers.
#[utoipa::path(
    post,
    path = "/api/v1/files",
    operation_id = "upload_file",
    tag = "files",
    summary = "Upload a file",
    description = "Either the raw body is the file (its `Content-Type` becomes the file's, default \
        `application/octet-stream`) with metadata in the query and headers, or a `multipart/form-data` \
        body holds an optional JSON `metadata` part followed by one `file` part. The body streams \
        into the archive; the answer comes once every chunk is durable on a write quorum and the \
        record is committed. With an `Idempotency-Key` a retry answers the first upload (200) \
        instead of storing a second copy.",
    params(
        UploadQuery,
        ("X-Checksum-SHA256" = Option<String>, Header, pattern = "^[0-9a-fA-F]{64}$",
            description = "The body's SHA-256 in hex; the upload fails with 422 if it differs."),
        ("Content-Digest" = Option<String>, Header,
            description = "RFC 9530 alternative to `X-Checksum-SHA256`: `sha-256=:BASE64:`."),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "Makes a retried upload answer the first one's record instead of storing twice."),
        ("X-Artstore-Attributes" = Option<String>, Header,
            description = "Custom attributes as a JSON object (at most `storage.max_attributes_bytes`, \
            `limits.max_attribute_depth` levels)."),
    ),
    request_body(
        description = "The file: raw bytes, or multipart.",
        content(
            ("application/octet-stream"),
            (UploadForm = "multipart/form-data", encoding(("metadata" = (content_type = "application/json")))),
        ),
    ),
    responses(
        (status = 201, description = "Stored.", body = FileInfo,
            headers(("Location" = String, description = "`/api/v1/files/{id}`")),
            links(
                ("GetFile" = (operation_id = "get_file", parameters(("id" = "$response.body#/id")))),
                ("DownloadFile" = (operation_id = "download_file", parameters(("id" = "$response.body#/id")))),
                ("UpdateFile" = (operation_id = "update_file", parameters(("id" = "$response.body#/id")))),
                ("FinalizeFile" = (operation_id = "finalize_file", parameters(("id" = "$response.body#/id")))),
                ("DeleteFile" = (operation_id = "delete_file", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 200, description = "A replay of an earlier upload with the same `Idempotency-Key` and body.",
            body = FileInfo, headers(("Idempotent-Replayed" = String, description = "`true`"),
            ("Location" = String, description = "`/api/v1/files/{id}`"))),
        (status = 400, description = "The metadata or the body is malformed; the message names the field.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(UPLOAD_400)))),
        (status = 408, description = "The body stalled for `limits.body_idle_timeout_secs`; nothing was stored.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["body_timeout"])))),
        (status = 409, description = "The `Idempotency-Key` was used for another body, or the commit was refused.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["idempotency_key_reused", "conflict"])))),
        (status = 413, description = "A piece of metadata is over its limit, or the file needs more chunks than one catalog entry can list (`file_too_large`; about 44 000 chunks, 170 GiB at the default chunk size).", body = ErrorResponse,
            extensions(("x-error-codes" = json!(UPLOAD_413)))),
        (status = 422, description = "The body's SHA-256 is not the one declared.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["digest_mismatch"])))),
        (status = 500, description = "A storage failure.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["storage_io"])))),
        (status = 503, description = "The chunks could not be written to a quorum of replicas.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["replication_failed"])))),
        (status = 507, description = "No storage element can take the file.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["insufficient_storage"])))),
    ),
    extensions(("x-required-role" = json!("writer"))),
)]
pub async fn upload(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<UploadQuery>, QueryRejection>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Query(q) = q?;
    let stalled = stall_flag(&req);
    let secs = s.limits.body_idle_timeout_secs;
    upload_guarded(s, caller, q, req).await.map_err(|e| stall_status(&stalled, secs, "nothing was stored", e))
}

async fn upload_guarded(
    s: AppState,
    caller: Caller,
    q: UploadQuery,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    if content_type.starts_with("multipart/") {
        let (req, refused) = bounded_multipart(&s, req);
        let limit = s.limits.max_header_bytes;
        let multipart = axum::extract::Multipart::from_request(req, &s)
            .await
            .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
        let mut results =
            upload_parts(&s, &caller, multipart, false).await.map_err(|e| head_status(&refused, limit, e))?;
        return match results.pop() {
            Some(Ok(u)) => Ok(created(u)),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::bad_request("missing_file", "the multipart body has no `file` part")),
        };
    }
    let name = q.name.ok_or_else(|| ApiError::bad_request("missing_name", "the query parameter `name` is required"))?;
    let policy = parse_policy(q.retention_policy.as_deref())?;
    let ttl_secs = parse_ttl(q.ttl_days, q.ttl_seconds)?;
    let attributes_json = match headers.get("x-artstore-attributes") {
        // Header values are bytes; UTF-8 (Russian attribute values, say) is accepted as sent.
        Some(v) => check_attributes(
            &s,
            std::str::from_utf8(v.as_bytes())
                .map_err(|_| ApiError::bad_request("invalid_attributes", "X-Artstore-Attributes is not UTF-8"))?,
        )?,
        None => "{}".to_string(),
    };
    let tags: Vec<String> =
        q.tags.unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
    check_meta(&s.limits, &name, &q.description, &tags, &content_type)?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be visible ASCII"))?
                .to_string(),
        ),
        None => None,
    };
    let idempotency_key = check_idempotency_key(idempotency_key)?;
    let meta = UploadMeta {
        name,
        content_type,
        description: q.description,
        tags,
        attributes_json,
        policy,
        ttl_secs,
        retention_until: q.retention_until.as_deref().map(|t| parse_time("retention_until", t)).transpose()?,
        expected_sha256: expected_digest(&headers)?,
        idempotency_key,
        created_by: caller.principal.client_id.clone(),
        compress: compression(q.compression.as_deref())?,
    };
    let uploaded = s.ingest.upload(meta, req.into_body().into_data_stream()).await?;
    Ok(created(uploaded))
}

pub(super) fn check_idempotency_key(key: Option<String>) -> Result<Option<String>, ApiError> {
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 255 || k.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 characters, no control characters",
        ));
    }
    Ok(key)
}

pub(super) fn compression(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("none") => Ok(false),
        Some("zstd") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request("invalid_compression", format!("compression {other:?}: use zstd or none")))
        }
    }
}

/// 201 (or 200 for an idempotent replay) with the record and its `Location`.
fn created(uploaded: artstore_actors::ingest::Uploaded) -> Response {
    let status = if uploaded.replayed { StatusCode::OK } else { StatusCode::CREATED };
    let location = format!("/api/v1/files/{}", uploaded.file.id);
    let mut resp = (status, Json(wire(uploaded.file))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if uploaded.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Codes of a refused upload's 400.
const UPLOAD_400: &[&str] = &[
    "invalid_query",
    "missing_name",
    "invalid_name",
    "invalid_content_type",
    "invalid_policy",
    "invalid_ttl",
    "invalid_time",
    "invalid_tag",
    "too_many_tags",
    "invalid_attributes",
    "attributes_too_deep",
    "invalid_digest",
    "invalid_idempotency_key",
    "invalid_compression",
    "invalid_multipart",
    "invalid_metadata",
    "missing_file",
    "too_many_parts",
    "metadata_without_file",
    "invalid_upload",
];

/// Codes of a refused upload's 413.
const UPLOAD_413: &[&str] = &[
    "file_too_large",
    "entry_too_large",
    "description_too_long",
    "attributes_too_large",
    "metadata_too_large",
    "multipart_head_too_large",
    "invalid_multipart",
];

/// `POST /api/v1/files/batch`: many files in one multipart request, each committed or refused
/// on its own: `{"results": [{"index", "status", "file" | "error"}]}`.
#[utoipa::path(
    post,
    path = "/api/v1/files/batch",
    operation_id = "upload_batch",
    tag = "files",
    summary = "Upload many files in one request",
    description = "A `multipart/form-data` body of `metadata`/`file` part pairs (each `metadata` part \
        optional, always before its `file`), at most `limits.max_batch_files` files. Each file is \
        committed or refused on its own; the answer has one result per file.",
    request_body(
        description = "Repeated pairs of an optional JSON `metadata` part and a `file` part.",
        content((UploadForm = "multipart/form-data", encoding(("metadata" = (content_type = "application/json"))))),
    ),
    responses(
        (status = 200, description = "One result per file, in order.", body = BatchResults),
        (status = 400, description = "The body is not well-formed multipart, or its first metadata part is invalid.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(UPLOAD_400)))),
        (status = 408, description = "The body stalled; files before the stall were committed on their own.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["body_timeout"])))),
        (status = 413, description = "A multipart preamble, part header or metadata part is over its limit.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(UPLOAD_413)))),
    ),
    extensions(("x-required-role" = json!("writer"))),
)]
pub async fn batch(
    State(s): State<AppState>,
    caller: Caller,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    caller.principal.require(Role::Writer)?;
    let stalled = stall_flag(&req);
    let secs = s.limits.body_idle_timeout_secs;
    let (req, refused) = bounded_multipart(&s, req);
    let limit = s.limits.max_header_bytes;
    let multipart = axum::extract::Multipart::from_request(req, &s)
        .await
        .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
    let what = "files before the stall were committed on their own";
    let results = upload_parts(&s, &caller, multipart, true)
        .await
        .map_err(|e| head_status(&refused, limit, stall_status(&stalled, secs, what, e)))?;
    let results = results
        .into_iter()
        .enumerate()
        .map(|(index, r)| match r {
            Ok(u) => BatchResult {
                index: index as u64,
                status: if u.replayed { 200 } else { 201 },
                file: Some(wire(u.file)),
                error: None,
            },
            Err(e) => BatchResult {
                index: index as u64,
                status: e.status.as_u16(),
                file: None,
                error: Some(ErrorBody { code: e.code.to_string(), message: e.message }),
            },
        })
        .collect();
    Ok(Json(BatchResults { results }).into_response())
}
