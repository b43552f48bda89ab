//! Scenarios: a real cluster behind fault proxies, a workload, one nemesis (always healed), and
//! the checker's verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::checker::{check, LeaderSamples, Verdict};
use crate::cluster::{free_loopback, HarnessError, LocalCluster};
use crate::history::{History, Kind, Outcome};
use crate::proxy::{LinkFaults, Network};
use crate::workload::Workload;

/// How long things last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A few minutes for every scenario together (CI).
    Short,
    /// Ten times longer faults and more rounds.
    Soak,
}

impl Profile {
    fn scale(self) -> u32 {
        match self {
            Profile::Short => 1,
            Profile::Soak => 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    LeaderKillLoop,
    MinorityPartition,
    IsolatedLeader,
    AsymmetricPartition,
    RollingRestart,
    LossyNetwork,
    PausedLeader,
    MembershipDuringPartition,
    WipeAndRejoin,
    WideArea,
    /// A follower killed (SIGKILL), kept down, restarted.
    FollowerKill,
    /// A follower stopped (SIGSTOP) and resumed.
    PausedFollower,
    /// Namespace mode (root): the leader's, then a follower's link taken down.
    NetnsPartition,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Scenario::LeaderKillLoop,
        Scenario::MinorityPartition,
        Scenario::IsolatedLeader,
        Scenario::AsymmetricPartition,
        Scenario::RollingRestart,
        Scenario::LossyNetwork,
        Scenario::PausedLeader,
        Scenario::MembershipDuringPartition,
        Scenario::WipeAndRejoin,
        Scenario::WideArea,
        Scenario::FollowerKill,
        Scenario::PausedFollower,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::LeaderKillLoop => "leader-kill-loop",
            Scenario::MinorityPartition => "minority-partition",
            Scenario::IsolatedLeader => "isolated-leader",
            Scenario::AsymmetricPartition => "asymmetric-partition",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::LossyNetwork => "lossy-network",
            Scenario::PausedLeader => "paused-leader",
            Scenario::MembershipDuringPartition => "membership-during-partition",
            Scenario::WipeAndRejoin => "wipe-and-rejoin",
            Scenario::WideArea => "wide-area",
            Scenario::FollowerKill => "follower-kill",
            Scenario::PausedFollower => "paused-follower",
            Scenario::NetnsPartition => "netns-partition",
        }
    }

    /// The availability this scenario promises: the longest window with no acknowledged upload
    /// during its fault, and the upload p99 during it (ms). `None`: only safety is promised (a
    /// partition may legitimately stop writes until an election).
    pub fn bounds(self) -> (Option<f64>, Option<f64>) {
        match self {
            Scenario::FollowerKill | Scenario::PausedFollower => (Some(1000.0), None),
            Scenario::LeaderKillLoop => (Some(3000.0), None),
            Scenario::WideArea => (Some(2000.0), Some(2000.0)),
            Scenario::LossyNetwork => (Some(3000.0), Some(3000.0)),
            _ => (None, None),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().chain([Scenario::NetnsPartition]).find(|x| x.name() == s)
    }
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bin: PathBuf,
    pub profile: Profile,
    pub workers: usize,
    /// Replication factor (default: the node default, 3).
    pub replication: Option<u32>,
    /// Extra environment for the nodes (e.g. the deliberately broken acknowledgement switch).
    pub node_env: Vec<(String, String)>,
    /// Where histories and reports go (nothing written when `None`).
    pub out: Option<PathBuf>,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub operations: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub indeterminate: usize,
    pub lost: usize,
    pub violations: usize,
    /// Longest stretch with no acknowledged upload while the workload ran.
    pub longest_write_gap_ms: f64,
    pub upload_p50_ms: f64,
    pub upload_p99_ms: f64,
    /// The same figures inside the fault windows, and outside them.
    pub fault: WindowStats,
    pub calm: WindowStats,
    /// Raft terms seen during the run beyond the first (elections, e.g. by a resumed follower).
    pub term_changes: u64,
    pub read_p50_ms: f64,
    pub read_p99_ms: f64,
    pub verdict: Verdict,
    #[serde(skip)]
    pub history: Arc<History>,
}

/// Write availability over part of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WindowStats {
    /// Longest stretch without an acknowledged upload.
    pub write_gap_ms: f64,
    pub upload_p50_ms: f64,
    pub upload_p99_ms: f64,
    pub uploads: usize,
}

