//! The audit chain: a record modified on one node's disk is found by `artstore audit verify`,
//! which names it, while the untouched nodes still verify.

mod common;

use artstore_raft::store::engine::Engine;
use common::*;

#[tokio::test]
async fn a_modified_audit_record_is_detected_and_named() {
    let (mut cluster, _) = started_cluster(3, |_| {}).await;
    let admin = cluster.client(1);
    // Some audited activity: tokens, an account, a key rotation.
    let created = admin
        .create_account(&artstore_client::wire::CreateServiceAccount {
            name: "auditee".into(),
            roles: vec!["reader".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    admin.rotate_keys().await.unwrap();
    let records = admin.audit(1, 1000, None).await.unwrap().records;
    assert!(records.len() >= 3, "{records:?}");
    let target = records.iter().find(|r| r.action == "account.create").unwrap();
    assert_eq!(target.target, created.account.client_id);
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let out = cluster.run_cli(&["audit", "verify", "--url", &cluster.url(2), "--credentials", &creds]).unwrap();
    assert!(out.contains("intact"), "{out}");

    // Make node 2's copy of that record say something else.
    let last = cluster.status(1).await.unwrap().commit_index;
    common::eventually(std::time::Duration::from_secs(5), "node 2 caught up", || async {
        (cluster.status(2).await.ok()?.applied_index >= last).then_some(())
    })
    .await;
    cluster.terminate(2);
    {
        let engine = Engine::open(&cluster.node(2).dir.join("data").join("raft")).unwrap();
        let tree = engine.tree("catalog").unwrap();
        let key = format!("audit/{:020}", target.seq);
        let mut record: serde_json::Value =
            serde_json::from_slice(&tree.get(key.as_bytes()).unwrap().unwrap()).unwrap();
        record["event"]["actor"] = "nobody".into();
        tree.insert(key.as_bytes(), &serde_json::to_vec(&record).unwrap()).unwrap();
        engine.flush().unwrap();
    }
    cluster.start(2).unwrap();
    cluster.wait_ready(2, READY).await.unwrap();

    let report = cluster.client(2).verify_audit().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken_seq, Some(target.seq));
    assert!(report.reason.unwrap().contains("modified"));
    let err = cluster.run_cli(&["audit", "verify", "--url", &cluster.url(2), "--credentials", &creds]).unwrap_err();
    assert!(err.to_string().contains(&format!("record {}", target.seq)), "{err}");
    assert!(cluster.client(1).verify_audit().await.unwrap().ok, "the other nodes' chains are intact");
}
