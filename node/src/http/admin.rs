//! Service accounts, signing-key rotation and the audit log. Each handler names the role it
//! needs through the admin handle (`admin` for accounts, `operator` for keys and audit).

use artstore_actors::admin::{AccountUpdate, AdminHandle, AuditFilter, NewAccount};
use artstore_client::wire::{
    AuditPage, AuditRecord, AuditVerification, CreateServiceAccount, ErrorResponse, KeyRotated, RevokeTokens,
    RotateSecret, ServiceAccount, ServiceAccountWithSecret, ServiceAccounts, UpdateServiceAccount,
};
use artstore_raft::Role;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::json::JsonBody;
use super::{ApiError, AppState};

/// Unix milliseconds as RFC 3339 (the catalog's one definition).
pub use artstore_raft::rfc3339;

fn wire(admin: &AdminHandle, a: artstore_raft::ServiceAccount) -> ServiceAccount {
    let secret_expires_at = Some(rfc3339(admin.secret_age(&a).expires_at()));
    ServiceAccount {
        secret_expires_at,
        client_id: a.client_id,
        name: a.name,
        description: a.description,
        roles: a.roles.iter().map(|r| r.as_str().to_string()).collect(),
        enabled: a.enabled,
        builtin: a.builtin,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
        deleted_at: a.deleted_at.map(rfc3339),
        require_client_cert: a.require_client_cert,
    }
}

