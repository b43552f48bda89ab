//! `GET /api/v1/files/{id}/content`: the body streamed chunk by chunk, one byte range per
//! request, conditional on `If-None-Match` and `If-Range`, named with RFC 8187
//! `Content-Disposition`.

use artstore_client::wire::ErrorResponse;
use artstore_raft::Role;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::live;
use crate::http::auth::Caller;
use crate::http::{ApiError, AppState};

/// `If-None-Match` against the file's ETag. RFC 9110 §13.1.2: `*` matches any current file, and
/// the comparison is weak (`W/"x"` matches `"x"`).
pub(crate) fn not_modified(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag))
}

/// A single byte range resolved against the file size: inclusive `(start, end)`.
pub(crate) enum Wanted {
    All,
    Range(u64, u64),
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b | a- | -n` (one range; a list falls back to the whole body).
pub(crate) fn wanted(header: Option<&str>, size: u64) -> Wanted {
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
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}/content",
    operation_id = "download_file",
    tag = "files",
    summary = "Download a file's body",
    description = "The body streams chunk by chunk, each verified against its SHA-256. `HEAD` answers \
        the same headers. One byte range per request (`Range: bytes=a-b | a- | -n`); a list of ranges \
        answers the whole body.",
    params(
        ("id" = String, Path, description = "The file's id (UUIDv7)."),
        ("Range" = Option<String>, Header, description = "`bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`."),
        ("If-Range" = Option<String>, Header, description = "The range applies only while the ETag is still this one."),
        ("If-None-Match" = Option<String>, Header, description = "ETags (or `*`); 304 when one matches."),
    ),
    responses(
        (status = 200, description = "The whole body, with the file's stored `Content-Type`.", content_type = "*/*",
            headers(
                ("ETag" = String, description = "The SHA-256, quoted."),
                ("Accept-Ranges" = String, description = "`bytes`"),
                ("Content-Disposition" = String, description = "`attachment` with the name (RFC 8187)."),
            )),
        (status = 206, description = "The requested range.", content_type = "*/*",
            headers(
                ("Content-Range" = String, description = "`bytes START-END/SIZE`"),
                ("ETag" = String, description = "The SHA-256, quoted."),
                ("Content-Disposition" = String, description = "`attachment` with the name (RFC 8187)."),
            )),
        (status = 304, description = "`If-None-Match` matched.", headers(("ETag" = String))),
        (status = 404, description = "No such file, or it was deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 416, description = "The range starts past the end.", body = ErrorResponse,
            headers(("Content-Range" = String, description = "`bytes */SIZE`")),
            extensions(("x-error-codes" = json!(["range_not_satisfiable"])))),
        (status = 500, description = "No replica of a chunk could be read intact.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["storage_io", "data_damaged"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
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
        Wanted::All => (StatusCode::OK, size, None, Body::from_stream(s.query.read(file))),
        Wanted::Range(start, end) => (
            StatusCode::PARTIAL_CONTENT,
            end - start + 1,
            Some(format!("bytes {start}-{end}/{size}")),
            Body::from_stream(s.query.read_range(file, start, end)),
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
