//! Start-up: `artstore dev` on a fresh folder and again on the same folder, and `artstore start`
//! refusing bad configurations with a message naming the key, leaving the data folder untouched.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use artstore_chaos::free_loopback;
use artstore_client::Client;
use common::*;

fn spawn_dev(dir: &Path, http: &str, out: &Path) -> std::process::Child {
    Command::new(bin())
        .args(["dev", "--data-dir"])
        .arg(dir)
        .args(["--http", http])
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &Client) {
    eventually(READY, "dev node ready", || async { client.ready().await.ok() }).await;
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap()
}

#[tokio::test]
async fn dev_node_starts_leads_itself_and_keeps_its_state_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (host, port) = free_loopback(1).unwrap();
    let http = format!("{host}:{port}");
    let client = Client::new([format!("http://{http}")]).unwrap();

    let first_out = tmp.path().join("first.out");
    let mut child = spawn_dev(&data, &http, &first_out);
    wait_ready(&client).await;
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("admin-credentials.json")).unwrap()).unwrap();
    let secret = creds["client_secret"].as_str().unwrap().to_string();
    let client = client.with_credentials("admin", secret.clone());
    let status = client.cluster_status().await.unwrap();
    assert_eq!(status.leader_id, Some(status.node_id));
    assert_eq!(status.members.len(), 1);
    client.put_setting("dev.kept", "1").await.unwrap();
    assert!(terminate(&mut child).success(), "SIGTERM is a clean exit");

    // Standard output is a file here, not a terminal: the secret stays in the 0600 credentials
    // file, and only its path is printed (so it never lands in a captured log).
    let printed = std::fs::read_to_string(&first_out).unwrap();
    assert!(secret.len() >= 32);
    assert!(printed.contains("admin-credentials.json"), "{printed}");
    assert!(!printed.contains(&secret), "the secret went to a non-terminal stdout");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin-credentials.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let second_out = tmp.path().join("second.out");
    let mut child = spawn_dev(&data, &http, &second_out);
    wait_ready(&client).await;
    assert_eq!(client.get_setting("dev.kept", true).await.unwrap().value, "1");
    assert!(client.cluster_status().await.unwrap().term >= status.term);
    assert!(!std::fs::read_to_string(&second_out).unwrap().contains(&secret), "secret printed only once");
    terminate(&mut child);
}

