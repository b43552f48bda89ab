//! `artstore-bench`: drives a running (or self-spawned) ArtStore cluster the way applications do
//! and reports throughput and latency.
//!
//! Workloads so far:
//! - `raft-commit`: concurrent writes of cluster settings (each one Raft proposal, forwarded from
//!   the node it reaches to the leader) at several concurrency levels; proposals/s, p50/p99/max.
//! - `failover`: SIGKILL the leader of a spawned cluster and time until a write commits again.
//! - `token-issue`: `POST /api/v1/auth/token` (client credentials) at a given concurrency.
//! - `auth-overhead`: latency of an unauthenticated trivial request (`/health/live`) next to an
//!   authenticated one (`/api/v1/cluster/status` with a bearer token).
//! - `put-small`, `put-large`: uploads (see `--help`).
//! - `search-index`: indexing rate and search latency of one node's index at 100 000 and
//!   1 000 000 records (in-process, the node's own index code).
//! - `tls-cost`: the same workloads over plain HTTP and HTTPS side by side, with ratios.
//! - `catalog-scale`: a catalog of a million file records (or any number): bytes per record,
//!   paging and search latency, fail-over, restart and a node joining at that size ([`scale`]).
//! - `get-large`: streamed download of a large file from a node holding a replica and from one
//!   that has to fetch every chunk from a peer.
//!
//! Every run first measures the machine's limits ([`limits`]) and shows each row as a share of
//! the one that bounds it; `--png` draws latency histograms and throughput over time ([`chart`]).

#![forbid(unsafe_code)]

mod auth;
mod chart;
mod files;
mod limits;
mod net;
mod reads;
mod report;
mod scale;
mod search;
mod tls_cost;
mod usage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use artstore_chaos::LocalCluster;
use artstore_client::Client;
use clap::{Parser, Subcommand};
use limits::Bound;
use report::{drive, row, Latencies, Row};

#[derive(Parser)]
#[command(name = "artstore-bench", about = "Load generator and benchmarks for ArtStore")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// Print results as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Also draw the run as a PNG: per row, a latency histogram and throughput over time.
    #[arg(long, global = true, value_name = "PATH")]
    png: Option<PathBuf>,
    /// Skip measuring the machine's limits (disk, SHA-256, loopback) before the workload.
    #[arg(long, global = true)]
    no_limits: bool,
}

