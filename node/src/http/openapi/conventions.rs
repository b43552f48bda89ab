//! What every operation shares, added to the generated document in one place rather than
//! repeated on each handler: the security schemes; the security requirement, 401 and 403 of each
//! operation that names a role in `x-required-role`; the rejections of the framework's
//! extractors (path, JSON body) and the cluster's 503/504 on those operations; 431 and 500
//! everywhere; the `X-Request-ID` header; and each error response's codes (`x-error-codes`)
//! spelled out in its description, for readers of generated clients.

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Object, OpenApi, Ref, RefOr, Required, Type};
use utoipa::Modify;

/// The [`Modify`] step the document derive runs last.
pub struct Conventions;

/// The roles, which are also the OAuth 2.0 scopes a token carries (its `scope`).
const ROLES: [(&str, &str); 4] = [
    ("admin", "Everything: service accounts, recovery, and every other operation."),
    ("operator", "The cluster: membership, storage-element modes, signing keys, the audit log, repair, settings."),
    ("writer", "Upload, update, finalize and delete files."),
    ("reader", "Read, list, search and download files; read cluster state and settings."),
];

/// Where the role an operation needs is declared, on its `#[utoipa::path]`.
pub const REQUIRED_ROLE: &str = "x-required-role";
/// The `code`s an error response can carry.
pub const ERROR_CODES: &str = "x-error-codes";

impl Modify for Conventions {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scopes = Scopes::from_iter(ROLES);
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new("/api/v1/auth/token", scopes))],
                "OAuth 2.0 client credentials (RFC 6749 §4.4) of a service account; the scopes are its roles.",
            )),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT from `POST /api/v1/auth/token`, as `Authorization: Bearer …`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A service account's `client_id:client_secret`, for the token endpoint only (RFC 6749 §2.3.1).",
                    ))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                shape(op);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn shape(op: &mut Operation) {
    let role = op.extensions.as_ref().and_then(|e| e.get(REQUIRED_ROLE)).and_then(|v| v.as_str()).map(String::from);
    if let Some(role) = role {
        op.security = Some(vec![
            SecurityRequirement::new("oauth2", [role.as_str()]),
            SecurityRequirement::new("bearer", [role.as_str()]),
        ]);
        append(&mut op.description, &format!("Needs the `{role}` role (an `admin` token may call every operation)."));
        error(
            op,
            401,
            "No valid bearer token: none was sent, or it is malformed, expired, or of a disabled or deleted account \
             (`WWW-Authenticate: Bearer` says which).",
            &["missing_token", "invalid_token"],
        );
        error(op, 403, "The token's account does not have the role this operation needs.", &["forbidden"]);
        let has_path_params = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Path));
        if has_path_params {
            error(op, 400, "A path parameter is not of its type.", &["invalid_path"]);
        }
        let json_body = op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
        if json_body {
            error(op, 400, "The body is not valid JSON.", &["invalid_body"]);
            error(op, 413, "The body is over its limit (`limits.max_json_body_bytes`).", &["invalid_body"]);
            error(op, 415, "The body is not sent as `Content-Type: application/json`.", &["invalid_body"]);
            error(op, 422, "The JSON body does not have the fields or types this operation takes.", &["invalid_body"]);
        }
        error(
            op,
            503,
            "The cluster cannot serve the request now (no leader, a peer unreachable, the node stopping); \
             retry, on another node if need be.",
            &["no_leader", "unavailable", "stopping"],
        );
        error(op, 504, "The cluster did not commit or confirm in time; the outcome is unknown.", &["timeout"]);
    } else {
        append(&mut op.description, "Public: no token needed.");
    }
    error(op, 431, "The request line and headers are over `limits.max_header_bytes` together.", &["headers_too_large"]);
    error(op, 500, "A failure inside the node (it is logged); the request may be retried.", &["internal"]);
    request_id(op);
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            describe_codes(r);
        }
    }
}

fn append(description: &mut Option<String>, text: &str) {
    match description {
        Some(d) if !d.is_empty() => {
            d.push_str("\n\n");
            d.push_str(text);
        }
        _ => *description = Some(text.to_string()),
    }
}

/// Adds an `ErrorResponse` for `status`, or merges `codes` into the one the handler declared.
fn error(op: &mut Operation, status: u16, description: &str, codes: &[&str]) {
    let key = status.to_string();
    if let Some(RefOr::T(r)) = op.responses.responses.get_mut(&key) {
        // The handler's own wording first; what every route shares after it.
        if !r.description.contains(description) {
            let mut d = Some(std::mem::take(&mut r.description));
            append(&mut d, description);
            r.description = d.unwrap_or_default();
        }
    }
    let entry = op.responses.responses.entry(key).or_insert_with(|| {
        let mut r = ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorResponse"))))
            .build();
        if status == 401 {
            r.headers.insert(
                "WWW-Authenticate".into(),
                Header::builder()
                    .schema(Object::with_type(Type::String))
                    .description(Some(
                        "`Bearer realm=\"artstore\"`, with `error` and `error_description` when a token was sent.",
                    ))
                    .build(),
            );
        }
        RefOr::T(r)
    });
    let RefOr::T(r) = entry else { return };
    let ext = r.extensions.get_or_insert_with(Extensions::default);
    let list = ext.entry(ERROR_CODES.to_string()).or_insert_with(|| serde_json::json!([]));
    if let Some(list) = list.as_array_mut() {
        for code in codes {
            if !list.iter().any(|c| c == code) {
                list.push(serde_json::json!(code));
            }
        }
    }
}

/// `X-Request-ID`: optional on every request, present on every response.
fn request_id(op: &mut Operation) {
    let param: Parameter = ParameterBuilder::new()
        .name("X-Request-ID")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("Correlates logs; generated when absent and echoed in the response."))
        .schema(Some(Object::with_type(Type::String)))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(param);
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            r.headers.insert(
                "X-Request-ID".into(),
                Header::builder()
                    .schema(Object::with_type(Type::String))
                    .description(Some("The request's id, as sent or generated."))
                    .build(),
            );
        }
    }
}

/// Ends the description of an error response with its codes, for readers who never see the
/// extension.
fn describe_codes(r: &mut Response) {
    let codes: Vec<String> = r
        .extensions
        .as_ref()
        .and_then(|e| e.get(ERROR_CODES))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|c| c.as_str()).map(|c| format!("`{c}`")).collect())
        .unwrap_or_default();
    if !codes.is_empty() {
        let mut d = Some(std::mem::take(&mut r.description));
        append(&mut d, &format!("Error codes: {}.", codes.join(", ")));
        r.description = d.unwrap_or_default();
    }
}
