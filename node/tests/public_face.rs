//! The API as the outside world meets it, whatever `ARTSTORE_TEST_TLS` says: HTTPS with the
//! cluster CA (TLS 1.3 only by default, certificates reloaded without dropping connections, a
//! clear error naming the host when a certificate does not cover it), `artstore dev --tls`, the
//! warning for plain HTTP off loopback, CORS for listed origins only, and metrics on their own
//! listener.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artstore_chaos::free_loopback;
use artstore_client::{Client, ClientError};
use common::*;

/// A one-node cluster serving HTTPS, whose certificate files are checked every second.
async fn tls_node(configure: impl Fn(&mut toml::Table)) -> LocalCluster {
    let mut c = LocalCluster::init_with(&bin(), 1, true, |t| {
        if let Some(tls) = t.get_mut("http").and_then(|h| h.get_mut("tls")).and_then(|t| t.as_table_mut()) {
            tls.insert("reload_check_secs".into(), 1.into());
        }
        configure(t)
    })
    .unwrap();
    c.start_all().unwrap();
    c.wait_ready(1, READY).await.unwrap();
    c
}

/// A TLS client config trusting `ca_pem`, speaking only `versions`.
fn tls_client(ca_pem: &[u8], versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Whether a TLS handshake with `addr` succeeds with `config`.
async fn handshake(addr: &str, config: Arc<rustls::ClientConfig>) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let ip = addr.rsplit_once(':').unwrap().0.parse::<std::net::IpAddr>().unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(ip.into());
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map(|_| ()).map_err(|e| e.to_string())
}

