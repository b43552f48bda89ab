//! Files: streaming upload, metadata read, list, update and delete. Upload needs `writer`,
//! reads need `reader`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;

use artstore_actors::ingest::UploadMeta;
use artstore_client::wire::{FileInfo, FileList, UpdateFile};
use artstore_raft::{AuditEvent, Command, FileChanges, FileRecord, RetentionPolicy, Role};
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::admin::rfc3339;
use super::auth::Caller;
use super::{bounds, ApiError, AppState};
use artstore_cluster_config::Limits;

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

pub(crate) fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    let t = humantime::parse_rfc3339_weak(value).map_err(|e| {
        ApiError::bad_request("invalid_time", format!("{field}: {value:?} is not an RFC 3339 time: {e}"))
    })?;
    Ok(t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64)
}

fn check_attributes(s: &AppState, json: &str) -> Result<String, ApiError> {
    bounds::attributes(&s.limits, s.max_attributes_bytes, json)
}

fn parse_policy(value: Option<&str>) -> Result<RetentionPolicy, ApiError> {
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
fn parse_ttl(days: Option<u32>, seconds: Option<u64>) -> Result<u64, ApiError> {
    match (seconds, days) {
        (Some(secs), _) if (1..=365 * 86_400).contains(&secs) => Ok(secs),
        (Some(_), _) => Err(ApiError::bad_request("invalid_ttl", "ttl_seconds must be between 1 and 31536000")),
        (None, None) => Ok(30 * 86_400),
        (None, Some(d)) if (1..=365).contains(&d) => Ok(u64::from(d) * 86_400),
        (None, Some(_)) => Err(ApiError::bad_request("invalid_ttl", "ttl_days must be between 1 and 365")),
    }
}

/// Name, description, tags and content type of a new file, within `[limits]`.
fn check_meta(
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

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    retention_until: Option<String>,
    /// `permanent` (default) or `temporary`.
    #[serde(default)]
    retention_policy: Option<String>,
    #[serde(default)]
    ttl_days: Option<u32>,
    /// Finer-grained alternative to `ttl_days` (1 s to 365 days).
    #[serde(default)]
    ttl_seconds: Option<u64>,
    /// `zstd` stores chunks compressed.
    #[serde(default)]
    compression: Option<String>,
}

/// A client-declared SHA-256 as lower-case hex, or a 400 naming `field`.
fn sha256_hex(field: &str, value: &str) -> Result<String, ApiError> {
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

/// The request with its multipart preamble and part headers bounded (`limits.max_header_bytes`;
/// the parser would buffer them without limit on routes that stream files), and the flag raised
/// when the bound refused the body.
fn bounded_multipart(s: &AppState, req: axum::extract::Request) -> (axum::extract::Request, Arc<AtomicBool>) {
    let refused = Arc::new(AtomicBool::new(false));
    let boundary = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|ct| {
        ct.split(';').skip(1).find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
        })
    });
    let Some(boundary) = boundary else { return (req, refused) };
    let (parts, body) = req.into_parts();
    let flag = refused.clone();
    let guarded = super::multipart_guard::bounded(body.into_data_stream(), &boundary, s.limits.max_header_bytes)
        .inspect(move |r| {
            if r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData) {
                flag.store(true, Ordering::Relaxed);
            }
        });
    (axum::extract::Request::from_parts(parts, Body::from_stream(guarded)), refused)
}

/// A multipart failure caused by the head bound becomes a 413 naming it.
fn head_status(refused: &AtomicBool, limit: usize, e: ApiError) -> ApiError {
    if refused.load(Ordering::Relaxed) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "multipart_head_too_large",
            format!("a multipart preamble or part header is over {limit} bytes (limits.max_header_bytes)"),
        );
    }
    e
}

/// The flag the listener raises when this request's body stalled.
fn stall_flag(req: &axum::extract::Request) -> super::listener::BodyStall {
    req.extensions().get::<super::listener::BodyStall>().cloned().unwrap_or_default()
}

