//! Writes the files a cluster starts from: `artstore cluster init` (the CA, one folder per node,
//! the admin credentials), `artstore cluster add-node` (one more node folder signed by the same CA),
//! and the self-contained folder behind `artstore dev`.
//!
//! Invariant: nothing existing is overwritten; a half-written layout is removed on error.

use std::path::{Path, PathBuf};

use crate::addressing::{Addressing, NodeAddresses};
use crate::config::{AuthConfig, NodeConfig, PeerConfig, QuicConfig, RaftConfig, TlsConfig};
use crate::credentials::{write_private, AdminCredentials};
use crate::error::ConfigError;
use crate::http::{ApiTlsConfig, HttpConfig};
use crate::pki::ClusterCa;

/// Options of `artstore cluster init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub nodes: u64,
    pub out: PathBuf,
    /// Where each node listens and what it advertises; see [`Addressing`].
    pub addressing: Addressing,
    /// `data_dir` of every node's config: absent means `data` beside `config.toml`; an absolute
    /// path suits containers, where the config is mounted read-only and the data is a volume.
    pub data_dir: Option<PathBuf>,
    /// Write no `[http.tls]`: the API speaks plain HTTP (behind a TLS-terminating proxy, or for
    /// tests on loopback).
    pub plain_http: bool,
    pub cluster_id: String,
}

/// What `init_cluster` or `add_node` wrote.
#[derive(Debug, Clone)]
pub struct ClusterLayout {
    pub out: PathBuf,
    pub nodes: Vec<NodeLayout>,
    pub credentials: PathBuf,
}

#[derive(Debug, Clone)]
pub struct NodeLayout {
    pub node_id: u64,
    pub config: PathBuf,
    pub http_addr: String,
    pub quic_addr: String,
}

const CA_DIR: &str = "ca";
const CLUSTER_ID_FILE: &str = "cluster_id";

/// Every file of a layout is private to its user (0600): `config.toml` carries the bootstrap
/// admin's hash, and certificates are nobody else's business either.
fn write(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let err = |error| ConfigError::Write { path: path.into(), error };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Folders of a layout are 0700.
fn mkdir(path: &Path) -> Result<(), ConfigError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(|error| ConfigError::Write { path: path.into(), error })
}

/// What goes into one node folder.
struct NodeSpec<'a> {
    cluster_id: &'a str,
    node_id: u64,
    addrs: NodeAddresses,
    data_dir: Option<PathBuf>,
    plain_http: bool,
    peers: Vec<PeerConfig>,
    admin_hash: Option<String>,
}

/// An advertised address worth writing: only where it differs from the listen address.
fn advertise(listen: &str, advertised: &str) -> Option<String> {
    (listen != advertised).then(|| advertised.to_string())
}

/// Writes one node folder: the cluster certificate and key, the API certificate and key (unless
/// plain HTTP), a copy of the CA certificate, and `config.toml`.
fn write_node(ca: &ClusterCa, dir: &Path, spec: NodeSpec<'_>) -> Result<NodeLayout, ConfigError> {
    let NodeSpec { cluster_id, node_id, addrs, data_dir, plain_http, peers, admin_hash } = spec;
    let hosts = &addrs.cert_hosts;
    mkdir(dir)?;
    let cert = ca.issue_node(node_id, &hosts[..1])?;
    write(&dir.join("ca.pem"), ca.cert_pem.as_bytes())?;
    write(&dir.join("node.pem"), cert.cert_pem.as_bytes())?;
    write_private(&dir.join("node.key"), cert.key_pem.as_bytes())?;
    let tls = if plain_http {
        None
    } else {
        let api = ca.issue_api(node_id, hosts)?;
        write(&dir.join("api.pem"), api.cert_pem.as_bytes())?;
        write_private(&dir.join("api.key"), api.key_pem.as_bytes())?;
        Some(ApiTlsConfig::with_files("api.pem", "api.key"))
    };
    let config = NodeConfig {
        node_id,
        cluster_id: cluster_id.into(),
        data_dir: Some(data_dir.unwrap_or_else(|| "data".into())),
        mode: "production".into(),
        zone: None,
        replication_factor: 3,
        http: HttpConfig {
            listen: addrs.http_listen.clone(),
            advertise: advertise(&addrs.http_listen, &addrs.http_advertise),
            tls,
            ..Default::default()
        },
        quic: QuicConfig {
            listen: addrs.quic_listen.clone(),
            advertise: advertise(&addrs.quic_listen, &addrs.quic_advertise),
            ..Default::default()
        },
        tls: TlsConfig { ca_cert: "ca.pem".into(), cert: "node.pem".into(), key: "node.key".into() },
        peers,
        raft: RaftConfig::default(),
        log: Default::default(),
        storage: Default::default(),
        auth: AuthConfig { bootstrap_admin_hash: admin_hash, ..Default::default() },
        limits: Default::default(),
        metrics: Default::default(),
        telemetry: Default::default(),
    };
    let text = toml::to_string_pretty(&config).map_err(|e| ConfigError::Layout(e.to_string()))?;
    let header = "# ArtStore node configuration, generated by `artstore cluster init`.\n\
                  # Relative paths are resolved against this file's folder.\n\n";
    let path = dir.join("config.toml");
    write(&path, format!("{header}{text}").as_bytes())?;
    Ok(NodeLayout { node_id, config: path, http_addr: addrs.http_advertise, quic_addr: addrs.quic_advertise })
}

