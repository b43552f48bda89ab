//! The schema of a node's `config.toml`, with defaults and validation.
//!
//! Every field has a default except `node_id`, `data_dir` and the TLS files, so that a generated
//! file stays short and an operator only writes what differs. Validation collects every problem
//! instead of stopping at the first, and names each by its key path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Problem};
pub use crate::http::{ApiTlsConfig, CorsConfig, HttpConfig, MetricsConfig};

/// One node's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id in the Raft cluster; unique, never reused, greater than zero.
    pub node_id: u64,
    /// Name of the cluster; becomes the JWT issuer and part of certificate names.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    /// Folder holding the Raft log, the catalog and (by default) the storage elements.
    /// Absent in the file means "not configured", which validation reports.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `dev` relaxes production checks (text logs, wildcard CORS allowed); `production` is strict.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Failure domain of this node (rack, room, data centre). When nodes have zones, the replicas
    /// of a chunk go to as many different zones as possible.
    #[serde(default)]
    pub zone: Option<String>,
    /// Number of replicas of every chunk (capped by cluster size).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: u32,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub quic: QuicConfig,
    pub tls: TlsConfig,
    /// The members the cluster is bootstrapped with. Empty for a node that joins an existing
    /// cluster with `artstore cluster join`.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub limits: crate::limits::Limits,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub telemetry: crate::TelemetryConfig,
}

/// Service-account authentication and JWTs. `Debug` redacts `bootstrap_admin_hash`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of issued access tokens.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// The `aud` claim tokens carry and validation requires.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Signature algorithm of new signing keys: `EdDSA` (Ed25519, default) or `RS256` (RSA-2048).
    #[serde(default = "default_key_algorithm")]
    pub key_algorithm: String,
    /// The leader rotates the signing key after this long.
    #[serde(default = "default_key_rotation")]
    pub key_rotation_secs: u64,
    /// How long a replaced key keeps validating (never less than `token_ttl_secs`).
    #[serde(default = "default_key_grace")]
    pub previous_key_grace_secs: u64,
    /// Token requests allowed per client per minute.
    #[serde(default = "default_rate_per_client")]
    pub token_requests_per_minute: u32,
    /// Token requests allowed per source address per minute.
    #[serde(default = "default_rate_per_source")]
    pub token_requests_per_minute_per_source: u32,
    /// argon2id hash of the bootstrap admin's secret, written by `cluster init` / `dev`. Used once,
    /// by the first leader, to create the `admin` account.
    #[serde(default)]
    pub bootstrap_admin_hash: Option<String>,
    /// A client secret stops opening its account this many days after it was set (30 to 365);
    /// rotate before then. The bootstrap admin is warned about but never locked out.
    #[serde(default = "default_secret_max_age")]
    pub secret_max_age_days: u32,
    /// Secrets this close to their expiry are counted by `artstore_auth_secrets_expiring` and
    /// audited (`account.secret_expiring`) once.
    #[serde(default = "default_secret_warning")]
    pub secret_expiry_warning_days: u32,
    /// A secret chosen at rotation may not be any of the account's last this many (0 to 24).
    #[serde(default = "default_secret_history")]
    pub secret_history: u32,
}

fn default_secret_history() -> u32 {
    5
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("audience", &self.audience)
            .field("key_algorithm", &self.key_algorithm)
            .field("key_rotation_secs", &self.key_rotation_secs)
            .field("previous_key_grace_secs", &self.previous_key_grace_secs)
            .field("token_requests_per_minute", &self.token_requests_per_minute)
            .field("token_requests_per_minute_per_source", &self.token_requests_per_minute_per_source)
            .field("bootstrap_admin_hash", &self.bootstrap_admin_hash.as_ref().map(|_| "<redacted>"))
            .field("secret_max_age_days", &self.secret_max_age_days)
            .field("secret_expiry_warning_days", &self.secret_expiry_warning_days)
            .field("secret_history", &self.secret_history)
            .finish()
    }
}