/// A failure of an upload whose body stalled becomes 408, whatever the layer that noticed.
fn stall_status(stalled: &super::listener::BodyStall, secs: u64, what: &str, e: ApiError) -> ApiError {
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

fn check_idempotency_key(key: Option<String>) -> Result<Option<String>, ApiError> {
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 255 || k.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 characters, no control characters",
        ));
    }
    Ok(key)
}

fn compression(value: Option<&str>) -> Result<bool, ApiError> {
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

/// The JSON `metadata` part of a multipart upload.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct MetadataPart {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    custom_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    retention_policy: Option<String>,
    #[serde(default)]
    ttl_days: Option<u32>,
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    retention_until: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    compression: Option<String>,
}

pub(super) fn meta_from_part(
    limits: &Limits,
    max_attributes_bytes: usize,
    created_by: &str,
    part: MetadataPart,
    file_name: Option<String>,
    file_type: Option<String>,
) -> Result<UploadMeta, ApiError> {
    let name = part.name.or(file_name).ok_or_else(|| {
        ApiError::bad_request("missing_name", "give `name` in the metadata part or a filename on the file part")
    })?;
    let content_type = part.content_type.or(file_type).unwrap_or_else(|| "application/octet-stream".into());
    check_meta(limits, &name, &part.description, &part.tags, &content_type)?;
    let policy = parse_policy(part.retention_policy.as_deref())?;
    let ttl_secs = parse_ttl(part.ttl_days, part.ttl_seconds)?;
    let attributes_json = match part.custom_attributes {
        Some(m) => bounds::attributes(limits, max_attributes_bytes, &serde_json::Value::Object(m).to_string())?,
        None => "{}".into(),
    };
    let expected_sha256 = part.sha256.as_deref().map(|h| sha256_hex("sha256", h)).transpose()?;
    Ok(UploadMeta {
        name,
        content_type,
        description: part.description,
        tags: part.tags,
        attributes_json,
        policy,
        ttl_secs,
        retention_until: part.retention_until.as_deref().map(|t| parse_time("retention_until", t)).transpose()?,
        expected_sha256,
        idempotency_key: check_idempotency_key(part.idempotency_key)?,
        created_by: created_by.to_string(),
        compress: compression(part.compression.as_deref())?,
    })
}

/// Reads the `metadata` part into memory, refusing it as soon as it passes the limit (it is
/// never buffered whole first).
async fn metadata_part(s: &AppState, mut field: axum::extract::multipart::Field<'_>) -> Result<MetadataPart, ApiError> {
    let max = s.limits.max_metadata_part_bytes;
    let mut bytes = Vec::new();
    while let Some(piece) =
        field.chunk().await.map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?
    {
        if bytes.len() + piece.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "metadata_too_large",
                format!("the metadata part is over {max} bytes (limits.max_metadata_part_bytes)"),
            ));
        }
        bytes.extend_from_slice(&piece);
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("invalid_metadata", format!("metadata part: {e}")))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(e.status(), "invalid_multipart", e.body_text())
}

