//! Multipart bodies of uploads: `metadata` / `file` part pairs, read in order, each file
//! streamed into the archive as it arrives. The preamble and part headers are bounded before the
//! parser buffers them, and the JSON `metadata` part before it is parsed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use artstore_actors::ingest::UploadMeta;
use artstore_cluster_config::Limits;
use axum::body::Body;
use axum::http::{header, StatusCode};
use futures::StreamExt;
use serde::Deserialize;

use super::parse_time;
use super::upload::{check_idempotency_key, check_meta, compression, parse_policy, parse_ttl, sha256_hex};
use crate::http::auth::Caller;
use crate::http::{bounds, ApiError, AppState};

/// The request with its multipart preamble and part headers bounded (`limits.max_header_bytes`;
/// the parser would buffer them without limit on routes that stream files), and the flag raised
/// when the bound refused the body.
pub(super) fn bounded_multipart(
    s: &AppState,
    req: axum::extract::Request,
) -> (axum::extract::Request, Arc<AtomicBool>) {
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
    let guarded = crate::http::multipart_guard::bounded(body.into_data_stream(), &boundary, s.limits.max_header_bytes)
        .inspect(move |r| {
            if r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData) {
                flag.store(true, Ordering::Relaxed);
            }
        });
    (axum::extract::Request::from_parts(parts, Body::from_stream(guarded)), refused)
}

/// A multipart failure caused by the head bound becomes a 413 naming it.
pub(super) fn head_status(refused: &AtomicBool, limit: usize, e: ApiError) -> ApiError {
    if refused.load(Ordering::Relaxed) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "multipart_head_too_large",
            format!("a multipart preamble or part header is over {limit} bytes (limits.max_header_bytes)"),
        );
    }
    e
}

/// The JSON `metadata` part of a multipart upload.
#[derive(Deserialize, Default, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataPart {
    /// The file's name; default: the `file` part's filename.
    #[serde(default)]
    name: Option<String>,
    /// Its media type; default: the `file` part's `Content-Type`, else `application/octet-stream`.
    #[serde(default)]
    content_type: Option<String>,
    /// Free text.
    #[serde(default)]
    description: String,
    /// Tags.
    #[serde(default)]
    tags: Vec<String>,
    /// Custom attributes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    custom_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `permanent` (default) or `temporary`.
    #[serde(default)]
    #[schema(pattern = "^(permanent|temporary)$")]
    retention_policy: Option<String>,
    /// Temporary files: days until they expire (1 to 365, default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    ttl_days: Option<u32>,
    /// Finer-grained alternative to `ttl_days` (1 s to 365 days).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31536000)]
    ttl_seconds: Option<u64>,
    /// RFC 3339: write-once until then.
    #[serde(default)]
    #[schema(format = DateTime)]
    retention_until: Option<String>,
    /// The file's SHA-256 in hex, checked.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: Option<String>,
    /// As the `Idempotency-Key` header.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// `zstd` or `none` (default).
    #[serde(default)]
    #[schema(pattern = "^(zstd|none)$")]
    compression: Option<String>,
}

/// A multipart upload: an optional JSON `metadata` part, then the `file` part, in that order.
// Only describes the body for the OpenAPI document; `upload_parts` reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file's metadata, as JSON.
    metadata: Option<MetadataPart>,
    /// The file's bytes; the part's filename and `Content-Type` are defaults for the metadata.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

pub(crate) fn meta_from_part(
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
pub(super) async fn upload_parts(
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
