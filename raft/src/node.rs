//! [`RaftNode`]: one node's Raft instance wired to its stores and the cluster transport, with the
//! operations the rest of ArtStore needs: propose a command from any node (forwarded to the
//! leader), linearizable reads, membership changes, and a status snapshot.
//!
//! Invariant: callers never need to know who leads. Every leader-only operation first runs
//! locally; on `ForwardToLeader` it is sent to the leader over the transport, retrying through
//! elections until a deadline, after which the caller gets [`Error::NoLeader`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};

use crate::store::engine::Engine;
use crate::store::{LogStore, StateMachineStore};
use crate::transport::{ClusterRpcClient, NetworkFactory, RemoteError, Transport};
use crate::types::{ClusterNode, Command, CommandResult, NodeId, Raft, MAX_ENTRY_BYTES};
use crate::{Catalog, Error};

mod service;

/// How long a proposal may take, elections and forwarding included.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);
/// Whether to log the slow-link warning for `peer` now (at most once a minute per peer).
fn slow_link_warning(peer: NodeId) -> bool {
    static LAST: std::sync::Mutex<BTreeMap<NodeId, Instant>> = std::sync::Mutex::new(BTreeMap::new());
    let Ok(mut last) = LAST.lock() else { return false };
    let due = last.get(&peer).is_none_or(|t| t.elapsed() > Duration::from_secs(60));
    if due {
        last.insert(peer, Instant::now());
    }
    due
}

/// How often every member is pinged.
const PING_INTERVAL: Duration = Duration::from_millis(200);
/// A member counts as unreachable once it has not answered for this long (plus twice its recent
/// round trip): a dead or stopped peer leaves placement within about half a second.
const REACHABILITY_WINDOW: Duration = Duration::from_millis(500);
/// How long a joining node may take to catch up by default before the join is abandoned.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);

/// Raft's state as it changes (term, leader, applied index): what background work waits on.
pub type MetricsWatch = tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, ClusterNode>>;

/// Everything a [`RaftNode`] needs to start.
pub struct RaftNodeOptions {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// Folder of the engine database (created if absent).
    pub db_path: std::path::PathBuf,
    pub http_addr: String,
    pub quic_addr: String,
    /// Members to bootstrap with; empty for a node that will be joined to an existing cluster.
    pub bootstrap: BTreeMap<NodeId, ClusterNode>,
    pub raft: artstore_cluster_config::RaftConfig,
}

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub http_addr: String,
    pub quic_addr: String,
    pub voter: bool,
    pub reachable: bool,
    /// The last log index known to be on this member: this node's own last index, and when this
    /// node leads, what each follower has acknowledged. Unknown elsewhere.
    pub matched_index: Option<u64>,
}

/// This node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub leader_id: Option<NodeId>,
    pub state: String,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// A running Raft node; cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: Raft,
    transport: Arc<Transport>,
    log: LogStore,
    catalog: Catalog,
    engine: Engine,
    reachability_window: Duration,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Until when this node's elections are held (start-up and freeze holds extend it).
    elections_held_until: std::sync::Mutex<Option<Instant>>,
}

/// Outcome of a leader-only operation attempted locally.
enum Local<T> {
    Done(T),
    NotLeader(Option<(NodeId, ClusterNode)>),
}