/// Reads `metadata` / `file` part pairs, in that order (a `file` part may come alone when its
/// filename is the name); each file is streamed into the archive as it arrives.
///
/// With `batch`, every pair gets its own result and is committed on its own. Otherwise exactly one
/// file is accepted and committed only once the whole body has been read and found well-formed:
/// a second file, or a `metadata` part after the file, refuses the request with nothing committed.
async fn upload_parts(
    s: &AppState,
    caller: &Caller,
    mut multipart: axum::extract::Multipart,
    batch: bool,
) -> Result<Vec<Result<artstore_actors::ingest::Uploaded, ApiError>>, ApiError> {
    use artstore_actors::ingest::Staged;
    let mut results = Vec::new();
    let mut pending: Option<MetadataPart> = None;
    // The single upload's file, stored and waiting for the end of the body.
    let mut staged: Option<Staged> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        if !batch && staged.is_some() {
            return Err(ApiError::bad_request(
                "too_many_parts",
                "a single upload is one optional `metadata` part followed by one `file` part; \
                 nothing was stored (use /api/v1/files/batch for many files)",
            ));
        }
        match field.name() {
            Some("metadata") => {
                if pending.is_some() {
                    return Err(ApiError::bad_request(
                        "metadata_without_file",
                        "two `metadata` parts in a row: each one must be followed by its `file` part",
                    ));
                }
                match metadata_part(s, field).await {
                    Ok(part) => pending = Some(part),
                    Err(e) if batch && results.is_empty() => return Err(e),
                    // Earlier files of a batch are committed: their results must reach the client.
                    Err(e) if batch => {
                        results.push(Err(e));
                        return Ok(results);
                    }
                    Err(e) => return Err(e),
                }
            }
            Some("file") => {
                if batch && results.len() >= s.limits.max_batch_files {
                    // The files handled so far keep their results; the rest of the body is not read.
                    results.push(Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_files",
                        format!(
                            "a batch holds at most {} files (limits.max_batch_files); later files were not read",
                            s.limits.max_batch_files
                        ),
                    )));
                    return Ok(results);
                }
                let file_name = field.file_name().map(String::from);
                let file_type = field.content_type().map(String::from);
                let part = pending.take().unwrap_or_default();
                let (limits, max_attributes) = (&s.limits, s.max_attributes_bytes);
                let meta =
                    meta_from_part(limits, max_attributes, &caller.principal.client_id, part, file_name, file_type);
                let meta = match meta {
                    Ok(meta) => meta,
                    Err(e) if batch => {
                        // Drain the refused file so the next part can be read.
                        let mut field = field;
                        while let Ok(Some(_)) = field.chunk().await {}
                        results.push(Err(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let stored = s.ingest.stage(meta, field).await;
                match (batch, stored) {
                    (false, Ok(st)) => staged = Some(st),
                    (false, Err(e)) => return Err(e.into()),
                    (true, Ok(Staged::Replay(u))) => results.push(Ok(u)),
                    (true, Ok(Staged::Stored(f))) => results.push(s.ingest.commit(f).await.map_err(ApiError::from)),
                    (true, Err(e)) => results.push(Err(e.into())),
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!(
                        "unexpected part {:?}; use `metadata` and `file`",
                        other.chars().take(64).collect::<String>()
                    ),
                ))
            }
            None => return Err(ApiError::bad_request("invalid_multipart", "every part needs a name")),
        }
    }
    if pending.is_some() {
        let e = ApiError::bad_request(
            "metadata_without_file",
            "a `metadata` part must come before its `file` part; this one had none after it",
        );
        if !batch {
            return Err(e);
        }
        results.push(Err(e));
    }
    match staged {
        Some(Staged::Replay(u)) => results.push(Ok(u)),
        Some(Staged::Stored(f)) => results.push(Ok(s.ingest.commit(f).await?)),
        None => {}
    }
    Ok(results)
}

/// `POST /api/v1/files/batch`: many files in one multipart request, each committed or refused
/// on its own: `{"results": [{"index", "status", "file" | "error"}]}`.
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
    let items: Vec<serde_json::Value> = results
        .into_iter()
        .enumerate()
        .map(|(index, r)| match r {
            Ok(u) => serde_json::json!({"index": index, "status": if u.replayed { 200 } else { 201 }, "file": wire(u.file)}),
            Err(e) => serde_json::json!({"index": index, "status": e.status.as_u16(), "error": {"code": e.code, "message": e.message}}),
        })
        .collect();
    Ok(Json(serde_json::json!({ "results": items })).into_response())
}

/// The live record of `id` as of every change committed before the call (Raft read index first,
/// so a lagging node never answers from stale state).
async fn live(s: &AppState, id: &str) -> Result<FileRecord, ApiError> {
    s.node.read_barrier().await?;
    match s.node.catalog().file(id)? {
        Some(f) if f.deleted_at.is_none() => Ok(f),
        Some(_) => Err(ApiError::not_found(format!("file {id} was deleted"))),
        None => Err(ApiError::not_found(format!("no file {id}"))),
    }
}

