//! Downloads on a 3-node cluster with R = 2, so some node holds no replica of a file: it streams
//! the file from its peers. A flipped byte in one replica is caught by its hash, the download
//! still returns the right bytes, and the damaged replica is queued for repair in the catalog.

mod common;

use std::time::Duration;

use artstore_client::UploadOptions;
use common::*;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

fn configure(t: &mut toml::Table) {
    t.insert("replication_factor".into(), 2.into());
    set(t, "storage", "chunk_size_bytes", CHUNK as i64);
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed).rotate_left((i % 5) as u32)).collect()
}

#[tokio::test]
async fn nodes_without_a_replica_stream_from_peers_and_damaged_replicas_are_bypassed_and_reported() {
    let (cluster, _) = started_cluster(3, configure).await;
    let n1 = cluster.client(1);

    // One chunk, two replicas: the third node has none and reads it over QUIC.
    let small = data(CHUNK / 2, 1);
    let file = n1.upload("small.bin", small.clone(), &UploadOptions::default()).await.unwrap();
    assert_eq!(file.replicas.len(), 2);
    let outsider = (1..=3).find(|n| !file.replicas.contains(n)).unwrap();
    let via_outsider = cluster.client(outsider);
    assert_eq!(via_outsider.download(&file.id).await.unwrap(), small);
    assert_eq!(via_outsider.download_range(&file.id, 100, 199).await.unwrap(), small[100..200]);
    assert_eq!(via_outsider.download(&file.id).await.unwrap(), small, "second read comes from the cache");
    let metrics =
        cluster.http().get(format!("{}/metrics", cluster.url(outsider))).send().await.unwrap().text().await.unwrap();
    let hits: f64 = metrics
        .lines()
        .find(|l| l.starts_with("artstore_read_cache_hits_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(hits >= 1.0, "cache hits on node {outsider}: {hits}");

    // Four chunks; flip one byte in one replica of the second chunk.
    let big = data(4 * CHUNK - 10, 2);
    let file = n1.upload("big.bin", big.clone(), &UploadOptions::default()).await.unwrap();
    assert_eq!(file.missing_replicas, 0);
    let second = hex::encode(Sha256::digest(&big[CHUNK..2 * CHUNK]));
    let (victim, path) = (1..=3)
        .find_map(|n| chunk_file(&cluster.node(n).dir, &second).map(|p| (n, p)))
        .expect("some node holds the chunk");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1234] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    // The victim reads its local replica first, finds it corrupt, and serves the peer's copy.
    let via_victim = cluster.client(victim);
    assert_eq!(via_victim.download(&file.id).await.unwrap(), big);
    assert_eq!(
        via_victim.download_range(&file.id, CHUNK as u64 - 5, CHUNK as u64 + 5).await.unwrap(),
        big[CHUNK - 5..=CHUNK + 5]
    );
    let after = eventually(Duration::from_secs(10), "the damaged replica in the catalog", || async {
        n1.get_file(&file.id).await.ok().filter(|f| f.missing_replicas == 1)
    })
    .await;
    assert_eq!(after.sha256, file.sha256);
    assert!(cluster.log(victim).contains("corrupt"), "the corruption is logged");
    // Reads keep working from every node.
    for n in 1..=3 {
        assert_eq!(cluster.client(n).download(&file.id).await.unwrap(), big, "via node {n}");
    }
}
