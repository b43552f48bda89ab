//! Mutual TLS on the cluster transport: a node whose certificate comes from another cluster's CA
//! can neither send Raft RPCs to this cluster nor be joined to it, and the refusal is logged.

mod common;

use std::time::Duration;

use artstore_chaos::LocalCluster;
use common::*;

#[tokio::test]
async fn a_node_with_a_foreign_ca_certificate_is_refused_in_both_directions() {
    let (cluster, leader) = started_cluster(3, |_| {}).await;
    let term_before = cluster.status(leader).await.unwrap().term;

    // A node of another cluster (its own CA) that believes node 1 of our cluster is its peer:
    // it campaigns, sending Vote RPCs to our node 1, which must refuse the connection.
    let a1 = cluster.node(1);
    let (a1_http, a1_quic) = (a1.http.clone(), a1.quic.clone());
    let mut foreign = LocalCluster::init(&bin(), 1, |_| {}).unwrap();
    foreign
        .add_node(4, |t| {
            let mut me = toml::Table::new();
            me.insert("node_id".into(), 4.into());
            me.insert("http_addr".into(), t["http"]["listen"].clone());
            me.insert("quic_addr".into(), t["quic"]["listen"].clone());
            let mut theirs = toml::Table::new();
            theirs.insert("node_id".into(), 1.into());
            theirs.insert("http_addr".into(), a1_http.clone().into());
            theirs.insert("quic_addr".into(), a1_quic.clone().into());
            t.insert("peers".into(), toml::Value::Array(vec![theirs.into(), me.into()]));
        })
        .unwrap();
    foreign.start(4).unwrap();

    eventually(Duration::from_secs(15), "node 1 logging the refusal", || async {
        cluster.log(1).contains("refused cluster connection").then_some(())
    })
    .await;
    eventually(Duration::from_secs(15), "the foreign node seeing the refusal", || async {
        foreign.log(4).contains("cannot connect to peer").then_some(())
    })
    .await;
    // Its votes never reached us: same leader, same term.
    let after = cluster.status(leader).await.unwrap();
    assert_eq!(after.leader_id, Some(leader));
    assert_eq!(after.term, term_before);

    // Joining it fails: our leader refuses its server certificate, so it never catches up.
    let f4 = foreign.node(4);
    let req = artstore_client::wire::JoinRequest {
        node_id: 4,
        http_addr: f4.http.clone(),
        quic_addr: f4.quic.clone(),
        catch_up_timeout_secs: Some(3),
    };
    let err = cluster.client(leader).join(&req).await.unwrap_err();
    assert!(err.to_string().contains("did not catch up"), "{err}");
    for id in cluster.node_ids() {
        eventually(Duration::from_secs(10), "membership back to three", || async {
            let s = cluster.status(id).await.ok()?;
            (s.members.len() == 3).then_some(())
        })
        .await;
    }
    assert!(cluster.log(leader).contains("cannot connect to peer"), "the leader logs why it cannot reach node 4");
}
