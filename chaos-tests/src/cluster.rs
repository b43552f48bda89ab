//! [`LocalCluster`]: N `artstore` processes on a random 127.x.y.z address, each with its own data
//! folder under one temporary directory that is removed (and every process killed) on drop.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artstore_client::wire::ClusterStatus;
use artstore_client::Client;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("`artstore {args}` failed (exit {code:?}): {stderr}")]
    Command { args: String, code: Option<i32>, stderr: String },
    #[error("{0}")]
    Config(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

/// One node's files and, while running, its process.
pub struct NodeProcess {
    pub id: u64,
    pub dir: PathBuf,
    pub http: String,
    pub quic: String,
    child: Option<Child>,
}

/// A cluster of real node processes for tests, benchmarks and chaos scenarios.
pub struct LocalCluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    host: String,
    base_port: u16,
    nodes: BTreeMap<u64, NodeProcess>,
    /// Admin client whose token cache every `client()` shares.
    admin: Client,
    /// Extra environment for node processes.
    env: Vec<(String, String)>,
    /// Commands node processes are started under (e.g. `ip netns exec NS`).
    wrappers: BTreeMap<u64, Vec<String>>,
    /// Whether the nodes serve the API over HTTPS (with `ARTSTORE_TEST_TLS=1`).
    tls: bool,
}

/// Whether test clusters serve their API over HTTPS: `ARTSTORE_TEST_TLS=1` (or `true`). With it,
/// every test that talks to nodes through the harness does so over TLS, trusting the cluster CA.
pub fn tls_from_env() -> bool {
    std::env::var("ARTSTORE_TEST_TLS").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn free(host: &str, port: u16) -> bool {
    let Ok(ip) = host.parse() else { return false };
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
}

/// The lowest port the kernel hands out for `bind(…:0)` (`ip_local_port_range`). Node ports are
/// chosen below it, so the fault proxies' own sockets (bound to port 0 on the same address) can
/// never take a node's port between the check and the node's start.
fn ephemeral_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32_768)
}

/// A random loopback address (127.x.y.z) and base port such that `base..base+count` and
/// `base+1000..base+1000+count` are free for TCP and UDP, all below the ephemeral range. Random
/// addresses keep concurrent tests apart.
pub fn free_loopback(count: u16) -> Result<(String, u16), HarnessError> {
    (0..50)
        .map(|_| {
            let host = format!(
                "127.{}.{}.{}",
                rand::random_range(1..250),
                rand::random_range(1..250),
                rand::random_range(2..250)
            );
            (host, rand::random_range(10_000u16..ephemeral_floor().saturating_sub(1100).max(10_001)))
        })
        .find(|(h, p)| (0..count).all(|i| free(h, p + i) && free(h, p + 1000 + i)))
        .ok_or_else(|| HarnessError::Config("no free loopback address and ports found".into()))
}

impl LocalCluster {
    /// Runs `artstore cluster init --nodes N` into a fresh temporary folder, then lets `configure`
    /// edit every node's `config.toml` (as a TOML table) before anything starts. Nodes are not
    /// started; see [`LocalCluster::start_all`].
    /// The API is HTTPS when `ARTSTORE_TEST_TLS=1` ([`tls_from_env`]).
    pub fn init(bin: &Path, nodes: u64, configure: impl Fn(&mut toml::Table)) -> Result<Self, HarnessError> {
        Self::init_with(bin, nodes, tls_from_env(), configure)
    }

    /// [`LocalCluster::init`] with the API over HTTPS (`tls`) or plain HTTP, whatever the
    /// environment says.
    pub fn init_with(
        bin: &Path,
        nodes: u64,
        tls: bool,
        configure: impl Fn(&mut toml::Table),
    ) -> Result<Self, HarnessError> {
        let (host, base_port) = free_loopback(nodes as u16 + 2)?;
        Self::init_on(bin, nodes, host, base_port, tls, configure)
    }

