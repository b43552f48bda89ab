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