/// `artstore cluster init`: a new CA, `nodes` node folders bootstrapped together, and the admin
/// credentials. Refuses an `out` folder that already holds a cluster.
pub fn init_cluster(opts: &InitOptions) -> Result<ClusterLayout, ConfigError> {
    if opts.nodes == 0 || opts.nodes > 99 {
        return Err(ConfigError::Layout("--nodes must be between 1 and 99".into()));
    }
    opts.addressing.check(1..=opts.nodes)?;
    if opts.out.join(CA_DIR).exists() {
        return Err(ConfigError::Layout(format!(
            "{} already holds a cluster (its ca/ folder exists); choose another --out",
            opts.out.display()
        )));
    }
    let created_out = !opts.out.exists();
    let result = write_cluster(opts);
    if result.is_err() {
        // Leave nothing half-written behind.
        let _ = std::fs::remove_dir_all(opts.out.join(CA_DIR));
        for i in 1..=opts.nodes {
            let _ = std::fs::remove_dir_all(opts.out.join(format!("node{i}")));
        }
        let _ = std::fs::remove_file(opts.out.join("admin-credentials.json"));
        if created_out {
            let _ = std::fs::remove_dir(&opts.out);
        }
    }
    result
}

fn write_cluster(opts: &InitOptions) -> Result<ClusterLayout, ConfigError> {
    let ca = ClusterCa::generate(&opts.cluster_id)?;
    let ca_dir = opts.out.join(CA_DIR);
    mkdir(&ca_dir)?;
    write(&ca_dir.join("ca.pem"), ca.cert_pem.as_bytes())?;
    write_private(&ca_dir.join("ca.key"), ca.key_pem.as_bytes())?;
    write(&ca_dir.join(CLUSTER_ID_FILE), opts.cluster_id.as_bytes())?;
    let mut addrs = Vec::new();
    for id in 1..=opts.nodes {
        addrs.push((id, opts.addressing.node(id)?));
    }
    let peers: Vec<PeerConfig> = addrs
        .iter()
        .map(|(id, a)| PeerConfig {
            node_id: *id,
            http_addr: a.http_advertise.clone(),
            quic_addr: a.quic_advertise.clone(),
        })
        .collect();
    let admin = AdminCredentials::generate(&opts.cluster_id);
    let admin_hash = crate::secret::hash_secret(&admin.client_secret).map_err(ConfigError::Certificate)?;
    let mut nodes = Vec::new();
    for (node_id, addrs) in addrs {
        let dir = opts.out.join(format!("node{node_id}"));
        let spec = NodeSpec {
            cluster_id: &opts.cluster_id,
            node_id,
            addrs,
            data_dir: opts.data_dir.clone(),
            plain_http: opts.plain_http,
            peers: peers.clone(),
            admin_hash: Some(admin_hash.clone()),
        };
        nodes.push(write_node(&ca, &dir, spec)?);
    }
    let credentials = opts.out.join("admin-credentials.json");
    admin.write_new(&credentials)?;
    Ok(ClusterLayout { out: opts.out.clone(), nodes, credentials })
}