    /// [`LocalCluster::init`] on a given address: node `i` listens for HTTP on `base_port + i - 1`
    /// and for QUIC on that + 1000 (see [`LocalCluster::quic_addr`]), including nodes added later.
    pub fn init_on(
        bin: &Path,
        nodes: u64,
        host: String,
        base_port: u16,
        tls: bool,
        configure: impl Fn(&mut toml::Table),
    ) -> Result<Self, HarnessError> {
        let root = tempfile::Builder::new().prefix("artstore-cluster-").tempdir()?;
        let admin = Client::new(["http://127.0.0.1:1"]).map_err(|e| HarnessError::Config(e.to_string()))?;
        let mut cluster = Self {
            bin: bin.to_path_buf(),
            root,
            host,
            base_port,
            nodes: BTreeMap::new(),
            admin,
            env: Vec::new(),
            wrappers: BTreeMap::new(),
            tls,
        };
        let out = cluster.root.path().to_string_lossy().into_owned();
        let (count, port) = (nodes.to_string(), base_port.to_string());
        let host = cluster.host.clone();
        let mut args = vec!["cluster", "init", "--nodes", &count, "--out", &out, "--host", &host, "--base-port", &port];
        args.extend(["--cluster-id", "test"]);
        if !tls {
            args.push("--plain-http");
        }
        cluster.run_cli(&args)?;
        for id in 1..=nodes {
            cluster.register(id, &configure)?;
        }
        let (client_id, secret) = cluster.admin_credentials();
        cluster.admin = cluster.with_ca(cluster.admin.clone())?.with_credentials(client_id, secret);
        Ok(cluster)
    }

    /// Creates the folder of one more (non-bootstrap) node with `artstore cluster add-node`.
    pub fn add_node(&mut self, id: u64, configure: impl Fn(&mut toml::Table)) -> Result<(), HarnessError> {
        let out = self.root.path().to_string_lossy().into_owned();
        let (host, port, node) = (self.host.clone(), self.base_port.to_string(), id.to_string());
        let mut args = vec!["cluster", "add-node", "--out", &out, "--node-id", &node, "--host", &host];
        args.extend(["--base-port", &port]);
        if !self.tls {
            args.push("--plain-http");
        }
        self.run_cli(&args)?;
        self.register(id, &configure)
    }

    fn register(&mut self, id: u64, configure: &impl Fn(&mut toml::Table)) -> Result<(), HarnessError> {
        let dir = self.root.path().join(format!("node{id}"));
        let path = dir.join("config.toml");
        let mut table: toml::Table = std::fs::read_to_string(&path)?
            .parse()
            .map_err(|e: toml::de::Error| HarnessError::Config(e.to_string()))?;
        // Test clusters elect quickly.
        let raft = table.entry("raft").or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(r) = raft.as_table_mut() {
            r.insert("heartbeat_ms".into(), 100.into());
            r.insert("election_timeout_min_ms".into(), 500.into());
            r.insert("election_timeout_max_ms".into(), 1000.into());
        }
        configure(&mut table);
        let http =
            table.get("http").and_then(|h| h.get("listen")).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let quic =
            table.get("quic").and_then(|h| h.get("listen")).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        std::fs::write(&path, toml::to_string(&table).map_err(|e| HarnessError::Config(e.to_string()))?)?;
        self.nodes.insert(id, NodeProcess { id, dir, http, quic, child: None });
        Ok(())
    }

