//! The Rust SDK against a real 3-node cluster, as an application would use it: upload, search
//! and download with identical SHA-256; a node dying under the client; a token expiring during a
//! long session; resuming (and refusing) partial downloads; idempotent upload retries.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use artstore_client::{partial_path, ClientError, RetryPolicy, Search, UploadOptions};
use common::*;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

fn small_chunks(t: &mut toml::Table) {
    set(t, "storage", "chunk_size_bytes", CHUNK as i64);
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed).rotate_left((i % 3) as u32)).collect()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Rides out a leader election comfortably.
fn patient() -> RetryPolicy {
    RetryPolicy { max_attempts: 12, base: Duration::from_millis(200), cap: Duration::from_secs(2) }
}

#[tokio::test]
async fn upload_search_and_download_round_trip_with_identical_sha256() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    // Trusting the cluster CA for https:// (a TLS proxy) does not get in the way of plain HTTP.
    let ca = std::fs::read(cluster.root().join("ca").join("ca.pem")).unwrap();
    let client = cluster.client_for(&[1, 2, 3]).with_ca_cert(&ca).unwrap();
    assert!(matches!(cluster.client(1).with_ca_cert(b"not a certificate"), Err(ClientError::Invalid(_))));
    let dir = tempfile::tempdir().unwrap();

    // From a path, with progress reaching the total.
    let body = data(10 * CHUNK + 123, 1);
    let src = dir.path().join("квартальный отчёт.pdf");
    std::fs::write(&src, &body).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = {
        let seen = seen.clone();
        move |sent: u64, total: u64| seen.lock().unwrap().push((sent, total))
    };
    let options = UploadOptions {
        content_type: Some("application/pdf".into()),
        tags: vec!["quarterly".into()],
        attributes: serde_json::json!({"quarter": "Q3"}).as_object().cloned(),
        ..Default::default()
    };
    let from_path = client.upload_path(&src, "квартальный отчёт.pdf", &options, progress).await.unwrap();
    assert_eq!((from_path.size, from_path.sha256.clone()), (body.len() as u64, sha(&body)));
    assert_eq!(seen.lock().unwrap().last(), Some(&(body.len() as u64, body.len() as u64)));

    // From any AsyncRead of unknown length.
    let other = data(3 * CHUNK + 7, 2);
    let reader = std::io::Cursor::new(other.clone());
    let from_reader = client
        .upload_reader(
            "annex.bin",
            reader,
            None,
            &UploadOptions { tags: vec!["quarterly".into()], ..Default::default() },
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(from_reader.sha256, sha(&other));

    // Found through another node, immediately.
    let found = cluster.client(3).search(&Search::text("отчёты").tag("quarterly").consistent()).await.unwrap();
    assert_eq!(found.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec![from_path.id.as_str()]);
    assert_eq!(found.hits[0].sha256, sha(&body));
    let both = cluster.client(2).search(&Search::all().tag("quarterly").consistent()).await.unwrap();
    assert_eq!(both.total, 2);

    // Downloaded to a path and to a writer: the same bytes, the same SHA-256.
    let dst = dir.path().join("copy.pdf");
    let info = cluster.client(3).download_to_path(&found.hits[0].id, &dst, |_, _| {}).await.unwrap();
    let copy = std::fs::read(&dst).unwrap();
    assert_eq!((sha(&copy), info.sha256), (sha(&body), sha(&body)));
    assert!(!partial_path(&dst).exists(), "the partial file is renamed into place");
    let mut sink = Vec::new();
    cluster.client(2).download_to_writer(&from_reader.id, &mut sink, |_, _| {}).await.unwrap();
    assert_eq!(sha(&sink), sha(&other));
}

