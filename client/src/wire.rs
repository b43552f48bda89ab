//! JSON bodies of the HTTP API, shared by the server and the SDK.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `not_found` or `no_leader`.
    pub code: String,
    /// Human-readable explanation naming the problem.
    pub message: String,
}

/// `GET /api/v1/cluster/status`: one node's view of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    pub last_log_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub node_id: u64,
    pub http_addr: String,
    pub quic_addr: String,
    /// Voters elect leaders and count towards quorum; learners only replicate.
    pub voter: bool,
    /// Whether the answering node has heard from this member recently.
    pub reachable: bool,
}

/// `POST /api/v1/cluster/members`: add a node (it joins as learner and is promoted once caught up).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinRequest {
    pub node_id: u64,
    pub http_addr: String,
    pub quic_addr: String,
    /// How long the new node may take to catch up before the join is abandoned (default 60).
    #[serde(default)]
    pub catch_up_timeout_secs: Option<u64>,
}

/// `PUT /api/v1/cluster/settings/{key}` request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingValue {
    pub value: String,
}

/// A cluster setting as stored, with the log index that last wrote it when known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    /// Raft log index of the write (present in responses to writes).
    pub log_index: Option<u64>,
    /// The value before this write, if any (present in responses to writes).
    pub previous: Option<String>,
}

/// `GET /api/v1/cluster/settings`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Settings {
    pub settings: BTreeMap<String, String>,
}

/// `GET /health/live` and `GET /health/ready` success body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub node_id: u64,
}

/// `POST /api/v1/auth/token` success body (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
}

/// A service account as the API shows it (never with a secret or its hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceAccount {
    pub client_id: String,
    pub name: String,
    pub description: String,
    /// `admin`, `operator`, `writer`, `reader`.
    pub roles: Vec<String>,
    pub enabled: bool,
    /// The bootstrap admin: cannot be deleted or disabled.
    pub builtin: bool,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// `POST /api/v1/service-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CreateServiceAccount {
    /// Generated (`sa-…`) when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub roles: Vec<String>,
    /// Operator-chosen secret (≥ 12 characters, mixed classes); generated when absent.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Response to creating an account or rotating its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceAccountWithSecret {
    pub account: ServiceAccount,
    pub client_secret: String,
}

/// `PATCH /api/v1/service-accounts/{client_id}`; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct UpdateServiceAccount {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `POST /api/v1/service-accounts/{client_id}/rotate-secret`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct RotateSecret {
    /// Seconds the old secret keeps working; it stops at once when absent.
    #[serde(default)]
    pub grace_period_secs: Option<u64>,
}

/// `GET /api/v1/service-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceAccounts {
    pub accounts: Vec<ServiceAccount>,
}

/// `POST /api/v1/admin/keys/rotate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRotated {
    pub kid: String,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
    pub prev_hash: String,
    pub hash: String,
    pub hmac: String,
}

/// `GET /api/v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `from` for the next page; absent at the end.
    pub next_from: Option<u64>,
}

/// `GET /api/v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditVerification {
    pub ok: bool,
    pub entries: u64,
    pub first_broken_seq: Option<u64>,
    pub reason: Option<String>,
}

/// A file's metadata (`GET /api/v1/files/{id}`, and the 201 of an upload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileInfo {
    /// UUIDv7.
    pub id: String,
    pub name: String,
    pub size: u64,
    /// SHA-256 of the whole body, hex.
    pub sha256: String,
    pub content_type: String,
    pub version: u64,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub description: String,
    pub tags: Vec<String>,
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
    /// `temporary` or `permanent`.
    pub retention_policy: String,
    /// Temporary files: when they expire (RFC 3339).
    pub expires_at: Option<String>,
    /// Write-once until (RFC 3339).
    pub retention_until: Option<String>,
    /// Nodes holding replicas of the file's chunks.
    pub replicas: Vec<u64>,
    pub chunks: u64,
    /// Replicas placement wanted but did not get, queued for repair.
    pub missing_replicas: u64,
}

/// `GET /api/v1/files`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileList {
    pub files: Vec<FileInfo>,
    /// Pass as `after` for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// `PATCH /api/v1/files/{id}`; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct UpdateFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub custom_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// RFC 3339; can only be extended.
    #[serde(default)]
    pub retention_until: Option<String>,
}

/// A storage element (`GET /api/v1/storage-elements`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StorageElementInfo {
    pub node_id: u64,
    pub name: String,
    /// `edit`, `rw`, `ro`, `ar`.
    pub mode: String,
    pub priority: u32,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StorageElements {
    pub elements: Vec<StorageElementInfo>,
}

/// `PATCH /api/v1/storage-elements/{node_id}/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ElementModeChange {
    pub mode: String,
}

/// One hit of `GET /api/v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchHit {
    pub id: String,
    pub name: String,
    pub size: u64,
    /// SHA-256 of the whole body, hex.
    pub sha256: String,
    pub content_type: String,
    /// RFC 3339.
    pub created_at: String,
    pub description: String,
    pub tags: Vec<String>,
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
    /// Relevance (BM25); 0 when sorting by something else.
    pub score: f32,
}

/// `GET /api/v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Files matching the query and filters, over all pages.
    pub total: u64,
    /// Pass as `cursor` (with the same query, filters and sort) for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/repair/status`: the repair queue as the answering node's catalog shows it, and
/// that node's own repair and scrub counters (repairs are done by the leader).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RepairStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    /// Files in the catalog's repair queue.
    pub queued_files: u64,
    /// Replicas those files lack.
    pub missing_replicas: u64,
    /// Members this node cannot reach, and for how many seconds.
    pub unreachable_nodes: std::collections::BTreeMap<u64, u64>,
    /// Chunk copies this node made while leading.
    pub chunks_repaired: u64,
    pub bytes_repaired: u64,
    /// Chunks with no readable replica left.
    pub unrecoverable_chunks: u64,
    /// RFC 3339.
    pub last_repair_pass: Option<String>,
    pub scrub: ScrubStatus,
}

/// This node's scrub: re-reading and re-hashing its chunks on a schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScrubStatus {
    pub enabled: bool,
    pub running: bool,
    pub passes: u64,
    pub chunks_checked: u64,
    pub bytes_checked: u64,
    pub damaged_found: u64,
    /// RFC 3339.
    pub last_pass_finished: Option<String>,
}

/// `GET|POST|DELETE /api/v1/cluster/members/{id}/drain`: a node being emptied before removal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DrainStatus {
    pub node_id: u64,
    /// Out of placement, its replicas moving to other nodes.
    pub draining: bool,
    /// Chunk replicas the catalog still places on the node.
    pub replicas_remaining: u64,
}

/// `POST /api/v1/cluster/digest` answers the log index of the digest entry; `GET
/// /api/v1/cluster/digest/{index}` the digest a node computed there (equal on every node when
/// their catalogs agree).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogDigest {
    pub node_id: u64,
    pub log_index: u64,
    /// SHA-256 of the catalog just before `log_index`; absent in the answer to the POST.
    pub digest: Option<String>,
}
