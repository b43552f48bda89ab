//! The commands that create cluster files or talk to a running cluster through any node:
//! `artstore cluster …` here, accounts, elements, keys and audit in [`admin`], uploads, downloads
//! and file metadata in [`files`], search in [`search`]; connection settings in [`connection`].
//!
//! Every command that talks to the cluster takes `--output text|json`; with `json`, stdout holds
//! exactly one JSON document and everything else (progress, notices) goes to stderr.

pub mod admin;
pub mod backup;
pub mod connection;
pub mod durability;
pub mod files;
pub mod health;
pub mod search;

use std::path::PathBuf;

use artstore_client::wire::{ClusterStatus, JoinRequest};
use artstore_cluster_config::{AddNodeOptions, Addressing, InitOptions, NodeConfig, NodeHosts};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

pub use connection::{usage, Connection, UsageError};

/// How results are printed.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// For people: aligned columns and sentences.
    Text,
    /// For scripts: one JSON document on stdout.
    Json,
}

/// Prints `value` as pretty JSON with `Output::Json`, or runs `text` otherwise.
pub fn emit<T: Serialize>(output: Output, value: &T, text: impl FnOnce(&T)) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Text => text(value),
    }
    Ok(())
}

/// Parses repeated `key=value` arguments of `flag` into a JSON object of strings.
pub fn parse_attrs(flag: &str, pairs: &[String]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut attributes = serde_json::Map::new();
    for kv in pairs {
        let (k, v) = kv.split_once('=').ok_or_else(|| usage(format!("{flag} {kv:?}: use key=value")))?;
        if k.is_empty() {
            return Err(usage(format!("{flag} {kv:?}: the key is empty")));
        }
        attributes.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    Ok(attributes)
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Generate the cluster CA, per-node certificates and configs, and the admin credentials.
    Init {
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        hosts: HostArgs,
        #[arg(long, default_value = "artstore")]
        cluster_id: String,
        /// Serve the API over plain HTTP (no `[http.tls]`), e.g. behind a TLS-terminating proxy.
        #[arg(long)]
        plain_http: bool,
    },
    /// Create the folder of one more node (signed by the CA in --out) for `cluster join`.
    AddNode {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        node_id: u64,
        #[command(flatten)]
        hosts: HostArgs,
        #[arg(long)]
        plain_http: bool,
    },
    /// Issue a client certificate for a service account (mutual TLS on the API), signed by the
    /// cluster CA in --out; written as one PEM file with its key (0600).
    ClientCert {
        #[arg(long)]
        out: PathBuf,
        /// The service account the certificate names (its subject's common name).
        #[arg(long)]
        client_id: String,
        /// Where to write it [default: OUT/clients/CLIENT_ID.pem].
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Show the cluster as seen by the first reachable node.
    Status {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Add a running node to the cluster (it joins as learner and is promoted once caught up).
    Join {
        #[command(flatten)]
        conn: Connection,
        /// The new node's config.toml (its id and addresses are read from it).
        #[arg(long, conflicts_with_all = ["node_id", "http_addr", "quic_addr"])]
        config: Option<PathBuf>,
        #[arg(long, requires_all = ["http_addr", "quic_addr"])]
        node_id: Option<u64>,
        #[arg(long)]
        http_addr: Option<String>,
        #[arg(long)]
        quic_addr: Option<String>,
        /// Seconds the new node may take to catch up before the join is abandoned.
        #[arg(long, default_value_t = 60)]
        catch_up_timeout: u64,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Move every replica off a node (it leaves placement) before removing it; waits until done.
    Drain {
        #[command(flatten)]
        conn: Connection,
        node_id: u64,
        /// Stop draining: the node takes new replicas again.
        #[arg(long)]
        cancel: bool,
        /// Start draining and return at once.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Remove a node from the cluster.
    Remove {
        #[command(flatten)]
        conn: Connection,
        node_id: u64,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// Where the nodes of `cluster init` and `cluster add-node` listen, what they advertise, and what
/// their certificates name.
#[derive(clap::Args)]
pub struct HostArgs {
    /// Host or IP every node listens on and advertises [default: 127.0.0.1]. May repeat: later
    /// values (all of them with --node-host) are more DNS names and addresses the API
    /// certificates name (a load balancer, a client Service, other interfaces); `{i}` and
    /// `{ordinal}` are replaced per node.
    #[arg(long)]
    host: Vec<String>,
    /// Each node's own host, advertised to peers and clients and named by its certificates: one
    /// pattern with `{i}` (the node id, from 1: `artstore-{i}`) or `{ordinal}` (id - 1, as
    /// Kubernetes numbers StatefulSet pods: `artstore-{ordinal}.artstore.NS.svc.cluster.local`),
    /// or one host per node, repeated in node order. Every node then uses the same ports.
    #[arg(long)]
    node_host: Vec<String>,
    /// The IP address nodes listen on when it is not their host (`0.0.0.0` in containers).
    /// By default a node listens on its host if that is an IP address, else on 0.0.0.0.
    #[arg(long)]
    listen_host: Option<String>,
    /// HTTP port; QUIC is this + 1000. With one shared host node i uses base-port + i - 1 (and
    /// that + 1000); with --node-host every node uses base-port.
    #[arg(long, default_value_t = 8081)]
    base_port: u16,
    /// `data_dir` written into the configs: an absolute path (a volume in a container) or one
    /// relative to the node's folder.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

impl HostArgs {
    fn addressing(self, single_node: bool) -> anyhow::Result<(Addressing, Option<PathBuf>)> {
        let bad = |h: &String| h.is_empty() || h.len() > 253 || h.contains(['/', ' ', ',']);
        if self.host.iter().chain(&self.node_host).any(bad) {
            return Err(usage("--host, --node-host: give a DNS name or an IP address (at most 253 characters) each"));
        }
        let mut hosts = self.host;
        let node_hosts = match self.node_host.len() {
            0 => NodeHosts::Shared(if hosts.is_empty() { "127.0.0.1".into() } else { hosts.remove(0) }),
            1 => NodeHosts::Pattern(self.node_host[0].clone()),
            _ if single_node => return Err(usage("--node-host: give this node's host (or a pattern) once")),
            _ => NodeHosts::List(self.node_host),
        };
        let addressing =
            Addressing { node_hosts, extra_hosts: hosts, listen_host: self.listen_host, base_port: self.base_port };
        let data_dir = (self.data_dir != std::path::Path::new("data")).then_some(self.data_dir);
        Ok((addressing, data_dir))
    }
}

pub async fn run_cluster(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Init { nodes, out, hosts, cluster_id, plain_http } => {
            let (addressing, data_dir) = hosts.addressing(false)?;
            let opts = InitOptions { nodes, out, addressing, data_dir, plain_http, cluster_id };
            let layout = artstore_cluster_config::init_cluster(&opts)?;
            let scheme = if plain_http { "http" } else { "https" };
            println!("Cluster files written to {}", layout.out.display());
            for n in &layout.nodes {
                println!(
                    "  node {}: artstore start --config {}   ({scheme}://{})",
                    n.node_id,
                    n.config.display(),
                    n.http_addr
                );
            }
            if !plain_http {
                println!("Clients trust the cluster CA: {}", layout.out.join("ca").join("ca.pem").display());
            }
            println!("Admin credentials: {} (keep it private)", layout.credentials.display());
            println!("The CA key in {} is needed only to add nodes; keep it offline.", layout.out.join("ca").display());
            Ok(())
        }
        ClusterCommand::AddNode { out, node_id, hosts, plain_http } => {
            let (addressing, data_dir) = hosts.addressing(true)?;
            let opts = AddNodeOptions { node_id, addressing, data_dir, plain_http };
            let n = artstore_cluster_config::add_node(&out, &opts)?;
            println!(
                "Node {} folder written: start it with `artstore start --config {}`,",
                n.node_id,
                n.config.display()
            );
            println!("then run `artstore cluster join --config {}` against any member.", n.config.display());
            Ok(())
        }
        ClusterCommand::ClientCert { out, client_id, file } => {
            if client_id.is_empty() || client_id.len() > 64 || client_id.contains(['/', '\\', '\0']) {
                return Err(usage("--client-id: 1 to 64 characters, no slashes"));
            }
            let file = file.unwrap_or_else(|| out.join("clients").join(format!("{client_id}.pem")));
            artstore_cluster_config::issue_client_cert(&out, &client_id, &file)?;
            println!(
                "Client certificate for {client_id} written to {} (certificate and key; keep it private)",
                file.display()
            );
            Ok(())
        }
        ClusterCommand::Status { conn, output } => {
            let status = conn.client()?.cluster_status().await?;
            print_status(&status, output)
        }
        ClusterCommand::Join { conn, config, node_id, http_addr, quic_addr, catch_up_timeout, output } => {
            let req = match (config, node_id, http_addr, quic_addr) {
                (Some(path), ..) => {
                    let c = NodeConfig::load(&path)?;
                    JoinRequest {
                        node_id: c.node_id,
                        http_addr: c.http_advertise().to_string(),
                        quic_addr: c.quic_advertise().to_string(),
                        catch_up_timeout_secs: Some(catch_up_timeout),
                    }
                }
                (None, Some(node_id), Some(http_addr), Some(quic_addr)) => {
                    JoinRequest { node_id, http_addr, quic_addr, catch_up_timeout_secs: Some(catch_up_timeout) }
                }
                _ => anyhow::bail!("give either --config FILE or --node-id, --http-addr and --quic-addr"),
            };
            eprintln!("Joining node {} (waits until it has caught up)...", req.node_id);
            let status = conn.client()?.join(&req).await?;
            print_status(&status, output)
        }
        ClusterCommand::Drain { conn, node_id, cancel, no_wait, output } => {
            durability::drain(conn, node_id, cancel, no_wait, output).await
        }
        ClusterCommand::Remove { conn, node_id, output } => {
            let status = conn.client()?.remove(node_id).await?;
            print_status(&status, output)
        }
    }
}

fn print_status(s: &ClusterStatus, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let leader = s.leader_id.map(|l| l.to_string()).unwrap_or_else(|| "none".into());
    println!("node {} ({}), leader {leader}, term {}", s.node_id, s.state, s.term);
    println!("commit index {}, applied index {}", s.commit_index, s.applied_index);
    println!("{:>6}  {:<8} {:<10} {:<22} {:<22}", "NODE", "ROLE", "REACHABLE", "HTTP", "QUIC");
    for m in &s.members {
        let role = if m.voter { "voter" } else { "learner" };
        let reach = if m.reachable { "yes" } else { "no" };
        let mark = if Some(m.node_id) == s.leader_id { "*" } else { " " };
        println!("{:>5}{mark}  {role:<8} {reach:<10} {:<22} {:<22}", m.node_id, m.http_addr, m.quic_addr);
    }
    Ok(())
}
