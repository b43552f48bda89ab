//! Catalog backup and restore: upload, back up through the CLI, lose every node's catalog,
//! restore every node from the backup, and read every file back from every node.

mod common;

use std::time::Duration;

use artstore_client::UploadOptions;
use common::*;
use sha2::Digest;

#[tokio::test]
async fn a_cluster_restored_from_a_backup_serves_every_file_backed_up() {
    let (mut cluster, _) = started_cluster(3, |_| {}).await;
    let client = cluster.client_for(&[1, 2, 3]);
    let mut uploaded = Vec::new();
    for i in 0..12u32 {
        let body: Vec<u8> = (0..2000 + i * 997).map(|b| (b * 31 + i) as u8).collect();
        let sha = hex::encode(sha2::Sha256::digest(&body));
        let info = client.upload(&format!("doc-{i}.bin"), body, &UploadOptions::default()).await.unwrap();
        assert_eq!(info.sha256, sha);
        uploaded.push((info.id, sha));
    }

    let dir = cluster.root().join("backup");
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let (out, url) = (dir.to_string_lossy().into_owned(), cluster.url(2));
    let said = cluster.run_cli(&["backup", "--url", &url, "--credentials", &creds, "--out", &out, "--output", "json"]);
    let manifest: artstore_client::wire::BackupManifest = serde_json::from_str(&said.unwrap()).unwrap();
    assert_eq!(manifest.files, uploaded.len() as u64, "{manifest:?}");
    use std::os::unix::fs::PermissionsExt;
    for f in ["catalog.snapshot", "manifest.json"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} is readable by others");
    }
    // A file uploaded after the backup is not in it.
    let late = client.upload("after.bin", b"not in the backup".to_vec(), &UploadOptions::default()).await.unwrap();
    // The same folder is never overwritten.
    let again = cluster.run_cli(&["backup", "--url", &url, "--credentials", &creds, "--out", &out]);
    assert!(format!("{again:?}").contains("already holds a backup"), "{again:?}");

    // Every catalog is lost; the disks with the chunks stay.
    for id in [1, 2, 3] {
        assert_eq!(cluster.terminate(id), Some(0), "node {id} stops cleanly");
        let data = cluster.config_path(id).parent().unwrap().join("data");
        std::fs::remove_dir_all(data.join("raft")).unwrap();
    }
    // A restore refuses a node that still has a catalog, and a damaged backup.
    let config1 = cluster.config_path(1).to_string_lossy().into_owned();
    let damaged = cluster.root().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::copy(dir.join("manifest.json"), damaged.join("manifest.json")).unwrap();
    let mut image = std::fs::read(dir.join("catalog.snapshot")).unwrap();
    let mid = image.len() / 2;
    image[mid] ^= 1;
    std::fs::write(damaged.join("catalog.snapshot"), &image).unwrap();
    let refused = cluster.run_cli(&["restore", "--from", &damaged.to_string_lossy(), "--config", &config1]);
    assert!(format!("{refused:?}").contains("damaged"), "{refused:?}");

    for id in [1, 2, 3] {
        let config = cluster.config_path(id).to_string_lossy().into_owned();
        cluster.run_cli(&["restore", "--from", &out, "--config", &config]).unwrap();
    }
    let twice = cluster.run_cli(&["restore", "--from", &out, "--config", &config1]);
    assert!(format!("{twice:?}").contains("already holds a Raft database"), "{twice:?}");

    cluster.start_all().unwrap();
    for id in [1, 2, 3] {
        cluster.wait_ready(id, READY).await.unwrap();
    }
    // Accounts and keys came back too: the bootstrap admin still gets tokens on every node.
    for id in [1, 2, 3] {
        for (file, sha) in &uploaded {
            let body = eventually(Duration::from_secs(20), "a restored file reads back", || async {
                cluster.client(id).download(file).await.ok()
            })
            .await;
            assert_eq!(&hex::encode(sha2::Sha256::digest(&body)), sha, "file {file} on node {id}");
        }
        assert!(cluster.client(id).download(&late.id).await.is_err(), "a file from after the backup came back");
    }
    // The restored cluster takes writes.
    let writer = cluster.client(1);
    writer.upload("new.bin", b"written after the restore".to_vec(), &UploadOptions::default()).await.unwrap();
}