/// Write gaps and upload latencies inside the fault windows and outside them.
fn window_stats(
    ops: &[crate::history::Op],
    faults: &[crate::history::FaultWindow],
    run: (f64, f64),
) -> (WindowStats, WindowStats) {
    let inside = |t: f64| faults.iter().any(|f| t >= f.start_ms && t <= f.end_ms);
    let uploads: Vec<_> = ops.iter().filter(|o| o.kind == Kind::Upload).collect();
    let acks: Vec<f64> = {
        let mut a: Vec<f64> = uploads.iter().filter(|o| o.outcome == Outcome::Ok).map(|o| o.complete_ms).collect();
        a.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
        a
    };
    let mut fault_gap = 0.0f64;
    for f in faults {
        let mut t: Vec<f64> = acks.iter().copied().filter(|a| *a >= f.start_ms && *a <= f.end_ms).collect();
        t.insert(0, f.start_ms);
        t.push(f.end_ms);
        fault_gap = fault_gap.max(t.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max));
    }
    let mut calm_times: Vec<f64> = acks.iter().copied().filter(|a| !inside(*a)).collect();
    calm_times.insert(0, run.0);
    calm_times.push(run.1);
    let calm_gap = calm_times
        .windows(2)
        .filter(|w| !faults.iter().any(|f| f.start_ms < w[1] && f.end_ms > w[0]))
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max);
    let latencies = |during: bool| -> Vec<f64> {
        uploads
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && inside(o.invoke_ms) == during)
            .map(|o| o.complete_ms - o.invoke_ms)
            .collect()
    };
    let stats = |gap: f64, l: Vec<f64>| WindowStats {
        write_gap_ms: gap,
        uploads: l.len(),
        upload_p50_ms: percentile(l.clone(), 50.0),
        upload_p99_ms: percentile(l, 99.0),
    };
    (stats(fault_gap, latencies(true)), stats(calm_gap, latencies(false)))
}

const MAX_NODES: u64 = 5;
/// `raft.heartbeat_ms` of the clusters whose links get wide-area delays.
const WAN_HEARTBEAT_MS: i64 = 500;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// What the nemesis works with.
struct Ctx<'a> {
    cluster: &'a mut LocalCluster,
    net: &'a Network,
    lab: Option<&'a crate::netns::Lab>,
    workload: &'a Arc<Workload>,
    history: &'a Arc<History>,
    scale: u32,
    configure: &'a (dyn Fn(&mut toml::Table) + Send + Sync),
}

impl Ctx<'_> {
    fn members(&self) -> Vec<u64> {
        self.cluster.node_ids()
    }

    async fn leader(&self) -> Result<u64, HarnessError> {
        self.cluster.wait_leader(&self.members(), Duration::from_secs(60)).await
    }

    async fn follower(&self) -> Result<u64, HarnessError> {
        let l = self.leader().await?;
        Ok(*self.members().iter().rev().find(|n| **n != l).unwrap_or(&l))
    }

    fn secs(&self, s: u64) -> Duration {
        Duration::from_secs(s * self.scale as u64)
    }

    fn urls(&self) -> BTreeMap<u64, String> {
        self.cluster.node_ids().into_iter().map(|n| (n, self.cluster.url(n))).collect()
    }
}