fn default_secret_max_age() -> u32 {
    90
}
fn default_secret_warning() -> u32 {
    14
}
fn default_token_ttl() -> u64 {
    3600
}
fn default_audience() -> String {
    "artstore".into()
}
fn default_key_algorithm() -> String {
    "EdDSA".into()
}
fn default_key_rotation() -> u64 {
    24 * 3600
}
fn default_key_grace() -> u64 {
    3600
}
fn default_rate_per_client() -> u32 {
    100
}
fn default_rate_per_source() -> u32 {
    300
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: default_token_ttl(),
            audience: default_audience(),
            key_algorithm: default_key_algorithm(),
            key_rotation_secs: default_key_rotation(),
            previous_key_grace_secs: default_key_grace(),
            token_requests_per_minute: default_rate_per_client(),
            token_requests_per_minute_per_source: default_rate_per_source(),
            bootstrap_admin_hash: None,
            secret_max_age_days: default_secret_max_age(),
            secret_expiry_warning_days: default_secret_warning(),
            secret_history: default_secret_history(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuicConfig {
    /// UDP address of the cluster transport.
    #[serde(default = "default_quic_listen")]
    pub listen: String,
    /// Address peers dial (`IP:port` or `dns-name:port`); defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Peers to reach at another address than the one they advertise (node id → address), e.g.
    /// through a relay; the peer is still authenticated by its certificate.
    #[serde(default)]
    pub dial: BTreeMap<String, String>,
    /// `cubic` (default) or `bbr`: the transport's congestion control. BBR keeps chunk transfers
    /// and Raft moving on lossy or long links (sites apart); CUBIC is faster on a clean LAN.
    #[serde(default = "default_congestion")]
    pub congestion_control: String,
}

fn default_congestion() -> String {
    "cubic".into()
}

/// Files of the node's identity in the cluster's mutual TLS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The cluster CA certificate (PEM); peers must present a certificate it issued.
    pub ca_cert: PathBuf,
    /// This node's certificate (PEM), issued by the cluster CA.
    pub cert: PathBuf,
    /// This node's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// A bootstrap member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub node_id: u64,
    /// `IP:port` or `dns-name:port`, as the member advertises it.
    pub http_addr: String,
    /// `IP:port` or `dns-name:port`; a name is resolved each time the peer is dialled.
    pub quic_addr: String,
}

/// Raft timing and log compaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "default_election_min_ms")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind the last snapshot, so slightly lagging followers avoid a snapshot.
    #[serde(default = "default_logs_kept")]
    pub logs_kept_after_snapshot: u64,
    /// How long sending one snapshot segment may take, the follower's install of the whole
    /// catalog included (the reply to the last segment waits for it: 18 s for a million files on
    /// two cores). Raise it for catalogs of tens of millions of files.
    #[serde(default = "default_install_snapshot_timeout")]
    pub install_snapshot_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,openraft=warn`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The node's storage elements. Empty means an `rw` element `default` and an `edit` element
    /// `temp`, both under `data_dir/elements/`.
    #[serde(default)]
    pub elements: Vec<StorageElementConfig>,
    /// Size of the chunks file bodies are cut into.
    #[serde(default = "default_chunk_size")]
    pub chunk_size_bytes: u64,
    /// Largest accepted `custom_attributes` object, as JSON text.
    #[serde(default = "default_attributes_limit")]
    pub max_attributes_bytes: usize,
    /// How often the leader removes temporary files whose TTL has ended.
    #[serde(default = "default_collector_interval")]
    pub collector_interval_secs: u64,
    /// How often each node deletes chunk files no live file references…
    #[serde(default = "default_gc_interval")]
    pub gc_interval_secs: u64,
    /// …once they are at least this old (so uploads in flight are never touched).
    #[serde(default = "default_gc_grace")]
    pub gc_grace_secs: u64,
    /// How often the leader works through the repair queue.
    #[serde(default = "default_repair_interval")]
    pub repair_interval_secs: u64,
    /// Bandwidth repair may use (chunks copied per second, in MiB).
    #[serde(default = "default_repair_rate")]
    pub repair_mib_per_sec: u64,
    /// A node unreachable this long has its replicas re-created on other nodes.
    #[serde(default = "default_node_down_after")]
    pub node_down_after_secs: u64,
    /// Pause between two scrub passes over this node's chunks (0 turns scrub off).
    #[serde(default = "default_scrub_interval")]
    pub scrub_interval_secs: u64,
    /// Read bandwidth a scrub pass may use, in MiB/s.
    #[serde(default = "default_scrub_rate")]
    pub scrub_mib_per_sec: u64,
    /// Memory for recently read chunks of small, hot files (0 turns the cache off).
    #[serde(default = "default_read_cache")]
    pub read_cache_bytes: u64,
    /// Capacity thresholds of `rw` elements.
    #[serde(default = "Thresholds::rw")]
    pub rw_thresholds: Thresholds,
    /// Capacity thresholds of `edit` elements.
    #[serde(default = "Thresholds::edit")]
    pub edit_thresholds: Thresholds,
}

/// Free-space thresholds; each level is reached when free space falls below the larger of its
/// percentage of the element's size and its fixed number of bytes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub warning_percent: f64,
    pub warning_free_bytes: u64,
    pub critical_percent: f64,
    pub critical_free_bytes: u64,
    pub full_percent: f64,
    pub full_free_bytes: u64,
}

const GB: u64 = 1_000_000_000;

impl Thresholds {
    pub fn rw() -> Self {
        Self {
            warning_percent: 15.0,
            warning_free_bytes: 150 * GB,
            critical_percent: 8.0,
            critical_free_bytes: 80 * GB,
            full_percent: 2.0,
            full_free_bytes: 20 * GB,
        }
    }

    pub fn edit() -> Self {
        Self {
            warning_percent: 10.0,
            warning_free_bytes: 100 * GB,
            critical_percent: 5.0,
            critical_free_bytes: 50 * GB,
            full_percent: 1.0,
            full_free_bytes: 10 * GB,
        }
    }

    /// Free space below which a level is reached on an element of `total` bytes: the larger of
    /// the percentage and the fixed reserve, except that a fixed reserve never applies to an
    /// element smaller than ten times that reserve (a laptop, a CI container): there only the
    /// percentage counts. So a 2 GB element is full below 40 MB free (2 %), a 100 GB one below
    /// 2 GB, and from 200 GB on the 20 GB reserve takes over.
    pub fn reserve(pct: f64, fixed: u64, total: u64) -> u64 {
        let by_pct = (pct / 100.0 * total as f64) as u64;
        if total < fixed.saturating_mul(10) {
            by_pct
        } else {
            by_pct.max(fixed)
        }
    }

    /// Free space below which an element of `total` bytes is full.
    pub fn full_reserve(&self, total: u64) -> u64 {
        Self::reserve(self.full_percent, self.full_free_bytes, total)
    }

    /// `ok`, `warning`, `critical` or `full` for an element of `total` bytes with `free` left.
    pub fn status(&self, total: u64, free: u64) -> &'static str {
        let below = |pct: f64, fixed: u64| free < Self::reserve(pct, fixed, total);
        if below(self.full_percent, self.full_free_bytes) {
            "full"
        } else if below(self.critical_percent, self.critical_free_bytes) {
            "critical"
        } else if below(self.warning_percent, self.warning_free_bytes) {
            "warning"
        } else {
            "ok"
        }
    }
}

fn default_chunk_size() -> u64 {
    4 * 1024 * 1024
}
fn default_attributes_limit() -> usize {
    64 * 1024
}
fn default_collector_interval() -> u64 {
    60
}
fn default_repair_interval() -> u64 {
    30
}
fn default_repair_rate() -> u64 {
    64
}
fn default_node_down_after() -> u64 {
    600
}
fn default_scrub_interval() -> u64 {
    86_400
}
fn default_scrub_rate() -> u64 {
    32
}
fn default_read_cache() -> u64 {
    64 * 1024 * 1024
}
fn default_gc_interval() -> u64 {
    600
}
fn default_gc_grace() -> u64 {
    3600
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            elements: Vec::new(),
            chunk_size_bytes: default_chunk_size(),
            max_attributes_bytes: default_attributes_limit(),
            collector_interval_secs: default_collector_interval(),
            gc_interval_secs: default_gc_interval(),
            gc_grace_secs: default_gc_grace(),
            read_cache_bytes: default_read_cache(),
            repair_interval_secs: default_repair_interval(),
            repair_mib_per_sec: default_repair_rate(),
            node_down_after_secs: default_node_down_after(),
            scrub_interval_secs: default_scrub_interval(),
            scrub_mib_per_sec: default_scrub_rate(),
            rw_thresholds: Thresholds::rw(),
            edit_thresholds: Thresholds::edit(),
        }
    }
}

impl NodeConfig {
    /// The configured storage elements, or the default pair under `data_dir/elements/`.
    pub fn storage_elements(&self) -> Vec<StorageElementConfig> {
        if !self.storage.elements.is_empty() {
            return self.storage.elements.clone();
        }
        let base = self.data_dir().join("elements");
        vec![
            StorageElementConfig {
                name: "default".into(),
                location: base.join("default").to_string_lossy().into_owned(),
                mode: ElementMode::Rw,
                priority: 0,
                capacity_bytes: None,
            },
            StorageElementConfig {
                name: "temp".into(),
                location: base.join("temp").to_string_lossy().into_owned(),
                mode: ElementMode::Edit,
                priority: 0,
                capacity_bytes: None,
            },
        ]
    }
}

/// Storage-element modes: `edit` is the temporary store; permanent elements move `rw` → `ro` → `ar`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ElementMode {
    Edit,
    Rw,
    Ro,
    Ar,
}

impl ElementMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ElementMode::Edit => "edit",
            ElementMode::Rw => "rw",
            ElementMode::Ro => "ro",
            ElementMode::Ar => "ar",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Edit, Self::Rw, Self::Ro, Self::Ar].into_iter().find(|m| m.as_str() == s)
    }

    /// Whether an element may move from `self` to `to` (forward only; `edit` never changes).
    pub fn may_become(self, to: ElementMode) -> bool {
        match (self, to) {
            (ElementMode::Edit, _) | (_, ElementMode::Edit) => self == to,
            (from, to) => to >= from,
        }
    }

    /// Whether new file bodies may be written to an element in this mode.
    pub fn accepts_uploads(self) -> bool {
        matches!(self, ElementMode::Edit | ElementMode::Rw)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageElementConfig {
    pub name: String,
    /// A local folder, or an `object_store` URL such as `s3://bucket/prefix`.
    pub location: String,
    #[serde(default = "default_element_mode")]
    pub mode: ElementMode,
    /// Lower fills first.
    #[serde(default)]
    pub priority: u32,
    /// Size of the element; absent means the size of the file system it is on.
    #[serde(default)]
    pub capacity_bytes: Option<u64>,
}

