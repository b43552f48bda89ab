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

/// The audit log filtered by time and actor, through the SDK and the CLI: only the records of the
/// window, and a time that is not one is a 400 naming it.
#[tokio::test]
async fn audit_records_are_filtered_by_time_and_actor() {
    let (cluster, _) = started_cluster(1, |_| {}).await;
    let admin = cluster.client(1);
    admin.rotate_keys().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let split = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    admin.rotate_keys().await.unwrap();
    let all = admin.audit(1, 1000, Some("key.rotate")).await.unwrap().records;
    assert_eq!(all.len(), 2, "{all:?}");
    let page = |since: Option<&str>, until: Option<&str>| artstore_client::AuditFilter {
        from: 1,
        limit: 1000,
        action: Some("key.rotate".into()),
        since: since.map(String::from),
        until: until.map(String::from),
        ..Default::default()
    };
    let before = admin.audit_where(&page(None, Some(&split))).await.unwrap().records;
    let after = admin.audit_where(&page(Some(&split), None)).await.unwrap().records;
    assert_eq!((before.len(), after.len()), (1, 1), "{before:?} {after:?}");
    assert!(before[0].seq < after[0].seq);
    let mine = artstore_client::AuditFilter { from: 1, limit: 1000, actor: Some("admin".into()), ..Default::default() };
    assert!(admin.audit_where(&mine).await.unwrap().records.iter().all(|r| r.actor == "admin"));
    let bad = admin.audit_where(&page(Some("yesterday"), None)).await.unwrap_err().to_string();
    assert!(bad.contains("since"), "{bad}");

    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let out = cluster
        .run_cli(&[
            "audit",
            "list",
            "--url",
            &cluster.url(1),
            "--credentials",
            &creds,
            "--action",
            "key.rotate",
            "--since",
            &split,
        ])
        .unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
}