/// Options of `artstore cluster add-node`.
#[derive(Debug, Clone)]
pub struct AddNodeOptions {
    pub node_id: u64,
    /// As for `cluster init`: a pattern is rendered for `node_id` alone.
    pub addressing: Addressing,
    pub data_dir: Option<PathBuf>,
    pub plain_http: bool,
}

/// `artstore cluster add-node`: a folder for a node that will join the cluster in `out` with
/// `artstore cluster join`. Its config lists no bootstrap peers.
pub fn add_node(out: &Path, opts: &AddNodeOptions) -> Result<NodeLayout, ConfigError> {
    let node_id = opts.node_id;
    if node_id == 0 {
        return Err(ConfigError::Layout("--node-id must be greater than zero".into()));
    }
    opts.addressing.check([node_id])?;
    let ca_dir = out.join(CA_DIR);
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|error| ConfigError::Read { path: p, error });
    let cluster_id = read(ca_dir.join(CLUSTER_ID_FILE))?.trim().to_string();
    let ca = ClusterCa::load(&cluster_id, read(ca_dir.join("ca.pem"))?, &read(ca_dir.join("ca.key"))?)?;
    let dir = out.join(format!("node{node_id}"));
    if dir.exists() {
        return Err(ConfigError::Layout(format!("{} already exists", dir.display())));
    }
    let spec = NodeSpec {
        cluster_id: &cluster_id,
        node_id,
        addrs: opts.addressing.node(node_id)?,
        data_dir: opts.data_dir.clone(),
        plain_http: opts.plain_http,
        peers: Vec::new(),
        admin_hash: None,
    };
    let result = write_node(&ca, &dir, spec);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// `artstore cluster client-cert`: a certificate naming service account `client_id`, signed by
/// the CA in `out`, written with its key to `file` (0600; its folder 0700). Refuses to overwrite.
pub fn issue_client_cert(out: &Path, client_id: &str, file: &Path) -> Result<(), ConfigError> {
    let ca_dir = out.join(CA_DIR);
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|error| ConfigError::Read { path: p, error });
    let cluster_id = read(ca_dir.join(CLUSTER_ID_FILE))?.trim().to_string();
    let ca = ClusterCa::load(&cluster_id, read(ca_dir.join("ca.pem"))?, &read(ca_dir.join("ca.key"))?)?;
    if file.exists() {
        return Err(ConfigError::Layout(format!("{} already exists", file.display())));
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        mkdir(dir)?;
    }
    let cert = ca.issue_client(client_id)?;
    write_private(file, format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes())
}

