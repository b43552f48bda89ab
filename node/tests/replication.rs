//! Three real nodes over QUIC with mutual TLS: one leader, and a write sent to a follower is
//! forwarded to the leader, committed, and applied on every node.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn three_nodes_elect_one_leader_and_replicate_a_write_sent_to_a_follower() {
    let (cluster, leader) = started_cluster(3, |_| {}).await;

    // Every node agrees on the leader and the term; exactly one node calls itself leader.
    let mut statuses = Vec::new();
    for id in cluster.node_ids() {
        statuses.push(cluster.status(id).await.unwrap());
    }
    assert!(statuses.iter().all(|s| s.leader_id == Some(leader) && s.term == statuses[0].term));
    assert_eq!(statuses.iter().filter(|s| s.state == "Leader").count(), 1);
    for s in &statuses {
        assert_eq!(s.members.len(), 3);
        assert!(s.members.iter().all(|m| m.voter));
    }

    let follower = cluster.node_ids().into_iter().find(|id| *id != leader).unwrap();
    let written = cluster.client(follower).put_setting("retention.default_days", "30").await.unwrap();
    assert!(written.log_index.unwrap() > 0);
    assert_eq!(written.previous, None);

    // A consistent read on each node sees the write at once…
    for id in cluster.node_ids() {
        let s = cluster.client(id).get_setting("retention.default_days", true).await.unwrap();
        assert_eq!(s.value, "30", "node {id}");
    }
    // …and every node's own state machine has applied it.
    for id in cluster.node_ids() {
        eventually(Duration::from_secs(5), "local apply", || async {
            let all = cluster.client(id).settings().await.ok()?;
            (all.settings.get("retention.default_days").map(String::as_str) == Some("30")).then_some(())
        })
        .await;
    }

    // Overwriting returns the previous value; the members report each other reachable.
    let again = cluster.client(leader).put_setting("retention.default_days", "31").await.unwrap();
    assert_eq!(again.previous.as_deref(), Some("30"));
    eventually(Duration::from_secs(5), "peers reachable", || async {
        let s = cluster.status(follower).await.ok()?;
        s.members.iter().all(|m| m.reachable).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_naming_the_problem() {
    let (cluster, leader) = started_cluster(1, |_| {}).await;
    let client = cluster.client(leader);
    let err = client.put_setting("no spaces allowed", "x").await.unwrap_err();
    assert!(err.to_string().contains("invalid_key"), "{err}");
    let err = client.get_setting("absent", false).await.unwrap_err();
    assert!(matches!(err, artstore_client::ClientError::NotFound(_)), "{err}");
    let err = client.remove(42).await.unwrap_err();
    assert!(matches!(err, artstore_client::ClientError::Conflict { .. }), "{err}");
}