#[derive(Subcommand)]
enum Workload {
    /// Raft commit throughput and latency (cluster-setting writes).
    RaftCommit {
        #[command(flatten)]
        target: Target,
        /// Concurrency levels, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,128")]
        concurrency: Vec<usize>,
        /// Seconds per concurrency level.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Token issue rate (each request verifies an argon2id hash and appends an audit record).
    TokenIssue {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        concurrency: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// What authentication adds to a trivial request.
    AuthOverhead {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Small uploads (default 4 KiB) at several concurrencies.
    PutSmall {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 4096)]
        size: u64,
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Large streamed uploads (default 256 MiB) against the disk's fdatasync bandwidth ÷ R, and
    /// the nodes' peak RSS after a 1 GiB upload (with --spawn).
    PutLarge {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 256 * 1024 * 1024)]
        size: u64,
        #[arg(long, default_value_t = 3)]
        count: usize,
        /// Also stream one 1 GiB file and report each node's peak RSS.
        #[arg(long)]
        rss: bool,
    },
    /// Reads and mixes: get-small (whole 4 KiB files), get-range (64 KiB ranges of a 64 MiB
    /// file), search (one-word queries), mixed (put:get:search weights from --mix).
    Reads {
        #[command(flatten)]
        target: Target,
        /// Which: get-small, get-range, search, mixed (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "get-small,get-range,search,mixed")]
        workloads: Vec<String>,
        #[arg(long, default_value = "60:30:10")]
        mix: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Streamed download of a large file (default 256 MiB) through a node holding a replica and
    /// through one fetching every chunk from peers; against disk read and SHA-256 throughput.
    GetLarge {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 256 * 1024 * 1024)]
        size: u64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Indexing rate and search latency of one node's index (in-process), per index size.
    SearchIndex {
        /// Index sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        records: Vec<u64>,
        /// Times each query runs per size.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// The cost of HTTPS on the API: a plain and an HTTPS 3-node cluster side by side, the same
    /// workloads on both in alternating order (put-small c=1 and c=32, get-large local and
    /// remote, bearer-token requests); medians of the rounds and the HTTPS ÷ HTTP ratios.
    TlsCost {
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Seconds per timed workload.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Size of the get-large file.
        #[arg(long, default_value_t = 128 * 1024 * 1024)]
        size: u64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// A catalog of many file records (default 1 000 000) on a spawned cluster: bytes on disk per
    /// record, paging and search latency, fail-over, restart, and a node joining through a snapshot.
    CatalogScale {
        #[arg(long, default_value_t = 3)]
        spawn: u64,
        #[arg(long)]
        bin: Option<PathBuf>,
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Records per Raft entry (one `recover` request each), at most 1000.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Load requests in flight.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Leader fail-overs, each followed by the killed node's restart.
        #[arg(long, default_value_t = 3)]
        failovers: usize,
        /// Requests per paging and search row.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Skip the fourth node joining.
        #[arg(long)]
        no_join: bool,
        /// Build a Raft snapshot after this many log entries (the nodes' `raft.snapshot_logs_since_last`;
        /// the load's entries are large, so fewer of them than usual make a snapshot worth taking).
        #[arg(long, default_value_t = 500)]
        snapshot_every: u64,
    },
    /// Leader fail-over: SIGKILL the leader, time until a write commits again (needs --spawn).
    Failover {
        #[arg(long, default_value_t = 3)]
        spawn: u64,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        bin: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct Target {
    /// Node URLs of a running cluster (comma separated); requests are spread over them.
    #[arg(long, value_delimiter = ',', env = "ARTSTORE_URL")]
    url: Vec<String>,
    /// Instead of --url, start a local cluster of this many nodes in a temporary folder.
    #[arg(long)]
    spawn: Option<u64>,
    /// The `artstore` binary for --spawn (default: next to this executable).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Replication factor of a spawned cluster (default: the node default, 3).
    #[arg(long)]
    replication: Option<u32>,
    /// Credentials for --url: a file like `admin-credentials.json`.
    #[arg(long, env = "ARTSTORE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// With --spawn: serve the API over HTTPS (certificates from the cluster CA).
    #[arg(long)]
    tls: bool,
    /// For https:// URLs of --url: the cluster CA to trust.
    #[arg(long, env = "ARTSTORE_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

impl Target {
    /// The node URLs and admin credentials, spawning a cluster if asked (kept alive by the guard).
    async fn resolve(self) -> anyhow::Result<(Option<LocalCluster>, Vec<String>, (String, String))> {
        match self.spawn {
            Some(n) => {
                let c = spawn(self.bin, n, self.replication, self.tls).await?;
                let urls = c.node_ids().into_iter().map(|i| c.url(i)).collect();
                let creds = c.admin_credentials();
                Ok((Some(c), urls, creds))
            }
            None if !self.url.is_empty() => {
                if let Some(ca) = &self.ca_cert {
                    net::trust(std::fs::read(ca).with_context(|| format!("--ca-cert {}", ca.display()))?);
                }
                let path = self.credentials.context("--url needs --credentials FILE (or ARTSTORE_CREDENTIALS)")?;
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                Ok((None, self.url, (s("client_id"), s("client_secret"))))
            }
            None => bail!("give --url or --spawn N"),
        }
    }
}

/// The process ids of a spawned cluster's nodes.
fn node_pids(c: &LocalCluster) -> Vec<u32> {
    c.node_ids().into_iter().filter_map(|i| c.pid(i)).collect()
}

fn artstore_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(b) = given.or_else(|| std::env::var_os("ARTSTORE_BIN").map(PathBuf::from)) {
        return Ok(b);
    }
    let exe = std::env::current_exe()?;
    let sibling = exe.with_file_name("artstore");
    if sibling.exists() {
        Ok(sibling)
    } else {
        bail!("cannot find the artstore binary next to {}; pass --bin", exe.display())
    }
}

async fn spawn(bin: Option<PathBuf>, nodes: u64, replication: Option<u32>, tls: bool) -> anyhow::Result<LocalCluster> {
    spawn_with(bin, nodes, replication, tls, |_| {}).await
}

/// [`spawn`], with `configure` applied to every node's configuration after the bench's own settings.
async fn spawn_with(
    bin: Option<PathBuf>,
    nodes: u64,
    replication: Option<u32>,
    tls: bool,
    configure: impl Fn(&mut toml::Table),
) -> anyhow::Result<LocalCluster> {
    let bin = artstore_bin(bin)?;
    // Benchmarks measure throughput, not the token endpoint's abuse protection.
    let mut cluster = LocalCluster::init_with(&bin, nodes, tls, |t| {
        let auth = t.entry("auth").or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(a) = auth.as_table_mut() {
            a.insert("token_requests_per_minute".into(), 10_000_000.into());
            a.insert("token_requests_per_minute_per_source".into(), 10_000_000.into());
        }
        if let Some(r) = replication {
            t.insert("replication_factor".into(), (r as i64).into());
        }
        configure(t);
    })?;
    if tls {
        net::trust(std::fs::read(cluster.ca_cert_path())?);
    }
    // `ARTSTORE_BENCH_WRAPPER="2:heaptrack -o node2"` starts node 2 under a profiler.
    if let Ok(spec) = std::env::var("ARTSTORE_BENCH_WRAPPER") {
        let (id, wrapper) = spec.split_once(':').context("ARTSTORE_BENCH_WRAPPER is NODE:COMMAND")?;
        let id: u64 = id.parse().context("ARTSTORE_BENCH_WRAPPER: the node is a number")?;
        cluster.set_wrapper(id, wrapper.split_whitespace().map(String::from).collect());
    }
    cluster.start_all()?;
    for id in cluster.node_ids() {
        cluster.wait_ready(id, Duration::from_secs(30)).await?;
    }
    cluster.wait_leader(&cluster.node_ids(), Duration::from_secs(30)).await?;
    eprintln!("spawned a {nodes}-node cluster in {}", cluster.root().display());
    Ok(cluster)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Spawned clusters live in the temporary folder, so its filesystem is the one they write to.
    let limits = if cli.no_limits {
        None
    } else {
        eprintln!("measuring the machine's limits…");
        Some(tokio::task::spawn_blocking(|| limits::measure(&std::env::temp_dir())).await??)
    };
    let mut rows = match cli.workload {
        Workload::RaftCommit { target, concurrency, seconds } => {
            let (_cluster, urls, creds) = target.resolve().await?;
            let mut rows = Vec::new();
            for c in concurrency {
                rows.push(raft_commit(&urls, &creds, c, Duration::from_secs(seconds)).await?);
            }
            rows
        }
        Workload::TokenIssue { target, concurrency, seconds } => {
            let (_cluster, urls, creds) = target.resolve().await?;
            let mut rows = Vec::new();
            for c in concurrency {
                rows.push(auth::token_issue(&urls, &creds, c, Duration::from_secs(seconds)).await?);
            }
            rows
        }
        Workload::AuthOverhead { target, concurrency, seconds } => {
            let (_cluster, urls, creds) = target.resolve().await?;
            auth::overhead(&urls, &creds, concurrency, Duration::from_secs(seconds)).await?
        }
        Workload::Reads { target, workloads, mix, concurrency, seconds } => {
            let mix = reads::parse_mix(&mix)?;
            let (_cluster, urls, creds) = target.resolve().await?;
            let token = files::token(&urls[0], &creds).await?;
            let duration = Duration::from_secs(seconds);
            let mut rows = Vec::new();
            for w in workloads {
                let ops = match w.as_str() {
                    "get-small" => vec![(reads::Op::Get, 1)],
                    "get-range" => vec![(reads::Op::Range, 1)],
                    "search" => vec![(reads::Op::Search, 1)],
                    "mixed" => mix.clone(),
                    other => bail!("--workloads: unknown workload {other:?}"),
                };
                rows.push(reads::run(&w, &urls, token.clone(), &ops, concurrency, duration).await?);
            }
            rows
        }
        Workload::GetLarge { target, size, rounds } => {
            let (cluster, urls, creds) = target.resolve().await?;
            files::get_large(&urls, &creds, size, rounds, cluster.is_some()).await?
        }
        Workload::SearchIndex { records, rounds } => {
            let mut rows = Vec::new();
            for n in records {
                rows.extend(search::run(n, rounds)?);
            }
            rows
        }
        Workload::CatalogScale {
            spawn: n,
            bin,
            records,
            batch,
            concurrency,
            failovers,
            queries,
            no_join,
            snapshot_every,
        } => {
            let o = scale::Options { records, batch, concurrency, failovers, queries, join: !no_join, snapshot_every };
            let mut cluster = spawn_with(bin, n, None, false, |t| scale::configure(t, snapshot_every)).await?;
            scale::run(&mut cluster, &o).await?
        }
        Workload::Failover { spawn: n, rounds, bin } => vec![failover(bin, n, rounds).await?],
        Workload::TlsCost { bin, seconds, size, rounds } => tls_cost::run(bin, seconds, size, rounds).await?,
        Workload::PutSmall { target, size, concurrency, seconds } => {
            let (cluster, urls, creds) = target.resolve().await?;
            let pids = cluster.as_ref().map(node_pids).unwrap_or_default();
            let mut rows = Vec::new();
            for c in concurrency {
                rows.push(files::put("put-small", &urls, &creds, size, c, Duration::from_secs(seconds), &pids).await?);
            }
            rows
        }
        Workload::PutLarge { target, size, count, rss } => {
            let replication = target.replication.unwrap_or(3);
            let (cluster, urls, creds) = target.resolve().await?;
            let r = replication.min(urls.len() as u32);
            let mut speeds = Vec::new();
            for i in 0..count {
                let s = files::one_large(&urls[i % urls.len()], &creds, size).await?;
                eprintln!("upload {i}: {s:.1} MiB/s");
                speeds.push(s);
            }
            let mean = speeds.iter().sum::<f64>() / speeds.len().max(1) as f64;
            if let (true, Some(c)) = (rss, cluster.as_ref()) {
                files::one_large(&urls[0], &creds, 1 << 30).await?;
                for id in c.node_ids() {
                    let peak = c.pid(id).and_then(files::peak_rss_mib).unwrap_or(0.0);
                    eprintln!("node {id}: peak RSS {peak:.1} MiB (after a 1 GiB upload through node 1)");
                }
            }
            vec![Row::rate("put-large", speeds.len() as u64, mean).bounded_by(Bound::SequentialWriteOver(r))]
        }
    };
    if let Some(l) = &limits {
        report::compare(&mut rows, l);
    }
    report::print(&rows, limits.as_ref(), cli.json);
    if let Some(path) = &cli.png {
        match chart::write_png(&rows, path)? {
            0 => eprintln!("--png: no row was measured per operation; nothing drawn"),
            n => eprintln!("--png: {n} rows drawn to {}", path.display()),
        }
    }
    Ok(())
}

/// `concurrency` workers, each bound to one node (round robin), writing settings for `duration`.
/// Every commit waits for a durable log append on a majority: bound by small synced writes.
async fn raft_commit(
    urls: &[String],
    (id, secret): &(String, String),
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let admin = net::sdk(urls.to_vec())?.with_credentials(id.clone(), secret.clone());
    let clients: Vec<Client> = urls.iter().map(|u| admin.with_urls([u.clone()])).collect::<Result<_, _>>()?;
    let (clients, seq) = (Arc::new(clients), Arc::new(AtomicU64::new(0)));
    let samples = drive(concurrency, duration, move |w| {
        let clients = clients.clone();
        let n = seq.fetch_add(1, Ordering::Relaxed);
        async move {
            let client = &clients[w % clients.len()];
            client.put_setting(&format!("bench.w{w}.k{}", n % 64), &n.to_string()).await.is_ok()
        }
    })
    .await?;
    Ok(row("raft-commit", concurrency, samples).bounded_by(Bound::SyncedWrites))
}

/// SIGKILLs the leader among `ids`, then writes setting `key` through the survivors until one
/// write commits; returns the killed leader and how long that took (the node stays down).
async fn kill_leader_until_commit(
    cluster: &mut LocalCluster,
    ids: &[u64],
    key: &str,
    round: usize,
) -> anyhow::Result<(u64, Duration)> {
    let leader = cluster.wait_leader(ids, Duration::from_secs(60)).await?;
    let clients: Vec<Client> = ids.iter().filter(|i| **i != leader).map(|i| cluster.client(*i)).collect();
    cluster.kill(leader);
    let killed_at = Instant::now();
    loop {
        for c in &clients {
            if c.put_setting(key, &round.to_string()).await.is_ok() {
                return Ok((leader, killed_at.elapsed()));
            }
        }
        if killed_at.elapsed() > Duration::from_secs(60) {
            bail!("no commit within 60 s of killing leader {leader}");
        }
    }
}

/// For each round: kill the leader, then write through the survivors until one commits.
async fn failover(bin: Option<PathBuf>, nodes: u64, rounds: usize) -> anyhow::Result<Row> {
    let mut cluster = spawn(bin, nodes, None, false).await?;
    let all = cluster.node_ids();
    let mut samples = Vec::new();
    for round in 0..rounds {
        let (leader, took) = kill_leader_until_commit(&mut cluster, &all, "bench.failover", round).await?;
        eprintln!("round {round}: killed leader {leader}, a write committed after {took:?}");
        samples.push(took);
        cluster.start(leader)?;
        cluster.wait_ready(leader, Duration::from_secs(30)).await?;
    }
    Ok(Row::summary("failover", 1, &Latencies::new(samples), 0, 0.0))
}
