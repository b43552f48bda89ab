//! Durability on real clusters: scrub finds a flipped byte and repair restores a good copy; a node
//! down past the threshold has its replicas re-created elsewhere and its extra copies collected
//! when it returns; a node whose data folder is wiped rejoins and is refilled from its peers.

mod common;

use std::path::Path;
use std::time::Duration;

use artstore_client::{Client, UploadOptions};
use common::*;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

fn fast_repair(t: &mut toml::Table) {
    set(t, "storage", "chunk_size_bytes", CHUNK as i64);
    set(t, "storage", "repair_interval_secs", 1);
    set(t, "storage", "scrub_interval_secs", 1);
    set(t, "storage", "node_down_after_secs", 3);
    set(t, "storage", "gc_interval_secs", 1);
    set(t, "storage", "gc_grace_secs", 1);
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed).rotate_left((i % 3) as u32)).collect()
}

fn chunk_hashes(body: &[u8]) -> Vec<String> {
    body.chunks(CHUNK).map(|c| hex::encode(Sha256::digest(c))).collect()
}

fn intact(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| hex::encode(Sha256::digest(&b)) == sha256)
}

async fn leader_client(cluster: &LocalCluster) -> (u64, Client) {
    let ids = cluster.node_ids();
    let leader = cluster.wait_leader(&ids, READY).await.unwrap();
    (leader, cluster.client(leader))
}

