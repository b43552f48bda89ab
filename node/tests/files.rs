//! Uploads on a real 3-node cluster (R = 3): chunk-boundary sizes land byte-exact on every chosen
//! replica with the right hashes and sidecars, Unicode names survive, digests and idempotency
//! keys are honoured, quorum is enforced when nodes die, and element modes and retention rules
//! hold.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use artstore_client::wire::{FileInfo, UpdateFile};
use artstore_client::{ClientError, UploadOptions};
use common::*;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

fn small_chunks(t: &mut toml::Table) {
    set(t, "storage", "chunk_size_bytes", CHUNK as i64);
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).rotate_left((i % 7) as u32)).collect()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Every sidecar file under a node's element folders.
fn sidecars(node_dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.to_string_lossy().ends_with(".attr.json") {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&node_dir.join("data").join("elements"), &mut out);
    out
}

/// The sidecar of file `id` at `version` or later under node `dir`. Holders write sidecars when
/// they apply the record, shortly after the upload is acknowledged: this waits up to 10 s.
async fn sidecar(dir: &Path, id: &str, version: u64) -> (PathBuf, serde_json::Value) {
    eventually(Duration::from_secs(10), &format!("the sidecar of {id} (version {version})"), || async {
        sidecars(dir).into_iter().filter(|p| p.to_string_lossy().contains(id)).find_map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            (v["version"].as_u64()? >= version).then_some((p, v))
        })
    })
    .await
}

/// Checks node `dir` holds a sidecar for `file` listing chunks that are on its disk, intact.
async fn assert_replica(dir: &Path, file: &FileInfo, body: &[u8]) {
    let (sidecar, v) = sidecar(dir, &file.id, file.version).await;
    assert_eq!(v["schema_version"], "2.0");
    assert_eq!(v["sha256"], file.sha256);
    assert_eq!(v["name"], file.name);
    let element_dir = sidecar.ancestors().nth(6).unwrap(); // element/files/YYYY/MM/DD/HH/name
    let mut offset = 0;
    for c in v["chunks"].as_array().unwrap() {
        let hash = c["sha256"].as_str().unwrap();
        let size = c["size"].as_u64().unwrap() as usize;
        let on_disk = std::fs::read(element_dir.join("chunks").join(&hash[..2]).join(hash)).unwrap();
        assert_eq!(sha(&on_disk), hash);
        assert_eq!(on_disk, body[offset..offset + size]);
        offset += size;
    }
    assert_eq!(offset, body.len());
}

#[tokio::test]
async fn uploads_of_every_boundary_size_are_byte_exact_on_every_replica() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let writer = cluster.client(2);
    for (i, len) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17].into_iter().enumerate() {
        let body = data(len, i as u8);
        let file = writer.upload(&format!("size-{len}.bin"), body.clone(), &UploadOptions::default()).await.unwrap();
        assert_eq!((file.size, file.sha256.clone()), (len as u64, sha(&body)), "size {len}");
        assert_eq!(file.chunks as usize, len.div_ceil(CHUNK));
        assert_eq!(file.missing_replicas, 0);
        // Read back through another node.
        assert_eq!(cluster.client(3).download(&file.id).await.unwrap(), body, "size {len}");
        if len > 0 {
            assert_eq!(file.replicas, vec![1, 2, 3]);
            for id in [1, 2, 3] {
                assert_replica(&cluster.node(id).dir, &file, &body).await;
            }
        }
    }
}