fn default_cluster_id() -> String {
    "artstore".into()
}
fn default_mode() -> String {
    "production".into()
}
fn default_replication_factor() -> u32 {
    3
}
fn default_quic_listen() -> String {
    "127.0.0.1:9080".into()
}
fn default_heartbeat_ms() -> u64 {
    150
}
fn default_election_min_ms() -> u64 {
    750
}
fn default_election_max_ms() -> u64 {
    1500
}
fn default_snapshot_every() -> u64 {
    10_000
}
fn default_logs_kept() -> u64 {
    1_000
}
fn default_install_snapshot_timeout() -> u64 {
    600
}
fn default_log_format() -> LogFormat {
    LogFormat::Text
}
fn default_log_level() -> String {
    // openraft narrates every election at info and tarpc warns of every closed stream; ArtStore
    // logs what an operator needs about both.
    "info,openraft=error,tarpc=off".into()
}
fn default_element_mode() -> ElementMode {
    ElementMode::Rw
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            listen: default_quic_listen(),
            advertise: None,
            dial: BTreeMap::new(),
            congestion_control: default_congestion(),
        }
    }
}
impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: default_heartbeat_ms(),
            election_timeout_min_ms: default_election_min_ms(),
            election_timeout_max_ms: default_election_max_ms(),
            snapshot_logs_since_last: default_snapshot_every(),
            logs_kept_after_snapshot: default_logs_kept(),
            install_snapshot_timeout_secs: default_install_snapshot_timeout(),
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        Self { format: default_log_format(), level: default_log_level() }
    }
}