#[tokio::test]
async fn scrub_finds_a_flipped_byte_and_repair_restores_the_replica() {
    let (cluster, _) = started_cluster(3, fast_repair).await;
    let body = data(3 * CHUNK + 100, 1);
    let file = cluster.client(1).upload("rot.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    let second = &chunk_hashes(&body)[1];
    let path = chunk_file(&cluster.node(2).dir, second).expect("R = 3: node 2 holds every chunk");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();

    // Nobody reads the file: scrub on node 2 must notice, and repair must rewrite the copy.
    eventually(Duration::from_secs(30), "the damaged copy rewritten", || async { intact(&path, second).then_some(()) })
        .await;
    let healed = eventually(Duration::from_secs(15), "the catalog healed", || async {
        cluster.client(1).get_file(&file.id).await.ok().filter(|f| f.missing_replicas == 0)
    })
    .await;
    assert!(healed.replicas.contains(&2));
    let node2 = cluster.client(2).repair_status().await.unwrap();
    assert!(node2.scrub.damaged_found >= 1, "{node2:?}");
    assert!(node2.scrub.passes >= 1);
    let (_, leader) = leader_client(&cluster).await;
    let status = leader.repair_status().await.unwrap();
    assert!(status.chunks_repaired >= 1, "{status:?}");
    assert_eq!(status.queued_files, 0);
    assert_eq!(cluster.client(2).download(&file.id).await.unwrap(), body);
}

#[tokio::test]
async fn a_node_down_too_long_is_replaced_and_its_extra_copies_collected_on_return() {
    let (mut cluster, _) = started_cluster(4, |t| {
        fast_repair(t);
        t.insert("replication_factor".into(), 2.into());
    })
    .await;
    let body = data(4 * CHUNK, 2);
    let hashes = chunk_hashes(&body);
    let file = cluster.client(1).upload("moved.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    let (leader, _) = leader_client(&cluster).await;
    // A node holding part of the file that is not the leader.
    let victim = *file.replicas.iter().find(|n| **n != leader).unwrap();
    let held: Vec<&String> = hashes.iter().filter(|h| chunk_file(&cluster.node(victim).dir, h).is_some()).collect();
    assert!(!held.is_empty());
    cluster.kill(victim);

    let moved = eventually(Duration::from_secs(40), "replicas re-created elsewhere", || async {
        cluster.client(leader).get_file(&file.id).await.ok().filter(|f| !f.replicas.contains(&victim))
    })
    .await;
    assert_eq!(moved.missing_replicas, 0);
    // Every chunk has two intact copies on the nodes still up.
    for h in &hashes {
        let copies = cluster
            .node_ids()
            .into_iter()
            .filter(|n| *n != victim)
            .filter(|n| chunk_file(&cluster.node(*n).dir, h).is_some_and(|p| intact(&p, h)))
            .count();
        assert!(copies >= 2, "chunk {h} has {copies} copies");
    }
    assert_eq!(cluster.client(leader).download(&file.id).await.unwrap(), body);

    // Back again: the record no longer lists it, so its old copies are garbage.
    cluster.start(victim).unwrap();
    cluster.wait_ready(victim, READY).await.unwrap();
    eventually(Duration::from_secs(30), "extra replicas collected", || async {
        held.iter().all(|h| chunk_file(&cluster.node(victim).dir, h).is_none()).then_some(())
    })
    .await;
    assert_eq!(cluster.client(victim).download(&file.id).await.unwrap(), body);
}

#[tokio::test]
async fn a_wiped_node_rejoins_and_is_refilled() {
    let (mut cluster, _) = started_cluster(3, fast_repair).await;
    let mut files = Vec::new();
    for i in 0..3u8 {
        let body = data(2 * CHUNK + i as usize, 10 + i);
        let f = cluster.client(1).upload(&format!("f{i}.bin"), body.clone(), &UploadOptions::default()).await.unwrap();
        files.push((f, body));
    }
    // Node 3 is not the leader, so the cluster keeps a quorum without it.
    let leader = cluster.wait_leader(&[1, 2, 3], READY).await.unwrap();
    let wiped = if leader == 3 { 2 } else { 3 };
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.node(wiped).dir.join("data")).unwrap();
    cluster.start(wiped).unwrap();
    cluster.wait_ready(wiped, Duration::from_secs(60)).await.unwrap();

    eventually(Duration::from_secs(60), "the wiped node refilled", || async {
        files
            .iter()
            .flat_map(|(_, body)| chunk_hashes(body))
            .all(|h| chunk_file(&cluster.node(wiped).dir, &h).is_some_and(|p| intact(&p, &h)))
            .then_some(())
    })
    .await;
    for (f, body) in &files {
        let healed = eventually(Duration::from_secs(15), "records healed", || async {
            cluster.client(wiped).get_file(&f.id).await.ok().filter(|x| x.missing_replicas == 0)
        })
        .await;
        assert!(healed.replicas.contains(&wiped));
        assert_eq!(&cluster.client(wiped).download(&f.id).await.unwrap(), body);
    }
}

/// Intact copies of `sha256` across the cluster's nodes.
fn copies(cluster: &LocalCluster, sha256: &str) -> Vec<u64> {
    cluster
        .node_ids()
        .into_iter()
        .filter(|n| chunk_file(&cluster.node(*n).dir, sha256).is_some_and(|p| intact(&p, sha256)))
        .collect()
}

#[tokio::test]
async fn a_joining_node_gets_its_share_and_a_drained_node_is_emptied_before_removal() {
    let r2 = |t: &mut toml::Table| {
        fast_repair(t);
        t.insert("replication_factor".into(), 2.into());
    };
    let (mut cluster, leader) = started_cluster(3, r2).await;
    let mut files = Vec::new();
    for i in 0..6u8 {
        let body = data(3 * CHUNK, 40 + i);
        let f = cluster.client(1).upload(&format!("r{i}.bin"), body.clone(), &UploadOptions::default()).await.unwrap();
        files.push((f, body));
    }
    let hashes: Vec<String> = files.iter().flat_map(|(_, b)| chunk_hashes(b)).collect();

    // A fourth node joins: placement now includes it, and chunks move to it.
    cluster.add_node(4, r2).unwrap();
    cluster.start(4).unwrap();
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let config = cluster.config_path(4).to_string_lossy().into_owned();
    cluster
        .run_cli(&["cluster", "join", "--url", &cluster.url(leader), "--credentials", &creds, "--config", &config])
        .unwrap();
    cluster.wait_ready(4, READY).await.unwrap();
    let reader = cluster.client_for(&[1, 2, 3, 4]);
    eventually(Duration::from_secs(60), "node 4 holding its share, two copies of everything", || async {
        // Every file stays readable while chunks move.
        for (f, body) in &files {
            assert_eq!(&reader.download(&f.id).await.ok()?, body);
        }
        let on4 = hashes.iter().filter(|h| copies(&cluster, h).contains(&4)).count();
        (on4 > 0 && hashes.iter().all(|h| copies(&cluster, h).len() == 2)).then_some(on4)
    })
    .await;
    for (f, _) in &files {
        let info = reader.get_file(&f.id).await.unwrap();
        assert_eq!(info.missing_replicas, 0);
    }

    // Drain node 4 through the CLI: it waits until the node holds nothing.
    let out = cluster
        .run_cli(&["cluster", "drain", "--url", &cluster.url(leader), "--credentials", &creds, "4", "--output", "json"])
        .unwrap();
    let drained: artstore_client::wire::DrainStatus = serde_json::from_str(&out).unwrap();
    assert_eq!((drained.node_id, drained.draining, drained.replicas_remaining), (4, true, 0), "{out}");
    for (f, body) in &files {
        let info = reader.get_file(&f.id).await.unwrap();
        assert!(!info.replicas.contains(&4) && info.missing_replicas == 0, "{info:?}");
        assert_eq!(&reader.download(&f.id).await.unwrap(), body);
    }
    for h in &hashes {
        let c: Vec<u64> = copies(&cluster, h).into_iter().filter(|n| *n != 4).collect();
        assert!(c.len() >= 2, "chunk {h} has copies on {c:?} besides node 4");
    }
    cluster.client(leader).remove(4).await.unwrap();
    for (f, body) in &files {
        assert_eq!(&cluster.client(1).download(&f.id).await.unwrap(), body);
    }
}

#[tokio::test]
async fn every_catalog_lost_and_recovered_from_sidecars_and_chunks() {
    let r2 = |t: &mut toml::Table| {
        set(t, "storage", "chunk_size_bytes", CHUNK as i64);
        t.insert("replication_factor".into(), 2.into());
    };
    let (mut cluster, _) = started_cluster(3, r2).await;
    let c = cluster.client(1);
    let mut files = Vec::new();
    for i in 0..5u8 {
        let body = data(i as usize * CHUNK + 77, 60 + i);
        let options = UploadOptions {
            description: Some(format!("отчёт номер {i}")),
            tags: vec!["recovered".into()],
            attributes: serde_json::json!({"n": i}).as_object().cloned(),
            retention_policy: (i == 4).then(|| "temporary".into()),
            ttl_days: (i == 4).then_some(3),
            ..Default::default()
        };
        files.push((c.upload(&format!("doc-{i}.bin"), body.clone(), &options).await.unwrap(), body));
    }

    // Every node loses its catalog (Raft log, state machine, search index); the elements survive.
    for id in [1, 2, 3] {
        cluster.terminate(id);
    }
    for id in [1, 2, 3] {
        let data_dir = cluster.node(id).dir.join("data");
        std::fs::remove_dir_all(data_dir.join("raft")).unwrap();
        let _ = std::fs::remove_dir_all(data_dir.join("index"));
    }
    cluster.start_all().unwrap();
    for id in [1, 2, 3] {
        cluster.wait_ready(id, Duration::from_secs(60)).await.unwrap();
    }
    cluster.wait_leader(&[1, 2, 3], READY).await.unwrap();
    let c = cluster.client_for(&[1, 2, 3]);
    assert!(c.list_files("", 10).await.unwrap().files.is_empty(), "the catalog is gone");

    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let dirs: Vec<String> =
        [1, 2, 3].iter().map(|n| cluster.node(*n).dir.join("data").to_string_lossy().into_owned()).collect();
    let url = cluster.url(2);
    let mut args = vec!["recover", "--url", &url, "--credentials", &creds, "--output", "json", "--from"];
    args.extend(dirs.iter().map(String::as_str));
    let out = cluster.run_cli(&args).unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["recovered"], 5, "{out}");
    assert_eq!(report["incomplete"].as_array().unwrap().len(), 0, "{out}");

    for (f, body) in &files {
        let got = c.get_file(&f.id).await.unwrap();
        assert_eq!((got.sha256.as_str(), got.size, got.name.as_str()), (f.sha256.as_str(), f.size, f.name.as_str()));
        assert_eq!(got.retention_policy, f.retention_policy);
        assert_eq!(got.custom_attributes, f.custom_attributes);
        let bytes = c.download(&f.id).await.unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), f.sha256);
        assert_eq!(&bytes, body);
    }
    let found = c.search(&artstore_client::Search::text("отчёты").tag("recovered").consistent()).await.unwrap();
    assert_eq!(found.total, 5);

    // A second run would overwrite a catalog that is no longer empty: refused without --force.
    let err = cluster.run_cli(&args).unwrap_err();
    match err {
        artstore_chaos::HarnessError::Command { code, stderr, .. } => {
            assert_eq!(code, Some(6), "{stderr}");
            assert!(stderr.contains("--force"), "{stderr}");
        }
        other => panic!("{other}"),
    }
    let mut forced = args.clone();
    forced.push("--force");
    // `--from` takes the rest of the arguments, so the flag goes before it.
    forced.retain(|a| *a != "--force");
    forced.insert(1, "--force");
    let out = cluster.run_cli(&forced).unwrap();
    assert!(out.contains("\"recovered\": 5"), "{out}");
}