impl RaftNode {
    /// Opens the stores, starts Raft and the transport's server, and bootstraps the cluster when
    /// this node is one of the bootstrap members and has never been initialised.
    pub async fn start(options: RaftNodeOptions, transport: Arc<Transport>) -> Result<Self, Error> {
        let rc = &options.raft;
        let config = openraft::Config {
            cluster_name: options.cluster_id.clone(),
            heartbeat_interval: rc.heartbeat_ms,
            election_timeout_min: rc.election_timeout_min_ms,
            election_timeout_max: rc.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(rc.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: rc.logs_kept_after_snapshot,
            // Per snapshot segment; the reply to the last one waits for the install, which took
            // 18 s for a catalog of a million files on a 2-core machine. A peer that dies mid-way
            // still fails the call at once (the connection's idle timeout), not after this.
            install_snapshot_timeout: rc.install_snapshot_timeout_secs.saturating_mul(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Rejected(format!("raft: {e}")))?;

        tracing::info!(path = %options.db_path.display(), "opening the raft log and catalog");
        let engine = Engine::open(&options.db_path)?;
        let format = crate::store::check_format(&engine)?;
        tracing::info!(format, "raft database format");
        let log = LogStore::open(&engine)?;
        let sm = StateMachineStore::open(&engine)?;
        let catalog = sm.catalog();
        let network = NetworkFactory::new(transport.clone());
        let raft = Raft::new(options.node_id, Arc::new(config), network, log.clone(), sm)
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;

        let node = RaftNode {
            inner: Arc::new(Inner {
                id: options.node_id,
                raft: raft.clone(),
                transport: transport.clone(),
                log,
                catalog,
                engine,
                reachability_window: REACHABILITY_WINDOW,
                tasks: Default::default(),
                elections_held_until: Default::default(),
            }),
        };
        transport.register(crate::transport::STREAM_RPC, service::handler(node.clone()));
        let server = transport.serve();
        let metrics = tokio::spawn(node.clone().publish_metrics());
        let pinger = tokio::spawn(node.clone().ping_members());
        let hold = Duration::from_millis(rc.election_timeout_max_ms);
        node.clone().spawn_freeze_guard(hold);
        // After a restart the leader needs a redial (a handshake, perhaps after one that began
        // while this node was down) before its heartbeats arrive again.
        let start_hold = (hold * 2).max(Duration::from_secs(2));
        node.inner
            .tasks
            .lock()
            .map_err(|_| Error::Stopped("task list poisoned".into()))?
            .extend([server, metrics, pinger]);

        let initialized = raft.is_initialized().await.map_err(|e| Error::Stopped(e.to_string()))?;
        let voters = raft.metrics().borrow().membership_config.membership().voter_ids().count();
        if initialized && voters > 1 {
            // A restarted member waits a moment for the leader to reach it before it may
            // campaign: without pre-vote, its first election timeout would otherwise depose a
            // healthy leader whose connection to it is still being re-established.
            node.hold_elections(start_hold);
            let this = node.clone();
            tokio::spawn(async move {
                tokio::time::sleep(start_hold).await;
                this.release_elections();
            });
        }
        if initialized {
            let m = raft.metrics().borrow().clone();
            tracing::info!(
                node_id = options.node_id,
                last_log_index = ?m.last_log_index,
                applied_index = ?m.last_applied.map(|l| l.index),
                "restarted from disk; catching up with the cluster"
            );
        } else if options.bootstrap.contains_key(&options.node_id) {
            tracing::info!(members = ?options.bootstrap.keys().collect::<Vec<_>>(), "bootstrapping a new cluster");
            match raft.initialize(options.bootstrap.clone()).await {
                Ok(()) => {}
                // Another bootstrap member got there first and already replicated to us.
                Err(RaftError::APIError(e)) => tracing::info!(reason = %e, "cluster already initialised"),
                Err(e) => return Err(Error::Stopped(e.to_string())),
            }
        } else {
            tracing::info!("not a bootstrap member: waiting to be joined with `artstore cluster join`");
        }
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The cluster transport (other actors open their own streams on it).
    pub fn transport(&self) -> &Arc<Transport> {
        &self.inner.transport
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The local catalog (reads may lag the leader; see [`RaftNode::read_barrier`]).
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Proposes `command` and returns once it is committed and applied on the leader.
    /// A change that encodes to more than [`MAX_ENTRY_BYTES`] is refused before it reaches the
    /// log ([`Error::TooLarge`]).
    pub async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        let bytes = bincode::serialized_size(&command).unwrap_or(u64::MAX);
        if bytes > MAX_ENTRY_BYTES {
            metrics::counter!("artstore_raft_entries_refused_total", "reason" => "too_large").increment(1);
            return Err(Error::TooLarge(format!(
                "the change encodes to {bytes} bytes; one catalog entry holds at most {MAX_ENTRY_BYTES} (it must \
                 reach every node within one heartbeat): send it in smaller parts"
            )));
        }
        self.on_leader(
            "propose",
            PROPOSE_DEADLINE,
            || self.propose_local(command.clone()),
            |client, ctx| {
                let command = command.clone();
                async move { client.propose(ctx, command).await }
            },
        )
        .await
    }

    /// A consistent image of the catalog covering every write committed before the call: this
    /// node's latest Raft snapshot, built now if the last one is older. Returns what it covers
    /// and its image file, read through once to count and hash it but never held in memory (the
    /// format [`crate::store::backup::restore`] reads).
    pub async fn backup(&self) -> Result<crate::store::backup::BackupImage, Error> {
        let index = self.read_barrier().await?;
        let covers = move |m: &openraft::RaftMetrics<NodeId, ClusterNode>| m.snapshot.is_some_and(|s| s.index >= index);
        if !covers(&self.inner.raft.metrics().borrow()) {
            self.inner.raft.trigger().snapshot().await.map_err(|e| Error::Stopped(e.to_string()))?;
            self.inner
                .raft
                .wait(Some(Duration::from_secs(120)))
                .metrics(covers, "a snapshot for the backup")
                .await
                .map_err(|e| Error::Timeout(format!("no snapshot covering log index {index}: {e}")))?;
        }
        let snapshot = self
            .inner
            .raft
            .get_snapshot()
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?
            .ok_or_else(|| Error::Storage("the snapshot vanished while it was read".into()))?;
        let last_log_id =
            snapshot.meta.last_log_id.ok_or_else(|| Error::Storage("the snapshot covers no log entry".into()))?;
        let file = (*snapshot.snapshot).into_std().await;
        tokio::task::spawn_blocking(move || crate::store::backup::inspect_file(last_log_id, file))
            .await
            .map_err(|e| Error::Storage(e.to_string()))?
    }

    /// Waits until this node's catalog reflects every write committed before the call (Raft read
    /// index, asked of the leader when this node is a follower), and returns that read index.
    pub async fn read_barrier(&self) -> Result<u64, Error> {
        let index = self
            .on_leader(
                "read_index",
                PROPOSE_DEADLINE,
                || self.read_index_local(),
                |client, ctx| async move { client.read_index(ctx).await },
            )
            .await?;
        self.inner
            .raft
            .wait(Some(PROPOSE_DEADLINE))
            .applied_index_at_least(Some(index), "read barrier")
            .await
            .map_err(|e| Error::Timeout(format!("catching up to index {index}: {e}")))?;
        Ok(index)
    }

    /// Index of the last log entry applied on this node.
    pub fn applied_index(&self) -> u64 {
        self.inner.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// Changes whenever Raft's view on this node changes (applied index, leader, membership).
    pub fn watch(&self) -> MetricsWatch {
        self.inner.raft.metrics()
    }

    /// Adds `node_id` as a learner, waits up to `catch_up` until it has caught up, and promotes it
    /// to voter. If it does not catch up in time it is removed again and the call fails.
    pub async fn add_member(&self, node_id: NodeId, node: ClusterNode, catch_up: Duration) -> Result<(), Error> {
        self.on_leader(
            "add_member",
            catch_up + PROPOSE_DEADLINE,
            || self.add_member_local(node_id, node.clone(), catch_up),
            |client, ctx| {
                let node = node.clone();
                async move { client.add_member(ctx, node_id, node, catch_up.as_millis() as u64).await }
            },
        )
        .await
    }

    /// Removes `node_id` from the cluster.
    pub async fn remove_member(&self, node_id: NodeId) -> Result<(), Error> {
        self.on_leader(
            "remove_member",
            PROPOSE_DEADLINE,
            || self.remove_member_local(node_id),
            |client, ctx| async move { client.remove_member(ctx, node_id).await },
        )
        .await
    }

    /// A consistent snapshot of this node's view of the cluster.
    pub fn status(&self) -> ClusterStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                node_id: *id,
                http_addr: n.http_addr.clone(),
                quic_addr: n.quic_addr.clone(),
                voter: voters.contains(id),
                reachable: *id == m.id || self.inner.transport.seen_within(*id, self.inner.reachability_window),
                matched_index: if *id == m.id {
                    m.last_log_index
                } else {
                    m.replication.as_ref().and_then(|r| r.get(id).copied().flatten()).map(|l| l.index)
                },
            })
            .collect();
        let applied_index = m.last_applied.map(|l| l.index).unwrap_or(0);
        ClusterStatus {
            node_id: m.id,
            leader_id: m.current_leader,
            state: format!("{:?}", m.state),
            term: m.current_term,
            commit_index: self.inner.log.committed_index().max(applied_index),
            applied_index,
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members,
        }
    }

    /// Sets cluster-wide setting `key` to `value`; returns the log index that carried it and the
    /// value it replaced.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<(u64, Option<String>), Error> {
        let r = self.propose(Command::SetSetting { key: key.to_string(), value: value.to_string() }).await?;
        Ok((r.log_index, r.previous))
    }

