//! Membership through the CLI: a fourth node joins (learner, then voter once caught up) and is
//! removed again; every node's status reflects each change.

mod common;

use std::time::Duration;

use common::*;

/// The bootstrap admin's credentials file of the test cluster.
fn credentials(cluster: &LocalCluster) -> String {
    cluster.root().join("admin-credentials.json").to_string_lossy().into_owned()
}

/// `artstore cluster join` through `through`, as the bootstrap admin, with `args` after.
fn join(cluster: &LocalCluster, through: u64, args: &[&str]) -> Result<String, artstore_chaos::HarnessError> {
    let (url, creds) = (cluster.url(through), credentials(cluster));
    let mut all = vec!["cluster", "join", "--url", &url, "--credentials", &creds];
    all.extend_from_slice(args);
    cluster.run_cli(&all)
}

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
    let out = join(&cluster, follower, &["--config", &config, "--output", "json"]).unwrap();
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

    let creds = credentials(&cluster);
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

/// Nodes known by DNS name (compose services, Kubernetes pods) join the same way: the leader
/// dials the new node by its name.
#[tokio::test]
async fn a_node_joins_by_dns_name() {
    let (mut cluster, leader) = started_cluster(3, |_| {}).await;
    if cluster.host() != "127.0.0.1" {
        eprintln!("skipped: `localhost` names 127.0.0.1 and this cluster runs on {}", cluster.host());
        return;
    }
    cluster.add_node(4, |_| {}).unwrap();
    cluster.start(4).unwrap();
    let by_name = |addr: String| addr.replacen("127.0.0.1", "localhost", 1);
    let http = by_name(cluster.url(4).rsplit("//").next().unwrap_or_default().to_string());
    let quic = by_name(cluster.quic_addr(4));
    let out =
        join(&cluster, leader, &["--node-id", "4", "--http-addr", &http, "--quic-addr", &quic, "--output", "json"])
            .unwrap();
    let joined: artstore_client::wire::ClusterStatus = serde_json::from_str(&out).unwrap();
    let four = joined.members.iter().find(|m| m.node_id == 4).expect("node 4 is a member");
    assert!(four.voter && four.quic_addr == quic, "{out}");
    cluster.wait_ready(4, READY).await.unwrap();
    cluster.client(4).put_setting("written.through.named.node", "yes").await.unwrap();

    // What is not a host:port is still refused, naming the field.
    let refused = join(&cluster, leader, &["--node-id", "5", "--http-addr", "under_score:8080", "--quic-addr", &quic]);
    let why = format!("{refused:?}");
    assert!(refused.is_err() && why.contains("http_addr"), "{why}");
}

/// `GET /api/v1/cluster/status` on the leader says how far each member's log is; a follower
/// knows only its own.
#[tokio::test]
async fn the_leader_reports_each_members_log_index() {
    let (c, leader) = started_cluster(3, |_| {}).await;
    c.client(leader).put_setting("probe", "1").await.unwrap();
    let s = eventually(std::time::Duration::from_secs(10), "every member caught up", || async {
        let s = c.status(leader).await.ok()?;
        s.members.iter().all(|m| m.matched_index >= Some(s.commit_index)).then_some(s)
    })
    .await;
    assert_eq!(s.members.len(), 3);
    let follower = c.node_ids().into_iter().find(|&n| n != leader).unwrap();
    let f = c.status(follower).await.unwrap();
    for m in &f.members {
        assert_eq!(m.matched_index.is_some(), m.node_id == follower, "{m:?}");
    }
}
