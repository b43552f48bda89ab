//! JSON request bodies: axum's `Json`, except that the top level must not be an array.
//!
//! serde's derived structs also read a positional array (`[null]` is an `UpdateFile` whose first
//! field is null, `[]` one with every field absent), which no client means and the OpenAPI
//! document does not allow; schema-driven fuzzing found `PATCH /api/v1/files/{id}` with `[null]`
//! answering 200 and bumping the file's version. Every other refusal reads as axum's would.

use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON body of type `T`; refusals are `ApiError`s with the code `invalid_body`.
pub struct JsonBody<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let Ok(mime) = value.parse::<mime::Mime>() else { return false };
    mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
}

async fn read<T: DeserializeOwned, S: Send + Sync>(req: Request, state: &S) -> Result<T, ApiError> {
    let bytes =
        Bytes::from_request(req, state).await.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object, not an array",
        ));
    }
    Ok(Json::<T>::from_bytes(&bytes)?.0)
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_body",
        "Expected request with `Content-Type: application/json`",
    )
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        read(req, state).await.map(JsonBody)
    }
}

/// An optional body: absent when the request has no `Content-Type`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        read(req, state).await.map(|t| Some(JsonBody(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Patch {
        #[serde(default)]
        name: Option<String>,
    }

    async fn body(content_type: Option<&str>, text: &str) -> Result<Option<JsonBody<Patch>>, ApiError> {
        let mut req = axum::http::Request::builder().method("PATCH").uri("/");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(axum::body::Body::from(text.to_string())).unwrap();
        <JsonBody<Patch> as OptionalFromRequest<()>>::from_request(req, &()).await
    }

    #[tokio::test]
    async fn objects_pass_and_arrays_and_other_media_types_are_refused() {
        assert!(body(Some("application/json"), r#"{"name": "a"}"#).await.unwrap().is_some());
        assert!(body(Some("application/merge-patch+json"), "{}").await.unwrap().is_some());
        assert!(body(None, "").await.unwrap().is_none());
        for (ct, text, status) in [
            ("application/json", "[null]", 422),
            ("application/json", " \n[]", 422),
            ("application/json", "{", 400),
            ("application/json", r#"{"name": 5}"#, 422),
            ("text/plain", "{}", 415),
        ] {
            let e = body(Some(ct), text).await.err().unwrap_or_else(|| panic!("{ct} {text:?} was accepted"));
            assert_eq!((e.status.as_u16(), e.code), (status, "invalid_body"), "{ct} {text:?}: {}", e.message);
        }
    }
}
