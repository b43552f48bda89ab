//! Background work under one shape. A [`Worker`] does one unit of work per [`Worker::step`] and
//! says when the next one is due; [`Workers`] runs each on its own task, keeps its status (for
//! `artstore repair status`) and stops them all on shutdown; [`LeaderOnly`] runs a worker only
//! while this node leads the cluster and is caught up.
//!
//! Invariants:
//! - a step is never cancelled halfway by a stop request: the runner asks ([`Stop::requested`]),
//!   long steps check between items and return early, and only a step still running when the
//!   shutdown grace is over is aborted (and logged as such);
//! - a failing step is counted and logged, and the worker carries on after a pause: one bad pass
//!   never ends a worker.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artstore_raft::RaftNode;
use tokio::sync::watch;

/// When a worker's next step is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At once: there is more to do.
    Now,
    /// After a pause (an interval, or a backoff after finding nothing to do).
    After(Duration),
    /// Not this node's turn (a leader-only worker on a follower); look again after a pause.
    Standby(Duration),
}

/// One kind of background work: scrub, repair, collection, expiry, key rotation, …
pub trait Worker: Send + 'static {
    /// Stable name, used in logs and status (`repair`, `scrub`, `gc`, …).
    fn name(&self) -> &'static str;

    /// One unit of work. A long step checks `stop` between items and returns early.
    fn step(&mut self, stop: &Stop) -> impl Future<Output = Result<Next, String>> + Send;

    /// A leader-only worker on a node that does not lead, at each would-be step ([`LeaderOnly`]);
    /// `demoted` when the node has just stopped leading (forget what only a leader keeps).
    fn standby(&mut self, demoted: bool) {
        let _ = demoted;
    }
}

/// A worker's view of the stop request.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether shutdown has asked workers to stop.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown asks workers to stop.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Sleeps for `d`, or less if a stop is requested meanwhile; returns whether it was.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.wait() => true,
            _ = tokio::time::sleep(d) => self.requested(),
        }
    }
}

/// What a worker is doing, as `artstore repair status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    pub name: &'static str,
    /// `working`, `idle`, `standby` (leader-only, this node does not lead) or `stopped`.
    pub state: &'static str,
    /// Steps completed.
    pub steps: u64,
    /// Steps that failed.
    pub errors: u64,
    pub last_error: Option<String>,
    /// Milliseconds the last step took.
    pub last_step_ms: u64,
}

/// The running workers of a node.
pub struct Workers {
    stop: watch::Sender<bool>,
    running: Mutex<Vec<Running>>,
}

struct Running {
    name: &'static str,
    status: Arc<Mutex<WorkerStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

/// Pause after a failed step before the next try.
const AFTER_ERROR: Duration = Duration::from_secs(5);

impl Workers {
    pub fn new() -> Self {
        Self { stop: watch::channel(false).0, running: Mutex::new(Vec::new()) }
    }

    /// Starts `worker` on its own task.
    pub fn start<W: Worker>(&self, worker: W) {
        self.start_after(worker, Duration::ZERO)
    }