    /// Runs the `artstore` binary with `args` and returns its stdout.
    /// Over HTTPS, the CLI trusts the cluster CA (`ARTSTORE_CA_CERT`).
    pub fn run_cli(&self, args: &[&str]) -> Result<String, HarnessError> {
        let mut command = Command::new(&self.bin);
        if self.tls {
            command.env("ARTSTORE_CA_CERT", self.ca_cert_path());
        }
        let out = command.args(args).output()?;
        if !out.status.success() {
            return Err(HarnessError::Command {
                args: args.join(" "),
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The temporary folder holding the CA, node folders and admin credentials.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn node(&self, id: u64) -> &NodeProcess {
        &self.nodes[&id]
    }

    pub fn node_ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn config_path(&self, id: u64) -> PathBuf {
        self.nodes[&id].dir.join("config.toml")
    }

    /// Node `id`'s API URL: `https://…` when the cluster serves TLS.
    pub fn url(&self, id: u64) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.nodes[&id].http)
    }

    /// Whether the nodes serve the API over HTTPS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The cluster CA certificate (PEM file) that clients trust.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.path().join("ca").join("ca.pem")
    }

    /// `client` also trusting the cluster CA when the nodes serve TLS.
    fn with_ca(&self, client: Client) -> Result<Client, HarnessError> {
        if !self.tls {
            return Ok(client);
        }
        let pem = std::fs::read(self.ca_cert_path())?;
        client.with_ca_cert(&pem).map_err(|e| HarnessError::Config(e.to_string()))
    }

    /// A plain HTTP client for raw requests to the nodes (trusting the cluster CA under TLS).
    pub fn http(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder();
        if self.tls {
            let pem = std::fs::read(self.ca_cert_path()).unwrap_or_default();
            for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default() {
                b = b.add_root_certificate(cert);
            }
        }
        b.build().expect("an HTTP client builds")
    }

    /// The bootstrap admin's `(client_id, client_secret)` from `admin-credentials.json`.
    pub fn admin_credentials(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.root.path().join("admin-credentials.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        (s("client_id"), s("client_secret"))
    }

    /// An admin client for node `id` only (all admin clients share one cached token).
    pub fn client(&self, id: u64) -> Client {
        self.client_for(&[id])
    }

    /// An admin client that fails over across the given nodes.
    pub fn client_for(&self, ids: &[u64]) -> Client {
        self.admin.with_urls(ids.iter().map(|i| self.url(*i))).expect("harness URLs are valid")
    }

    /// A client without credentials, for node `id`.
    pub fn anonymous(&self, id: u64) -> Client {
        self.with_ca(Client::new([self.url(id)]).expect("harness URLs are valid")).expect("the cluster CA loads")
    }

    /// Starts node `id` (its stderr goes to `node.log` in its folder, appended across restarts).
    pub fn start(&mut self, id: u64) -> Result<(), HarnessError> {
        let bin = self.bin.clone();
        let node = self.nodes.get_mut(&id).ok_or_else(|| HarnessError::Config(format!("no node {id}")))?;
        if node.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.dir.join("node.log"))?;
        let mut command = match self.wrappers.get(&id) {
            Some(w) if !w.is_empty() => {
                let mut c = Command::new(&w[0]);
                c.args(&w[1..]).arg(bin);
                c
            }
            _ => Command::new(bin),
        };
        let child = command
            .envs(self.env.iter().cloned())
            .args(["start", "--config"])
            .arg(node.dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts node `id` under `wrapper` from now on (e.g. `["ip", "netns", "exec", "ns1"]`).
    pub fn set_wrapper(&mut self, id: u64, wrapper: Vec<String>) {
        self.wrappers.insert(id, wrapper);
    }

    /// Moves every node to its own IP address (same ports): rewrites every address of every
    /// node's config (listen addresses and peers), e.g. after giving each node a network namespace.
    pub fn relocate(&mut self, ips: &BTreeMap<u64, String>) -> Result<(), HarnessError> {
        let host = self.host.clone();
        let mut map = BTreeMap::new();
        for (id, ip) in ips {
            let http = self.base_port + *id as u16 - 1;
            map.insert(format!("{host}:{http}"), format!("{ip}:{http}"));
            map.insert(format!("{host}:{}", http + 1000), format!("{ip}:{}", http + 1000));
        }
        fn rewrite(v: &mut toml::Value, map: &BTreeMap<String, String>) {
            match v {
                toml::Value::String(s) => {
                    if let Some(new) = map.get(s.as_str()) {
                        *s = new.clone();
                    }
                }
                toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| rewrite(x, map)),
                toml::Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, map)),
                _ => {}
            }
        }
        for node in self.nodes.values_mut() {
            let path = node.dir.join("config.toml");
            let mut table: toml::Value = toml::Value::Table(
                std::fs::read_to_string(&path)?
                    .parse()
                    .map_err(|e: toml::de::Error| HarnessError::Config(e.to_string()))?,
            );
            rewrite(&mut table, &map);
            std::fs::write(&path, toml::to_string(&table).map_err(|e| HarnessError::Config(e.to_string()))?)?;
            node.http = map.get(&node.http).cloned().unwrap_or(node.http.clone());
            node.quic = map.get(&node.quic).cloned().unwrap_or(node.quic.clone());
        }
        Ok(())
    }

