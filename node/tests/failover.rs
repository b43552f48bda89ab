//! Leader loss: SIGKILL the leader, a new one is elected without losing committed entries, and the
//! old leader restarts from its disk and catches up — through a snapshot when the others have
//! purged the log it is missing.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn killed_leader_is_replaced_and_catches_up_through_a_snapshot_after_restart() {
    let (mut cluster, old_leader) = started_cluster(3, |t| {
        set(t, "raft", "snapshot_logs_since_last", 20);
        set(t, "raft", "logs_kept_after_snapshot", 5);
    })
    .await;
    let all = cluster.node_ids();
    let survivors: Vec<u64> = all.iter().copied().filter(|id| *id != old_leader).collect();

    for i in 0..10 {
        cluster.client(old_leader).put_setting(&format!("before.{i}"), &i.to_string()).await.unwrap();
    }
    let old_last = cluster.status(old_leader).await.unwrap().last_log_index;

    cluster.kill(old_leader);
    let new_leader = cluster.wait_leader(&survivors, Duration::from_secs(15)).await.unwrap();
    assert_ne!(new_leader, old_leader);

    // Nothing acknowledged before the kill is lost.
    let client = cluster.client_for(&survivors);
    for i in 0..10 {
        let s = client.get_setting(&format!("before.{i}"), true).await.unwrap();
        assert_eq!(s.value, i.to_string());
    }
    // Enough writes for the survivors to snapshot and purge the entries the old leader lacks.
    for i in 0..60 {
        client.put_setting(&format!("after.{i}"), &i.to_string()).await.unwrap();
    }
    let purged = eventually(Duration::from_secs(10), "log purge on the new leader", || async {
        let s = cluster.status(new_leader).await.ok()?;
        s.purged_index.filter(|p| *p > old_last)
    })
    .await;
    assert!(purged > old_last);

    cluster.start(old_leader).unwrap();
    cluster.wait_ready(old_leader, READY).await.unwrap();
    let leader = cluster.wait_leader(&all, Duration::from_secs(15)).await.unwrap();
    assert_ne!(leader, old_leader, "a restarted node behind the others cannot win the election");

    let target = cluster.status(new_leader).await.unwrap().commit_index;
    eventually(Duration::from_secs(20), "old leader catching up", || async {
        let s = cluster.status(old_leader).await.ok()?;
        (s.applied_index >= target).then_some(())
    })
    .await;
    let settings = cluster.client(old_leader).settings().await.unwrap().settings;
    assert_eq!(settings.len(), 70, "every committed write is on the restarted node");
    let status = cluster.status(old_leader).await.unwrap();
    assert!(status.snapshot_index.is_some_and(|i| i > old_last), "caught up through a snapshot: {status:?}");
    assert!(cluster.log(old_leader).contains("installed catalog snapshot"));
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_of_every_node() {
    let (mut cluster, leader) = started_cluster(3, |_| {}).await;
    let client = cluster.client(leader);
    for i in 0..30 {
        client.put_setting(&format!("k{i}"), "v").await.unwrap();
    }
    // No graceful shutdown anywhere: the group-committed log must already be on disk.
    for id in cluster.node_ids() {
        cluster.kill(id);
    }
    cluster.start_all().unwrap();
    for id in cluster.node_ids() {
        cluster.wait_ready(id, READY).await.unwrap();
    }
    let leader = cluster.wait_leader(&cluster.node_ids(), READY).await.unwrap();
    cluster.client(leader).get_setting("k29", true).await.unwrap();
    for id in cluster.node_ids() {
        let n = eventually(Duration::from_secs(10), "all settings applied", || async {
            let s = cluster.client(id).settings().await.ok()?.settings;
            (s.len() == 30).then_some(s.len())
        })
        .await;
        assert_eq!(n, 30);
    }
}