/// Prepares the folder of `artstore dev`: on first use a private CA and node certificate under
/// `DIR/tls` and the admin credentials; with `tls`, an API certificate for `localhost`, the
/// loopback addresses and the `http` address's host, from the same CA (`DIR/tls/ca.pem` is what
/// clients trust). Returns the node's configuration and the credentials if they were created
/// just now (so they can be printed once).
pub fn dev_node(
    data_dir: &Path,
    http: &str,
    quic: &str,
    tls: bool,
) -> Result<(NodeConfig, Option<AdminCredentials>), ConfigError> {
    let cluster_id = "artstore-dev";
    let dir = data_dir.join("tls");
    mkdir(&dir)?;
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|error| ConfigError::Read { path: p, error });
    // The CA key is kept (0600) so that the API certificate can be issued later; a folder from
    // before that is given a new CA, which a one-node cluster can always do.
    let ca = if dir.join("node.pem").exists() && dir.join("ca.key").exists() {
        ClusterCa::load(cluster_id, read(dir.join("ca.pem"))?, &read(dir.join("ca.key"))?)?
    } else {
        let ca = ClusterCa::generate(cluster_id)?;
        let cert = ca.issue_node(1, &["127.0.0.1".into()])?;
        for f in ["ca.key", "node.key", "api.pem", "api.key"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        write(&dir.join("ca.pem"), ca.cert_pem.as_bytes())?;
        write_private(&dir.join("ca.key"), ca.key_pem.as_bytes())?;
        write_private(&dir.join("node.key"), cert.key_pem.as_bytes())?;
        write(&dir.join("node.pem"), cert.cert_pem.as_bytes())?;
        ca
    };
    let api_tls = if tls {
        let host = http.parse::<std::net::SocketAddr>().map(|a| a.ip().to_string()).unwrap_or_default();
        if !dir.join("api.pem").exists() || !read(dir.join("api.hosts")).is_ok_and(|h| h == host) {
            let api = ca.issue_api(1, std::slice::from_ref(&host))?;
            let _ = std::fs::remove_file(dir.join("api.key"));
            write_private(&dir.join("api.key"), api.key_pem.as_bytes())?;
            write(&dir.join("api.pem"), api.cert_pem.as_bytes())?;
            write(&dir.join("api.hosts"), host.as_bytes())?;
        }
        Some(ApiTlsConfig::with_files(dir.join("api.pem"), dir.join("api.key")))
    } else {
        None
    };
    let cred_path = data_dir.join("admin-credentials.json");
    let (admin, fresh) = if cred_path.exists() {
        (AdminCredentials::read(&cred_path)?, false)
    } else {
        let c = AdminCredentials::generate(cluster_id);
        c.write_new(&cred_path)?;
        (c, true)
    };
    let admin_hash = crate::secret::hash_secret(&admin.client_secret).map_err(ConfigError::Certificate)?;
    let config = NodeConfig {
        node_id: 1,
        cluster_id: cluster_id.into(),
        data_dir: Some(data_dir.to_path_buf()),
        mode: "dev".into(),
        zone: None,
        replication_factor: 1,
        http: HttpConfig { listen: http.into(), tls: api_tls, ..Default::default() },
        quic: QuicConfig { listen: quic.into(), ..Default::default() },
        tls: TlsConfig { ca_cert: dir.join("ca.pem"), cert: dir.join("node.pem"), key: dir.join("node.key") },
        peers: vec![PeerConfig { node_id: 1, http_addr: http.into(), quic_addr: quic.into() }],
        raft: RaftConfig::default(),
        log: Default::default(),
        storage: Default::default(),
        auth: AuthConfig { bootstrap_admin_hash: Some(admin_hash), ..Default::default() },
        limits: Default::default(),
        metrics: Default::default(),
        telemetry: Default::default(),
    };
    Ok((config, fresh.then_some(admin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_loadable_configs_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            nodes: 3,
            out: dir.path().join("c"),
            addressing: Addressing::shared("127.0.0.1", vec!["archive.example.com".into()], 18081),
            data_dir: None,
            plain_http: false,
            cluster_id: "test".into(),
        };
        let layout = init_cluster(&opts).unwrap();
        assert_eq!(layout.nodes.len(), 3);
        for n in &layout.nodes {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode(&n.config), 0o600, "config.toml carries the bootstrap admin hash");
                assert_eq!(mode(n.config.parent().unwrap()), 0o700);
            }
            let c = NodeConfig::load(&n.config).unwrap();
            assert_eq!(c.node_id, n.node_id);
            assert_eq!(c.peers.len(), 3);
            assert_eq!(c.http.scheme(), "https");
            assert_eq!(c.data_dir(), n.config.parent().unwrap().join("data"));
            assert_eq!(
                (&c.http.advertise, &c.quic.advertise),
                (&None, &None),
                "the default listens where it advertises"
            );
            let api = std::fs::read_to_string(&c.http.tls.as_ref().unwrap().cert).unwrap();
            assert!(api.starts_with("-----BEGIN CERTIFICATE-----"));
        }
        assert!(init_cluster(&opts).is_err());
        let add = AddNodeOptions {
            node_id: 4,
            addressing: Addressing::shared("127.0.0.1", Vec::new(), 18081),
            data_dir: None,
            plain_http: true,
        };
        let extra = add_node(&opts.out, &add).unwrap();
        let c = NodeConfig::load(&extra.config).unwrap();
        assert!(c.peers.is_empty());
        assert_eq!(c.http.listen, "127.0.0.1:18084");
        assert!(c.http.tls.is_none(), "--plain-http writes no [http.tls]");
    }
}