    /// Starts `worker` on its own task, with a pause before its first step.
    pub fn start_after<W: Worker>(&self, mut worker: W, first: Duration) {
        let name = worker.name();
        let status = Arc::new(Mutex::new(WorkerStatus {
            name,
            state: "idle",
            steps: 0,
            errors: 0,
            last_error: None,
            last_step_ms: 0,
        }));
        let mut stop = Stop(self.stop.subscribe());
        let shared = status.clone();
        let task = tokio::spawn(async move {
            let set = |f: &dyn Fn(&mut WorkerStatus)| {
                if let Ok(mut s) = shared.lock() {
                    f(&mut s)
                }
            };
            tracing::debug!(worker = name, "worker started");
            if !first.is_zero() {
                stop.sleep(first).await;
            }
            while !stop.requested() {
                set(&|s| s.state = "working");
                let started = Instant::now();
                let outcome = worker.step(&stop).await;
                let took = started.elapsed().as_millis() as u64;
                let pause = match outcome {
                    Ok(next) => {
                        set(&|s| {
                            s.steps += 1;
                            s.last_step_ms = took;
                            s.state = if matches!(next, Next::Standby(_)) { "standby" } else { "idle" };
                        });
                        match next {
                            Next::Now => Duration::ZERO,
                            Next::After(d) | Next::Standby(d) => d,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "worker step failed; will retry");
                        metrics::counter!("artstore_worker_errors_total", "worker" => name).increment(1);
                        set(&|s| {
                            s.errors += 1;
                            s.last_error = Some(e.clone());
                            s.state = "idle";
                        });
                        AFTER_ERROR
                    }
                };
                if !pause.is_zero() && stop.sleep(pause).await {
                    break;
                }
                tokio::task::yield_now().await;
            }
            set(&|s| s.state = "stopped");
            tracing::debug!(worker = name, "worker stopped");
        });
        if let Ok(mut r) = self.running.lock() {
            r.push(Running { name, status, task });
        }
    }

    /// Every worker's status, in start order.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        let running = self.running.lock().map(|r| r.iter().map(|w| w.status.clone()).collect::<Vec<_>>());
        running.unwrap_or_default().iter().filter_map(|s| s.lock().ok().map(|s| s.clone())).collect()
    }

    /// Asks every worker to stop and waits for them (in reverse start order) up to `grace` in all;
    /// a worker still in a step then is aborted, and said so.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let running = self.running.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + grace;
        for mut w in running.into_iter().rev() {
            match tokio::time::timeout_at(deadline, &mut w.task).await {
                Ok(_) => tracing::info!(worker = w.name, "worker stopped"),
                Err(_) => {
                    w.task.abort();
                    tracing::warn!(
                        worker = w.name,
                        "worker did not finish its step within the shutdown grace; aborted"
                    );
                }
            }
        }
    }
}

/// Runs `W` only while this node is the leader and has caught up with its own term; on a
/// follower it stands by, and on losing leadership the worker is told ([`Worker::standby`]).
pub struct LeaderOnly<W> {
    node: RaftNode,
    inner: W,
    leading: bool,
}

/// How often a standing-by worker looks again (a new leader starts its workers within this).
const STANDBY: Duration = Duration::from_millis(250);

impl<W: Worker> LeaderOnly<W> {
    pub fn new(node: RaftNode, inner: W) -> Self {
        Self { node, inner, leading: false }
    }
}

impl<W: Worker> Worker for LeaderOnly<W> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn step(&mut self, stop: &Stop) -> Result<Next, String> {
        if !self.node.leads() {
            let demoted = std::mem::take(&mut self.leading);
            self.inner.standby(demoted);
            return Ok(Next::Standby(STANDBY));
        }
        self.leading = true;
        self.inner.step(stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counter {
        steps: Arc<AtomicU64>,
        fail_every: u64,
    }

    impl Worker for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
            let n = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(self.fail_every) {
                return Err(format!("step {n} failed"));
            }
            Ok(Next::After(Duration::from_millis(1)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn workers_step_keep_going_after_errors_and_stop_on_request() {
        let workers = Workers::new();
        let steps = Arc::new(AtomicU64::new(0));
        workers.start(Counter { steps: steps.clone(), fail_every: 3 });
        tokio::time::sleep(Duration::from_secs(20)).await;
        let s = workers.statuses().remove(0);
        assert_eq!(s.name, "counter");
        assert!(s.errors >= 2, "{s:?}");
        assert!(s.steps >= 4, "a failed step does not end the worker: {s:?}");
        assert_eq!(s.last_error.as_deref().map(|e| e.ends_with("failed")), Some(true));
        workers.stop(Duration::from_secs(1)).await;
        let after = steps.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(steps.load(Ordering::Relaxed), after, "a stopped worker does not step");
    }
}