async fn nemesis(s: Scenario, c: &mut Ctx<'_>) -> Result<(), HarnessError> {
    let h = c.history.clone();
    match s {
        Scenario::LeaderKillLoop => {
            for _ in 0..(3 * c.scale) {
                let l = c.leader().await?;
                let t = h.now_ms();
                c.cluster.kill(l);
                tokio::time::sleep(Duration::from_secs(2)).await;
                c.cluster.start(l)?;
                c.cluster.wait_ready(l, Duration::from_secs(60)).await?;
                h.fault(format!("leader {l} killed"), t);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Scenario::MinorityPartition | Scenario::IsolatedLeader => {
            let (alone, what) = match s {
                Scenario::MinorityPartition => (c.follower().await?, "node"),
                _ => (c.leader().await?, "leader"),
            };
            let rest: Vec<u64> = c.members().into_iter().filter(|n| *n != alone).collect();
            let t = h.now_ms();
            c.net.partition(&[vec![alone], rest]);
            tokio::time::sleep(c.secs(8)).await;
            c.net.heal();
            h.fault(format!("{what} {alone} cut off from the others"), t);
        }
        Scenario::AsymmetricPartition => {
            let l = c.leader().await?;
            let t = h.now_ms();
            for o in c.members().into_iter().filter(|n| *n != l) {
                c.net.set_link(l, o, LinkFaults::partitioned());
            }
            tokio::time::sleep(c.secs(8)).await;
            c.net.heal();
            h.fault(format!("leader {l} cannot send (one-way)"), t);
        }
        Scenario::RollingRestart => {
            for _ in 0..c.scale {
                for n in c.members() {
                    let t = h.now_ms();
                    c.cluster.terminate(n);
                    c.cluster.start(n)?;
                    c.cluster.wait_ready(n, Duration::from_secs(60)).await?;
                    h.fault(format!("node {n} restarted"), t);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        Scenario::LossyNetwork => {
            let t = h.now_ms();
            c.net.all_links(LinkFaults {
                loss: 0.2,
                delay_ms: 50,
                jitter_ms: 50,
                duplicate: 0.02,
                reorder: 0.05,
                drop: false,
            });
            tokio::time::sleep(c.secs(10)).await;
            c.net.heal();
            h.fault("20% loss, 50±50 ms, duplicates, reordering", t);
        }
        Scenario::PausedLeader => {
            for _ in 0..c.scale {
                let l = c.leader().await?;
                let t = h.now_ms();
                c.cluster.signal_pause(l, true);
                tokio::time::sleep(Duration::from_secs(4)).await;
                c.cluster.signal_pause(l, false);
                h.fault(format!("leader {l} paused"), t);
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
        Scenario::MembershipDuringPartition => {
            let f = c.follower().await?;
            let majority: Vec<u64> = c.members().into_iter().filter(|n| *n != f).collect();
            let t = h.now_ms();
            c.net.partition(&[vec![f], majority.iter().copied().chain([4]).collect()]);
            c.cluster.add_node(4, c.configure)?;
            c.cluster.start(4)?;
            let admin = c.cluster.client_for(&majority);
            let req = artstore_client::wire::JoinRequest {
                node_id: 4,
                http_addr: c.cluster.node(4).http.clone(),
                quic_addr: c.cluster.quic_addr(4),
                catch_up_timeout_secs: Some(60),
            };
            admin.join(&req).await.map_err(|e| HarnessError::Config(format!("join: {e}")))?;
            c.cluster.wait_ready(4, Duration::from_secs(60)).await?;
            c.workload.set_nodes(c.urls());
            tokio::time::sleep(c.secs(4)).await;
            // Out of the workload first, then out of the cluster.
            let mut urls = c.urls();
            urls.remove(&4);
            c.workload.set_nodes(urls);
            admin.remove(4).await.map_err(|e| HarnessError::Config(format!("remove: {e}")))?;
            c.cluster.terminate(4);
            c.cluster.forget(4);
            c.net.heal();
            h.fault(format!("node {f} cut off; node 4 joined and removed"), t);
        }
        Scenario::WipeAndRejoin => {
            let f = c.follower().await?;
            let t = h.now_ms();
            c.cluster.kill(f);
            c.cluster.wipe(f)?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.cluster.start(f)?;
            c.cluster.wait_ready(f, Duration::from_secs(90)).await?;
            h.fault(format!("node {f} wiped and restarted"), t);
            tokio::time::sleep(c.secs(3)).await;
        }
        Scenario::NetnsPartition => {
            let lab = c.lab.ok_or_else(|| HarnessError::Config("netns-partition needs the namespace lab".into()))?;
            for victim in [c.leader().await?, c.follower().await?] {
                let t = h.now_ms();
                lab.link(victim, false).map_err(HarnessError::Config)?;
                tokio::time::sleep(c.secs(6)).await;
                lab.link(victim, true).map_err(HarnessError::Config)?;
                h.fault(format!("node {victim}'s link down"), t);
                c.cluster.wait_ready(victim, Duration::from_secs(60)).await?;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        // Clients are sent to the other nodes while the follower is down and until it is ready
        // again, as a load balancer checking `/health/ready` would: the promise measured is
        // that the cluster keeps acknowledging uploads, not that a stopped process answers.
        Scenario::FollowerKill => {
            let f = c.follower().await?;
            let t = h.now_ms();
            c.cluster.kill(f);
            c.workload.set_nodes(c.urls().into_iter().filter(|(n, _)| *n != f).collect());
            tokio::time::sleep(c.secs(5)).await;
            c.cluster.start(f)?;
            c.cluster.wait_ready(f, Duration::from_secs(60)).await?;
            c.workload.set_nodes(c.urls());
            tokio::time::sleep(Duration::from_secs(1)).await;
            h.fault(format!("follower {f} killed and restarted"), t);
        }
        Scenario::PausedFollower => {
            let f = c.follower().await?;
            let t = h.now_ms();
            c.cluster.signal_pause(f, true);
            c.workload.set_nodes(c.urls().into_iter().filter(|(n, _)| *n != f).collect());
            tokio::time::sleep(c.secs(4)).await;
            c.cluster.signal_pause(f, false);
            c.cluster.wait_ready(f, Duration::from_secs(60)).await?;
            c.workload.set_nodes(c.urls());
            // The window includes the resumed follower's comeback (it may call an election).
            tokio::time::sleep(Duration::from_secs(2)).await;
            h.fault(format!("follower {f} paused"), t);
        }
        Scenario::WideArea => {
            let t = h.now_ms();
            c.net.all_links(LinkFaults { delay_ms: 100, jitter_ms: 20, ..Default::default() });
            tokio::time::sleep(c.secs(12)).await;
            c.net.heal();
            h.fault("100±20 ms on every link", t);
        }
    }
    Ok(())
}

/// Runs `scenario` on a fresh 3-node cluster and checks the result.
pub async fn run(scenario: Scenario, opts: &RunOptions) -> Result<ScenarioReport, HarnessError> {
    let (host, base) = free_loopback(MAX_NODES as u16 + 2)?;
    let quic = |id: u64| format!("{host}:{}", base + 1000 + id as u16 - 1);
    let ids: Vec<(u64, String)> = (1..=MAX_NODES).map(|i| (i, quic(i))).collect();
    let net = Network::start(&host, &ids).await?;
    let dial: BTreeMap<u64, toml::Table> = (1..=MAX_NODES).map(|i| (i, net.dial_table(i))).collect();
    let replication = opts.replication;
    let proxied = scenario != Scenario::NetnsPartition;
    let wide_area = matches!(scenario, Scenario::WideArea | Scenario::LossyNetwork);
    let configure = move |t: &mut toml::Table| {
        let id = t.get("node_id").and_then(|v| v.as_integer()).unwrap_or(0) as u64;
        let quic = t.entry("quic").or_insert_with(|| toml::Value::Table(Default::default()));
        if let (Some(q), Some(d), true) = (quic.as_table_mut(), dial.get(&id), proxied) {
            q.insert("dial".into(), toml::Value::Table(d.clone()));
        }
        let storage = t.entry("storage").or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(s) = storage.as_table_mut() {
            s.insert("chunk_size_bytes".into(), (64 * 1024).into());
            s.insert("repair_interval_secs".into(), 2.into());
            s.insert("scrub_interval_secs".into(), 2.into());
        }
        if let Some(r) = replication {
            t.insert("replication_factor".into(), (r as i64).into());
        }
        // A cluster spread over sites is configured for it: openraft waits one heartbeat interval
        // for every log append, so the interval must exceed the worst round trip (240 ms here)
        // plus a follower's fsync, and the election timeouts follow it; BBR keeps lossy links
        // moving (the `quic` table exists: the dial overrides above created it).
        if wide_area {
            if let Some(q) = t.get_mut("quic").and_then(|q| q.as_table_mut()) {
                q.insert("congestion_control".into(), "bbr".into());
            }
            let raft = t.entry("raft").or_insert_with(|| toml::Value::Table(Default::default()));
            if let Some(r) = raft.as_table_mut() {
                r.insert("heartbeat_ms".into(), WAN_HEARTBEAT_MS.into());
                r.insert("election_timeout_min_ms".into(), (WAN_HEARTBEAT_MS * 5).into());
                r.insert("election_timeout_max_ms".into(), (WAN_HEARTBEAT_MS * 10).into());
            }
        }
    };
    let mut cluster = LocalCluster::init_on(&opts.bin, 3, host.clone(), base, false, configure.clone())?;
    // Namespace mode: every node in its own namespace at its own address (no proxies in the way).
    let lab = if scenario == Scenario::NetnsPartition {
        if let Some(why) = crate::netns::unavailable() {
            return Err(HarnessError::Config(format!("namespace mode unavailable: {why}")));
        }
        let lab = crate::netns::Lab::create(&cluster.node_ids()).map_err(HarnessError::Config)?;
        cluster.relocate(&lab.ips())?;
        for id in cluster.node_ids() {
            cluster.set_wrapper(id, lab.wrapper(id));
        }
        Some(lab)
    } else {
        None
    };
    for (k, v) in &opts.node_env {
        cluster.set_node_env(k, v);
    }
    cluster.start_all()?;
    for id in cluster.node_ids() {
        cluster.wait_ready(id, Duration::from_secs(60)).await?;
    }
    cluster.wait_leader(&cluster.node_ids(), Duration::from_secs(60)).await?;
    let admin = cluster.client_for(&cluster.node_ids());
    let token = admin.token().await.map_err(|e| HarnessError::Config(format!("token: {e}")))?;

    let history = Arc::new(History::new());
    let urls: BTreeMap<u64, String> = cluster.node_ids().into_iter().map(|n| (n, cluster.url(n))).collect();
    let run_id = format!("r{}", rand::random_range(1000u32..9999));
    let workload = Workload::new(history.clone(), urls, token.clone(), &run_id);
    let workers = workload.spawn(opts.workers);
    let samples = Arc::new(LeaderSamples::default());
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let wl = workload.clone();
    let sampler = samples.spawn(
        Arc::new(move || wl.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        token.clone(),
        stop_sampling.clone(),
    );
    let started_ms = history.now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let outcome = {
        let mut ctx = Ctx {
            cluster: &mut cluster,
            net: &net,
            lab: lab.as_ref(),
            workload: &workload,
            history: &history,
            scale: opts.profile.scale(),
            configure: &configure,
        };
        nemesis(scenario, &mut ctx).await
    };
    // Whatever happened, heal everything.
    net.heal();
    if let Some(lab) = &lab {
        for id in cluster.node_ids() {
            let _ = lab.link(id, true);
        }
    }
    for id in cluster.node_ids() {
        cluster.signal_pause(id, false);
        if !cluster.is_running(id) {
            cluster.start(id)?;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    workload.stop();
    for w in workers {
        let _ = w.await;
    }
    let ended_ms = history.now_ms();
    outcome?;
    for id in cluster.node_ids() {
        cluster.wait_ready(id, Duration::from_secs(90)).await?;
    }
    cluster.wait_leader(&cluster.node_ids(), Duration::from_secs(60)).await?;
    stop_sampling.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;

    let ops = history.ops();
    let nodes: BTreeMap<u64, String> = cluster.node_ids().into_iter().map(|n| (n, cluster.url(n))).collect();
    let verdict = check(&ops, &samples, &nodes, &admin, &token).await;

    let uploads: Vec<_> = ops.iter().filter(|o| o.kind == Kind::Upload).collect();
    let mut acks: Vec<f64> =
        uploads.iter().filter(|o| o.outcome == Outcome::Ok).map(|o| o.complete_ms).collect::<Vec<_>>();
    acks.push(started_ms);
    acks.push(ended_ms);
    acks.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let gap = acks.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let latency = |kind: Kind| -> Vec<f64> {
        ops.iter().filter(|o| o.kind == kind && o.outcome == Outcome::Ok).map(|o| o.complete_ms - o.invoke_ms).collect()
    };
    let reads: Vec<f64> = latency(Kind::Download).into_iter().chain(latency(Kind::ReadAfterWrite)).collect();
    let (fault, calm) = window_stats(&ops, &history.faults(), (started_ms, ended_ms));
    let term_changes = samples.terms_seen().saturating_sub(1);
    let report = ScenarioReport {
        scenario: scenario.name().into(),
        operations: ops.len(),
        acknowledged: uploads.iter().filter(|o| o.outcome == Outcome::Ok).count(),
        failed: uploads.iter().filter(|o| o.outcome == Outcome::Fail).count(),
        indeterminate: uploads.iter().filter(|o| o.outcome == Outcome::Indeterminate).count(),
        lost: verdict.lost.len(),
        violations: verdict.violations(),
        longest_write_gap_ms: gap,
        upload_p50_ms: percentile(latency(Kind::Upload), 50.0),
        upload_p99_ms: percentile(latency(Kind::Upload), 99.0),
        fault,
        calm,
        term_changes,
        read_p50_ms: percentile(reads.clone(), 50.0),
        read_p99_ms: percentile(reads, 99.0),
        verdict,
        history: history.clone(),
    };
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir)?;
        history.write_jsonl(&dir.join(format!("{}.history.jsonl", scenario.name())))?;
        crate::report::timeline_png(&report, &dir.join(format!("{}.png", scenario.name())));
    }
    Ok(report)
}

/// Runs the scenarios one after another (each on its own cluster).
pub async fn run_all(scenarios: &[Scenario], opts: &RunOptions) -> Vec<Result<ScenarioReport, (String, HarnessError)>> {
    let mut out = Vec::new();
    for s in scenarios {
        eprintln!("scenario {} …", s.name());
        out.push(run(*s, opts).await.map_err(|e| (s.name().to_string(), e)));
    }
    out
}

/// The `artstore` binary next to the running executable (or in its parent, for test binaries in
/// `deps/`), or `ARTSTORE_BIN`.
pub fn find_artstore_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARTSTORE_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir: &Path = exe.parent()?;
    [dir.join("artstore"), dir.parent()?.join("artstore")].into_iter().find(|p| p.exists())
}