#[tokio::test]
async fn killing_the_node_the_client_uses_moves_the_session_to_another_node() {
    let (mut cluster, leader) = started_cluster(3, small_chunks).await;
    // The client talks to the leader first: losing it also costs the cluster its leader.
    let mut order = vec![leader];
    order.extend(cluster.node_ids().into_iter().filter(|n| *n != leader));
    let client = cluster.client_for(&order).with_retry_policy(patient());
    let body = data(4 * CHUNK + 5, 3);
    let tagged = UploadOptions { tags: vec!["session".into()], ..Default::default() };
    let before = client.upload("before.bin", body.clone(), &tagged).await.unwrap();
    assert_eq!(client.get_file(&before.id).await.unwrap().sha256, sha(&body));

    cluster.kill(leader);

    // Every kind of call goes on working through the survivors.
    assert_eq!(client.get_file(&before.id).await.unwrap().id, before.id);
    assert_eq!(client.download(&before.id).await.unwrap(), body);
    let after = client.upload("after.bin", data(CHUNK, 4), &tagged).await.unwrap();
    assert!(!after.replicas.contains(&leader) || after.missing_replicas > 0, "{after:?}");
    let hits = client.search(&Search::all().tag("session").consistent()).await.unwrap();
    let mut ids: Vec<&str> = hits.hits.iter().map(|h| h.id.as_str()).collect();
    ids.sort();
    let mut want = vec![before.id.as_str(), after.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let dir = tempfile::tempdir().unwrap();
    client.download_to_path(&after.id, &dir.path().join("after.bin"), |_, _| {}).await.unwrap();
    assert_ne!(cluster.wait_leader(&order[1..], READY).await.unwrap(), leader);

    // With every node gone the error says so, after the retries.
    let lonely = cluster.client_for(&[leader]).with_retry_policy(RetryPolicy::none());
    assert!(matches!(lonely.get_file(&before.id).await, Err(ClientError::Unavailable(_))));
}

#[tokio::test]
async fn a_token_that_expires_during_a_long_session_is_refreshed() {
    // The shortest lifetime the cluster allows; the SDK renews halfway through it.
    let (cluster, _) = started_cluster(3, |t| {
        small_chunks(t);
        set(t, "auth", "token_ttl_secs", 60);
    })
    .await;
    let client = cluster.client_for(&[1, 2]);
    let file = client.upload("session.txt", b"long session".to_vec(), &UploadOptions::default()).await.unwrap();
    let first = client.token().await.unwrap();
    assert_eq!(client.token().await.unwrap(), first, "cached while fresh");

    tokio::time::sleep(Duration::from_secs(32)).await;

    // The session simply continues; under the hood it holds a new token.
    assert_eq!(client.get_file(&file.id).await.unwrap().id, file.id);
    assert_eq!(client.download(&file.id).await.unwrap(), b"long session");
    let second = client.token().await.unwrap();
    assert_ne!(second, first, "the token was renewed before it ran out");
    let status = cluster
        .http()
        .get(format!("{}/api/v1/files/{}", cluster.url(3), file.id))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the renewed token is valid on every node");
}

#[tokio::test]
async fn an_interrupted_download_resumes_from_its_partial_file_and_is_verified() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let client = cluster.client_for(&[2, 3]);
    let body = data(6 * CHUNK + 999, 5);
    let file = client.upload("large.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("large.bin");
    let part = partial_path(&dst);

    // An earlier attempt stopped mid-chunk: only the rest is fetched, and the whole is verified.
    let already = 2 * CHUNK + 17;
    std::fs::write(&part, &body[..already]).unwrap();
    let seen = Mutex::new(Vec::new());
    let info = client.download_to_path(&file.id, &dst, |done, _| seen.lock().unwrap().push(done)).await.unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), body);
    assert_eq!(info.sha256, sha(&body));
    assert!(!part.exists());
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&(already as u64)), "resumed at the partial file's length");
    assert!(seen.iter().all(|d| *d >= already as u64), "nothing before it was fetched again: {seen:?}");
    assert_eq!(seen.last(), Some(&(body.len() as u64)));

    // A partial file holding other bytes: resuming cannot produce the file, and says so.
    std::fs::remove_file(&dst).unwrap();
    let mut wrong = body[..already].to_vec();
    wrong[100] ^= 0xff;
    std::fs::write(&part, &wrong).unwrap();
    let err = client.download_to_path(&file.id, &dst, |_, _| {}).await.unwrap_err();
    match &err {
        ClientError::ChecksumMismatch { id, expected, actual } => {
            assert_eq!((id.as_str(), expected.as_str()), (file.id.as_str(), sha(&body).as_str()));
            assert_ne!(actual, expected);
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!dst.exists() && !part.exists(), "nothing unverified is left behind");
    // ...and the next attempt starts from scratch and succeeds.
    client.download_to_path(&file.id, &dst, |_, _| {}).await.unwrap();
    assert_eq!(sha(&std::fs::read(&dst).unwrap()), sha(&body));
}

#[tokio::test]
async fn a_retried_upload_with_the_same_idempotency_key_creates_one_file() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let n1 = cluster.client(1);
    let before = n1.list_files("", 1000).await.unwrap().files.len();
    let body = data(2 * CHUNK + 1, 6);
    let options = UploadOptions { idempotency_key: Some("invoice-2026-0042".into()), ..Default::default() };

    // The application retries the same upload through other nodes, from memory and from a reader.
    let first = n1.upload("invoice.pdf", body.clone(), &options).await.unwrap();
    let again = cluster.client(2).upload("invoice.pdf", body.clone(), &options).await.unwrap();
    let reader = std::io::Cursor::new(body.clone());
    let third = cluster
        .client(3)
        .upload_reader("invoice.pdf", reader, Some(body.len() as u64), &options, |_, _| {})
        .await
        .unwrap();
    assert_eq!((again.id.as_str(), third.id.as_str()), (first.id.as_str(), first.id.as_str()));
    assert_eq!(n1.list_files("", 1000).await.unwrap().files.len(), before + 1, "one file, not three");
    let found = cluster.client(3).search(&Search::text("invoice").consistent()).await.unwrap();
    assert_eq!(found.total, 1);

    // Without a key of its own every upload is distinct (the SDK's generated keys differ).
    let a = n1.upload("note.txt", b"same bytes".to_vec(), &UploadOptions::default()).await.unwrap();
    let b = n1.upload("note.txt", b"same bytes".to_vec(), &UploadOptions::default()).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(n1.list_files("", 1000).await.unwrap().files.len(), before + 3);
}
