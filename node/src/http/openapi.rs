//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! It is generated from the code, never written by hand: each handler carries a
//! `#[utoipa::path]` attribute (its parameters, bodies, success responses, the errors it raises
//! with their codes in `x-error-codes`, and the role it needs in `x-required-role`), and the JSON
//! types derive `utoipa::ToSchema` (the wire types in `artstore-client` behind its `openapi`
//! feature). [`conventions`] then adds what every route shares, so no handler repeats it.
//!
//! Invariant: every route of the router is in the document and nothing else is; the route
//! table test (`node/tests/routes.rs`) compares the two and the role of each operation with the
//! table.

mod conventions;

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use conventions::Conventions;

use super::{admin, auth, cluster, elements, files, health, recover, repair, search};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ArtStore HTTP API",
        description = "A distributed document archive. Applications authenticate as service accounts \
            (OAuth 2.0 client credentials at `POST /api/v1/auth/token`) and send the JWT they get as \
            `Authorization: Bearer …` to every other call that needs a role. Any node accepts any \
            request. Errors are `{\"error\": {\"code\", \"message\"}}` (the token endpoint answers \
            RFC 6749 errors); each error response lists its codes in `x-error-codes`, and each \
            operation names the role it needs in `x-required-role` (an `admin` token may call every \
            operation). Every request may carry `X-Request-ID`; every response echoes it, or the one \
            the node generated.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::live,
        health::ready,
        health::metrics,
        auth::token,
        auth::jwks,
        document,
        admin::list,
        admin::create,
        admin::get,
        admin::update,
        admin::delete,
        admin::rotate_secret,
        admin::revoke,
        admin::rotate_keys,
        admin::audit,
        admin::verify_audit,
        files::list,
        files::upload::upload,
        files::upload::batch,
        files::get,
        files::update,
        files::delete,
        files::download::content,
        files::finalize_state,
        files::finalize,
        search::search,
        repair::status,
        recover::recover,
        elements::list,
        elements::set_mode,
        cluster::status,
        cluster::join,
        cluster::remove,
        cluster::get_drain,
        cluster::start_drain,
        cluster::stop_drain,
        cluster::backup,
        cluster::take_digest,
        cluster::get_digest,
        cluster::list_settings,
        cluster::get_setting,
        cluster::put_setting,
        cluster::delete_setting,
    ),
    components(schemas(artstore_client::wire::ErrorResponse, auth::OAuthError)),
    modifiers(&Conventions),
    tags(
        (name = "health", description = "Liveness, readiness and metrics."),
        (name = "auth", description = "Tokens (OAuth 2.0 client credentials) and the keys that verify them."),
        (name = "accounts", description = "Service accounts (admin)."),
        (name = "audit", description = "Signing keys and the hash-chained audit log (operator)."),
        (name = "files", description = "Upload, metadata, download, finalize and delete."),
        (name = "search", description = "Full-text search with filters, sort and cursors."),
        (name = "storage", description = "Storage elements, repair and recovery."),
        (name = "cluster", description = "Membership, drain, digests and cluster-wide settings."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// The document, built once.
pub fn spec() -> &'static utoipa::openapi::OpenApi {
    static SPEC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    &SPEC
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    summary = "The OpenAPI 3.1 document of this API",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json")),
)]
pub async fn document() -> impl IntoResponse {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(spec()).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
        camel_case_links(&mut doc);
        doc.to_string()
    });
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")], JSON.as_str())
}

/// utoipa 5 writes the fields of a Link Object in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef`, `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|r| r.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else { continue };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (snake, camel) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(v) = link.remove(snake) {
                    link.insert(camel.to_string(), v);
                }
            }
        }
    }
}
