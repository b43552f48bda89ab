//! The documented rolling restart (deploy/README.md, "Rolling restart") under upload load: one
//! node at a time, followers first and the leader last, each stopped with SIGTERM, started again
//! with its same config and data, and waited for (its `/health/ready`, then every node ready and
//! agreeing on a leader) before the next. Applications upload all along through the SDK with its
//! default retry policy and every node's URL. The promises checked: no call fails at the caller
//! (refusals of a stopping node and elections are ridden out by the SDK's failover and retries),
//! uploads keep being acknowledged while each node is down, and every acknowledged upload reads
//! back from every node with its SHA-256.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artstore_client::{Client, RetryPolicy, UploadOptions};
use common::*;
use futures::StreamExt;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// Concurrent application writers.
const WRITERS: u64 = 4;

/// An upload the cluster acknowledged, and when (since the load started).
struct Acked {
    id: String,
    sha256: String,
    at: Duration,
}

/// What the writers record: every acknowledgement, and every error that reached them.
#[derive(Default)]
struct Record {
    acked: Mutex<Vec<Acked>>,
    failures: Mutex<Vec<String>>,
}

impl Record {
    fn acked_between(&self, from: Duration, to: Duration) -> usize {
        self.acked.lock().unwrap().iter().filter(|a| a.at >= from && a.at <= to).count()
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// The longest stretch without an acknowledged upload, and when it began (availability,
    /// reported only).
    fn longest_gap(&self) -> (Duration, Duration) {
        let mut at: Vec<Duration> = self.acked.lock().unwrap().iter().map(|a| a.at).collect();
        at.sort();
        at.windows(2).map(|w| (w[1] - w[0], w[0])).max().unwrap_or_default()
    }
}

/// One writer: uploads small files of random content until `stop`, through a client that knows
/// every node (starting with a different one per writer, so every node carries uploads when it
/// is stopped).
async fn write_until(w: u64, client: Client, record: Arc<Record>, stop: Arc<AtomicBool>, t0: Instant) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = {
            let mut rng = rand::rng();
            let mut body = vec![0u8; rng.random_range(256..8 * 1024)];
            rng.fill_bytes(&mut body);
            body
        };
        let sha256 = hex::encode(Sha256::digest(&body));
        let name = format!("rolling-w{w}-{n}.bin");
        match client.upload(&name, body, &UploadOptions::default()).await {
            Ok(info) if info.sha256 == sha256 => {
                record.acked.lock().unwrap().push(Acked { id: info.id, sha256, at: t0.elapsed() })
            }
            Ok(info) => record.failures.lock().unwrap().push(format!(
                "{:?} {name}: acknowledged as {} with SHA-256 {}, sent {sha256}",
                t0.elapsed(),
                info.id,
                info.sha256
            )),
            Err(e) => record.failures.lock().unwrap().push(format!("{:?} {name}: {e}", t0.elapsed())),
        }
    }
}

/// How one node's restart went (times since the load started).
struct Restart {
    node: u64,
    was_leader: bool,
    signalled: Duration,
    exited: Duration,
    ready: Duration,
    settled: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_upload_load_loses_nothing_and_fails_no_call() {
    let test_start = Instant::now();
    let (mut c, _) = started_cluster(3, |_| {}).await;
    let all = c.node_ids();

    let record = Arc::new(Record::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            // Writer w lists the nodes starting at node w % 3 + 1; each client fails over across
            // all three with the SDK's default retry policy, as an application would be set up.
            let mut ids = all.clone();
            ids.rotate_left(w as usize % all.len());
            let client = c.client_for(&ids).with_retry_policy(RetryPolicy::default());
            tokio::spawn(write_until(w, client, record.clone(), stop.clone(), t0))
        })
        .collect();
    eventually(Duration::from_secs(20), "uploads acknowledged before the first restart", || async {
        (record.acked_count() >= 8).then_some(())
    })
    .await;

