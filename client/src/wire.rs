//! JSON bodies of the HTTP API, shared by the server and the SDK.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The `error` object of an error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `not_found` or `no_leader`.
    pub code: String,
    /// Human-readable explanation naming the problem.
    pub message: String,
}

/// `GET /api/v1/cluster/status`: one node's view of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterStatus {
    /// The answering node.
    pub node_id: u64,
    /// The leader it knows of, if any.
    pub leader_id: Option<u64>,
    /// Current Raft term.
    pub term: u64,
    /// Highest log index known committed.
    pub commit_index: u64,
    /// Highest log index applied to the state machine.
    pub applied_index: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    /// Last index in the node's log.
    pub last_log_index: u64,
    /// Log index covered by the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Log entries up to here were purged.
    pub purged_index: Option<u64>,
    /// Every member of the cluster.
    pub members: Vec<Member>,
}

/// One member of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The member's id.
    pub node_id: u64,
    /// Its public HTTP address (`host:port`).
    pub http_addr: String,
    /// Its cluster transport (QUIC) address.
    pub quic_addr: String,
    /// Voters elect leaders and count towards quorum; learners only replicate.
    pub voter: bool,
    /// Whether the answering node has heard from this member recently.
    pub reachable: bool,
    /// The last log index known to be on this member: the answering node's own, and, when the
    /// answering node leads, what each follower has acknowledged; absent where unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<u64>,
}

/// `POST /api/v1/cluster/members`: add a node (it joins as learner and is promoted once caught up).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// The new node's id.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub node_id: u64,
    /// Its public HTTP address (`host:port`).
    pub http_addr: String,
    /// Its cluster transport (QUIC) address.
    pub quic_addr: String,
    /// How long the new node may take to catch up before the join is abandoned (default 60).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub catch_up_timeout_secs: Option<u64>,
}

/// `PUT /api/v1/cluster/settings/{key}` request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingValue {
    /// The new value.
    pub value: String,
}

/// A cluster setting as stored, with the log index that last wrote it when known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Setting {
    /// The setting's name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Raft log index of the write (present in responses to writes).
    pub log_index: Option<u64>,
    /// The value before this write, if any (present in responses to writes).
    pub previous: Option<String>,
}

/// `GET /api/v1/cluster/settings`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settings {
    /// Every setting by key.
    pub settings: BTreeMap<String, String>,
}

/// `GET /health/live` and `GET /health/ready` success body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` (or why not).
    pub status: String,
    /// The answering node.
    pub node_id: u64,
}

/// `POST /api/v1/auth/token` success body (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Space-separated roles.
    pub scope: String,
}

/// A service account as the API shows it (never with a secret or its hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccount {
    /// Its id (the OAuth `client_id`).
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `admin`, `operator`, `writer`, `reader`.
    pub roles: Vec<String>,
    /// Disabled accounts get no tokens and their tokens stop working.
    pub enabled: bool,
    /// The bootstrap admin: cannot be deleted or disabled.
    pub builtin: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339, when soft-deleted.
    pub deleted_at: Option<String>,
    /// Tokens only over mutual TLS with a client certificate naming the account.
    #[serde(default)]
    pub require_client_cert: bool,
    /// RFC 3339: when the current secret stops opening the account (`[auth] secret_max_age_days`
    /// after it was set); rotate before.
    #[serde(default)]
    pub secret_expires_at: Option<String>,
}

/// A role, as the OpenAPI document names them (the wire carries them as strings).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything.
    Admin,
    /// The cluster, keys and the audit log.
    Operator,
    /// Upload, change and delete files.
    Writer,
    /// Read and search files.
    Reader,
}

/// `POST /api/v1/service-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateServiceAccount {
    /// Generated (`sa-…`) when absent; 3 to 64 of `A-Z a-z 0-9 - _ .`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{3,64}$"))]
    pub client_id: Option<String>,
    /// Display name (1 to 256 bytes).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub name: String,
    #[serde(default)]
    /// Free text (at most 4096 bytes).
    pub description: String,
    /// `admin`, `operator`, `writer`, `reader`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>, min_items = 1))]
    pub roles: Vec<String>,
    /// Operator-chosen secret (≥ 12 characters, mixed classes); generated when absent.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Issue tokens only over mutual TLS with a client certificate naming the account.
    #[serde(default)]
    pub require_client_cert: bool,
}

/// Response to creating an account or rotating its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccountWithSecret {
    /// The account.
    pub account: ServiceAccount,
    /// Its secret: shown only in this response.
    pub client_secret: String,
}

/// `PATCH /api/v1/service-accounts/{client_id}`; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateServiceAccount {
    #[serde(default)]
    /// New display name (1 to 256 bytes).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub name: Option<String>,
    #[serde(default)]
    /// New description.
    pub description: Option<String>,
    #[serde(default)]
    /// New roles (replace the old ones).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<RoleName>>, min_items = 1))]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    /// Enable or disable.
    pub enabled: Option<bool>,
    #[serde(default)]
    /// Require (or stop requiring) a client certificate for tokens.
    pub require_client_cert: Option<bool>,
}

