//! A node tried as an attacker and as a careless client would: every defect found that way has a
//! test here that failed before its fix. Each test starts a real node and talks to it over HTTP
//! (or raw TCP, where the point is what a misbehaving client does on the wire).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use artstore_client::UploadOptions;
use common::*;
use futures::FutureExt;
use sha2::{Digest, Sha256};

fn one_node(configure: impl Fn(&mut toml::Table)) -> impl std::future::Future<Output = (LocalCluster, u64)> {
    started_cluster(1, configure)
}

async fn admin_token(c: &LocalCluster) -> String {
    c.client(1).token().await.expect("admin token")
}

/// `{"error": {"code": …}}` of a response, asserting the body is the API's JSON error.
async fn error_code(resp: reqwest::Response) -> String {
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("{status}: body is not JSON: {e}"));
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("{status}: no error code in {v}")).to_string()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The node is still up and never panicked.
async fn still_healthy(c: &LocalCluster) {
    let r = http().get(format!("{}/health/live", c.url(1))).send().await.expect("node answers");
    assert_eq!(r.status(), 200);
    assert!(!c.log(1).contains("panicked"), "the node panicked:\n{}", c.log(1));
}

#[tokio::test]
async fn hostile_searches_get_a_400_that_names_the_problem_and_the_node_stays_up() {
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let search = |q: String| {
        let url = format!("{}/api/v1/search", c.url(1));
        let token = token.clone();
        async move { http().get(url).bearer_auth(token).query(&[("q", q)]).send().await.unwrap() }
    };
    for (q, code) in [
        ("(".repeat(2500), "query_too_long"),
        ("(".repeat(1000), "query_too_deep"),
        (format!("{}a{}", "(".repeat(40), ")".repeat(40)), "query_too_deep"),
        ("a OR ".repeat(100), "query_too_complex"),
        ("name:*".to_string(), "invalid_search"),
        ("id:*".to_string(), "invalid_search"),
    ] {
        let r = search(q.clone()).await;
        assert_eq!(r.status(), 400, "q = {:?}…", &q[..q.len().min(20)]);
        assert_eq!(error_code(r).await, code, "q = {:?}…", &q[..q.len().min(20)]);
    }
    // Within the limits a nested query works.
    let r = search(format!("{}report{}", "(".repeat(10), ")".repeat(10))).await;
    assert_eq!(r.status(), 200);
    still_healthy(&c).await;
}

/// Walks `dir` and returns every path group or others can reach.
fn shared_paths(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(format!("{} {mode:o}", p.display()));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
    out
}

