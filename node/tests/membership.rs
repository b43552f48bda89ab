//! Membership through the CLI: a fourth node joins (learner, then voter once caught up) and is
//! removed again; every node's status reflects each change.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn a_fourth_node_joins_through_the_cli_and_is_removed_again() {
    let (mut cluster, leader) = started_cluster(3, |_| {}).await;
    cluster.client(leader).put_setting("written.before.join", "yes").await.unwrap();

    cluster.add_node(4, |_| {}).unwrap();
    cluster.start(4).unwrap();
    // Not a member yet: it has no leader and so is not ready.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cluster.client(4).ready().await.is_err());

    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let config = cluster.config_path(4).to_string_lossy().into_owned();
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let out = cluster
        .run_cli(&[
            "cluster",
            "join",
            "--url",
            &cluster.url(follower),
            "--credentials",
            &creds,
            "--config",
            &config,
            "--output",
            "json",
        ])
        .unwrap();
    let joined: artstore_client::wire::ClusterStatus = serde_json::from_str(&out).unwrap();
    assert!(joined.members.iter().any(|m| m.node_id == 4 && m.voter), "{out}");

    for id in [1, 2, 3, 4] {
        eventually(Duration::from_secs(10), "four voters everywhere", || async {
            let s = cluster.status(id).await.ok()?;
            (s.members.len() == 4 && s.members.iter().all(|m| m.voter)).then_some(())
        })
        .await;
    }
    cluster.wait_ready(4, READY).await.unwrap();
    assert_eq!(cluster.client(4).get_setting("written.before.join", false).await.unwrap().value, "yes");

    let out =
        cluster.run_cli(&["cluster", "remove", "--url", &cluster.url(leader), "--credentials", &creds, "4"]).unwrap();
    assert!(out.contains("leader"), "{out}");
    for id in [1, 2, 3] {
        eventually(Duration::from_secs(10), "three members again", || async {
            let s = cluster.status(id).await.ok()?;
            (s.members.len() == 3 && s.members.iter().all(|m| m.node_id != 4)).then_some(())
        })
        .await;
    }
    // The cluster still commits without node 4.
    cluster.client(follower).put_setting("written.after.remove", "yes").await.unwrap();
}