/// `POST /api/v1/service-accounts/{client_id}/rotate-secret`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotateSecret {
    /// Seconds the old secret keeps working (at most 7 days); it stops at once when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 604800))]
    pub grace_period_secs: Option<u64>,
    /// A secret chosen by the operator (at least 12 characters of mixed classes, not one of the
    /// account's last `auth.secret_history` secrets); generated when absent.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// `POST /api/v1/auth/revoke`: one token by its `jti`, or every token of an account issued
/// before a time (give one of `jti` and `client_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    /// The token's `jti` claim (the audit log's `token.issue` records name it).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub jti: Option<String>,
    /// Every token of this account...
    #[serde(default)]
    pub client_id: Option<String>,
    /// ...issued before this RFC 3339 time (default: now). Tokens issued within the same second
    /// as the revocation are revoked too.
    #[serde(default)]
    pub issued_before: Option<String>,
}

/// `GET /api/v1/service-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccounts {
    /// The accounts.
    pub accounts: Vec<ServiceAccount>,
}

/// `POST /api/v1/admin/keys/rotate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRotated {
    /// Id of the new signing key.
    pub kid: String,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    /// Client id that acted (or `system`).
    pub actor: String,
    /// What was done, such as `token.issue`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// `success` or why it failed.
    pub outcome: String,
    /// Source address.
    pub source: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record (with `prev_hash`).
    pub hash: String,
    /// HMAC of the record under the cluster audit key.
    pub hmac: String,
}

/// `GET /api/v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The records, in sequence order.
    pub records: Vec<AuditRecord>,
    /// Pass as `from` for the next page; absent at the end.
    pub next_from: Option<u64>,
}

/// `GET /api/v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// Whether the whole chain verified.
    pub ok: bool,
    /// Records checked.
    pub entries: u64,
    /// The first record that does not verify.
    pub first_broken_seq: Option<u64>,
    /// Why it does not.
    pub reason: Option<String>,
}

/// A file's metadata (`GET /api/v1/files/{id}`, and the 201 of an upload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    /// UUIDv7.
    pub id: String,
    /// Stored name (any Unicode).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole body, hex.
    pub sha256: String,
    /// MIME type.
    pub content_type: String,
    /// Metadata version, from 1; every update adds one.
    pub version: u64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Client id of the uploader.
    pub created_by: String,
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom attributes.
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
    /// `temporary` or `permanent`.
    pub retention_policy: String,
    /// Temporary files: when they expire (RFC 3339).
    pub expires_at: Option<String>,
    /// Write-once until (RFC 3339).
    pub retention_until: Option<String>,
    /// Nodes holding replicas of the file's chunks.
    pub replicas: Vec<u64>,
    /// Number of chunks the body is cut into.
    pub chunks: u64,
    /// Replicas placement wanted but did not get, queued for repair.
    pub missing_replicas: u64,
}

/// `GET /api/v1/files/{id}/finalize`: whether a file is still temporary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinalizeState {
    /// The file's id.
    pub id: String,
    /// `temporary` or `permanent`.
    pub state: String,
    /// Temporary files: when they expire (RFC 3339).
    pub expires_at: Option<String>,
}

/// `POST /api/v1/files/batch`: one result per file of the multipart body, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResults {
    /// The results, in the order of the files in the body.
    pub results: Vec<BatchResult>,
}

/// The outcome of one file of a batch upload: `file` when it was stored, `error` when not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// Position of the file in the body, from 0.
    pub index: u64,
    /// The status a single upload of this file would have answered (201, 200 for a replay, or
    /// the error's status).
    pub status: u16,
    /// The stored file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// Why the file was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `GET /api/v1/files`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileList {
    /// The files of this page.
    pub files: Vec<FileInfo>,
    /// Pass as `after` for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// `PATCH /api/v1/files/{id}`; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateFile {
    #[serde(default)]
    /// New name.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub name: Option<String>,
    #[serde(default)]
    /// New description.
    pub description: Option<String>,
    #[serde(default)]
    /// New tags (replace the old ones).
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    /// New custom attributes (replace the old ones).
    pub custom_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// RFC 3339; can only be extended.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub retention_until: Option<String>,
}

/// A storage element (`GET /api/v1/storage-elements`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageElementInfo {
    /// The node holding the element.
    pub node_id: u64,
    /// The element's name on that node.
    pub name: String,
    /// `edit`, `rw`, `ro`, `ar`.
    pub mode: String,
    /// Writable elements fill in priority order.
    pub priority: u32,
    /// Bytes stored.
    pub used_bytes: u64,
}

/// `GET /api/v1/storage-elements`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageElements {
    /// Every node's elements.
    pub elements: Vec<StorageElementInfo>,
}

/// `PATCH /api/v1/storage-elements/{node_id}/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ElementModeChange {
    /// `ro` or `ar` (modes only move forward).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(edit|rw|ro|ar)$"))]
    pub mode: String,
}