#[tokio::test]
async fn every_file_and_folder_a_node_writes_is_private_and_a_shared_one_is_fixed_at_start() {
    let (mut c, _) = one_node(|_| {}).await;
    let client = c.client(1);
    let f = client.upload("doc.txt", b"private document".to_vec(), &UploadOptions::default()).await.unwrap();
    let node_dir = c.config_path(1).parent().unwrap().to_path_buf();
    // Let the sidecar keeper and the search index write their files too.
    let data = node_dir.join("data");
    eventually(Duration::from_secs(10), "the sidecar", || async {
        walk_names(&data).iter().any(|n| n.contains(&f.id) && n.ends_with(".attr.json")).then_some(())
    })
    .await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&c.config_path(1)), 0o600, "config.toml carries the bootstrap admin hash");
    // (`node.log` is the test harness's capture of the node's stderr, not the node's own file.)
    let shared =
        |dir: &Path| -> Vec<String> { shared_paths(dir).into_iter().filter(|p| !p.contains("node.log")).collect() };
    assert_eq!(shared(&node_dir), Vec::<String>::new(), "readable by other local users");

    // An operator's slip: the catalog made world-readable while the node is down.
    c.terminate(1);
    let db = data.join("raft");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(&db).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    c.start(1).unwrap();
    c.wait_ready(1, READY).await.unwrap();
    assert_eq!(shared(&node_dir), Vec::<String>::new(), "fixed at start-up");
    assert!(c.log(1).contains("readable by other local users"), "the fix is logged with the path");
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_token_endpoint_refuses_oversized_credentials_before_auditing_them() {
    let (c, _) = one_node(|_| {}).await;
    let url = format!("{}/api/v1/auth/token", c.url(1));
    let huge = "a".repeat(1 << 20);
    let r =
        http().post(&url).form(&[("grant_type", "client_credentials"), ("client_id", &huge), ("client_secret", "x")]);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 413, "a 1 MB body is over the token endpoint's limit");
    let long_id = "b".repeat(65);
    let r = http()
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", &long_id), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request", "{v}");
    let long_secret = "s".repeat(257);
    let r = http()
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", &long_secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Neither reached the audit log.
    let token = admin_token(&c).await;
    let audit: serde_json::Value = http()
        .get(format!("{}/api/v1/audit?action=token.issue&limit=1000", c.url(1)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actors: Vec<&str> = audit["records"].as_array().unwrap().iter().filter_map(|r| r["actor"].as_str()).collect();
    assert!(actors.iter().all(|a| a.len() <= 64), "an oversized id was audited");
    still_healthy(&c).await;
}

#[tokio::test]
async fn wrong_guesses_from_one_address_do_not_lock_the_owner_out_from_another() {
    let (c, _) = one_node(|t| set(t, "auth", "token_requests_per_minute", 5)).await;
    let url = format!("{}/api/v1/auth/token", c.url(1));
    let from =
        |ip: &str| reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let attacker = from("127.0.0.2");
    let mut throttled = false;
    for _ in 0..8 {
        let r = attacker
            .post(&url)
            .form(&[("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", "guess-guess")])
            .send()
            .await
            .unwrap();
        throttled |= r.status() == 429;
    }
    assert!(throttled, "brute force from one address is throttled");
    let (id, secret) = c.admin_credentials();
    let r = from("127.0.0.3")
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the owner, from elsewhere, still gets a token");
}

/// The value of counter `name` on the node's metrics page (0 when absent).
async fn counter(c: &LocalCluster, name: &str) -> f64 {
    let text = http().get(format!("{}/metrics", c.url(1))).send().await.unwrap().text().await.unwrap();
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn an_unknown_account_is_refused_through_the_same_secret_check_as_a_wrong_secret() {
    // Before: an unknown account was refused without any hashing (1.8 ms against 48 ms), so
    // timing told which accounts exist. Now every refusal verifies an argon2 hash: the count of
    // secret checks grows by one per request whether the account exists or not.
    let (c, _) = one_node(|t| set(t, "auth", "token_requests_per_minute_per_source", 1000)).await;
    let url = format!("{}/api/v1/auth/token", c.url(1));
    for id in ["admin", "nobody-here"] {
        let before = counter(&c, "artstore_auth_secret_checks_total").await;
        for _ in 0..3 {
            let r = http()
                .post(&url)
                .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "wrong-secret")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        let after = counter(&c, "artstore_auth_secret_checks_total").await;
        // At least one check per request (a refusal may look again after catching up with the leader).
        assert!(after - before >= 3.0, "{id}: {} secret checks for 3 refusals", after - before);
    }
}

/// Sidecar files of the node in `dir`.
fn sidecar_files(dir: &Path) -> Vec<String> {
    walk_names(&dir.join("data").join("elements")).into_iter().filter(|n| n.ends_with(".attr.json")).collect()
}

#[tokio::test]
async fn hostile_file_names_get_sidecars_and_a_failing_sidecar_is_set_aside_without_stalling_the_rest() {
    let (c, _) = one_node(|_| {}).await;
    let client = c.client(1);
    let dir = c.config_path(1).parent().unwrap().to_path_buf();
    let cyrillic = "я".repeat(150);
    let mut ids = Vec::new();
    for name in ["report..final.pdf", "../../etc/passwd", cyrillic.as_str(), "..", "plain.txt"] {
        ids.push(client.upload(name, b"x".to_vec(), &UploadOptions::default()).await.unwrap().id);
    }
    eventually(Duration::from_secs(10), "a sidecar for every file", || async {
        let files = sidecar_files(&dir);
        ids.iter().all(|id| files.iter().any(|f| f.contains(id.as_str()))).then_some(())
    })
    .await;

    // Make one file's sidecar unwritable: a non-empty folder where the file must go.
    let victim = &ids[4];
    let path = sidecar_files(&dir).into_iter().find(|f| f.contains(victim.as_str())).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir_all(Path::new(&path).join("blocker")).unwrap();
    let update = artstore_client::wire::UpdateFile { description: Some("changed".into()), ..Default::default() };
    client.update_file(victim, &update).await.unwrap();
    let later = client.upload("after.txt", b"after".to_vec(), &UploadOptions::default()).await.unwrap();
    eventually(Duration::from_secs(10), "the later file's sidecar", || async {
        sidecar_files(&dir).iter().any(|f| f.contains(&later.id)).then_some(())
    })
    .await;
    let status = eventually(Duration::from_secs(10), "the failing sidecar set aside", || async {
        let s = client.repair_status().await.ok()?;
        s.set_aside.iter().any(|a| &a.file_id == victim && a.consumer == "sidecars").then_some(s)
    })
    .await;
    let aside = status.set_aside.iter().find(|a| &a.file_id == victim).unwrap();
    assert!(aside.attempts >= 1 && !aside.error.is_empty(), "{aside:?}");
    let metrics = http().get(format!("{}/metrics", c.url(1))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("artstore_change_feed_set_aside"), "the set-aside count is a metric");

    // Once the obstacle is gone, the retry writes it and the record is forgotten.
    std::fs::remove_dir_all(&path).unwrap();
    eventually(Duration::from_secs(20), "the set-aside sidecar written on retry", || async {
        let s = client.repair_status().await.ok()?;
        (s.set_aside.is_empty() && Path::new(&path).is_file()).then_some(())
    })
    .await;

    // A rename moves the sidecar: none stays behind under the old name.
    let rename = artstore_client::wire::UpdateFile { name: Some("renamed.txt".into()), ..Default::default() };
    client.update_file(&later.id, &rename).await.unwrap();
    eventually(Duration::from_secs(10), "one sidecar of the renamed file, under its new name", || async {
        let mine: Vec<String> = sidecar_files(&dir).into_iter().filter(|f| f.contains(&later.id)).collect();
        (mine.len() == 1 && mine[0].contains("/renamed_")).then_some(())
    })
    .await;
    still_healthy(&c).await;
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test]
async fn an_idempotency_key_replays_only_the_same_file_and_the_replay_reads_the_body() {
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let upload = |name: &str, body: Vec<u8>, declared: Option<String>| {
        let mut r = http()
            .post(format!("{}/api/v1/files", c.url(1)))
            .bearer_auth(&token)
            .query(&[("name", name)])
            .header("Idempotency-Key", "order-42")
            .body(body);
        if let Some(d) = declared {
            r = r.header("X-Checksum-SHA256", d);
        }
        r.send()
    };
    let first = upload("a.txt", b"first body".to_vec(), None).await.unwrap();
    assert_eq!(first.status(), 201);
    let replay = upload("a.txt", b"first body".to_vec(), None).await.unwrap();
    assert_eq!(replay.status(), 200, "a true retry replays");
    for (name, body, declared) in [
        ("a.txt", b"another body".to_vec(), None),
        ("b.txt", b"first body".to_vec(), None),
        ("a.txt", b"first body".to_vec(), Some(sha(b"something else"))),
    ] {
        let r = upload(name, body, declared).await.unwrap();
        assert_eq!(r.status(), 409);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("another"), "{v}");
    }

    // A plain HTTP/1.1 client that writes its whole (large) body before reading the answer.
    let addr = c.url(1).trim_start_matches("http://").to_string();
    let body = vec![7u8; 4 << 20];
    let s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/v1/files?name=big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: order-42-big\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // (order-42-big was not used yet: the first send creates, the second one replays.)
    for expected in ["201", "200"] {
        let mut s2 =
            if expected == "201" { s.try_clone().unwrap() } else { std::net::TcpStream::connect(&addr).unwrap() };
        s2.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s2.write_all(head.as_bytes()).unwrap();
        s2.write_all(&body).expect("the server reads the whole body, even for a replay");
        let mut answer = vec![0u8; 512];
        let n = s2.read(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with(&format!("HTTP/1.1 {expected}")), "{text}");
    }
    drop(s);
}

/// Opens a raw connection to the node and returns it with a read timeout.
fn raw(c: &LocalCluster) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(c.url(1).trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the peer closes (or sends something); returns what arrived and whether it closed.
fn read_until_closed(s: &mut std::net::TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// A client that sends its body after the node has already refused the request (here a 401
/// before any body byte was read) still reads the refusal: the node reads and discards what
/// follows for a moment before closing, instead of closing on unread bytes, which resets the
/// connection and loses the reply on the client's side (in TLS: "EOF in violation of protocol").
#[tokio::test]
async fn a_refusal_sent_before_the_body_arrives_reaches_the_client() {
    let (c, _) = one_node(|_| {}).await;
    for round in 0..3 {
        let mut s = raw(&c);
        let body = vec![b'x'; 2 << 20];
        let head = format!(
            "POST /api/v1/files?name=refused.bin HTTP/1.1\r\nHost: node\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // The node answers 401 at once and ends the connection, with the whole body still to come.
        std::thread::sleep(Duration::from_millis(300));
        let sent = s.write_all(&body);
        let (text, _) = read_until_closed(&mut s);
        assert!(sent.is_ok(), "round {round}: the node reset the connection while the body was sent: {sent:?}");
        assert!(
            text.starts_with("HTTP/1.1 401"),
            "round {round}: the refusal was lost (sending the body: {sent:?}); the client read {text:?}"
        );
        assert!(text.contains("\"error\""), "round {round}: {text}");
    }
    still_healthy(&c).await;
}

/// Records given to the recover endpoint must be safe to hold: a chunk digest that is a path
/// (`/etc/passwd`, `../x`, `/dev/zero`) never reaches the disk layer, chunks add up to the file,
/// and every field keeps a fixed bound. Nothing refused is committed; a record written by an
/// earlier release under other limits (a name with a bidirectional override, a long name, an
/// id of the original system) is taken.
#[tokio::test]
async fn recovered_records_are_checked_like_uploads_before_anything_is_committed() {
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let recover = |files: serde_json::Value, overwrite: bool| {
        http()
            .post(format!("{}/api/v1/admin/recover", c.url(1)))
            .bearer_auth(&token)
            .json(&serde_json::json!({"files": files, "overwrite": overwrite}))
            .send()
            .map(Result::unwrap)
    };
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
    let good = serde_json::json!({
        "id": "01900000-0000-7000-8000-000000000001", "name": "r.bin", "content_type": "application/octet-stream",
        "size": 3, "sha256": sha(b"abc"), "chunk_size": 4194304,
        "chunks": [{"sha256": sha(b"abc"), "size": 3, "compressed": false,
                    "replicas": [{"node_id": 1, "element": "default"}], "missing": []}],
        "description": "", "tags": [], "attributes_json": "{}", "policy": "permanent", "expires_at": null,
        "retention_until": null, "created_at": 1, "created_by": "admin", "updated_at": 1, "version": 1,
        "deleted_at": null
    });
    let with = |path: &[&str], v: serde_json::Value| {
        let mut r = good.clone();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = if let Ok(i) = p.parse::<usize>() { &mut at[i] } else { &mut at[*p] };
        }
        at[path[path.len() - 1]] = v;
        r
    };
    let cases = [
        with(&["chunks", "0", "sha256"], "/etc/passwd".into()),
        with(&["chunks", "0", "sha256"], "../../../../dev/zero".into()),
        with(&["chunks", "0", "sha256"], sha(b"abc").to_uppercase().into()),
        with(&["sha256"], "x".repeat(100_000).into()),
        with(&["id"], "../../x".into()),
        with(&["id"], "i".repeat(200).into()),
        with(&["size"], 4.into()),
        with(&["chunks", "0", "size"], 0.into()),
        with(&["chunk_size"], (1u64 << 40).into()),
        with(&["chunks", "0", "replicas", "0", "element"], "../elsewhere".into()),
        with(&["chunks", "0", "replicas", "0", "node_id"], 0.into()),
        with(&["chunks", "0", "replicas", "0", "node_id"], serde_json::json!(u64::MAX)),
        with(&["created_by"], "a\u{0}b".into()),
        with(&["version"], serde_json::json!(u64::MAX)),
        with(&["created_at"], serde_json::json!(i64::MAX)),
        with(&["retention_until"], serde_json::json!(253_402_300_800_000i64)),
        with(&["content_type"], "text/plain\r\nX-Injected: 1".into()),
        with(&["sha256"], "\"quoted\"".into()),
        with(&["name"], "n".repeat(70_000).into()),
        with(&["tags"], serde_json::json!(vec!["t"; 2000])),
        with(&["attributes_json"], "[1]".into()),
        with(&["attributes_json"], format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100)).into()),
        with(&["description"], "d".repeat((1 << 20) + 1).into()),
    ];
    for (i, record) in cases.into_iter().enumerate() {
        let r = recover(serde_json::json!([record]), true).await;
        assert_eq!(r.status(), 400, "case {i}");
        assert_eq!(error_code(r).await, "invalid_record", "case {i}");
    }
    let r = http()
        .get(format!("{}/api/v1/files/01900000-0000-7000-8000-000000000001", c.url(1)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a refused record was committed");
    // Records that together exceed one catalog entry are refused whole (413), not proposed: an
    // entry that cannot reach a follower within a heartbeat would stop the log behind it.
    let big: Vec<_> = (0..150)
        .map(|i| {
            let mut r = with(&["attributes_json"], format!("{{\"a\":\"{}\"}}", "x".repeat(60 << 10)).into());
            r["id"] = format!("01900000-0000-7000-8000-{:012x}", 1000 + i).into();
            r
        })
        .collect();
    let r = recover(serde_json::json!(big), false).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "entry_too_large");
    // One unsafe record is refused alone; the rest of its batch is recovered.
    let mut fine = good.clone();
    fine["id"] = "01900000-0000-7000-8000-000000000002".into();
    let mut late = good.clone();
    late["id"] = "01900000-0000-7000-8000-000000000003".into();
    late["version"] = serde_json::json!(u64::MAX);
    late["retention_until"] = serde_json::json!(i64::MAX);
    let r = recover(serde_json::json!([fine.clone(), late, fine]), false).await;
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["recovered"], 1, "{answer}");
    let refused: Vec<&str> = answer["refused"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(refused, ["01900000-0000-7000-8000-000000000003", "01900000-0000-7000-8000-000000000002"], "{answer}");
    // A replica on a node that is not a member (a retired node's disk) is left out; the record
    // is kept while its chunks have replicas on members.
    let mut retired = good.clone();
    retired["id"] = "01900000-0000-7000-8000-000000000005".into();
    retired["chunks"][0]["replicas"] =
        serde_json::json!([{"node_id": 7, "element": "default"}, {"node_id": 1, "element": "default"}]);
    let r = recover(serde_json::json!([retired]), false).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // What earlier releases or other limits may have written is taken: recovery keeps records.
    let mut older = with(&["name"], "invoice\u{202E}fdp.exe".into());
    older["id"] = "f1".into();
    older["content_type"] = "pdf".into();
    older["tags"] = serde_json::json!(vec!["t"; 100]);
    let r = recover(serde_json::json!([older]), false).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The well-formed record each case broke in one place is taken.
    let r = recover(serde_json::json!([good]), false).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A record that says a chunk holds more than it does: the download fails (never a silent
    // short body) and the node says why.
    c.client(1).upload("abc.txt", b"abc".to_vec(), &UploadOptions::default()).await.unwrap();
    let mut longer = with(&["chunks", "0", "size"], 5.into());
    longer["id"] = "01900000-0000-7000-8000-000000000004".into();
    longer["size"] = 5.into();
    let r = recover(serde_json::json!([longer]), false).await;
    assert_eq!(r.status(), 200);
    // The read may fail before the response's head went out or after it: either way, no body.
    let got = match http()
        .get(format!("{}/api/v1/files/01900000-0000-7000-8000-000000000004/content", c.url(1)))
        .bearer_auth(&token)
        .send()
        .await
    {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    assert!(got.is_err(), "a short body was served as whole: {got:?}");
    eventually(Duration::from_secs(5), "the failed read logged", || async {
        c.log(1).contains("holds 3 bytes of content; the file's record says 5").then_some(())
    })
    .await;
    still_healthy(&c).await;
}

/// A download whose client stops reading is dropped after twice the idle timeout with no byte
/// moving, instead of holding its read-ahead chunks for as long as the client keeps the socket
/// (a response being streamed does not count as a request in flight).
#[tokio::test]
async fn a_download_the_client_stops_reading_is_dropped() {
    let (c, _) = one_node(|t| set(t, "limits", "idle_timeout_secs", 2)).await;
    let token = admin_token(&c).await;
    let body: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8).collect();
    let f = c.client(1).upload("big.bin", body.clone(), &UploadOptions::default()).await.unwrap();
    let mut s = raw(&c);
    write!(s, "GET /api/v1/files/{}/content HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {token}\r\n\r\n", f.id)
        .unwrap();
    // The client reads nothing while the node's send buffer and its own fill up, then some more.
    std::thread::sleep(Duration::from_secs(9));
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < body.len(), "the whole body arrived ({got} bytes): the stalled response was kept");
    assert!(started.elapsed() < Duration::from_secs(15), "the connection was not closed");
    still_healthy(&c).await;
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_off_and_capped() {
    let (c, _) = one_node(|t| {
        set(t, "limits", "header_read_timeout_secs", 2);
        set(t, "limits", "body_idle_timeout_secs", 2);
        set(t, "limits", "idle_timeout_secs", 2);
        set(t, "limits", "max_connections_per_source", 8);
    })
    .await;
    let token = admin_token(&c).await;
    let blocking = |f: Box<dyn FnOnce() + Send>| tokio::task::spawn_blocking(f);

    // Partial headers, never finished.
    let mut s = raw(&c);
    blocking(Box::new(move || {
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").unwrap();
        let (_, closed) = read_until_closed(&mut s);
        assert!(closed, "a request whose headers never finish is closed");
    }))
    .await
    .unwrap();

    // Headers trickled a byte at a time, for longer than the header timeout.
    let mut s = raw(&c);
    blocking(Box::new(move || {
        let started = Instant::now();
        for b in b"GET /health/live HTTP/1.1\r\nX-Slow: ".iter().chain(b"a".repeat(200).iter()) {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, closed) = read_until_closed(&mut s);
        assert!(closed && started.elapsed() < Duration::from_secs(15), "trickled headers are cut off");
    }))
    .await
    .unwrap();

    // A stalled upload body: 408, nothing stored.
    let mut s = raw(&c);
    let before = c.client(1).list_files("", 1000).await.unwrap().files.len();
    let t = token.clone();
    blocking(Box::new(move || {
        let head = format!(
            "POST /api/v1/files?name=stalled.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: 100000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&[1u8; 1000]).unwrap();
        let (text, _) = read_until_closed(&mut s);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("body_timeout"), "{text}");
    }))
    .await
    .unwrap();
    assert_eq!(c.client(1).list_files("", 1000).await.unwrap().files.len(), before, "nothing was committed");

    // A stalled JSON body on any route (here the anonymous token endpoint) is cut off too.
    let mut s = raw(&c);
    blocking(Box::new(move || {
        let head = "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{";
        s.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let (text, _) = read_until_closed(&mut s);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(15), "the stalled body held the request");
    }))
    .await
    .unwrap();

    // An invented method gets an answer, and mints no metric series.
    let mut s = raw(&c);
    blocking(Box::new(move || {
        s.write_all(b"AAAAINVENTED /x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (text, _) = read_until_closed(&mut s);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    }))
    .await
    .unwrap();
    let metrics = http().get(format!("{}/metrics", c.url(1))).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("AAAAINVENTED"), "a client-chosen method became a metric label");

    // An idle keep-alive connection is closed after its request.
    let mut s = raw(&c);
    blocking(Box::new(move || {
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (text, closed) = read_until_closed(&mut s);
        assert!(text.starts_with("HTTP/1.1 200") && closed, "{text}");
    }))
    .await
    .unwrap();

    // More connections from one address than allowed: the extra ones are closed at once.
    let held: Vec<_> = (0..8).map(|_| raw(&c)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = raw(&c);
    blocking(Box::new(move || {
        extra.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").ok();
        let (text, closed) = read_until_closed(&mut extra);
        assert!(closed && text.is_empty(), "over the per-source cap: {text}");
    }))
    .await
    .unwrap();
    drop(held);
    still_healthy(&c).await;
}

#[tokio::test]
async fn multipart_metadata_is_bounded_and_must_come_first_and_a_refused_request_commits_nothing() {
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let client = c.client(1);
    let count = || async { client.list_files("", 1000).await.unwrap().files.len() };
    let send = |form: reqwest::multipart::Form| {
        http().post(format!("{}/api/v1/files", c.url(1))).bearer_auth(&token).multipart(form).send()
    };
    let file = || reqwest::multipart::Part::bytes(b"body".to_vec()).file_name("f.txt");
    let meta = |json: String| reqwest::multipart::Part::text(json).mime_str("application/json").unwrap();
    let before = count().await;

    let big = format!(r#"{{"name":"x","description":"{}"}}"#, "d".repeat(300 * 1024));
    let r = send(reqwest::multipart::Form::new().part("metadata", meta(big)).part("file", file())).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "metadata_too_large");

    let long_description = format!(r#"{{"name":"x","description":"{}"}}"#, "d".repeat(20 * 1024));
    let r = send(reqwest::multipart::Form::new().part("metadata", meta(long_description)).part("file", file()));
    let r = r.await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "description_too_long");

    let tags: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    let many_tags = serde_json::json!({"name": "x", "tags": tags}).to_string();
    let r = send(reqwest::multipart::Form::new().part("metadata", meta(many_tags)).part("file", file())).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "too_many_tags");

    let late = serde_json::json!({"name": "late.txt", "retention_policy": "temporary"}).to_string();
    let r = send(reqwest::multipart::Form::new().part("file", file()).part("metadata", meta(late))).await.unwrap();
    assert_eq!(r.status(), 400, "metadata after the file is refused");
    let r = send(reqwest::multipart::Form::new().part("file", file()).part("file", file())).await.unwrap();
    assert_eq!(r.status(), 400, "two files in a single upload are refused");
    assert_eq!(count().await, before, "refused requests committed nothing");

    // A body that never sends a boundary (or a part header that never ends) is not buffered
    // without limit: 413, nothing stored.
    let r = http()
        .post(format!("{}/api/v1/files", c.url(1)))
        .bearer_auth(&token)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(vec![b'x'; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "multipart_head_too_large");
    let mut endless = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: ".to_vec();
    endless.extend(vec![b'p'; 200 * 1024]);
    let r = http()
        .post(format!("{}/api/v1/files/batch", c.url(1)))
        .bearer_auth(&token)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(endless)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(count().await, before, "refused requests committed nothing");

    // PATCH is bounded the same way.
    let ok = client.upload("ok.txt", b"ok".to_vec(), &UploadOptions::default()).await.unwrap();
    let r = http()
        .patch(format!("{}/api/v1/files/{}", c.url(1), ok.id))
        .bearer_auth(&token)
        .json(&serde_json::json!({"tags": (0..200).map(|i| i.to_string()).collect::<Vec<_>>()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    still_healthy(&c).await;
}

#[tokio::test]
async fn small_protocol_mistakes_get_the_answers_the_rfcs_give() {
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let client = c.client(1);
    let f =
        client.upload("годовой отчёт \"2026\".pdf", b"hello world".to_vec(), &UploadOptions::default()).await.unwrap();
    let content = format!("{}/api/v1/files/{}/content", c.url(1), f.id);
    let get = |h: &'static str, v: String| http().get(&content).bearer_auth(&token).header(h, v).send();

    assert_eq!(get("Range", "bytes=-0".into()).await.unwrap().status(), 416);
    assert_eq!(get("If-None-Match", "*".into()).await.unwrap().status(), 304);
    assert_eq!(get("If-None-Match", format!("W/\"{}\"", f.sha256)).await.unwrap().status(), 304, "weak comparison");
    let r = get("If-None-Match", "\"other\"".into()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.contains("filename=\"") && cd.contains("filename*=UTF-8''"), "{cd}");
    assert!(cd.is_ascii(), "{cd}");

    // A bad content type and a name that hides its extension are refused.
    let up = |name: &str, ct: &str| {
        http()
            .post(format!("{}/api/v1/files", c.url(1)))
            .bearer_auth(&token)
            .query(&[("name", name)])
            .header("Content-Type", ct)
            .body("x")
            .send()
    };
    let r = up("x.txt", "not a type").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_content_type");
    let r = up("invoice\u{202E}fdp.exe", "text/plain").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_name");

    // Authorise before validating: a reader's bad body to an admin route is a 403, not a 400.
    let (_, reader_token) = account_token(&c, "reader-app", &["reader"]).await;
    let r = http()
        .post(format!("{}/api/v1/service-accounts", c.url(1)))
        .bearer_auth(&reader_token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    still_healthy(&c).await;
}

#[tokio::test]
async fn the_dev_node_prints_the_bootstrap_secret_only_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (host, port) = artstore_chaos::free_loopback(2).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["dev", "--data-dir"])
        .arg(dir.path().join("d"))
        .args(["--http", &format!("{host}:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let printed = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !text.contains("ArtStore dev node") && Instant::now() < deadline {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        text
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("d").join("admin-credentials.json")).unwrap()).unwrap();
    let secret = creds["client_secret"].as_str().unwrap();
    assert!(printed.contains("admin-credentials.json"), "{printed}");
    assert!(!printed.contains(secret), "the secret went to a non-terminal stdout: {printed}");
}

/// Hostile values a careless or malicious client sends.
fn hostile(rng: &mut impl rand::Rng) -> String {
    let n = rng.random_range(0..12);
    match n {
        0 => String::new(),
        1 => "a".repeat(rng.random_range(1..20_000)),
        2 => "(".repeat(rng.random_range(1..3000)),
        3 => "я".repeat(rng.random_range(1..600)),
        4 => "\u{202E}\u{0000}\u{FFFF}\r\n\t".to_string(),
        5 => format!("{}1{}", "{\"a\":".repeat(rng.random_range(1..300)), "}".repeat(10)),
        6 => "99999999999999999999999999".to_string(),
        7 => "-1".to_string(),
        8 => "../../etc/passwd".to_string(),
        9 => "%ZZ%00%".to_string(),
        10 => "name:* OR id:* AND \"".to_string(),
        _ => (0..rng.random_range(1..64)).map(|_| rng.random_range(0x20u8..0x7f) as char).collect(),
    }
}

#[tokio::test]
async fn random_hostile_requests_get_clean_4xx_answers_and_never_a_5xx() {
    use rand::{Rng, SeedableRng};
    let (c, _) = one_node(|_| {}).await;
    let token = admin_token(&c).await;
    let client = c.client(1);
    let f = client.upload("target.txt", b"fuzz target".to_vec(), &UploadOptions::default()).await.unwrap();
    let seed: u64 = std::env::var("ARTSTORE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let rounds: usize = std::env::var("ARTSTORE_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let base = c.url(1);
    let http = http();
    let mut bad = Vec::new();
    for round in 0..rounds {
        let v = hostile(&mut rng);
        let w = hostile(&mut rng);
        let req = match rng.random_range(0..10) {
            0 => http.get(format!("{base}/api/v1/search")).query(&[("q", v.as_str()), (w.as_str(), "1")]),
            1 => http.get(format!("{base}/api/v1/files")).query(&[("after", v.as_str()), ("tag", w.as_str())]),
            2 => http
                .post(format!("{base}/api/v1/files"))
                .query(&[("name", v.as_str()), ("tags", w.as_str()), ("ttl_days", "0")])
                .header("X-Artstore-Attributes", w.clone())
                .header("Idempotency-Key", format!("k{round}"))
                .header("Content-Type", if round % 2 == 0 { v.clone() } else { "text/plain".into() })
                .body(w.clone()),
            3 => http
                .get(format!("{base}/api/v1/files/{}/content", f.id))
                .header("Range", format!("bytes={v}"))
                .header("If-None-Match", w.clone())
                .header("If-Range", v.clone()),
            4 => http
                .patch(format!("{base}/api/v1/files/{}", f.id))
                .header("Content-Type", "application/json")
                .body(format!("{{\"description\":{:?},\"tags\":[{:?}],\"custom_attributes\":{w}}}", v, w)),
            5 => http
                .post(format!("{base}/api/v1/auth/token"))
                .body(format!("grant_type=client_credentials&client_id={v}&client_secret={w}")),
            6 => http
                .post(format!("{base}/api/v1/service-accounts"))
                .header("Content-Type", "application/json")
                .body(v.clone()),
            7 => http
                .put(format!("{base}/api/v1/cluster/settings/fuzz"))
                .header("Content-Type", "application/json")
                .body(w.clone()),
            8 => {
                let meta = reqwest::multipart::Part::text(v.clone());
                let form = reqwest::multipart::Form::new()
                    .part("metadata", meta)
                    .part("file", reqwest::multipart::Part::text(w.clone()));
                http.post(format!("{base}/api/v1/files")).multipart(form)
            }
            _ => http.get(format!("{base}/api/v1/files/{}", urlencode(&v))),
        };
        let req = if round % 7 == 0 { req } else { req.bearer_auth(&token) };
        let Ok(resp) = req.send().await else { continue }; // a header reqwest itself refuses to send
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status.is_server_error() {
            bad.push(format!("round {round}: {status} {body}"));
        } else if status.is_client_error() {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if v["error"]["code"].as_str().is_none() && v["error"].as_str().is_none() {
                bad.push(format!("round {round}: {status} without a JSON error body: {body:.200}"));
            }
        }
    }
    assert!(bad.is_empty(), "seed {seed}:\n{}", bad.join("\n"));
    still_healthy(&c).await;
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
