//! ArtStore's configuration: the serde tree of one node's `config.toml`, its defaults, and the
//! validation that runs once at start-up; plus the cluster's certificate authority and the files
//! `artstore cluster init` writes.
//!
//! Invariant: a [`NodeConfig`] handed out by [`NodeConfig::load`] has passed [`NodeConfig::validate`]
//! and has every relative path resolved against the folder of the file it came from, so the rest of
//! the program never interprets paths relative to the working directory.

#![forbid(unsafe_code)]

mod addressing;
mod config;
mod credentials;
#[cfg(test)]
mod deploy_layouts;
mod error;
#[cfg(test)]
mod fuzz;
mod http;
mod limits;
mod pki;
mod scaffold;
pub mod secret;
pub mod secret_settings;
mod telemetry;

pub use addressing::{
    check_host, check_peer_address, Addressing, NodeAddresses, NodeHosts, NODE_ID_PLACEHOLDER, ORDINAL_PLACEHOLDER,
};
pub use config::{
    ApiTlsConfig, AuthConfig, CorsConfig, ElementMode, HttpConfig, LogConfig, LogFormat, MetricsConfig, NodeConfig,
    PeerConfig, QuicConfig, RaftConfig, StorageConfig, StorageElementConfig, Thresholds, TlsConfig,
};
pub use credentials::AdminCredentials;
pub use error::{ConfigError, Problem};
pub use limits::Limits;
pub use pki::{node_server_name, ClusterCa, NodeCertificate};
pub use scaffold::{
    add_node, dev_node, init_cluster, issue_client_cert, AddNodeOptions, ClusterLayout, InitOptions, NodeLayout,
};
pub use telemetry::TelemetryConfig;