fn write_api_cert(dir: &Path, ca_dir: &Path, hosts: &[&str]) {
    let read = |f: &str| std::fs::read_to_string(ca_dir.join(f)).unwrap();
    let ca = artstore_cluster_config::ClusterCa::load("test", read("ca.pem"), &read("ca.key")).unwrap();
    let api = ca.issue_api(1, &hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
    // Key first, then the certificate: the periodic check may read between the two writes, and
    // then a mismatched pair is refused and retried at the next change.
    std::fs::write(dir.join("api.key"), api.key_pem).unwrap();
    std::fs::write(dir.join("api.pem"), api.cert_pem).unwrap();
}

fn hangup(c: &LocalCluster) {
    let pid = c.pid(1).unwrap().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
}

#[tokio::test]
async fn https_with_the_cluster_ca_tls13_only_and_certificates_reloaded_without_dropping_connections() {
    let mut c = tls_node(|_| {}).await;
    assert!(c.url(1).starts_with("https://"));
    let ca_pem = std::fs::read(c.ca_cert_path()).unwrap();
    let addr = c.node(1).http.clone();

    // The SDK over HTTPS: token, upload, ranged download.
    let client = c.client(1);
    let file = client.upload("over-tls.txt", b"sealed in transit".to_vec(), &Default::default()).await.unwrap();
    assert_eq!(client.download(&file.id).await.unwrap(), b"sealed in transit");
    // Without the CA, nothing is trusted: a clear TLS error, not "unavailable".
    let untrusting = Client::new([c.url(1)]).unwrap();
    match untrusting.ready().await {
        Err(ClientError::Tls(m)) => assert!(m.contains("trusted CA"), "{m}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // Plain HTTP to the HTTPS port is not served.
    assert!(reqwest::get(format!("http://{addr}/health/live")).await.map(|r| r.status().is_success()).is_err());
    // TLS 1.3 is accepted, TLS 1.2 refused (it is an option: `min_version = "1.2"`).
    handshake(&addr, tls_client(&ca_pem, &[&rustls::version::TLS13])).await.unwrap();
    let old = handshake(&addr, tls_client(&ca_pem, &[&rustls::version::TLS12])).await;
    assert!(old.is_err(), "a TLS 1.2-only client was accepted");

    // A connection opened before the reload keeps working after it.
    let held = c.http();
    let url = format!("{}/health/live", c.url(1));
    assert!(held.get(&url).send().await.unwrap().status().is_success());

    // A certificate that does not name this address, loaded on SIGHUP.
    let dir = c.node(1).dir.clone();
    let original = (std::fs::read(dir.join("api.pem")).unwrap(), std::fs::read(dir.join("api.key")).unwrap());
    write_api_cert(&dir, &c.root().join("ca"), &["archive.example.com"]);
    hangup(&c);
    eventually(Duration::from_secs(10), "the reload", || async {
        c.log(1).contains("API certificate reloaded").then_some(())
    })
    .await;
    assert!(held.get(&url).send().await.unwrap().status().is_success(), "the open connection was dropped");
    let host = addr.rsplit_once(':').unwrap().0.to_string();
    match c.anonymous(1).ready().await {
        Err(ClientError::Tls(m)) => {
            assert!(m.contains(&host) && m.contains("archive.example.com"), "the error names both: {m}")
        }
        other => panic!("expected a certificate mismatch, got {other:?}"),
    }

    // The original files back: the periodic check loads them with no signal.
    std::fs::write(dir.join("api.key"), &original.1).unwrap();
    std::fs::write(dir.join("api.pem"), &original.0).unwrap();
    eventually(Duration::from_secs(15), "the change to be noticed", || async { c.anonymous(1).ready().await.ok() })
        .await;

    // A broken file is refused and the certificate in force stays.
    std::fs::write(dir.join("api.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    hangup(&c);
    eventually(Duration::from_secs(10), "the refusal", || async {
        c.log(1).contains("API certificate not reloaded").then_some(())
    })
    .await;
    c.anonymous(1).ready().await.unwrap();
    assert!(c.is_running(1));
}

#[tokio::test]
async fn dev_serves_https_when_asked_and_warns_about_plain_http_off_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let (host, port) = free_loopback(1).unwrap();
    let http = format!("{host}:{port}");
    let data = tmp.path().join("data");
    let out = tmp.path().join("dev.out");
    let mut child = Command::new(bin())
        .args(["dev", "--tls", "--data-dir"])
        .arg(&data)
        .args(["--http", &http])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = data.join("tls").join("ca.pem");
    let ready = eventually(READY, "the dev node over HTTPS", || async {
        let pem = std::fs::read(&ca).ok()?;
        let client = Client::new([format!("https://{http}")]).ok()?.with_ca_cert(&pem).ok()?;
        client.ready().await.ok().map(|_| client)
    })
    .await;
    let creds = artstore_cluster_config::AdminCredentials::read(&data.join("admin-credentials.json")).unwrap();
    let status = ready.with_credentials(creds.client_id, creds.client_secret).cluster_status().await.unwrap();
    assert_eq!(status.leader_id, Some(1));
    let printed = std::fs::read_to_string(&out).unwrap();
    assert!(printed.contains(&format!("https://{http}")) && printed.contains("ca.pem"), "{printed}");
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap();

    // Plain HTTP on every interface: served, with a warning at start-up.
    let (_, port) = free_loopback(1).unwrap();
    let log = tmp.path().join("open.log");
    let mut child = Command::new(bin())
        .args(["dev", "--data-dir"])
        .arg(tmp.path().join("open"))
        .args(["--http", &format!("0.0.0.0:{port}"), "--quic", &format!("127.0.0.1:{}", port + 1000)])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = Client::new([format!("http://127.0.0.1:{port}")]).unwrap();
    eventually(READY, "the open dev node", || async { client.ready().await.ok() }).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("without TLS"), "{logged}");
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn cors_answers_listed_origins_only_and_metrics_move_to_their_own_listener() {
    let metrics_port = std::sync::Mutex::new(String::new());
    let (c, _) = started_cluster(1, |t| {
        let listen = t["http"]["listen"].as_str().unwrap().to_string();
        let (host, port) = listen.rsplit_once(':').unwrap();
        let m = format!("{host}:{}", port.parse::<u16>().unwrap() + 1);
        *metrics_port.lock().unwrap() = m.clone();
        set(t, "metrics", "listen", m);
        let http = t.get_mut("http").and_then(|h| h.as_table_mut()).unwrap();
        let mut cors = toml::Table::new();
        cors.insert("allowed_origins".into(), vec!["https://app.example.com"].into());
        http.insert("cors".into(), cors.into());
    })
    .await;
    let http = c.http();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{}/api/v1/files", c.url(1)))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,idempotency-key")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let methods = h["access-control-allow-methods"].to_str().unwrap().to_string();
    assert!(methods.contains("POST") && !methods.contains("TRACE"), "{methods}");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("idempotency-key"));
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "an unlisted origin was allowed");
    // A real call from a listed origin can read the request id.
    let token = c.client(1).token().await.unwrap();
    let call = http
        .get(format!("{}/api/v1/cluster/status", c.url(1)))
        .header("origin", "https://app.example.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    assert!(call.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-request-id"));

    // /metrics is on the metrics listener only; health checks are on both.
    let api_metrics = http.get(format!("{}/metrics", c.url(1))).send().await.unwrap();
    assert_eq!(api_metrics.status(), 404);
    let m = metrics_port.lock().unwrap().clone();
    let text = reqwest::get(format!("http://{m}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("artstore_http_requests_total"), "{text}");
    assert_eq!(reqwest::get(format!("http://{m}/health/ready")).await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{}/health/ready", c.url(1))).send().await.unwrap().status(), 200);
    let token_route = reqwest::get(format!("http://{m}/api/v1/cluster/status")).await.unwrap();
    assert_eq!(token_route.status(), 404, "the metrics listener serves nothing else");
}

#[tokio::test]
async fn client_certificates_bind_tokens_and_are_required_where_the_account_says() {
    use base64::Engine;
    let c = tls_node(|t| {
        if let Some(tls) = t.get_mut("http").and_then(|h| h.get_mut("tls")).and_then(|t| t.as_table_mut()) {
            tls.insert("client_ca".into(), "ca.pem".into());
        }
    })
    .await;
    let root = c.root().to_string_lossy().into_owned();
    for id in ["sa-mtls", "sa-other"] {
        c.run_cli(&["cluster", "client-cert", "--out", &root, "--client-id", id]).unwrap();
    }
    let pem = std::fs::read(c.root().join("clients").join("sa-mtls.pem")).unwrap();
    let other_pem = std::fs::read(c.root().join("clients").join("sa-other.pem")).unwrap();
    let created = c
        .client(1)
        .create_account(&artstore_client::wire::CreateServiceAccount {
            client_id: Some("sa-mtls".into()),
            name: "mutual TLS".into(),
            roles: vec!["reader".into()],
            require_client_cert: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(created.account.require_client_cert);
    let secret = created.client_secret;

    // The secret alone is not enough for this account.
    let bare = c.anonymous(1).with_credentials("sa-mtls", secret.clone());
    match bare.token().await {
        Err(ClientError::Unauthorized(m)) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("expected 401, got {other:?}"),
    }
    // Nor with the certificate of another account.
    let wrong = c.anonymous(1).with_client_certificate(&other_pem).unwrap().with_credentials("sa-mtls", secret.clone());
    match wrong.token().await {
        Err(ClientError::Unauthorized(m)) => assert!(m.contains("another account"), "{m}"),
        other => panic!("expected 401, got {other:?}"),
    }
    // Secret and certificate: a token bound to the certificate (RFC 8705 `cnf`).
    let good = c.anonymous(1).with_client_certificate(&pem).unwrap().with_credentials("sa-mtls", secret.clone());
    let token = good.token().await.unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["cnf"]["x5t#S256"].as_str().map(str::len), Some(43), "{claims}");
    assert_eq!(good.cluster_status().await.unwrap().node_id, 1);
    // The bound token is worthless on a connection without the certificate.
    let stolen = c.http().get(format!("{}/api/v1/cluster/status", c.url(1))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(stolen.status(), 401);
    assert!(stolen.text().await.unwrap().contains("bound to a client certificate"));
    // A certificate from another CA does not get through the handshake.
    let foreign = artstore_cluster_config::ClusterCa::generate("elsewhere").unwrap().issue_client("sa-mtls").unwrap();
    let foreign_pem = format!("{}{}", foreign.cert_pem, foreign.key_pem);
    let intruder = c.anonymous(1).with_client_certificate(foreign_pem.as_bytes()).unwrap();
    assert!(intruder.ready().await.is_err(), "a certificate of another CA was accepted");
    // Accounts that do not ask for a certificate are served as before, with or without one.
    assert!(c.client(1).cluster_status().await.is_ok());
}