    // Followers first, the leader last, as `artstore cluster status` tells them apart.
    let leader = c.wait_leader(&all, READY).await.unwrap();
    let order: Vec<u64> = all.iter().copied().filter(|id| *id != leader).chain([leader]).collect();
    let mut restarts = Vec::new();
    for node in order {
        let was_leader = c.wait_leader(&all, READY).await.unwrap() == node;
        let signalled = t0.elapsed();
        let code = tokio::task::block_in_place(|| c.terminate(node));
        let exited = t0.elapsed();
        assert_eq!(code, Some(0), "node {node} stops cleanly on SIGTERM; log:\n{}", c.log(node));
        c.start(node).unwrap();
        c.wait_ready(node, READY).await.unwrap();
        let ready = t0.elapsed();
        for id in &all {
            c.wait_ready(*id, READY).await.unwrap();
        }
        c.wait_leader(&all, READY).await.unwrap();
        let settled = t0.elapsed();
        restarts.push(Restart { node, was_leader, signalled, exited, ready, settled });
        // The whole cluster takes uploads again before the next node goes.
        let before = record.acked_count();
        eventually(Duration::from_secs(20), "uploads acknowledged after the restart", || async {
            (record.acked_count() >= before + 4).then_some(())
        })
        .await;
    }

    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let load_took = t0.elapsed();

    // (a) No call failed at the caller: what the SDK retried stayed inside it.
    let failures = record.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} upload(s) failed at the caller:\n{}", failures.len(), failures.join("\n"));

    // (c) The load ran through every restart: uploads were acknowledged while each node was down.
    for r in &restarts {
        let during = record.acked_between(r.signalled, r.ready);
        assert!(
            during > 0,
            "no upload acknowledged while node {} was restarting ({:?}..{:?})",
            r.node,
            r.signalled,
            r.ready
        );
    }

    // (b) Every acknowledged upload reads back from every node, intact.
    let acked: Vec<(String, String)> =
        record.acked.lock().unwrap().iter().map(|a| (a.id.clone(), a.sha256.clone())).collect();
    let distinct: HashSet<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(distinct.len(), acked.len(), "every acknowledged upload is its own file");
    let read_start = Instant::now();
    for node in &all {
        let client = c.client(*node);
        let problems: Vec<String> = futures::stream::iter(acked.iter())
            .map(|(id, sha)| {
                let client = client.clone();
                async move {
                    match client.download(id).await {
                        Ok(body) if hex::encode(Sha256::digest(&body)) == *sha => None,
                        Ok(body) => Some(format!("{id}: {} bytes hashing to something else", body.len())),
                        Err(e) => Some(format!("{id}: {e}")),
                    }
                }
            })
            .buffer_unordered(8)
            .filter_map(|p| async move { p })
            .collect()
            .await;
        assert!(
            problems.is_empty(),
            "{} of {} acknowledged uploads do not read back from node {node}:\n{}",
            problems.len(),
            acked.len(),
            problems.join("\n")
        );
    }

    let per_restart: Vec<String> = restarts
        .iter()
        .map(|r| {
            format!(
                "node {}{}: signalled at {:.1}s, stop {:.1}s, ready {:.1}s, cluster settled {:.1}s, {} acked meanwhile",
                r.node,
                if r.was_leader { " (leader)" } else { "" },
                r.signalled.as_secs_f64(),
                (r.exited - r.signalled).as_secs_f64(),
                (r.ready - r.signalled).as_secs_f64(),
                (r.settled - r.signalled).as_secs_f64(),
                record.acked_between(r.signalled, r.ready),
            )
        })
        .collect();
    eprintln!(
        "rolling restart: {} uploads acknowledged in {:.1}s by {WRITERS} writers, {} failed, longest gap \
         {:.1}s from {:.1}s; {}; read back from {} nodes in {:.1}s; test took {:.1}s",
        acked.len(),
        load_took.as_secs_f64(),
        failures.len(),
        record.longest_gap().0.as_secs_f64(),
        record.longest_gap().1.as_secs_f64(),
        per_restart.join("; "),
        all.len(),
        read_start.elapsed().as_secs_f64(),
        test_start.elapsed().as_secs_f64(),
    );
}