    /// Sets an environment variable for node processes started from now on.
    pub fn set_node_env(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// The loopback address every node of this cluster uses.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The QUIC address node `id` listens on (also for nodes not added yet).
    pub fn quic_addr(&self, id: u64) -> String {
        format!("{}:{}", self.host, self.base_port + 1000 + id as u16 - 1)
    }

    /// SIGSTOP (`pause = true`) or SIGCONT: the process freezes without losing anything.
    pub fn signal_pause(&self, id: u64, pause: bool) {
        if let Some(pid) = self.pid(id) {
            let _ = Command::new("kill").arg(if pause { "-STOP" } else { "-CONT" }).arg(pid.to_string()).status();
        }
    }

    /// Forgets a (stopped) node that left the cluster.
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        self.nodes.remove(&id);
    }

    /// Deletes node `id`'s data folder (the node must be stopped).
    pub fn wipe(&self, id: u64) -> Result<(), HarnessError> {
        let data = self.nodes[&id].dir.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<(), HarnessError> {
        for id in self.node_ids() {
            self.start(id)?;
        }
        Ok(())
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        let mut child = self.nodes.get_mut(&id).and_then(|n| n.child.take())?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process id of node `id`, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes.get(&id).and_then(|n| n.child.as_ref()).map(|c| c.id())
    }

    /// Whether node `id`'s process is still running.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.nodes.get_mut(&id).and_then(|n| n.child.as_mut()).is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything node `id` has logged so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.nodes[&id].dir.join("node.log")).unwrap_or_default()
    }

    /// Waits until `GET /health/ready` on node `id` answers 200.
    pub async fn wait_ready(&self, id: u64, timeout: Duration) -> Result<(), HarnessError> {
        let client = self.anonymous(id);
        let deadline = Instant::now() + timeout;
        loop {
            if client.ready().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!("node {id} not ready; log:\n{}", tail(&self.log(id), 30))));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every node in `ids` reports the same leader, which is one of `ids`, and
    /// returns it.
    pub async fn wait_leader(&self, ids: &[u64], timeout: Duration) -> Result<u64, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for id in ids {
                leaders.push(self.client(*id).cluster_status().await.ok().and_then(|s| s.leader_id));
            }
            if let Some(Some(l)) = leaders.first() {
                if ids.contains(l) && leaders.iter().all(|x| *x == Some(*l)) {
                    return Ok(*l);
                }
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!("no agreed leader among {ids:?}: {leaders:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Status of node `id`.
    pub async fn status(&self, id: u64) -> Result<ClusterStatus, artstore_client::ClientError> {
        self.client(id).cluster_status().await
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for LocalCluster {
    /// Kills every node; the folder is removed unless `ARTSTORE_KEEP_CLUSTER` is set (for
    /// post-mortems of a failed test or benchmark).
    fn drop(&mut self) {
        if std::env::var_os("ARTSTORE_KEEP_CLUSTER").is_some() {
            self.root.disable_cleanup(true);
            eprintln!("keeping cluster files in {}", self.root.path().display());
        }
        for node in self.nodes.values_mut() {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