#[tokio::test]
async fn unicode_names_digests_idempotency_and_metadata_updates() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let client = cluster.client(1);
    let body = data(200_000, 7);

    // Russian and emoji names survive in the record, the sidecar and the download headers.
    let name = "Отчёт за 2026 год 📄.pdf";
    let mut attrs = serde_json::Map::new();
    attrs.insert("отдел".into(), "бухгалтерия".into());
    let opts = UploadOptions {
        content_type: Some("application/pdf".into()),
        tags: vec!["финансы".into(), "2026".into()],
        attributes: Some(attrs.clone()),
        ..Default::default()
    };
    let file = client.upload(name, body.clone(), &opts).await.unwrap();
    assert_eq!(file.name, name);
    assert_eq!(file.custom_attributes, attrs);
    let got = cluster.client(3).get_file(&file.id).await.unwrap();
    assert_eq!(got, file);
    assert!(sidecar(&cluster.node(2).dir, &file.id, 1).await.0.to_string_lossy().contains("Отчёт_за_2026_год"));
    let token = client.token().await.unwrap();
    let resp = cluster
        .http()
        .get(format!("{}/api/v1/files/{}/content", cluster.url(2), file.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains("UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82"), "{disposition}");
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), format!("\"{}\"", file.sha256));

    // A digest that does not match: 422 and nothing committed.
    let before = client.list_files("", 1000).await.unwrap().files.len();
    let wrong = UploadOptions { sha256: Some(sha(b"something else")), ..Default::default() };
    let err = client.upload("bad.bin", body.clone(), &wrong).await.unwrap_err();
    assert!(matches!(err, ClientError::BadRequest { ref code, .. } if code == "digest_mismatch"), "{err}");
    let right = UploadOptions { sha256: Some(sha(&body)), ..Default::default() };
    client.upload("good.bin", body.clone(), &right).await.unwrap();
    assert_eq!(client.list_files("", 1000).await.unwrap().files.len(), before + 1);

    // A retried upload with the same Idempotency-Key returns the first record.
    let idem = UploadOptions { idempotency_key: Some("order-42".into()), ..Default::default() };
    let first = client.upload("once.bin", body.clone(), &idem).await.unwrap();
    let again = cluster.client(3).upload("once.bin", body.clone(), &idem).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(client.list_files("", 1000).await.unwrap().files.len(), before + 2);

    // Metadata update bumps the version and rewrites the sidecars.
    let update = UpdateFile { description: Some("годовой отчёт".into()), ..Default::default() };
    let updated = client.update_file(&file.id, &update).await.unwrap();
    assert_eq!(updated.version, 2);
    let (_, v) = sidecar(&cluster.node(3).dir, &file.id, 2).await;
    assert_eq!((v["version"].as_u64(), v["description"].as_str()), (Some(2), Some("годовой отчёт")));
}

#[tokio::test]
async fn a_dead_replica_node_is_recorded_as_missing_and_two_dead_nodes_fail_cleanly() {
    let (mut cluster, leader) = started_cluster(3, small_chunks).await;
    let victim = [1, 2, 3].into_iter().find(|n| *n != leader).unwrap();
    let survivor = [1, 2, 3].into_iter().find(|n| *n != leader && *n != victim).unwrap();
    cluster.kill(victim);
    // Wait until the leader no longer sees the victim.
    eventually(Duration::from_secs(10), "victim unreachable", || async {
        let s = cluster.status(leader).await.ok()?;
        s.members.iter().any(|m| m.node_id == victim && !m.reachable).then_some(())
    })
    .await;
    let body = data(5 * CHUNK, 3);
    let file = cluster.client(leader).upload("degraded.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    assert!(file.missing_replicas > 0, "the dead node's replicas are recorded as missing: {file:?}");
    assert!(!file.replicas.contains(&victim));
    assert_eq!(cluster.client(survivor).download(&file.id).await.unwrap(), body);

    // With a second node gone there is no write quorum (and no Raft majority): a clean failure.
    let before = cluster.client(leader).list_files("", 1000).await.unwrap().files.len();
    cluster.kill(survivor);
    let err = cluster.client(leader).upload("doomed.bin", body.clone(), &UploadOptions::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Unavailable(_) | ClientError::Server { .. }), "{err}");
    // Once a majority is back, the failed upload is nowhere.
    cluster.start(survivor).unwrap();
    cluster.wait_ready(survivor, READY).await.unwrap();
    let after = eventually(Duration::from_secs(20), "a listing with a majority back", || async {
        cluster.client(leader).list_files("", 1000).await.ok()
    })
    .await;
    assert_eq!(after.files.len(), before, "nothing committed");
    assert!(after.files.iter().all(|f| f.name != "doomed.bin"));
}