    /// Removes cluster-wide setting `key` (removing an absent one is not an error).
    pub async fn delete_setting(&self, key: &str) -> Result<(), Error> {
        self.propose(Command::DeleteSetting { key: key.to_string() }).await.map(|_| ())
    }

    /// Appends a digest entry (every node records a SHA-256 of its catalog at that position);
    /// returns its log index.
    pub async fn take_digest(&self) -> Result<u64, Error> {
        Ok(self.propose(Command::Digest).await?.log_index)
    }

    /// Whether this node leads the cluster and has caught up with its own term: the one test
    /// leader-only work uses (see `artstore_actors::worker::LeaderOnly`).
    pub fn leads(&self) -> bool {
        self.status().leader_id == Some(self.id()) && self.readiness().is_ok()
    }

    /// Whether this node is ready to serve, or why not: a leader is known, this node has applied
    /// an entry of the leader's term (every new leader appends one, so this proves the node has
    /// caught up with *this* leader rather than with what it had on disk), and it has applied
    /// everything it knows to be committed.
    pub fn readiness(&self) -> Result<(), String> {
        let m = self.inner.raft.metrics().borrow().clone();
        if m.current_leader.is_none() {
            return Err("no leader is known yet".into());
        }
        let applied = m.last_applied.unwrap_or_default();
        if applied.leader_id.term < m.current_term {
            return Err(format!(
                "catching up with the leader of term {}: applied index {} is from term {}",
                m.current_term, applied.index, applied.leader_id.term
            ));
        }
        let committed = self.inner.log.committed_index();
        if applied.index < committed {
            return Err(format!("catching up: applied {} of {committed} committed entries", applied.index));
        }
        Ok(())
    }