impl NodeConfig {
    /// Reads, parses, takes each secret setting from where it is given (see
    /// [`crate::secret_settings`]: environment, then `<key>_file`, then inline), resolves
    /// relative paths against the file's folder, and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_notices(path).map(|(config, _)| config)
    }

    /// [`NodeConfig::load`], also returning notices for the log once it is set up (which secret
    /// came from the environment, which secret file is readable by everyone). Never secrets.
    pub fn load_with_notices(path: &Path) -> Result<(Self, Vec<crate::secret_settings::Notice>), ConfigError> {
        Self::load_with_env(path, &crate::secret_settings::process_env)
    }

    /// [`NodeConfig::load_with_notices`] with the environment given as a lookup function.
    pub fn load_with_env(
        path: &Path,
        env: crate::secret_settings::Env,
    ) -> Result<(Self, Vec<crate::secret_settings::Notice>), ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        let parse_err = |e: toml::de::Error| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() };
        let mut doc: toml::Table = toml::from_str(&text).map_err(parse_err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let applied = crate::secret_settings::apply(&mut doc, base, env);
        let result = if !applied.problems.is_empty() {
            Err(ConfigError::Invalid { path: path.to_path_buf(), problems: applied.problems.clone() })
        } else {
            // Parsing the text itself keeps line numbers in errors; once a value came from
            // elsewhere, the document is what holds the configuration.
            let parsed: Result<NodeConfig, _> =
                if applied.changed { toml::Value::Table(doc).try_into() } else { toml::from_str(&text) };
            parsed.map_err(parse_err).and_then(|mut config| {
                config.resolve_paths(base);
                let problems = config.validate();
                if problems.is_empty() {
                    Ok(config)
                } else {
                    Err(ConfigError::Invalid { path: path.to_path_buf(), problems })
                }
            })
        };
        match result {
            Ok(config) => Ok((config, applied.notices)),
            Err(e) => {
                applied.undo();
                Err(e)
            }
        }
    }

    /// Makes every relative path absolute against `base` (the folder of the config file).
    pub fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        if let Some(d) = &self.data_dir {
            self.data_dir = Some(abs(d));
        }
        self.tls.ca_cert = abs(&self.tls.ca_cert);
        self.tls.cert = abs(&self.tls.cert);
        self.tls.key = abs(&self.tls.key);
        if let Some(t) = &mut self.http.tls {
            t.resolve_paths(&abs);
        }
        for e in &mut self.storage.elements {
            if !e.location.contains("://") {
                e.location = abs(Path::new(&e.location)).to_string_lossy().into_owned();
            }
        }
    }

    /// The data folder; only call after validation.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(Path::new("."))
    }

    pub fn http_advertise(&self) -> &str {
        self.http.advertise.as_deref().unwrap_or(&self.http.listen)
    }

    pub fn quic_advertise(&self) -> &str {
        self.quic.advertise.as_deref().unwrap_or(&self.quic.listen)
    }

    pub fn is_dev(&self) -> bool {
        self.mode == "dev"
    }

    /// Checks every value that can be checked without binding sockets, and returns all problems.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.node_id == 0 {
            p.push(Problem::new("node_id", "must be greater than zero"));
        }
        if self.cluster_id.trim().is_empty() {
            p.push(Problem::new("cluster_id", "must not be empty"));
        }
        if self.mode != "dev" && self.mode != "production" {
            p.push(Problem::new("mode", format!("must be \"dev\" or \"production\", not {:?}", self.mode)));
        }
        match &self.data_dir {
            None => p.push(Problem::new("data_dir", "missing: set the folder for this node's data")),
            Some(d) if d.exists() && !d.is_dir() => {
                p.push(Problem::new("data_dir", format!("{} exists and is not a directory", d.display())))
            }
            Some(d) if !d.exists() && !d.parent().is_some_and(Path::is_dir) => p.push(Problem::new(
                "data_dir",
                format!("{} does not exist and neither does its parent folder", d.display()),
            )),
            Some(_) => {}
        }
        if self.replication_factor == 0 {
            p.push(Problem::new("replication_factor", "must be at least 1"));
        }
        self.http.validate(&mut p, self.is_dev());
        self.metrics.validate(&mut p, &self.http.listen);
        self.telemetry.validate(&mut p);
        check_addr(&mut p, "quic.listen", &self.quic.listen);
        if self.quic.congestion_control != "cubic" && self.quic.congestion_control != "bbr" {
            p.push(Problem::new("quic.congestion_control", "use \"cubic\" or \"bbr\""));
        }
        if let Some(a) = &self.quic.advertise {
            check_peer_addr(&mut p, "quic.advertise", a);
        }
        for (node, addr) in &self.quic.dial {
            if node.parse::<u64>().is_err() {
                p.push(Problem::new(format!("quic.dial.{node}"), "keys are node ids"));
            }
            check_peer_addr(&mut p, &format!("quic.dial.{node}"), addr);
        }
        if self.http.listen == self.quic.listen {
            p.push(Problem::new("quic.listen", "must differ from http.listen"));
        }
        for (key, path) in
            [("tls.ca_cert", &self.tls.ca_cert), ("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)]
        {
            if let Err(e) = std::fs::File::open(path) {
                p.push(Problem::new(key, format!("cannot read {}: {e}", path.display())));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, peer) in self.peers.iter().enumerate() {
            if peer.node_id == 0 {
                p.push(Problem::new(format!("peers[{i}].node_id"), "must be greater than zero"));
            }
            if !ids.insert(peer.node_id) {
                p.push(Problem::new(format!("peers[{i}].node_id"), format!("node {} is listed twice", peer.node_id)));
            }
            check_peer_addr(&mut p, &format!("peers[{i}].http_addr"), &peer.http_addr);
            check_peer_addr(&mut p, &format!("peers[{i}].quic_addr"), &peer.quic_addr);
        }
        if !self.peers.is_empty() && !ids.contains(&self.node_id) {
            p.push(Problem::new("peers", format!("this node ({}) must be one of the bootstrap peers", self.node_id)));
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 {
            p.push(Problem::new("raft.heartbeat_ms", "must be greater than zero"));
        }
        if r.election_timeout_min_ms <= r.heartbeat_ms {
            p.push(Problem::new("raft.election_timeout_min_ms", "must be greater than raft.heartbeat_ms"));
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            p.push(Problem::new("raft.election_timeout_max_ms", "must be greater than raft.election_timeout_min_ms"));
        }
        if r.snapshot_logs_since_last == 0 {
            p.push(Problem::new("raft.snapshot_logs_since_last", "must be greater than zero"));
        }
        if !(10..=86_400).contains(&r.install_snapshot_timeout_secs) {
            p.push(Problem::new("raft.install_snapshot_timeout_secs", "must be between 10 and 86400"));
        }
        self.limits.validate(&mut p);
        if let Err(e) = tracing_filter_syntax(&self.log.level) {
            p.push(Problem::new("log.level", e));
        }
        let a = &self.auth;
        if a.token_ttl_secs < 60 || a.token_ttl_secs > 24 * 3600 {
            p.push(Problem::new("auth.token_ttl_secs", "must be between 60 and 86400"));
        }
        if a.audience.is_empty() {
            p.push(Problem::new("auth.audience", "must not be empty"));
        }
        if a.secret_history > 24 {
            p.push(Problem::new("auth.secret_history", "must be between 0 and 24"));
        }
        if !(30..=365).contains(&a.secret_max_age_days) {
            p.push(Problem::new("auth.secret_max_age_days", "must be between 30 and 365"));
        }
        if a.secret_expiry_warning_days == 0 || a.secret_expiry_warning_days >= a.secret_max_age_days {
            p.push(Problem::new(
                "auth.secret_expiry_warning_days",
                "must be at least 1 and less than auth.secret_max_age_days",
            ));
        }
        if a.key_algorithm != "EdDSA" && a.key_algorithm != "RS256" {
            p.push(Problem::new("auth.key_algorithm", format!("{:?}: use \"EdDSA\" or \"RS256\"", a.key_algorithm)));
        }
        if a.key_rotation_secs < 60 {
            p.push(Problem::new("auth.key_rotation_secs", "must be at least 60"));
        }
        if a.token_requests_per_minute == 0 || a.token_requests_per_minute_per_source == 0 {
            p.push(Problem::new("auth.token_requests_per_minute", "rate limits must be greater than zero"));
        }
        if let Some(h) = &a.bootstrap_admin_hash {
            if !h.starts_with("$argon2id$") {
                p.push(Problem::new("auth.bootstrap_admin_hash", "must be an argon2id PHC string"));
            }
        }
        if !(64 * 1024..=64 * 1024 * 1024).contains(&self.storage.chunk_size_bytes) {
            p.push(Problem::new("storage.chunk_size_bytes", "must be between 65536 and 67108864"));
        }
        for (key, value) in [
            ("storage.repair_interval_secs", self.storage.repair_interval_secs),
            ("storage.repair_mib_per_sec", self.storage.repair_mib_per_sec),
            ("storage.node_down_after_secs", self.storage.node_down_after_secs),
            ("storage.scrub_mib_per_sec", self.storage.scrub_mib_per_sec),
        ] {
            if value == 0 {
                p.push(Problem::new(key, "must be at least 1"));
            }
        }
        let mut names = BTreeSet::new();
        for (i, e) in self.storage.elements.iter().enumerate() {
            let key = format!("storage.elements[{i}]");
            if e.name.is_empty() || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                p.push(Problem::new(format!("{key}.name"), "use letters, digits, '-' and '_' only"));
            }
            if !names.insert(e.name.clone()) {
                p.push(Problem::new(format!("{key}.name"), format!("element {:?} is listed twice", e.name)));
            }
            if let Some((scheme, _)) = e.location.split_once("://") {
                if scheme != "s3" && scheme != "file" {
                    p.push(Problem::new(
                        format!("{key}.location"),
                        format!("{scheme}:// is not supported; use a local folder, s3://bucket/prefix or file:///path"),
                    ));
                }
            } else {
                let path = Path::new(&e.location);
                if path.exists() && !path.is_dir() {
                    p.push(Problem::new(format!("{key}.location"), format!("{} is not a directory", path.display())));
                }
            }
        }
        p
    }
}

pub(crate) fn check_addr(p: &mut Vec<Problem>, key: &str, value: &str) {
    if value.parse::<SocketAddr>().is_err() {
        p.push(Problem::new(key, format!("{value:?} is not an IP:port socket address")));
    }
}

/// An address others dial: `IP:port`, or `dns-name:port` (resolved when dialled), so that nodes
/// in containers can advertise their service or pod name.
pub(crate) fn check_peer_addr(p: &mut Vec<Problem>, key: &str, value: &str) {
    if let Err(why) = crate::addressing::check_peer_address(value) {
        p.push(Problem::new(key, why));
    }
}

/// A light syntax check of a `tracing` filter so a typo is reported with its key, not as a panic.
fn tracing_filter_syntax(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let lvl = directive.rsplit('=').next().unwrap_or(directive);
        if directive.contains('=') || LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
                return Err(format!("unknown level {lvl:?} in {directive:?}"));
            }
        } else {
            return Err(format!("{directive:?} is neither a level nor target=level"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> NodeConfig {
        for f in ["ca.pem", "node.pem", "node.key"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let text = r#"
            node_id = 1
            data_dir = "data"
            [tls]
            ca_cert = "ca.pem"
            cert = "node.pem"
            key = "node.key"
        "#;
        let mut c: NodeConfig = toml::from_str(text).unwrap();
        c.resolve_paths(dir);
        c
    }

    #[test]
    fn fixed_reserves_never_exceed_what_fits_a_small_element() {
        let rw = Thresholds::rw();
        // A 2 GB dev disk with 1.5 GB free is fine; it is full below 2 % (40 MB).
        assert_eq!(rw.status(2 * GB, 1_500_000_000), "ok");
        assert_eq!(rw.status(2 * GB, 50_000_000), "critical");
        assert_eq!(rw.status(2 * GB, 39_000_000), "full");
        // A 10 TB element keeps its fixed reserves: full below 200 GB (2 %), and 20 GB is a floor.
        assert_eq!(rw.status(10_000 * GB, 300 * GB), "critical");
        assert_eq!(rw.status(10_000 * GB, 199 * GB), "full");
        assert_eq!(rw.full_reserve(500 * GB), 20 * GB);
        assert_eq!(rw.full_reserve(100 * GB), 2 * GB);
        assert_eq!(rw.status(0, 0), "ok", "an unmeasured element is not full");
    }

    #[test]
    fn defaults_fill_a_minimal_file_and_it_validates() {
        let dir = tempfile::tempdir().unwrap();
        let c = sample(dir.path());
        assert_eq!(c.replication_factor, 3);
        assert!(c.data_dir().is_absolute());
        assert_eq!(c.validate(), vec![]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(dir.path());
        c.data_dir = None;
        c.http.listen = "nonsense".into();
        c.tls.key = dir.path().join("missing.key");
        c.raft.election_timeout_max_ms = 1;
        c.log.level = "loud".into();
        let keys: Vec<String> = c.validate().into_iter().map(|p| p.key).collect();
        for k in ["data_dir", "http.listen", "tls.key", "raft.election_timeout_max_ms", "log.level"] {
            assert!(keys.iter().any(|x| x == k), "{k} not reported in {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<NodeConfig>("node_id = 1\nnode_idd = 2\n[tls]\nca_cert=''\ncert=''\nkey=''\n");
        assert!(err.unwrap_err().to_string().contains("node_idd"));
    }
}