/// One hit of `GET /api/v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The file's id (UUIDv7).
    pub id: String,
    /// Stored name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole body, hex.
    pub sha256: String,
    /// MIME type.
    pub content_type: String,
    /// RFC 3339.
    pub created_at: String,
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom attributes.
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
    /// Relevance (BM25); 0 when sorting by something else.
    pub score: f32,
}

/// `GET /api/v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// The hits of this page.
    pub hits: Vec<SearchHit>,
    /// Files matching the query and filters, over all pages.
    pub total: u64,
    /// Pass as `cursor` (with the same query, filters and sort) for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/repair/status`: the repair queue as the answering node's catalog shows it, and
/// that node's own repair and scrub counters (repairs are done by the leader).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepairStatus {
    /// The node that answered.
    pub node_id: u64,
    /// The leader it knows (repairs run there).
    pub leader_id: Option<u64>,
    /// Files in the catalog's repair queue.
    pub queued_files: u64,
    /// Replicas those files lack.
    pub missing_replicas: u64,
    /// Members this node cannot reach, and for how many seconds.
    // JSON object keys are strings: the node ids appear as decimal strings.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, u64>))]
    pub unreachable_nodes: std::collections::BTreeMap<u64, u64>,
    /// Chunk copies this node made while leading.
    pub chunks_repaired: u64,
    /// Bytes those copies hold.
    pub bytes_repaired: u64,
    /// Chunks with no readable replica left.
    pub unrecoverable_chunks: u64,
    /// RFC 3339.
    pub last_repair_pass: Option<String>,
    /// The answering node's scrub.
    pub scrub: ScrubStatus,
    /// Changes the answering node's change-feed consumers (search index, sidecars) kept failing
    /// on and set aside, to be retried with backoff.
    #[serde(default)]
    pub set_aside: Vec<SetAsideChange>,
    /// The answering node's background workers.
    #[serde(default)]
    pub workers: Vec<WorkerInfo>,
    /// Damaged replicas the answering node found on reads and is still recording in the catalog.
    #[serde(default)]
    pub damage_reports_pending: u64,
}

/// One background worker of a node (scrub, repair, gc, expiry, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerInfo {
    /// `keys`, `token-limits`, `capacity`, `sidecars`, `gc`, `expiry`, `repair` or `scrub`.
    pub name: String,
    /// `working`, `idle`, `standby` (runs on the leader only; this node does not lead) or `stopped`.
    pub state: String,
    /// Steps completed since start-up.
    pub steps: u64,
    /// Steps that failed.
    pub errors: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// How long the last step took, in milliseconds.
    pub last_step_ms: u64,
}

/// A change a consumer of the catalog's change feed set aside after failing on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetAsideChange {
    /// `index` (search) or `sidecars`.
    pub consumer: String,
    /// The file whose change failed.
    pub file_id: String,
    /// Log index of the change.
    pub index: u64,
    /// The last failure.
    pub error: String,
    /// Failures so far.
    pub attempts: u32,
    /// RFC 3339.
    pub first_failed_at: String,
    /// RFC 3339.
    pub next_retry_at: String,
}

/// This node's scrub: re-reading and re-hashing its chunks on a schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScrubStatus {
    /// Scrub is configured to run.
    pub enabled: bool,
    /// A pass is under way.
    pub running: bool,
    /// Passes finished since start-up.
    pub passes: u64,
    /// Chunks read and verified since start-up.
    pub chunks_checked: u64,
    /// Bytes read and verified since start-up.
    pub bytes_checked: u64,
    /// Missing or corrupt copies found (each queued for repair).
    pub damaged_found: u64,
    /// RFC 3339.
    pub last_pass_finished: Option<String>,
}

/// `GET|POST|DELETE /api/v1/cluster/members/{id}/drain`: a node being emptied before removal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainStatus {
    /// The node being drained.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogDigest {
    /// The node that answered.
    pub node_id: u64,
    /// Log index of the digest entry.
    pub log_index: u64,
    /// SHA-256 of the catalog just before `log_index`; absent in the answer to the POST.
    pub digest: Option<String>,
}

/// What a catalog backup holds (`manifest.json` beside `catalog.snapshot`); the node sends it in
/// the `X-Artstore-Backup-Manifest` header of `GET /api/v1/cluster/backup`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupManifest {
    /// Format of the backup (1).
    pub format: u32,
    /// The cluster it was taken from (a restore checks it against the nodes' configuration).
    pub cluster_id: String,
    /// The node that made it.
    pub node_id: u64,
    /// The catalog is the one after this log entry.
    pub log_index: u64,
    /// The Raft term of that entry.
    pub term: u64,
    /// That entry's full log id, as `restore` needs it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub last_log_id: serde_json::Value,
    /// File records in the catalog (deleted ones included).
    pub files: u64,
    /// Size of the image.
    pub bytes: u64,
    /// SHA-256 (hex) of the image.
    pub sha256: String,
    /// RFC 3339.
    pub created_at: String,
}
