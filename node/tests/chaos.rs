//! The chaos harness's short profile: every scenario on a real 3-node cluster behind fault
//! proxies, with zero lost acknowledged uploads and zero broken promises. And proof that the
//! checker can fail: nodes that acknowledge uploads before the Raft commit (a test-only switch)
//! break read-after-write under an isolated leader, and the checker says so.

use std::path::PathBuf;

use artstore_chaos::report;
use artstore_chaos::scenario::{run, run_all, Profile, RunOptions, Scenario};

fn options(out: Option<PathBuf>) -> RunOptions {
    RunOptions {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_artstore")),
        profile: Profile::Short,
        workers: 6,
        replication: None,
        node_env: Vec::new(),
        out,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_profile_keeps_every_promise() {
    let out = tempfile::tempdir().unwrap();
    let results = run_all(&Scenario::ALL, &options(Some(out.path().to_path_buf()))).await;
    let mut reports = Vec::new();
    for r in results {
        match r {
            Ok(r) => reports.push(r),
            Err((name, e)) => panic!("scenario {name} could not run: {e}"),
        }
    }
    report::print_table(&reports);
    let broken = report::broken_bounds(&reports);
    assert!(broken.is_empty(), "availability promises broken:\n{}", broken.join("\n"));
    for r in &reports {
        assert!(r.acknowledged > 0, "{}: no upload was acknowledged at all", r.scenario);
        assert_eq!(r.violations, 0, "{}: {}", r.scenario, serde_json::to_string_pretty(&r.verdict).unwrap());
        assert!(out.path().join(format!("{}.history.jsonl", r.scenario)).exists());
        assert!(out.path().join(format!("{}.png", r.scenario)).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_uploads_acknowledged_before_commit() {
    let mut opts = options(None);
    // One replica, so the isolated leader can store chunks alone and acknowledge at once.
    opts.replication = Some(1);
    opts.node_env = vec![(artstore_actors::ingest::UNSAFE_ACK_BEFORE_COMMIT.to_string(), "1".to_string())];
    let r = run(Scenario::IsolatedLeader, &opts).await.unwrap();
    report::print_table(std::slice::from_ref(&r));
    // Acknowledged but not yet committed: another node does not know the file yet.
    let verdict = serde_json::to_string_pretty(&r.verdict).unwrap();
    assert!(r.violations > 0, "the checker missed the broken acknowledgement: {verdict}");
    assert!(r.verdict.online.iter().any(|v| v.starts_with("read-after-write")), "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_namespace_partitions_keep_every_promise() {
    if let Some(why) = artstore_chaos::netns::unavailable() {
        eprintln!("SKIPPED network_namespace_partitions_keep_every_promise: {why}");
        return;
    }
    let r = run(Scenario::NetnsPartition, &options(None)).await.unwrap();
    report::print_table(std::slice::from_ref(&r));
    assert!(r.acknowledged > 0);
    assert_eq!(r.violations, 0, "{}", serde_json::to_string_pretty(&r.verdict).unwrap());
}
