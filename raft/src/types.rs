//! The openraft type configuration and the catalog's command language.
//!
//! `Command`s travel in Raft log entries over the cluster transport (bincode) and sit in the log on
//! disk (JSON), so they must stay serde-friendly for both: no untagged enums, no skipped fields.

use serde::{Deserialize, Serialize};

use crate::catalog::{
    AccountChanges, AuditEvent, ChunkRef, ElementMode, FileChanges, FileRecord, Replica, ServiceAccount, SigningKey,
    StorageElement,
};

/// Bytes of log entries one replication call carries at most, unless its first entry alone is
/// larger (the log store reads no more for one call; openraft bounds a call by count only). A
/// follower receives, decodes, writes and syncs them within the call's deadline (one heartbeat)
/// while its cores are busy applying; 1 MiB crosses a 1 Gbit/s link in about 9 ms.
pub const REPLICATION_BUDGET: u64 = 1 << 20;

/// Bytes one proposed change may encode to. An entry is never split: it must reach every
/// follower, be written and synced within one heartbeat (openraft's deadline for a replication
/// call), or that follower's replication retries it forever and the log stops behind it. 8 MiB
/// crosses a 1 Gbit/s link in about 70 ms. A file record takes about 170 bytes per chunk, so the
/// bound is met by a file of some 48 000 chunks (190 GiB at the default chunk size).
pub const MAX_ENTRY_BYTES: u64 = 8 * REPLICATION_BUDGET;

/// A node id in the Raft cluster (never reused).
pub type NodeId = u64;

/// What the cluster knows about a member: where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Address of the node's HTTP API (clients, the CLI).
    pub http_addr: String,
    /// UDP address of the node's QUIC endpoint (peers).
    pub quic_addr: String,
}