/// Runs `artstore start` on `config` and returns its stderr; asserts it failed.
fn start_fails(config: &Path) -> String {
    let out = Command::new(bin()).args(["start", "--config"]).arg(config).output().unwrap();
    assert!(!out.status.success(), "start should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn bad_configurations_stop_start_up_with_the_key_named_and_nothing_written() {
    let cluster = LocalCluster::init(&bin(), 1, |_| {}).unwrap();
    let good = cluster.config_path(1);
    let base: toml::Table = std::fs::read_to_string(&good).unwrap().parse().unwrap();
    let dir = good.parent().unwrap();
    let data = dir.join("data");
    let write = |name: &str, t: &toml::Table| {
        let p = dir.join(name);
        std::fs::write(&p, toml::to_string(t).unwrap()).unwrap();
        p
    };

    let mut no_data_dir = base.clone();
    no_data_dir.remove("data_dir");
    let err = start_fails(&write("no-data-dir.toml", &no_data_dir));
    assert!(err.contains("data_dir: missing"), "{err}");

    let mut no_key = base.clone();
    no_key["tls"].as_table_mut().unwrap().insert("key".into(), "absent.key".into());
    let err = start_fails(&write("no-key.toml", &no_key));
    assert!(err.contains("tls.key: cannot read"), "{err}");

    std::fs::write(dir.join("garbage.key"), "not a key").unwrap();
    let mut bad_key = base.clone();
    bad_key["tls"].as_table_mut().unwrap().insert("key".into(), "garbage.key".into());
    let err = start_fails(&write("bad-key.toml", &bad_key));
    assert!(err.contains("tls.key"), "{err}");

    let mut bad_addr = base.clone();
    bad_addr["quic"].as_table_mut().unwrap().insert("listen".into(), "localhost".into());
    let err = start_fails(&write("bad-addr.toml", &bad_addr));
    assert!(err.contains("quic.listen"), "{err}");

    let http = base["http"]["listen"].as_str().unwrap();
    let _occupied = std::net::TcpListener::bind(http).unwrap();
    let err = start_fails(&good);
    assert!(err.contains("http.listen") && err.contains(http), "{err}");

    assert!(!data.exists(), "a failed start must not create the data folder");
}

/// The platform hands secrets over as mounted files or as values: here the node key and the API
/// key are written into `config.toml` as PEM text and the bootstrap admin's hash comes from a
/// `_file`; the node starts, the bootstrap admin gets tokens, and the data folder holds the keys
/// in private files.
#[tokio::test]
async fn secrets_given_inline_or_as_files_start_a_working_node() {
    let mut cluster = LocalCluster::init(&bin(), 1, |_| {}).unwrap();
    let path = cluster.config_path(1);
    let dir = path.parent().unwrap().to_path_buf();
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let pem_of = |t: &toml::Table, key: &str| std::fs::read_to_string(dir.join(t[key].as_str().unwrap())).unwrap();
    let node_key = pem_of(config["tls"].as_table().unwrap(), "key");
    config["tls"].as_table_mut().unwrap().insert("key".into(), node_key.clone().into());
    let api_tls = config.get_mut("http").and_then(|h| h.get_mut("tls")).and_then(|t| t.as_table_mut());
    if let Some(api_tls) = api_tls {
        let api_key = std::fs::read_to_string(dir.join(api_tls["key"].as_str().unwrap())).unwrap();
        api_tls.insert("key".into(), api_key.into());
    }
    let auth = config["auth"].as_table_mut().unwrap();
    let hash = auth.remove("bootstrap_admin_hash").unwrap();
    std::fs::write(dir.join("admin.hash"), format!("{}\n", hash.as_str().unwrap())).unwrap();
    auth.insert("bootstrap_admin_hash_file".into(), "admin.hash".into());
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();

    cluster.start_all().unwrap();
    cluster.wait_ready(1, READY).await.unwrap();
    let (_, token) = account_token(&cluster, "secrets-reader", &["reader"]).await;
    assert!(!token.is_empty());
    let kept = dir.join("data/tls/inline-tls-key.pem");
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), node_key.trim());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// Under systemd (`Type=notify`): `READY=1` once the node serves, a status line that turns to
/// ready when it has a leader, and `STOPPING=1` when SIGTERM begins the shutdown.
#[tokio::test]
async fn a_node_tells_systemd_when_it_serves_is_ready_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let mut c = LocalCluster::init(&bin(), 1, |_| {}).unwrap();
    c.set_node_env("NOTIFY_SOCKET", &path.to_string_lossy());
    c.start_all().unwrap();
    let mut said = Vec::new();
    let mut buf = vec![0u8; 4096];
    let until = |said: &Vec<String>, what: &str| said.iter().any(|m| m.contains(what));
    let deadline = std::time::Instant::now() + READY;
    while !until(&said, "STATUS=ready: leader 1") {
        assert!(std::time::Instant::now() < deadline, "no ready status within {READY:?}: {said:?}");
        if let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_millis(500), socket.recv(&mut buf)).await {
            said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(said[0].starts_with("READY=1\n"), "the first message says the node serves: {said:?}");
    c.wait_ready(1, READY).await.unwrap();
    assert_eq!(c.terminate(1), Some(0));
    let mut stopping = false;
    while let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_millis(500), socket.recv(&mut buf)).await {
        stopping |= String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1");
    }
    assert!(stopping, "no STOPPING=1 on SIGTERM: {said:?}");
}
