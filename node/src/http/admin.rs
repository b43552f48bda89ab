//! Service accounts, signing-key rotation and the audit log. Each handler names the role it
//! needs through the admin handle (`admin` for accounts, `operator` for keys and audit).

use std::time::{Duration, UNIX_EPOCH};

use artstore_actors::admin::{AccountUpdate, NewAccount};
use artstore_client::wire::{
    AuditPage, AuditRecord, AuditVerification, CreateServiceAccount, KeyRotated, RotateSecret, ServiceAccount,
    ServiceAccountWithSecret, ServiceAccounts, UpdateServiceAccount,
};
use artstore_raft::Role;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::{ApiError, AppState};

/// Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

fn wire(a: artstore_raft::ServiceAccount) -> ServiceAccount {
    ServiceAccount {
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

pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateServiceAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<ServiceAccountWithSecret>), ApiError> {
    // Authorise first: a reader learns nothing about what a valid body would look like.
    caller.principal.require(Role::Admin)?;
    let Json(req) = body?;
    let new = NewAccount {
        client_id: req.client_id,
        name: req.name,
        description: req.description,
        roles: roles(&req.roles)?,
        secret: req.client_secret,
        require_client_cert: req.require_client_cert,
    };
    let (account, secret) = s.admin.create_account(&caller.principal, new, caller.source).await?;
    Ok((StatusCode::CREATED, Json(ServiceAccountWithSecret { account: wire(account), client_secret: secret })))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    include_deleted: bool,
}

pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ServiceAccounts>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Query(q) = q?;
    let accounts = s.admin.list_accounts(&caller.principal, q.include_deleted)?;
    Ok(Json(ServiceAccounts { accounts: accounts.into_iter().map(wire).collect() }))
}

pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ServiceAccount>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    Ok(Json(wire(s.admin.get_account(&caller.principal, &id)?)))
}

pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateServiceAccount>, JsonRejection>,
) -> Result<Json<ServiceAccount>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    let Json(req) = body?;
    let update = AccountUpdate {
        name: req.name,
        description: req.description,
        roles: req.roles.as_deref().map(roles).transpose()?,
        enabled: req.enabled,
        require_client_cert: req.require_client_cert,
    };
    Ok(Json(wire(s.admin.update_account(&caller.principal, &id, update, caller.source).await?)))
}

pub async fn rotate_secret(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Option<Json<RotateSecret>>, JsonRejection>,
) -> Result<Json<ServiceAccountWithSecret>, ApiError> {
    caller.principal.require(Role::Admin)?;
    let Path(id) = id?;
    let grace = body?.and_then(|Json(b)| b.grace_period_secs);
    let secret = s.admin.rotate_secret(&caller.principal, &id, grace, caller.source).await?;
    s.node.read_barrier().await?;
    let account = wire(s.admin.get_account(&caller.principal, &id)?);
    Ok(Json(ServiceAccountWithSecret { account, client_secret: secret }))
}

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

pub async fn rotate_keys(State(s): State<AppState>, caller: Caller) -> Result<Json<KeyRotated>, ApiError> {
    let kid = s.admin.rotate_keys(&caller.principal, caller.source).await?;
    Ok(Json(KeyRotated { kid }))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

/// Audit records one listing request examines at most.
const AUDIT_SCAN_BUDGET: usize = 50_000;

/// Records from `from` (default 1), at most `limit` (default 100, at most 1000), optionally only
/// those of one action or actor.
pub async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Query(q) = q?;
    s.node.read_barrier().await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // A filter that matches nothing must not walk years of audit log in one request: the page
    // ends after this many records and `next_from` continues the scan.
    let mut budget = AUDIT_SCAN_BUDGET;
    let mut from = q.from.unwrap_or(1).max(1);
    let mut records = Vec::new();
    let mut next_from = None;
    // Scan forward in batches until the page is full of matching records or the chain ends.
    'scan: loop {
        let batch = s.admin.audit(&caller.principal, from, 1000)?;
        if batch.is_empty() {
            break;
        }
        for r in batch {
            budget -= 1;
            if budget == 0 {
                // This record is not examined yet: the next page starts with it.
                next_from = Some(r.seq);
                break 'scan;
            }
            from = r.seq + 1;
            let matches = q.action.as_deref().is_none_or(|a| r.event.action == a)
                && q.actor.as_deref().is_none_or(|a| r.event.actor == a);
            if matches {
                records.push(AuditRecord {
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
                });
                if records.len() == limit {
                    next_from = Some(from);
                    break 'scan;
                }
            }
        }
    }
    Ok(Json(AuditPage { records, next_from }))
}

pub async fn verify_audit(State(s): State<AppState>, caller: Caller) -> Result<Json<AuditVerification>, ApiError> {
    let v = s.admin.verify_audit(&caller.principal)?;
    Ok(Json(AuditVerification {
        ok: v.first_broken.is_none(),
        entries: v.entries,
        first_broken_seq: v.first_broken.as_ref().map(|b| b.0),
        reason: v.first_broken.map(|b| b.1),
    }))
}