/// `GET /api/v1/files/{id}`: read-after-write from any node (Raft read index first).
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<FileInfo>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(id) = id?;
    Ok(Json(wire(live(&s, &id).await?)))
}

/// `If-None-Match` against the file's ETag. RFC 9110 §13.1.2: `*` matches any current file, and
/// the comparison is weak (`W/"x"` matches `"x"`).
pub(super) fn not_modified(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag))
}

/// A single byte range resolved against the file size: inclusive `(start, end)`.
pub(super) enum Wanted {
    All,
    Range(u64, u64),
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b | a- | -n` (one range; a list falls back to the whole body).
pub(super) fn wanted(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Wanted::All };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((a, b)) = spec.split_once('-') else { return Wanted::All };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => Some((start, end.min(size.saturating_sub(1)))),
        (Some(start), None) if b.is_empty() => Some((start, size.saturating_sub(1))),
        // RFC 9110 §14.1.3: a suffix of zero bytes can never be satisfied.
        (None, Some(0)) if a.is_empty() => return Wanted::Unsatisfiable,
        (None, Some(n)) if a.is_empty() => Some((size.saturating_sub(n), size.saturating_sub(1))),
        _ => return Wanted::All,
    };
    match range {
        Some((start, end)) if start < size && start <= end => Wanted::Range(start, end),
        _ => Wanted::Unsatisfiable,
    }
}

/// `GET /api/v1/files/{id}/content` (and `HEAD`): the body streamed chunk by chunk with every chunk
/// verified; `ETag` is the SHA-256; one byte range per request (`Range`, `If-Range`; 206 or 416).
pub async fn content(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(id) = id?;
    let file = live(&s, &id).await?;
    let etag = format!("\"{}\"", file.sha256);
    if not_modified(headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let size = file.size;
    // If-Range: the range applies only while the entity is still the one the client has.
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let if_range_ok = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| v.trim() == etag);
    let wanted = if if_range_ok { wanted(range_header, size) } else { Wanted::All };
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(&file.name),
        percent_encode(&file.name)
    );
    let content_type = file.content_type.clone();
    let (status, length, content_range, body) = match wanted {
        Wanted::Unsatisfiable => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
        Wanted::All => (StatusCode::OK, size, None, Body::from_stream(s.ingest.read(file))),
        Wanted::Range(start, end) => (
            StatusCode::PARTIAL_CONTENT,
            end - start + 1,
            Some(format!("bytes {start}-{end}/{size}")),
            Body::from_stream(s.ingest.read_range(file, start, end)),
        ),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The stored content type is the uploader's word: browsers must not second-guess it.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let mut set =
        vec![(header::CONTENT_TYPE, content_type), (header::ETAG, etag), (header::CONTENT_DISPOSITION, disposition)];
    if let Some(cr) = content_range {
        set.push((header::CONTENT_RANGE, cr));
    }
    for (name, value) in set {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}

/// The plain `filename=` of `Content-Disposition` for clients that ignore `filename*`: printable
/// ASCII only, quotes and backslashes replaced.
fn ascii_fallback(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect()
}

/// RFC 8187 `attr-char` percent-encoding (non-ASCII names intact after decoding).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    after: String,
    #[serde(default)]
    limit: Option<usize>,
    content_type: Option<String>,
    tag: Option<String>,
    created_by: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
}

/// Records one listing request examines at most; a page may then hold fewer than `limit` files
/// and its cursor continues the scan.
const LIST_SCAN_BUDGET: usize = 10_000;

/// `GET /api/v1/files?after=ID&limit=N&content_type=…&tag=…&created_by=…&created_after=…&created_before=…`:
/// in id (= creation) order, deleted files left out, read-after-write consistent on any node.
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
    let after_ms = q.created_after.as_deref().map(|v| parse_time("created_after", v)).transpose()?;
    let before_ms = q.created_before.as_deref().map(|v| parse_time("created_before", v)).transpose()?;
    let content_type = q.content_type.as_deref().map(str::to_lowercase);
    let matches = move |f: &FileRecord| {
        f.deleted_at.is_none()
            && content_type.as_ref().is_none_or(|c| f.content_type.to_lowercase() == *c)
            && q.tag.as_ref().is_none_or(|t| f.tags.contains(t))
            && q.created_by.as_ref().is_none_or(|c| &f.created_by == c)
            && after_ms.is_none_or(|t| f.created_at >= t)
            && before_ms.is_none_or(|t| f.created_at <= t)
    };
    // A listing reflects every upload acknowledged before it, whichever node took it.
    s.node.read_barrier().await?;
    let catalog = s.node.catalog().clone();
    let mut cursor = q.after.clone();
    let (files, next_cursor) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let mut files = Vec::new();
        let mut scanned = 0;
        loop {
            let want = (LIST_SCAN_BUDGET - scanned).min(1000);
            let page = catalog.files_after(&cursor, want)?;
            let exhausted = page.len() < want;
            for f in page {
                scanned += 1;
                cursor = f.id.clone();
                if matches(&f) {
                    files.push(wire(f));
                    if files.len() == limit {
                        return Ok((files, Some(cursor)));
                    }
                }
            }
            if exhausted {
                return Ok((files, None));
            }
            if scanned >= LIST_SCAN_BUDGET {
                return Ok((files, Some(cursor)));
            }
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok(Json(FileList { files, next_cursor }))
}

/// `PATCH /api/v1/files/{id}`: metadata only; bumps `version` and rewrites the sidecars.
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateFile>, JsonRejection>,
) -> Result<Json<FileInfo>, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Path(id) = id?;
    let Json(req) = body?;
    if let Some(n) = &req.name {
        bounds::name(&s.limits, n)?;
    }
    if let Some(d) = &req.description {
        bounds::description(&s.limits, d)?;
    }
    if let Some(t) = &req.tags {
        bounds::tags(&s.limits, t)?;
    }
    let current = live(&s, &id).await?;
    check_mutable(&s, &current)?;
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
    let r = s.node.propose(Command::UpdateFile { id: id.clone(), changes, at: now_ms() }).await?;
    if let Some(reason) = r.rejected {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", reason));
    }
    let file = live(&s, &id).await?;
    Ok(Json(wire(file)))
}

/// Metadata may change while every element holding the file is `edit` or `rw`.
fn check_mutable(s: &AppState, f: &FileRecord) -> Result<(), ApiError> {
    let catalog = s.node.catalog();
    for r in f.chunks.iter().flat_map(|c| c.replicas.iter()) {
        if let Some(e) = catalog.element(r.node_id, &r.element)? {
            if !e.mode.accepts_uploads() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "read_only",
                    format!("the file lives on element {} of node {}, which is {}", e.name, e.node_id, e.mode.as_str()),
                ));
            }
        }
    }
    Ok(())
}

/// `POST /api/v1/files/{id}/finalize`: a temporary file becomes permanent (writer).
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
pub async fn finalize_state(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(id) = id?;
    let f = live(&s, &id).await?;
    let state = match f.policy {
        RetentionPolicy::Temporary => "temporary",
        RetentionPolicy::Permanent => "permanent",
    };
    Ok(Json(serde_json::json!({"id": f.id, "state": state, "expires_at": f.expires_at.map(rfc3339)})))
}

/// `DELETE /api/v1/files/{id}`: temporary files only, never before `retention_until`. Audited.
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.principal.require(Role::Writer)?;
    let Path(id) = id?;
    let file = live(&s, &id).await?;
    check_mutable(&s, &file)?;
    let event = AuditEvent {
        at: now_ms(),
        actor: caller.principal.client_id.clone(),
        action: "file.delete".into(),
        target: id.clone(),
        outcome: "ok".into(),
        source: caller.source.map(|s| s.to_string()).unwrap_or_default(),
    };
    let command = Command::Audited { command: Box::new(Command::DeleteFile { id, at: now_ms() }), event };
    let r = s.node.propose(command).await?;
    match r.rejected {
        Some(reason) => Err(ApiError::new(StatusCode::CONFLICT, "conflict", reason)),
        None => Ok(StatusCode::NO_CONTENT),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