#[tokio::test]
async fn element_modes_and_retention_rules() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let c = cluster.client(1);
    let body = data(1000, 1);

    // Temporary files go to edit elements and may be deleted; permanent ones may not.
    let temp = c
        .upload(
            "draft.txt",
            body.clone(),
            &UploadOptions { retention_policy: Some("temporary".into()), ttl_days: Some(2), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(temp.expires_at.is_some());
    let (temp_sidecar, _) = sidecar(&cluster.node(3).dir, &temp.id, 1).await;
    c.delete_file(&temp.id).await.unwrap();
    assert!(matches!(c.get_file(&temp.id).await, Err(ClientError::NotFound(_))));
    // Every holder drops the deleted file's sidecar, so recovery from disks cannot bring it back.
    eventually(Duration::from_secs(10), "the deleted file's sidecar removed", || async {
        (!temp_sidecar.exists()).then_some(())
    })
    .await;
    let permanent = c.upload("contract.pdf", body.clone(), &UploadOptions::default()).await.unwrap();
    let err = c.delete_file(&permanent.id).await.unwrap_err();
    assert!(matches!(err, ClientError::Conflict { .. }), "{err}");

    // retention_until blocks deletion even of a temporary file.
    let locked = c
        .upload(
            "locked.txt",
            body.clone(),
            &UploadOptions {
                retention_policy: Some("temporary".into()),
                retention_until: Some("2099-01-01T00:00:00Z".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = c.delete_file(&locked.id).await.unwrap_err();
    assert!(matches!(err, ClientError::Conflict { ref reason } if reason.contains("retention")), "{err}");

    // Modes move forward only; edit stays edit; ro refuses uploads (507 when nothing is writable).
    assert!(matches!(c.set_element_mode(1, "default", "edit").await, Err(ClientError::Conflict { .. })));
    assert!(matches!(c.set_element_mode(1, "temp", "rw").await, Err(ClientError::Conflict { .. })));
    for n in [1, 2, 3] {
        assert_eq!(c.set_element_mode(n, "default", "ro").await.unwrap().mode, "ro");
    }
    assert!(matches!(c.set_element_mode(2, "default", "rw").await, Err(ClientError::Conflict { .. })));
    let err = c.upload("late.pdf", body.clone(), &UploadOptions::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::InsufficientStorage(_)), "{err}");
    // Metadata of files on ro elements is frozen too.
    let update = UpdateFile { description: Some("x".into()), ..Default::default() };
    assert!(matches!(c.update_file(&permanent.id, &update).await, Err(ClientError::Conflict { .. })));
    // The CLI does the same, and refuses to go back.
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let url = cluster.url(3);
    let out = cluster
        .run_cli(&["elements", "set-mode", "--url", &url, "--credentials", &creds, "3", "default", "ar"])
        .unwrap();
    assert!(out.contains("is now ar"), "{out}");
    let err = cluster
        .run_cli(&["elements", "set-mode", "--url", &url, "--credentials", &creds, "3", "default", "rw"])
        .unwrap_err();
    assert!(err.to_string().contains("forward only"), "{err}");
    let listed = cluster.run_cli(&["elements", "list", "--url", &url, "--credentials", &creds]).unwrap();
    assert!(listed.contains("ar") && listed.contains("temp"), "{listed}");
    // Mode changes are audited.
    let audited = c.audit(1, 1000, Some("element.mode")).await.unwrap().records;
    assert!(audited.iter().filter(|r| r.outcome == "ok").count() >= 3);
}

/// Elements `a` (small, filled first) and `b` (after it), plus the edit element `temp`; thresholds
/// scaled down so that `a` is full once less than a tenth of it is free.
fn two_rw_elements(a_capacity: i64) -> impl Fn(&mut toml::Table) {
    move |t: &mut toml::Table| {
        small_chunks(t);
        let data = t["data_dir"].as_str().unwrap().to_string();
        let element = |name: &str, mode: &str, priority: i64, cap: Option<i64>| {
            let mut e = toml::Table::new();
            e.insert("name".into(), name.into());
            e.insert("location".into(), format!("{data}/elements/{name}").into());
            e.insert("mode".into(), mode.into());
            e.insert("priority".into(), priority.into());
            if let Some(c) = cap {
                e.insert("capacity_bytes".into(), c.into());
            }
            toml::Value::Table(e)
        };
        let storage = t["storage"].as_table_mut().unwrap();
        storage.insert(
            "elements".into(),
            toml::Value::Array(vec![
                element("a", "rw", 0, Some(a_capacity)),
                // An explicit capacity: the host's own free space must not decide the test.
                element("b", "rw", 1, Some(1 << 40)),
                element("temp", "edit", 0, None),
            ]),
        );
        let mut th = toml::Table::new();
        for (k, v) in [("warning", 30.0), ("critical", 20.0), ("full", 10.0)] {
            th.insert(format!("{k}_percent"), v.into());
            th.insert(format!("{k}_free_bytes"), 0.into());
        }
        storage.insert("rw_thresholds".into(), toml::Value::Table(th));
    }
}

#[tokio::test]
async fn a_full_rw_element_turns_ro_and_uploads_move_to_the_next_by_priority() {
    let (cluster, _) = started_cluster(3, two_rw_elements(400_000)).await;
    let c = cluster.client(1);
    let first = c.upload("first.bin", data(380_000, 1), &UploadOptions::default()).await.unwrap();
    let holds = |file: &FileInfo, element: &str| {
        let (dir, id, element) = (cluster.node(2).dir.clone(), file.id.clone(), format!("elements/{element}/"));
        async move { sidecar(&dir, &id, 1).await.0.to_string_lossy().contains(&element) }
    };
    assert!(holds(&first, "a").await, "the first element by priority fills first");
    eventually(Duration::from_secs(15), "element a turned ro everywhere", || async {
        let els = c.storage_elements().await.ok()?.elements;
        els.iter().filter(|e| e.name == "a").all(|e| e.mode == "ro").then_some(())
    })
    .await;
    let second = c.upload("second.bin", data(1000, 2), &UploadOptions::default()).await.unwrap();
    assert!(holds(&second, "b").await, "uploads moved on to element b");
    assert_eq!(c.download(&first.id).await.unwrap(), data(380_000, 1), "files on the ro element stay readable");
}

#[tokio::test]
async fn when_no_element_has_room_uploads_get_507_before_any_byte_is_stored() {
    let (cluster, _) = started_cluster(1, |t| {
        two_rw_elements(1)(t);
        // Make b tiny too.
        let els = t["storage"]["elements"].as_array().cloned().unwrap();
        let els: Vec<toml::Value> = els
            .into_iter()
            .map(|mut e| {
                if e["name"].as_str() == Some("b") {
                    e.as_table_mut().unwrap().insert("capacity_bytes".into(), 1.into());
                }
                e
            })
            .collect();
        t["storage"].as_table_mut().unwrap().insert("elements".into(), toml::Value::Array(els));
    })
    .await;
    let c = cluster.client(1);
    let err = eventually(Duration::from_secs(15), "uploads refused with 507", || async {
        match c.upload("x.bin", data(10, 0), &UploadOptions::default()).await {
            Err(e @ ClientError::InsufficientStorage(_)) => Some(e),
            _ => None,
        }
    })
    .await;
    assert!(err.to_string().contains("rw"), "{err}");
    // Temporary uploads still go to the edit element.
    let temp = UploadOptions { retention_policy: Some("temporary".into()), ..Default::default() };
    c.upload("t.bin", data(10, 0), &temp).await.unwrap();
}

fn chunk_files(node_dir: &Path, element: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(node_dir.join("data/elements").join(element).join("chunks")) {
        for d in dirs.flatten() {
            out.extend(std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.path()));
        }
    }
    out
}

fn fast_collection(t: &mut toml::Table) {
    small_chunks(t);
    set(t, "storage", "collector_interval_secs", 1);
    set(t, "storage", "gc_interval_secs", 1);
    set(t, "storage", "gc_grace_secs", 1);
}

#[tokio::test]
async fn temporary_files_expire_and_their_chunks_are_collected() {
    let (cluster, _) = started_cluster(3, fast_collection).await;
    let c = cluster.client(1);
    let opts = UploadOptions { retention_policy: Some("temporary".into()), ttl_seconds: Some(2), ..Default::default() };
    let file = c.upload("scratch.bin", data(3 * CHUNK, 9), &opts).await.unwrap();
    assert_eq!(chunk_files(&cluster.node(2).dir, "temp").len(), 3);
    eventually(Duration::from_secs(20), "the file expired", || async {
        matches!(c.get_file(&file.id).await, Err(ClientError::NotFound(_))).then_some(())
    })
    .await;
    let expired = c.audit(1, 1000, Some("file.expire")).await.unwrap().records;
    assert!(expired.iter().any(|r| r.target == file.id));
    for n in [1, 2, 3] {
        eventually(Duration::from_secs(20), "chunks collected", || async {
            chunk_files(&cluster.node(n).dir, "temp").is_empty().then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn finalize_makes_a_temporary_file_permanent_under_the_same_id() {
    let (cluster, _) = started_cluster(3, fast_collection).await;
    let c = cluster.client(2);
    let body = data(2 * CHUNK + 5, 4);
    let opts = UploadOptions { retention_policy: Some("temporary".into()), ..Default::default() };
    let temp = c.upload("draft.docx", body.clone(), &opts).await.unwrap();
    let done = cluster.client(3).finalize_file(&temp.id).await.unwrap();
    assert_eq!(
        (done.id.clone(), done.sha256.clone(), done.retention_policy.as_str()),
        (temp.id.clone(), temp.sha256.clone(), "permanent")
    );
    assert!(done.expires_at.is_none());
    assert_eq!(c.download(&temp.id).await.unwrap(), body);
    assert!(
        matches!(c.delete_file(&temp.id).await, Err(ClientError::Conflict { .. })),
        "permanent files are not deleted"
    );
    for n in [1, 2, 3] {
        assert_eq!(chunk_files(&cluster.node(n).dir, "default").len(), 3, "node {n} holds the permanent copy");
        eventually(Duration::from_secs(20), "temporary copy collected", || async {
            chunk_files(&cluster.node(n).dir, "temp").is_empty().then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_replica_node_killed_mid_stream_leaves_a_committed_file_with_missing_replicas() {
    let (mut cluster, leader) = started_cluster(3, small_chunks).await;
    let victim = [1, 2, 3].into_iter().find(|n| *n != leader).unwrap();
    let url = cluster.url(leader);
    let token = cluster.client(leader).token().await.unwrap();
    let piece = data(CHUNK, 5);
    let pieces = 30;
    // A body that trickles in, so the victim dies while chunks are still being replicated.
    let body = futures::stream::unfold(0, move |i| {
        let piece = piece.clone();
        async move {
            if i == pieces {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
            Some((Ok::<_, std::io::Error>(piece), i + 1))
        }
    });
    let http = cluster.http();
    let upload = tokio::spawn(async move {
        http.post(format!("{url}/api/v1/files?name=trickle.bin"))
            .bearer_auth(token)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.kill(victim);
    let resp = upload.await.unwrap();
    assert_eq!(resp.status(), 201);
    let file: FileInfo = resp.json().await.unwrap();
    assert_eq!(file.size, (pieces * CHUNK) as u64);
    assert!(file.missing_replicas > 0, "{file:?}");
    let expected: Vec<u8> = (0..pieces).flat_map(|_| data(CHUNK, 5)).collect();
    assert_eq!(cluster.client(leader).download(&file.id).await.unwrap(), expected);
}

#[tokio::test]
async fn a_100_mib_upload_is_streamed_and_reads_back_identically() {
    let (cluster, _) = started_cluster(3, |_| {}).await;
    let body = data(100 * 1024 * 1024, 11);
    let file = cluster.client(1).upload("big.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    assert_eq!((file.size, file.chunks), (body.len() as u64, 25));
    assert_eq!(file.sha256, sha(&body));
    let back = cluster.client(3).download(&file.id).await.unwrap();
    assert!(back == body, "download differs");
}

#[tokio::test]
async fn multipart_and_batch_uploads() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let c = cluster.client(1);
    let token = c.token().await.unwrap();
    let http = cluster.http();
    let big = data(3 * 1024 * 1024 + 1, 8); // above the 2 MB limit JSON bodies have
    let meta = serde_json::json!({"name": "скан.tiff", "tags": ["scan"], "custom_attributes": {"pages": 12}});
    let form = reqwest::multipart::Form::new().text("metadata", meta.to_string()).part(
        "file",
        reqwest::multipart::Part::bytes(big.clone()).file_name("ignored.tiff").mime_str("image/tiff").unwrap(),
    );
    let resp =
        http.post(format!("{}/api/v1/files", cluster.url(2))).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let file: FileInfo = resp.json().await.unwrap();
    assert_eq!(
        (file.name.as_str(), file.content_type.as_str(), file.size),
        ("скан.tiff", "image/tiff", big.len() as u64)
    );
    assert_eq!(file.custom_attributes["pages"], 12);
    assert_eq!(c.download(&file.id).await.unwrap(), big);

    // A batch: each file is committed or refused on its own.
    let form = reqwest::multipart::Form::new()
        .text("metadata", serde_json::json!({"name": "a.txt"}).to_string())
        .part("file", reqwest::multipart::Part::bytes(b"first".to_vec()))
        .text("metadata", serde_json::json!({"name": "b.txt", "retention_policy": "forever"}).to_string())
        .part("file", reqwest::multipart::Part::bytes(b"second".to_vec()))
        .part("file", reqwest::multipart::Part::bytes(b"third".to_vec()).file_name("c.txt"));
    let resp = http
        .post(format!("{}/api/v1/files/batch", cluster.url(3)))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let statuses: Vec<u64> = v["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![201, 400, 201]);
    assert_eq!(v["results"][1]["error"]["code"], "invalid_policy");
    assert_eq!(v["results"][2]["file"]["name"], "c.txt");
    let id = v["results"][0]["file"]["id"].as_str().unwrap();
    assert_eq!(c.download(id).await.unwrap(), b"first");
}

#[tokio::test]
async fn compressed_uploads_are_stored_smaller_and_download_byte_exact() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let c = cluster.client(1);
    let text: Vec<u8> = "Архив документов — archive of documents. ".repeat(20_000).into_bytes();
    let opts = UploadOptions { compress: true, retention_policy: Some("temporary".into()), ..Default::default() };
    let file = c.upload("log.txt", text.clone(), &opts).await.unwrap();
    assert_eq!((file.size, file.sha256.clone()), (text.len() as u64, sha(&text)));
    let stored: u64 =
        chunk_files(&cluster.node(2).dir, "temp").iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(stored * 4 < text.len() as u64, "stored {stored} bytes for {} of text", text.len());
    assert_eq!(cluster.client(3).download(&file.id).await.unwrap(), text);
    // Incompressible data is stored as it is.
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let plain = c.upload("noise.bin", noise.clone(), &opts).await.unwrap();
    assert_eq!(c.download(&plain.id).await.unwrap(), noise);
    // Finalizing copies the compressed chunks as they are.
    let done = c.finalize_file(&file.id).await.unwrap();
    assert_eq!(done.retention_policy, "permanent");
    assert_eq!(cluster.client(2).download(&file.id).await.unwrap(), text);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_no_record_and_its_chunks_are_collected() {
    let (cluster, _) = started_cluster(3, fast_collection).await;
    let c = cluster.client(1);
    let token = c.token().await.unwrap();
    let url = cluster.url(1);
    let piece = data(CHUNK, 6);
    // Five chunks, then the body fails (as when a client goes away).
    let body = futures::stream::unfold(0, move |i| {
        let piece = piece.clone();
        async move {
            match i {
                0..=4 => Some((Ok(piece), i + 1)),
                5 => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Some((Err(std::io::Error::other("client went away")), i + 1))
                }
                _ => None,
            }
        }
    });
    let _ = cluster
        .http()
        .post(format!("{url}/api/v1/files?name=abandoned.bin"))
        .bearer_auth(token)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    let written: usize = [1, 2, 3].iter().map(|n| chunk_files(&cluster.node(*n).dir, "default").len()).sum();
    assert!(written > 0, "chunks were stored before the client went away");
    assert!(c.list_files("", 100).await.unwrap().files.iter().all(|f| f.name != "abandoned.bin"), "nothing committed");
    for n in [1, 2, 3] {
        eventually(Duration::from_secs(20), "orphan chunks collected", || async {
            chunk_files(&cluster.node(n).dir, "default").is_empty().then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn an_object_store_element_holds_chunks_and_sidecars() {
    let stores = tempfile::tempdir().unwrap();
    let base = stores.path().to_path_buf();
    let (cluster, _) = started_cluster(3, |t| {
        small_chunks(t);
        let data = t["data_dir"].as_str().unwrap().to_string();
        let node = t["node_id"].as_integer().unwrap();
        let store = base.join(format!("node{node}"));
        std::fs::create_dir_all(&store).unwrap();
        let mut obj = toml::Table::new();
        obj.insert("name".into(), "objects".into());
        obj.insert("location".into(), format!("file://{}", store.display()).into());
        obj.insert("mode".into(), "rw".into());
        let mut temp = toml::Table::new();
        temp.insert("name".into(), "temp".into());
        temp.insert("location".into(), format!("{data}/elements/temp").into());
        temp.insert("mode".into(), "edit".into());
        t["storage"]
            .as_table_mut()
            .unwrap()
            .insert("elements".into(), toml::Value::Array(vec![toml::Value::Table(obj), toml::Value::Table(temp)]));
    })
    .await;
    let body = data(3 * CHUNK + 3, 12);
    let file = cluster.client(1).upload("in-the-store.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    assert_eq!(cluster.client(3).download(&file.id).await.unwrap(), body);
    for n in [1, 2, 3] {
        let root = stores.path().join(format!("node{n}"));
        let chunks: usize = std::fs::read_dir(root.join("chunks"))
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).unwrap().count())
            .sum();
        assert_eq!(chunks, 4, "node {n}");
        // The holder writes the sidecar when it applies the record, right after the upload.
        eventually(Duration::from_secs(10), &format!("a sidecar in node {n}'s object store"), || async {
            let mut stack = vec![root.join("files")];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    } else if e.path().to_string_lossy().contains(&file.id) {
                        return Some(());
                    }
                }
            }
            None
        })
        .await;
    }
}

#[tokio::test]
async fn byte_ranges_read_only_what_is_asked_even_from_compressed_chunks() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let c = cluster.client(1);
    let token = c.token().await.unwrap();
    let http = cluster.http();
    let text: Vec<u8> = (0..3 * CHUNK + 100).map(|i| b"abcdefghij"[i % 10] ^ ((i / 7000) as u8)).collect();
    for compress in [false, true] {
        let file =
            c.upload("ranged.txt", text.clone(), &UploadOptions { compress, ..Default::default() }).await.unwrap();
        let url = format!("{}/api/v1/files/{}/content", cluster.url(2), file.id);
        let get = |range: String| http.get(&url).bearer_auth(&token).header("range", range).send();
        let n = text.len();
        for (spec, from, to) in [
            ("bytes=0-0".to_string(), 0, 0),
            (format!("bytes={}-{}", CHUNK - 5, CHUNK + 5), CHUNK - 5, CHUNK + 5),
            (format!("bytes={}-", n - 10), n - 10, n - 1),
            ("bytes=-7".to_string(), n - 7, n - 1),
            (format!("bytes=100-{}", 10 * n), 100, n - 1),
        ] {
            let resp = get(spec.clone()).await.unwrap();
            assert_eq!(resp.status(), 206, "{spec}");
            assert_eq!(resp.headers()["content-range"].to_str().unwrap(), format!("bytes {from}-{to}/{n}"));
            assert_eq!(resp.bytes().await.unwrap().to_vec(), text[from..=to].to_vec(), "{spec} compressed={compress}");
        }
        let resp = get(format!("bytes={n}-")).await.unwrap();
        assert_eq!(resp.status(), 416);
        assert_eq!(resp.headers()["content-range"].to_str().unwrap(), format!("bytes */{n}"));
        // If-Range with another entity tag: the whole body.
        let resp = http
            .get(&url)
            .bearer_auth(&token)
            .header("range", "bytes=0-9")
            .header("if-range", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), n);
        let head = http.head(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"].to_str().unwrap(), n.to_string());
        assert_eq!(head.headers()["accept-ranges"], "bytes");
    }
}

#[tokio::test]
async fn the_cli_uploads_and_downloads_with_checksums() {
    let (cluster, _) = started_cluster(3, small_chunks).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("договор.pdf");
    let body = data(5 * CHUNK + 9, 21);
    std::fs::write(&src, &body).unwrap();
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let url = format!("{},{}", cluster.url(1), cluster.url(2));
    let out = cluster
        .run_cli(&[
            "upload",
            "--url",
            &url,
            "--credentials",
            &creds,
            "--tag",
            "contracts",
            "--attr",
            "client=ООО Ромашка",
            "--output",
            "json",
            src.to_str().unwrap(),
        ])
        .unwrap();
    let file: FileInfo = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((file.name.as_str(), file.sha256.clone()), ("договор.pdf", sha(&body)));
    assert_eq!(file.custom_attributes["client"], "ООО Ромашка");
    let dst = dir.path().join("copy.pdf");
    cluster
        .run_cli(&[
            "download",
            "--url",
            &cluster.url(3),
            "--credentials",
            &creds,
            &file.id,
            "-o",
            dst.to_str().unwrap(),
        ])
        .unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), body);
    let err = cluster.run_cli(&["upload", "--url", &url, "--credentials", &creds, "/no/such/file"]).unwrap_err();
    assert!(err.to_string().contains("/no/such/file"), "{err}");
    // Exit codes scripts can rely on: 4 not found, 3 bad credentials.
    let err = cluster
        .run_cli(&["download", "--url", &url, "--credentials", &creds, "01a00000-0000-7000-8000-000000000000"])
        .unwrap_err();
    assert!(matches!(err, artstore_chaos::HarnessError::Command { code: Some(4), .. }), "{err}");
    let err = cluster
        .run_cli(&["download", "--url", &url, "--client-id", "admin", "--client-secret", "Wrong-Secret-123", &file.id])
        .unwrap_err();
    assert!(matches!(err, artstore_chaos::HarnessError::Command { code: Some(3), .. }), "{err}");
}