fn roles(names: &[String]) -> Result<Vec<Role>, ApiError> {
    names
        .iter()
        .map(|n| {
            Role::parse(n).ok_or_else(|| {
                ApiError::bad_request("invalid_role", format!("role {n:?}: use admin, operator, writer or reader"))
            })
        })
        .collect()
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts",
    operation_id = "create_service_account",
    tag = "accounts",
    summary = "Create a service account",
    description = "The secret is generated (at least 32 characters from a CSPRNG) unless one is given \
        (at least 12 characters with mixed classes); it is shown in this response only.",
    request_body = CreateServiceAccount,
    responses(
        (status = 201, description = "Created, with its secret.", body = ServiceAccountWithSecret,
            links(
                ("GetServiceAccount" = (operation_id = "get_service_account",
                    parameters(("client_id" = "$response.body#/account/client_id")))),
                ("UpdateServiceAccount" = (operation_id = "update_service_account",
                    parameters(("client_id" = "$response.body#/account/client_id")))),
                ("RotateSecret" = (operation_id = "rotate_service_account_secret",
                    parameters(("client_id" = "$response.body#/account/client_id")))),
                ("DeleteServiceAccount" = (operation_id = "delete_service_account",
                    parameters(("client_id" = "$response.body#/account/client_id")))),
            )),
        (status = 400, description = "A field is invalid: an unknown role, no role, a malformed `client_id`, \
            a name or description over its limit, or a weak secret.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_role", "invalid_request"])))),
        (status = 409, description = "An account with this `client_id` exists.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<CreateServiceAccount>, ApiError>,
) -> Result<(StatusCode, Json<ServiceAccountWithSecret>), ApiError> {
    // Authorise first: a reader learns nothing about what a valid body would look like.
    caller.principal.require(Role::Admin)?;
    let JsonBody(req) = body?;
    let new = NewAccount {
        client_id: req.client_id,
        name: req.name,
        description: req.description,
        roles: roles(&req.roles)?,
        secret: req.client_secret,
        require_client_cert: req.require_client_cert,
    };
    let (account, secret) = s.admin.create_account(&caller.principal, new, caller.source).await?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceAccountWithSecret { account: wire(&s.admin, account), client_secret: secret }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Also list soft-deleted accounts.
    #[serde(default)]
    pub(crate) include_deleted: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts",
    operation_id = "list_service_accounts",
    tag = "accounts",
    summary = "List service accounts",
    params(ListQuery),
    responses(
        (status = 200, description = "The accounts, never with secrets.", body = ServiceAccounts),
        (status = 400, description = "A query parameter is not of its type.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_query"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ServiceAccounts>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Query(q) = q?;
    let accounts = s.admin.list_accounts(&caller.principal, q.include_deleted)?;
    Ok(Json(ServiceAccounts { accounts: accounts.into_iter().map(|a| wire(&s.admin, a)).collect() }))
}

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts/{client_id}",
    operation_id = "get_service_account",
    tag = "accounts",
    summary = "Read a service account",
    params(("client_id" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The account.", body = ServiceAccount),
        (status = 404, description = "No such account.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ServiceAccount>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    Ok(Json(wire(&s.admin, s.admin.get_account(&caller.principal, &id)?)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/service-accounts/{client_id}",
    operation_id = "update_service_account",
    tag = "accounts",
    summary = "Change a service account",
    description = "Absent fields stay as they are. Disabling an account stops its tokens on every node at \
        once. The bootstrap `admin` account can be neither disabled nor stripped of `admin`.",
    params(("client_id" = String, Path, description = "The account's id.")),
    request_body = UpdateServiceAccount,
    responses(
        (status = 200, description = "The changed account.", body = ServiceAccount),
        (status = 400, description = "A field is invalid.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_role", "invalid_request"])))),
        (status = 404, description = "No such account.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The change is refused (the bootstrap account, a deleted account).",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateServiceAccount>, ApiError>,
) -> Result<Json<ServiceAccount>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    let JsonBody(req) = body?;
    let update = AccountUpdate {
        name: req.name,
        description: req.description,
        roles: req.roles.as_deref().map(roles).transpose()?,
        enabled: req.enabled,
        require_client_cert: req.require_client_cert,
    };
    Ok(Json(wire(&s.admin, s.admin.update_account(&caller.principal, &id, update, caller.source).await?)))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{client_id}/rotate-secret",
    operation_id = "rotate_service_account_secret",
    tag = "accounts",
    summary = "Give a service account a new secret",
    description = "The new secret is shown in this response only. The old one keeps working for \
        `grace_period_secs` (at most 7 days), or stops at once. The body is optional.",
    params(("client_id" = String, Path, description = "The account's id.")),
    request_body(content = Option<RotateSecret>, content_type = "application/json"),
    responses(
        (status = 200, description = "The account and its new secret.", body = ServiceAccountWithSecret),
        (status = 400, description = "`grace_period_secs` is over 7 days.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_request"])))),
        (status = 404, description = "No such account.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The account is deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn rotate_secret(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Option<JsonBody<Option<RotateSecret>>>, ApiError>,
) -> Result<Json<ServiceAccountWithSecret>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    let body = body?.and_then(|JsonBody(b)| b).unwrap_or_default();
    let (secret, account) = s
        .admin
        .rotate_secret(&caller.principal, &id, body.grace_period_secs, body.client_secret, caller.source)
        .await?;
    let account = wire(&s.admin, account);
    Ok(Json(ServiceAccountWithSecret { account, client_secret: secret }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/service-accounts/{client_id}",
    operation_id = "delete_service_account",
    tag = "accounts",
    summary = "Delete a service account",
    description = "A soft delete: the account gets no more tokens and its tokens stop working; it stays \
        listed with `include_deleted=true`. The bootstrap `admin` account cannot be deleted.",
    params(("client_id" = String, Path, description = "The account's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such account.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "The bootstrap account, or already deleted.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    s.admin.delete_account(&caller.principal, &id, caller.source).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/keys/rotate",
    operation_id = "rotate_signing_keys",
    tag = "audit",
    summary = "Rotate the token signing key",
    description = "A new key signs tokens from now on; the old one keeps validating the tokens it signed \
        until they expire.",
    responses((status = 200, description = "The new key's id.", body = KeyRotated)),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn rotate_keys(State(s): State<AppState>, caller: Caller) -> Result<Json<KeyRotated>, ApiError> {
    let kid = s.admin.rotate_keys(&caller.principal, caller.source).await?;
    Ok(Json(KeyRotated { kid }))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/revoke",
    operation_id = "revoke_tokens",
    tag = "auth",
    summary = "Revoke tokens",
    description = "One token by its `jti`, or every token of an account issued before a time (default \
        now; tokens issued within the same second are revoked too). Replicated: every node refuses the \
        tokens once it has applied the revocation, and this node has when it answers. Kept until the \
        tokens would have expired. Audited as `token.revoke`.",
    request_body = RevokeTokens,
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "Neither or both of `jti` and `client_id`, or a malformed value.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["invalid_request", "invalid_time", "invalid_json"])))),
        (status = 404, description = "No such account.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<RevokeTokens>, ApiError>,
) -> Result<StatusCode, ApiError> {
    caller.principal.require(Role::Admin)?;
    let JsonBody(body) = body?;
    let before = body.issued_before.as_deref().map(|t| super::files::parse_time("issued_before", t)).transpose()?;
    s.admin.revoke_tokens(&caller.principal, body.jti, body.client_id, before, caller.source).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// First sequence number to examine (default 1).
    #[serde(default)]
    pub(crate) from: Option<u64>,
    /// Records per page (default 100; 1 to 1000, larger values are capped).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    /// Only records of this action, such as `token.issue`.
    #[serde(default)]
    pub(crate) action: Option<String>,
    /// Only records of this actor (a client id, or `system`).
    #[serde(default)]
    pub(crate) actor: Option<String>,
    /// Only records at or after this time (RFC 3339, or unix milliseconds).
    #[serde(default)]
    pub(crate) since: Option<String>,
    /// Only records before this time (RFC 3339, or unix milliseconds).
    #[serde(default)]
    pub(crate) until: Option<String>,
}

/// Records from `from` (default 1), at most `limit` (default 100, at most 1000), optionally only
/// those of one action or actor, or of a time range.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit_records",
    tag = "audit",
    summary = "Read the audit log",
    description = "Records in sequence order from `from`. A page ends when it is full or after 50 000 \
        records were examined; `next_from` continues.",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of records.", body = AuditPage),
        (status = 400, description = "A query parameter is not of its type, or `since`/`until` is not a time.",
            body = ErrorResponse, extensions(("x-error-codes" = json!(["invalid_query", "invalid_time"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Query(q) = q?;
    let since = q.since.as_deref().map(|t| super::search::time("since", t)).transpose()?;
    let until = q.until.as_deref().map(|t| super::search::time("until", t)).transpose()?;
    let filter = AuditFilter {
        from: q.from.unwrap_or(1),
        limit: q.limit.unwrap_or(100),
        action: q.action,
        actor: q.actor,
        since,
        until,
    };
    let page = s.admin.audit(&caller.principal, &filter).await?;
    let records = page
        .records
        .into_iter()
        .map(|r| AuditRecord {
            seq: r.seq,
            at: rfc3339(r.event.at),
            actor: r.event.actor,
            action: r.event.action,
            target: r.event.target,
            outcome: r.event.outcome,
            source: r.event.source,
            prev_hash: r.prev_hash,
            hash: r.hash,
            hmac: r.hmac,
        })
        .collect();
    Ok(Json(AuditPage { records, next_from: page.next_from }))
}

#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    operation_id = "verify_audit_log",
    tag = "audit",
    summary = "Verify the audit log's hash chain",
    responses((status = 200, description = "Whether the chain verifies, and where it breaks.", body = AuditVerification)),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn verify_audit(State(s): State<AppState>, caller: Caller) -> Result<Json<AuditVerification>, ApiError> {
    let v = s.admin.verify_audit(&caller.principal)?;
    Ok(Json(AuditVerification {
        ok: v.first_broken.is_none(),
        entries: v.entries,
        first_broken_seq: v.first_broken.as_ref().map(|b| b.0),
        reason: v.first_broken.map(|b| b.1),
    }))
}
