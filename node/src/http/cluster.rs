//! Cluster status, membership and cluster-wide settings.
//!
//! Reading needs the `reader` role, changing membership or settings `operator`. Membership and
//! settings writes go through Raft from whichever node receives them; reads of settings are
//! local unless `consistent=true` asks for a read-index barrier first.

use artstore_actors::admin::DigestAt;
use artstore_client::wire::{
    BackupManifest, CatalogDigest, ClusterStatus, DrainStatus, ErrorResponse, JoinRequest, Member, Setting,
    SettingValue, Settings,
};
use artstore_raft::{ClusterNode, NodeId};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::json::JsonBody;
use super::{ApiError, AppState};
use artstore_raft::Role;

const MAX_KEY_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 64 * 1024;

fn wire_status(s: artstore_raft::ClusterStatus) -> ClusterStatus {
    ClusterStatus {
        node_id: s.node_id,
        leader_id: s.leader_id,
        term: s.term,
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        state: s.state,
        last_log_index: s.last_log_index,
        snapshot_index: s.snapshot_index,
        purged_index: s.purged_index,
        members: s
            .members
            .into_iter()
            .map(|m| Member {
                node_id: m.node_id,
                http_addr: m.http_addr,
                quic_addr: m.quic_addr,
                voter: m.voter,
                reachable: m.reachable,
                matched_index: m.matched_index,
            })
            .collect(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster/status",
    operation_id = "cluster_status",
    tag = "cluster",
    summary = "This node's view of the cluster",
    responses((status = 200, description = "Raft state and members.", body = ClusterStatus)),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn status(State(s): State<AppState>, caller: Caller) -> Result<Json<ClusterStatus>, ApiError> {
    caller.principal.require(Role::Reader)?;
    Ok(Json(wire_status(s.admin.cluster_status())))
}

#[utoipa::path(
    post,
    path = "/api/v1/cluster/members",
    operation_id = "join_member",
    tag = "cluster",
    summary = "Add a node to the cluster",
    description = "The node joins as a learner and is promoted to voter once it has caught up; if it does \
        not catch up within `catch_up_timeout_secs` (default 60) it is removed again and the call fails.",
    request_body = JoinRequest,
    responses(
        (status = 200, description = "The node is a voter; the cluster's new status.", body = ClusterStatus),
        (status = 400, description = "`node_id` is 0, an address is not `IP:port`, or the timeout is 0.",
            body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_node_id", "invalid_address", "invalid_timeout"])))),
        (status = 409, description = "The id or an address is already another member's, or the membership \
            change was refused.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn join(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<JoinRequest>, ApiError>,
) -> Result<Json<ClusterStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let JsonBody(req) = body?;
    if req.node_id == 0 {
        return Err(ApiError::bad_request("invalid_node_id", "node_id must be greater than zero"));
    }
    for (field, addr) in [("http_addr", &req.http_addr), ("quic_addr", &req.quic_addr)] {
        // IP:port, or a DNS name and port (compose services, Kubernetes pods): dialled by name.
        if let Err(why) = artstore_cluster_config::check_peer_address(addr) {
            return Err(ApiError::bad_request("invalid_address", format!("{field}: {why}")));
        }
    }
    let node = ClusterNode { http_addr: req.http_addr, quic_addr: req.quic_addr };
    let catch_up = match req.catch_up_timeout_secs {
        Some(0) => return Err(ApiError::bad_request("invalid_timeout", "catch_up_timeout_secs must be at least 1")),
        Some(secs) => std::time::Duration::from_secs(secs.min(24 * 3600)),
        None => artstore_raft::DEFAULT_CATCH_UP,
    };
    s.admin.add_member(req.node_id, node, catch_up).await?;
    Ok(Json(wire_status(s.admin.cluster_status())))
}

#[utoipa::path(
    delete,
    path = "/api/v1/cluster/members/{node_id}",
    operation_id = "remove_member",
    tag = "cluster",
    summary = "Remove a node from the cluster",
    params(("node_id" = u64, Path, description = "The member's node id.")),
    responses(
        (status = 200, description = "Removed; the cluster's new status.", body = ClusterStatus),
        (status = 409, description = "Not a member, or the last voter.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<ClusterStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path(node_id) = id?;
    s.admin.remove_member(node_id).await?;
    Ok(Json(wire_status(s.admin.cluster_status())))
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_key",
            format!("setting key {key:?}: use 1 to {MAX_KEY_LEN} characters from A-Z, a-z, 0-9, '.', '-', '_'"),
        ))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadOptions {
    /// Wait for the leader's read index first, so the answer reflects every acknowledged write.
    #[serde(default)]
    consistent: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster/settings",
    operation_id = "list_settings",
    tag = "cluster",
    summary = "Every cluster-wide setting",
    params(ReadOptions),
    responses(
        (status = 200, description = "The settings by key.", body = Settings),
        (status = 400, description = "`consistent` is not `true` or `false`.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_query"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn list_settings(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ReadOptions>, QueryRejection>,
) -> Result<Json<Settings>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Query(q) = q?;
    Ok(Json(Settings { settings: s.admin.settings(q.consistent).await? }))
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster/settings/{key}",
    operation_id = "get_setting",
    tag = "cluster",
    summary = "One cluster-wide setting",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$", description = "The setting's name."), ReadOptions),
    responses(
        (status = 200, description = "The setting.", body = Setting),
        (status = 400, description = "The key is not 1 to 128 of `A-Z a-z 0-9 . - _`, or `consistent` is not \
            `true` or `false`.", body = ErrorResponse, extensions(("x-error-codes" = json!(["invalid_key", "invalid_query"])))),
        (status = 404, description = "No such setting.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn get_setting(
    State(s): State<AppState>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadOptions>, QueryRejection>,
) -> Result<Json<Setting>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(key) = key?;
    let Query(q) = q?;
    check_key(&key)?;
    match s.admin.setting(&key, q.consistent).await? {
        Some(value) => Ok(Json(Setting { key, value, log_index: None, previous: None })),
        None => Err(ApiError::not_found(format!("no setting named {key:?}"))),
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/cluster/settings/{key}",
    operation_id = "put_setting",
    tag = "cluster",
    summary = "Set a cluster-wide setting",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$", description = "The setting's name.")),
    request_body = SettingValue,
    responses(
        (status = 200, description = "Stored; with the log index and the previous value.", body = Setting),
        (status = 400, description = "The key is not 1 to 128 of `A-Z a-z 0-9 . - _`.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_key"])))),
        (status = 413, description = "The value is over 64 KiB.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["value_too_large"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn put_setting(
    State(s): State<AppState>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<SettingValue>, ApiError>,
) -> Result<Json<Setting>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path(key) = key?;
    let JsonBody(body) = body?;
    check_key(&key)?;
    if body.value.len() > MAX_VALUE_LEN {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "value_too_large",
            format!("value is {} bytes; the limit is {MAX_VALUE_LEN}", body.value.len()),
        ));
    }
    let (log_index, previous) = s.admin.put_setting(&key, &body.value).await?;
    Ok(Json(Setting { key, value: body.value, log_index: Some(log_index), previous }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/cluster/settings/{key}",
    operation_id = "delete_setting",
    tag = "cluster",
    summary = "Delete a cluster-wide setting",
    description = "Deleting a setting that does not exist succeeds too.",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$", description = "The setting's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "The key is not 1 to 128 of `A-Z a-z 0-9 . - _`.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_key"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn delete_setting(
    State(s): State<AppState>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path(key) = key?;
    check_key(&key)?;
    s.admin.delete_setting(&key).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

fn wire_drain(d: artstore_actors::storage::Drain) -> DrainStatus {
    DrainStatus { node_id: d.node_id, draining: d.draining, replicas_remaining: d.replicas_remaining }
}

/// Drain state of `node_id`, counting the replicas the catalog still places there.
async fn drain_status(s: &AppState, node_id: NodeId) -> Result<DrainStatus, ApiError> {
    Ok(wire_drain(s.storage.drain(node_id).await?))
}

/// `GET /api/v1/cluster/members/{id}/drain` (reader).
#[utoipa::path(
    get,
    path = "/api/v1/cluster/members/{node_id}/drain",
    operation_id = "get_drain",
    tag = "cluster",
    summary = "A node's drain state",
    params(("node_id" = u64, Path, description = "The member's node id.")),
    responses((status = 200, description = "Whether it is draining and the replicas still on it.", body = DrainStatus)),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn get_drain(
    State(s): State<AppState>,
    caller: Caller,
    node_id: Result<Path<NodeId>, PathRejection>,
) -> Result<Json<DrainStatus>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(node_id) = node_id?;
    Ok(Json(drain_status(&s, node_id).await?))
}

/// `POST /api/v1/cluster/members/{id}/drain` (operator): the node leaves placement and the leader
/// moves its replicas to other nodes (copies first, so no chunk drops below its replica count).
#[utoipa::path(
    post,
    path = "/api/v1/cluster/members/{node_id}/drain",
    operation_id = "start_drain",
    tag = "cluster",
    summary = "Drain a node before removing it",
    description = "The node leaves placement and the leader moves its replicas to other nodes, copying \
        first so that no chunk drops below its replica count.",
    params(("node_id" = u64, Path, description = "The member's node id.")),
    responses(
        (status = 200, description = "Draining.", body = DrainStatus),
        (status = 404, description = "Not a member.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 409, description = "Every other member is draining too (or there is none).", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["conflict"])))),
    ),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn start_drain(
    State(s): State<AppState>,
    caller: Caller,
    node_id: Result<Path<NodeId>, PathRejection>,
) -> Result<Json<DrainStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path(node_id) = node_id?;
    Ok(Json(wire_drain(s.storage.start_drain(node_id).await?)))
}

/// `DELETE /api/v1/cluster/members/{id}/drain` (operator): the node takes new replicas again.
#[utoipa::path(
    delete,
    path = "/api/v1/cluster/members/{node_id}/drain",
    operation_id = "stop_drain",
    tag = "cluster",
    summary = "Stop draining a node",
    params(("node_id" = u64, Path, description = "The member's node id.")),
    responses((status = 200, description = "The node takes new replicas again.", body = DrainStatus)),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn stop_drain(
    State(s): State<AppState>,
    caller: Caller,
    node_id: Result<Path<NodeId>, PathRejection>,
) -> Result<Json<DrainStatus>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let Path(node_id) = node_id?;
    Ok(Json(wire_drain(s.storage.stop_drain(node_id).await?)))
}

/// `POST /api/v1/cluster/digest` (operator): appends a digest entry; every node records a
/// SHA-256 of its catalog as of that log position.
#[utoipa::path(
    post,
    path = "/api/v1/cluster/digest",
    operation_id = "take_digest",
    tag = "cluster",
    summary = "Append a catalog digest entry",
    description = "Every node records a SHA-256 of its catalog at the entry's log index; compare them with \
        `GET /api/v1/cluster/digest/{index}` on each node.",
    responses((status = 200, description = "The log index of the digest entry.", body = CatalogDigest)),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn take_digest(State(s): State<AppState>, caller: Caller) -> Result<Json<CatalogDigest>, ApiError> {
    caller.principal.require(Role::Operator)?;
    let log_index = s.admin.take_digest().await?;
    Ok(Json(CatalogDigest { node_id: s.admin.node_id(), log_index, digest: None }))
}

/// `GET /api/v1/cluster/digest/{index}` (reader): this node's digest at `index`, once applied
/// (waits up to 10 s).
#[utoipa::path(
    get,
    path = "/api/v1/cluster/digest/{index}",
    operation_id = "get_digest",
    tag = "cluster",
    summary = "This node's catalog digest at a log index",
    description = "Waits up to 10 s for this node to apply `index`.",
    params(("index" = u64, Path, description = "The log index `POST /api/v1/cluster/digest` answered.")),
    responses(
        (status = 200, description = "The digest.", body = CatalogDigest),
        (status = 404, description = "No digest entry at this index, or not committed yet.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["not_found"])))),
        (status = 503, description = "This node has not applied `index` within 10 s.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["behind"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn get_digest(
    State(s): State<AppState>,
    caller: Caller,
    index: Result<Path<u64>, PathRejection>,
) -> Result<Json<CatalogDigest>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let Path(index) = index?;
    // A follower that has not heard of a fresh commit answers 404 too, and the caller asks again.
    match s.admin.digest_at(index).await? {
        DigestAt::Found(d) => Ok(Json(CatalogDigest { node_id: s.admin.node_id(), log_index: index, digest: Some(d) })),
        DigestAt::NotCommitted { committed } => Err(ApiError::not_found(format!(
            "no digest entry at log index {index}: the log is committed up to {committed}"
        ))),
        DigestAt::Behind { applied } => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "behind",
            format!("this node has applied up to {applied} of {index}"),
        )),
        DigestAt::NotADigest => Err(ApiError::not_found(format!("no digest entry at log index {index}"))),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster/backup",
    operation_id = "backup_catalog",
    tag = "cluster",
    summary = "A consistent backup of the catalog",
    description = "The catalog at one log index (every write committed before the request is in it), as \
        the image `artstore restore` seeds a new cluster from. Its manifest (log index, term, cluster id, \
        file count, SHA-256 of the image) is the JSON in the `X-Artstore-Backup-Manifest` header. File \
        bodies are not in it: they stay on the nodes' disks.",
    responses(
        (status = 200, description = "The image.", content_type = "application/octet-stream",
            headers(("X-Artstore-Backup-Manifest" = String, description = "The backup's manifest (JSON, `BackupManifest`)."))),
        (status = 503, description = "No leader, or no snapshot could be built in time.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["no_leader", "unavailable", "timeout"])))),
    ),
    extensions(("x-required-role" = json!("admin"))),
)]
pub async fn backup(State(s): State<AppState>, caller: Caller) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    caller.principal.require(Role::Admin)?;
    let image = s.admin.backup(&caller.principal, caller.source).await?;
    let info = &image.info;
    let manifest = BackupManifest {
        format: 1,
        cluster_id: s.admin.cluster_id().to_string(),
        node_id: s.admin.node_id(),
        log_index: info.last_log_id.index,
        term: info.last_log_id.leader_id.term,
        last_log_id: serde_json::to_value(info.last_log_id).unwrap_or_default(),
        files: info.files,
        bytes: image.bytes,
        sha256: image.sha256.clone(),
        created_at: artstore_raft::rfc3339(artstore_raft::now_ms()),
    };
    let header = serde_json::to_string(&manifest).unwrap_or_default();
    // The image streams from its file (the manifest's digest was taken as it was counted).
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        tokio::fs::File::from_std(image.file),
        1 << 16,
    ));
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(axum::http::header::CONTENT_LENGTH, axum::http::HeaderValue::from(image.bytes));
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = axum::http::HeaderValue::from_str(&header) {
        headers.insert("x-artstore-backup-manifest", v);
    }
    Ok(resp)
}