    /// Stops Raft, the transport and the background tasks, and flushes the engine.
    pub async fn shutdown(&self) {
        self.hand_over().await;
        tracing::info!("stopping raft");
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        self.inner.transport.close().await;
        if let Err(e) = self.inner.engine.flush_async().await {
            tracing::error!(error = %e, "final flush of the raft store failed");
        }
    }

    /// On the leader of a cluster with other voters: asks the voter with the best matched log
    /// (given up to 1 s to catch up) to stand for election, and waits (up to 2 s) until another node leads, so that
    /// a planned stop costs a vote round instead of an election timeout.
    async fn hand_over(&self) {
        let me = self.inner.id;
        // Under load the followers trail the leader by the entries in flight: give the best of
        // them a moment to match the log, so that it can win the vote at once.
        let deadline = Instant::now() + Duration::from_millis(1000);
        let (m, next) = loop {
            let m = self.inner.raft.metrics().borrow().clone();
            if m.current_leader != Some(me) {
                return;
            }
            let last = m.last_log_index.unwrap_or(0);
            let matched = |n: &NodeId| {
                m.replication.as_ref().and_then(|r| r.get(n).cloned().flatten()).map(|l| l.index).unwrap_or(0)
            };
            let best = m.membership_config.membership().voter_ids().filter(|v| *v != me).max_by_key(|n| matched(n));
            let Some(best) = best else { return };
            if matched(&best) >= last || Instant::now() > deadline {
                break (m, best);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let Some(addr) = m.membership_config.membership().get_node(&next).map(|n| n.quic_addr.clone()) else {
            return;
        };
        let started = Instant::now();
        let asked = async {
            let client = self.inner.transport.client(next, &addr).await.ok()?;
            let mut ctx = tarpc::context::current();
            ctx.deadline = Instant::now() + Duration::from_millis(500);
            client.elect(ctx, self.inner.id).await.ok()
        };
        if asked.await != Some(true) {
            tracing::info!(node = next, "the hand-over was not taken; the others elect after a timeout");
            return;
        }
        let wait = self.inner.raft.wait(Some(Duration::from_secs(2)));
        match wait.metrics(|m| m.current_leader.is_some_and(|l| l != me), "another leader").await {
            Ok(m) => tracing::info!(
                leader = ?m.current_leader,
                took_ms = started.elapsed().as_millis() as u64,
                "leadership handed over"
            ),
            Err(_) => tracing::info!(node = next, "no new leader within 2 s; stopping anyway"),
        }
    }

    // ----- leader-side operations -----

    fn not_leader<E>(e: &RaftError<NodeId, E>) -> Option<Local<()>>
    where
        E: openraft::TryAsRef<openraft::error::ForwardToLeader<NodeId, ClusterNode>> + std::fmt::Debug,
    {
        e.forward_to_leader().map(|f| Local::NotLeader(f.leader_id.zip(f.leader_node.clone())))
    }

    async fn propose_local(&self, command: Command) -> Result<Local<CommandResult>, Error> {
        match self.inner.raft.client_write(command).await {
            Ok(r) => Ok(Local::Done(r.data)),
            Err(e) => match Self::not_leader(&e) {
                Some(Local::NotLeader(l)) => Ok(Local::NotLeader(l)),
                _ => Err(Error::Stopped(e.to_string())),
            },
        }
    }

    async fn read_index_local(&self) -> Result<Local<u64>, Error> {
        match self.inner.raft.ensure_linearizable().await {
            Ok(log_id) => Ok(Local::Done(log_id.map(|l| l.index).unwrap_or(0))),
            Err(e) => match Self::not_leader(&e) {
                Some(Local::NotLeader(l)) => Ok(Local::NotLeader(l)),
                // Lost contact with a quorum: not a leader we can read through right now.
                _ if e.fatal().is_none() => Ok(Local::NotLeader(None)),
                _ => Err(Error::Stopped(e.to_string())),
            },
        }
    }

    fn map_membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>) -> Result<Local<()>, Error> {
        match Self::not_leader(&e) {
            Some(l) => Ok(l),
            None => match e {
                RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => Err(Error::Rejected(c.to_string())),
                other => Err(Error::Stopped(other.to_string())),
            },
        }
    }

    async fn add_member_local(
        &self,
        node_id: NodeId,
        node: ClusterNode,
        catch_up: Duration,
    ) -> Result<Local<()>, Error> {
        let raft = &self.inner.raft;
        {
            let m = raft.metrics().borrow().clone();
            if m.current_leader != Some(self.inner.id) {
                let leader = m
                    .current_leader
                    .and_then(|l| m.membership_config.membership().get_node(&l).cloned().map(|n| (l, n)));
                return Ok(Local::NotLeader(leader));
            }
            let membership = m.membership_config.membership();
            if let Some(clash) = address_clash(membership.nodes(), node_id, &node) {
                return Err(Error::Rejected(clash));
            }
            if membership.voter_ids().any(|v| v == node_id) {
                tracing::info!(node_id, "node is already a voter");
                return Ok(Local::Done(()));
            }
        }
        tracing::info!(node_id, http = %node.http_addr, quic = %node.quic_addr, "adding node as learner");
        if let Err(e) = raft.add_learner(node_id, node, false).await {
            return Self::map_membership_error(e);
        }
        let target = raft.metrics().borrow().last_log_index;
        let caught_up = raft
            .wait(Some(catch_up))
            .metrics(
                |m| {
                    let matched = m.replication.as_ref().and_then(|r| r.get(&node_id).cloned().flatten());
                    matched.map(|l| l.index) >= target
                },
                "learner catch-up",
            )
            .await;
        if caught_up.is_err() {
            tracing::warn!(node_id, "joining node did not catch up; removing it again");
            let _ = raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false).await;
            return Err(Error::Timeout(format!(
                "node {node_id} did not catch up within {:.1} s: check that it is running, reachable at its QUIC \
                 address, and holds a certificate from this cluster's CA",
                catch_up.as_secs_f64()
            )));
        }
        tracing::info!(node_id, "learner caught up; promoting to voter");
        match raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false).await {
            Ok(_) => Ok(Local::Done(())),
            Err(e) => Self::map_membership_error(e),
        }
    }

    async fn remove_member_local(&self, node_id: NodeId) -> Result<Local<()>, Error> {
        let raft = &self.inner.raft;
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let is_learner = membership.learner_ids().any(|l| l == node_id);
        if m.current_leader != Some(self.inner.id) {
            let leader = m.current_leader.and_then(|l| membership.get_node(&l).cloned().map(|n| (l, n)));
            return Ok(Local::NotLeader(leader));
        }
        let change = if voters.contains(&node_id) {
            if voters.len() == 1 {
                return Err(Error::Rejected(format!("node {node_id} is the last voter and cannot be removed")));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
        } else if is_learner {
            ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
        } else {
            return Err(Error::Rejected(format!("node {node_id} is not a member of this cluster")));
        };
        tracing::info!(node_id, "removing node from the cluster");
        match raft.change_membership(change, false).await {
            Ok(_) => Ok(Local::Done(())),
            Err(e) => Self::map_membership_error(e),
        }
    }

    /// Runs `local` here, or `remote` on the leader, retrying through elections until `deadline`.
    async fn on_leader<T, LF, LFut, RF, RFut>(
        &self,
        what: &'static str,
        deadline: Duration,
        local: LF,
        remote: RF,
    ) -> Result<T, Error>
    where
        LF: Fn() -> LFut,
        LFut: Future<Output = Result<Local<T>, Error>>,
        RF: Fn(ClusterRpcClient, tarpc::context::Context) -> RFut,
        RFut: Future<Output = Result<Result<T, RemoteError>, tarpc::client::RpcError>>,
    {
        let until = Instant::now() + deadline;
        let mut last_problem = String::from("no leader is known");
        loop {
            match local().await? {
                Local::Done(t) => return Ok(t),
                Local::NotLeader(Some((leader, node))) if leader != self.inner.id => {
                    let started = Instant::now();
                    match self.inner.transport.client(leader, &node.quic_addr).await {
                        Ok(client) => {
                            let mut ctx = tarpc::context::current();
                            ctx.deadline = until.max(Instant::now() + Duration::from_millis(100));
                            // A leader that dies mid-call is only noticed by the transport after its
                            // idle timeout; this node's own election timer notices sooner. Stop
                            // waiting as soon as this node stops believing in that leader.
                            let wait = self.inner.raft.wait(Some(until.saturating_duration_since(Instant::now())));
                            let leader_changed = wait.metrics(|m| m.current_leader != Some(leader), "leader change");
                            let r = tokio::select! {
                                r = remote(client, ctx) => Some(r),
                                _ = leader_changed => None,
                            };
                            match r {
                                None => {
                                    crate::transport::observe_rpc(what, started, false);
                                    last_problem = format!("leader {leader} was replaced during the call");
                                }
                                Some(r) => {
                                    crate::transport::observe_rpc(what, started, matches!(r, Ok(Ok(_))));
                                    match r {
                                        Ok(Ok(t)) => return Ok(t),
                                        Ok(Err(RemoteError::Rejected(m))) => return Err(Error::Rejected(m)),
                                        Ok(Err(e)) => last_problem = format!("leader {leader}: {e}"),
                                        Err(e) => {
                                            self.inner.transport.invalidate(leader);
                                            last_problem = format!("leader {leader}: {e}");
                                        }
                                    }
                                }
                            }
                        }
                        Err(e) => last_problem = e.to_string(),
                    }
                }
                Local::NotLeader(_) => {}
            }
            if Instant::now() >= until {
                return Err(Error::NoLeader(format!("{what}: {last_problem}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ----- background tasks -----

    /// Mirrors Raft's metrics into Prometheus gauges.
    async fn publish_metrics(self) {
        let mut rx = self.inner.raft.metrics();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let s = self.status();
            metrics::gauge!("artstore_raft_term").set(s.term as f64);
            metrics::gauge!("artstore_raft_leader_id").set(s.leader_id.unwrap_or(0) as f64);
            metrics::gauge!("artstore_raft_is_leader").set(if s.leader_id == Some(s.node_id) { 1.0 } else { 0.0 });
            metrics::gauge!("artstore_raft_commit_index").set(s.commit_index as f64);
            metrics::gauge!("artstore_raft_applied_index").set(s.applied_index as f64);
            metrics::gauge!("artstore_raft_last_log_index").set(s.last_log_index as f64);
            metrics::gauge!("artstore_raft_snapshot_index").set(s.snapshot_index.unwrap_or(0) as f64);
            metrics::gauge!("artstore_raft_members").set(s.members.len() as f64);
            let leader_state = matches!(rx.borrow().state, ServerState::Leader);
            metrics::gauge!("artstore_raft_state_leader").set(if leader_state { 1.0 } else { 0.0 });
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tick.tick() => {}
            }
        }
    }

    /// Holds this node's elections for at least `d` (extending any hold in force).
    fn hold_elections(&self, d: Duration) {
        if let Ok(mut until) = self.inner.elections_held_until.lock() {
            let end = Instant::now() + d;
            *until = Some(until.map_or(end, |u| u.max(end)));
        }
        self.inner.raft.runtime_config().elect(false);
    }

    /// Lets elections happen again, unless a longer hold is still in force.
    fn release_elections(&self) {
        let due = self.inner.elections_held_until.lock().map(|u| u.is_none_or(|t| Instant::now() >= t)).unwrap_or(true);
        if due {
            self.inner.raft.runtime_config().elect(true);
        }
    }

    /// Holds this node's elections for a moment after the process was frozen (SIGSTOP, a paused
    /// VM, heavy swapping). openraft 0.9 has no pre-vote: a follower waking from a long pause
    /// finds its election timer expired, campaigns with a higher term, and the answer to the
    /// leader's next append makes the leader step down, stopping writes for an election although
    /// nothing was wrong with it. Here the wake-up is noticed from a late tick, elections stay off
    /// for `hold` (the leader's heartbeats reset the timer meanwhile, if there is a leader), then
    /// come back on. If both timers fire at once openraft may still be first; this narrows the
    /// race, it cannot close it (pre-vote would).
    ///
    /// The guard is an OS thread rather than a task: on resume it only has to flip a flag, and it
    /// does not wait behind the runtime's other expired timers (openraft's own tick among them).
    /// It ends when the node is dropped.
    fn spawn_freeze_guard(self, hold: Duration) {
        const TICK: Duration = Duration::from_millis(20);
        let frozen_after = hold.max(Duration::from_millis(500));
        let weak = Arc::downgrade(&self.inner);
        drop(self);
        let spawned = std::thread::Builder::new().name("raft-freeze-guard".into()).spawn(move || {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(TICK);
                let Some(inner) = weak.upgrade() else { return };
                let gap = last.elapsed();
                if gap > frozen_after {
                    RaftNode { inner: inner.clone() }.hold_elections(hold);
                    tracing::warn!(
                        frozen_ms = gap.as_millis() as u64,
                        hold_ms = hold.as_millis() as u64,
                        "this process was frozen; holding its elections for a moment (the leader's heartbeats reset the timer)"
                    );
                    metrics::counter!("artstore_raft_freezes_total").increment(1);
                    drop(inner);
                    std::thread::sleep(hold);
                    let Some(inner) = weak.upgrade() else { return };
                    RaftNode { inner }.release_elections();
                }
                last = Instant::now();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the freeze guard; a resumed follower may call an election");
        }
    }

    /// Pings every other member every [`PING_INTERVAL`], so that status (and placement) can say who
    /// is reachable.
    async fn ping_members(self) {
        let heartbeat = Duration::from_millis(self.inner.raft.config().heartbeat_interval);
        let mut tick = tokio::time::interval(PING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let peers: Vec<(NodeId, ClusterNode)> = {
                let m = self.inner.raft.metrics().borrow().membership_config.clone();
                m.membership().nodes().filter(|(id, _)| **id != self.inner.id).map(|(i, n)| (*i, n.clone())).collect()
            };
            for (id, node) in peers {
                let transport = self.inner.transport.clone();
                let me = self.inner.id;
                tokio::spawn(async move {
                    let Ok(client) = transport.client(id, &node.quic_addr).await else { return };
                    let mut ctx = tarpc::context::current();
                    ctx.deadline = Instant::now() + Duration::from_secs(1);
                    let sent = Instant::now();
                    match client.ping(ctx, me).await {
                        Ok(answer) if answer == id => {
                            let rtt = sent.elapsed();
                            transport.mark_answered(id, rtt);
                            metrics::histogram!("artstore_raft_peer_rtt_seconds").record(rtt.as_secs_f64());
                            // openraft waits one heartbeat interval for every append: a round
                            // trip near it means Raft cannot commit through this peer.
                            if rtt > heartbeat * 3 / 5 && slow_link_warning(id) {
                                tracing::warn!(
                                    peer = id,
                                    rtt_ms = rtt.as_millis() as u64,
                                    heartbeat_ms = heartbeat.as_millis() as u64,
                                    "the round trip to this peer is close to raft.heartbeat_ms, which is also the \
                                     deadline of every log replication call; raise raft.heartbeat_ms (and the \
                                     election timeouts) above the worst round trip plus a follower's fsync"
                                );
                            }
                        }
                        Ok(answer) => {
                            tracing::warn!(expected = id, answer, "a different node answered at this address")
                        }
                        Err(e) if crate::transport::connection_broken(&e) => transport.invalidate(id),
                        Err(_) => {}
                    }
                });
            }
        }
    }
}

/// Why `node` cannot join as `node_id` next to `members`: its id is taken by a member at other
/// addresses, or one of its addresses is another member's (a join naming an existing node's
/// address would have the leader replicate to itself or to the wrong node until the catch-up
/// timeout).
fn address_clash<'a>(
    members: impl Iterator<Item = (&'a NodeId, &'a ClusterNode)>,
    node_id: NodeId,
    node: &ClusterNode,
) -> Option<String> {
    for (id, m) in members {
        if *id == node_id {
            if m.http_addr != node.http_addr || m.quic_addr != node.quic_addr {
                return Some(format!(
                    "node {id} is already a member at {} (QUIC {}); remove it before it joins again",
                    m.http_addr, m.quic_addr
                ));
            }
        } else if m.http_addr == node.http_addr || m.quic_addr == node.quic_addr {
            return Some(format!(
                "node {id} is already a member at {} (QUIC {}): a joining node needs addresses of its own",
                m.http_addr, m.quic_addr
            ));
        }
    }
    None
}