/// A change to the catalog, proposed through Raft and applied in log order on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets a cluster-wide setting (value is opaque text, usually JSON).
    SetSetting {
        key: String,
        value: String,
    },
    /// Removes a cluster-wide setting; removing an absent key is not an error.
    DeleteSetting {
        key: String,
    },
    /// Once per cluster: the bootstrap admin account, the audit HMAC key and the first signing key.
    InitSecurity {
        admin: ServiceAccount,
        audit_key_hex: String,
        key: SigningKey,
    },
    /// Applies `command` and appends `event` to the audit chain in the same atomic step (with
    /// the outcome replaced by the rejection reason if the catalog refuses the command).
    Audited {
        command: Box<Command>,
        event: AuditEvent,
    },
    /// Nothing to change; used inside `Audited` to record an event on its own.
    AuditOnly,
    CreateAccount {
        account: ServiceAccount,
    },
    UpdateAccount {
        client_id: String,
        changes: AccountChanges,
        at: i64,
    },
    /// Replaces the secret hash; the old secret stays valid until `grace_until` when given.
    RotateSecret {
        client_id: String,
        secret_hash: String,
        grace_until: Option<i64>,
        at: i64,
        /// How many earlier secrets' hashes the account keeps (`auth.secret_history`).
        #[serde(default)]
        keep_history: u32,
    },
    /// Soft delete: the record stays, disabled, with `deleted_at`.
    DeleteAccount {
        client_id: String,
        at: i64,
    },
    /// Adds a signing key and retires the current one (it keeps validating for its grace).
    AddSigningKey {
        key: SigningKey,
    },
    /// Drops keys that no longer validate any unexpired token.
    PruneSigningKeys {
        now: i64,
    },
    /// A node announces one of its storage elements (again at every start; the mode is kept).
    RegisterElement {
        element: StorageElement,
    },
    /// Operator mode change; forward only.
    SetElementMode {
        node_id: NodeId,
        name: String,
        mode: ElementMode,
    },
    /// Commits an uploaded file whose chunks are durable on a write quorum. With an idempotency
    /// key `(client_id, key)` a repeat returns the first file's id in `existing` instead.
    CreateFile {
        file: FileRecord,
        idempotency: Option<(String, String)>,
    },
    UpdateFile {
        id: String,
        changes: FileChanges,
        at: i64,
    },
    /// Leaves a tombstone; refused before `retention_until` and for permanent files.
    DeleteFile {
        id: String,
        at: i64,
    },
    /// A temporary file becomes permanent: same id, same chunks, now on `rw` elements.
    FinalizeFile {
        id: String,
        chunks: Vec<ChunkRef>,
        at: i64,
    },
    /// A read or scrub found the replica of chunk `sha256` on `node_id` missing or corrupt: it moves
    /// from the chunk's replicas to its missing list (queued for repair). The last listed replica
    /// stays listed, so the record never claims fewer copies exist than may still be readable.
    MarkReplicaDamaged {
        id: String,
        sha256: String,
        node_id: NodeId,
    },
    /// Repair of chunk `sha256` of file `id`: `added` replicas now hold verified copies; replicas
    /// on `dropped` nodes (damaged, or on a node down too long) leave the record.
    RepairChunk {
        id: String,
        sha256: String,
        added: Vec<Replica>,
        dropped: Vec<NodeId>,
    },
    /// Records rebuilt from sidecars and chunks on disk (`artstore recover`). Refused if one of
    /// the ids already exists, unless `overwrite`.
    RecoverFiles {
        files: Vec<FileRecord>,
        overwrite: bool,
    },
    /// Several independent commands in one log entry (concurrent uploads batched by the proposer);
    /// each is applied, or refused, on its own, and its result is in `CommandResult::batch`.
    Batch(Vec<Command>),
    /// Every node records a SHA-256 of its whole catalog as it stands just before this entry,
    /// so that catalogs can be compared across nodes at exactly the same log position.
    Digest,
    /// Tokens stop validating on every node: the one with `jti`, or every token of `client_id`
    /// issued before `issued_before` (unix ms). Kept until `until`, when those tokens would have
    /// expired anyway. (Added last: the variant order is the log's encoding.)
    RevokeTokens {
        jti: Option<String>,
        client_id: Option<String>,
        issued_before: i64,
        until: i64,
    },
    /// Drops revocations whose tokens have expired by `now`.
    PruneRevocations {
        now: i64,
    },
}

/// What applying a `Command` produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Index of the log entry that carried the command.
    pub log_index: u64,
    /// For settings: the value before this command, if any.
    pub previous: Option<String>,
    /// Why the catalog refused the command (nothing but its audit record was written).
    pub rejected: Option<crate::catalog::Refusal>,
    /// Sequence number of the audit record the command appended.
    pub audit_seq: Option<u64>,
    /// For idempotent creation: the id of what an earlier identical request created.
    pub existing: Option<String>,
    /// For `Command::Batch`: one result per command, in order.
    #[serde(default)]
    pub batch: Vec<CommandResult>,
}

impl Command {
    /// The files whose records this command creates or changes (for the search index and the
    /// sidecar writer), looking inside audited commands.
    pub fn touched_files(&self) -> Vec<&str> {
        match self {
            Command::Audited { command, .. } => command.touched_files(),
            Command::CreateFile { file, .. } => vec![&file.id],
            Command::UpdateFile { id, .. } | Command::DeleteFile { id, .. } | Command::FinalizeFile { id, .. } => {
                vec![id]
            }
            Command::RecoverFiles { files, .. } => files.iter().map(|f| f.id.as_str()).collect(),
            // New holders of a repaired or moved chunk need the file's sidecar.
            Command::RepairChunk { id, added, .. } if !added.is_empty() => vec![id],
            Command::Batch(commands) => commands.iter().flat_map(|c| c.touched_files()).collect(),
            _ => Vec::new(),
        }
    }
}

openraft::declare_raft_types!(
    /// ArtStore's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, ClusterNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ClusterNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
