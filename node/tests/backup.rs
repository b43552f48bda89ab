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

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server (`ARTSTORE_MOTO_SERVER`, else `moto_server` on the PATH), or why not.
async fn moto() -> Result<Moto, String> {
    let bin = std::env::var("ARTSTORE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let child = std::process::Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{bin}: {e} (pip install 'moto[server]', or set ARTSTORE_MOTO_SERVER)"))?;
    let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if reqwest::get(&moto.endpoint).await.is_ok() {
            return Ok(moto);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{bin} did not answer on {}", moto.endpoint))
}

#[tokio::test]
async fn a_backup_in_an_s3_bucket_seeds_a_node_that_lost_its_catalog() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let moto = match moto().await {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: no S3 server to test against: {why}");
            return;
        }
    };
    let bucket = "artstore-backups";
    let made = reqwest::Client::new().put(format!("{}/{bucket}", moto.endpoint)).send().await.unwrap();
    assert!(made.status().is_success(), "bucket: {}", made.status());
    let s3 = [
        ("AWS_ENDPOINT", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin()).args(args).envs(s3).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };

    let (mut cluster, _) = started_cluster(1, |_| {}).await;
    let client = cluster.client(1);
    let mut uploaded = Vec::new();
    for i in 0..5u32 {
        let body: Vec<u8> = (0..3000 + i * 101).map(|b| (b * 7 + i) as u8).collect();
        let info = client.upload(&format!("s3-doc-{i}.bin"), body.clone(), &UploadOptions::default()).await.unwrap();
        uploaded.push((info.id, hex::encode(sha2::Sha256::digest(&body))));
    }
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let url = cluster.url(1);
    let out = format!("s3://{bucket}/nightly/2026-12-02");
    let mut args = vec!["backup", "--url", &url, "--credentials", &creds, "--out", &out, "--output", "json"];
    let ca = cluster.ca_cert_path().to_string_lossy().into_owned();
    if cluster.tls() {
        args.extend(["--ca-cert", &ca]);
    }
    let (ok, said) = cli(&args);
    assert!(ok, "{said}");
    // The JSON comes first (stdout), any log lines after it (stderr).
    let manifest: artstore_client::wire::BackupManifest =
        serde_json::Deserializer::from_str(&said).into_iter().next().unwrap().unwrap_or_else(|e| panic!("{e}: {said}"));
    assert_eq!(manifest.files, uploaded.len() as u64);
    // The objects are in the bucket, and the prefix is never written twice.
    let listing =
        reqwest::get(format!("{}/{bucket}?prefix=nightly/", moto.endpoint)).await.unwrap().text().await.unwrap();
    assert!(
        listing.contains("nightly/2026-12-02/catalog.snapshot") && listing.contains("nightly/2026-12-02/manifest.json"),
        "{listing}"
    );
    let (ok, again) = cli(&args);
    assert!(!ok && again.contains("already holds a backup"), "{again}");

    // The node loses its catalog and is seeded from the bucket.
    assert_eq!(cluster.terminate(1), Some(0));
    let data = cluster.config_path(1).parent().unwrap().join("data");
    std::fs::remove_dir_all(data.join("raft")).unwrap();
    let config = cluster.config_path(1).to_string_lossy().into_owned();
    let (ok, said) = cli(&["restore", "--from", &out, "--config", &config]);
    assert!(ok, "{said}");
    cluster.start(1).unwrap();
    cluster.wait_ready(1, READY).await.unwrap();
    for (file, sha) in &uploaded {
        let body = eventually(Duration::from_secs(20), "a restored file reads back", || async {
            cluster.client(1).download(file).await.ok()
        })
        .await;
        assert_eq!(&hex::encode(sha2::Sha256::digest(&body)), sha);
    }
}
