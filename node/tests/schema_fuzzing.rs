//! Defects that schema-driven fuzzing (`.ci/schemathesis.sh`: schemathesis against the node's own
//! OpenAPI document) found, each with a test that failed before its fix: a request a client may
//! send gets a prompt 4xx naming the problem, never a 5xx, a hang, or a node that can no longer
//! take files.

mod common;

use std::time::{Duration, Instant};

use artstore_client::UploadOptions;
use common::*;

/// Status and `error.code` of a response, asserting the body is the API's JSON error.
async fn refusal(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("{status}: body is not JSON: {e}"));
    (status, v["error"]["code"].as_str().unwrap_or_else(|| panic!("{status}: no error code in {v}")).to_string())
}

#[tokio::test]
async fn requests_the_fuzzer_found_get_prompt_refusals_and_the_node_keeps_taking_files() {
    let (c, _) = started_cluster(1, |_| {}).await;
    let admin = c.client(1);
    let token = admin.token().await.unwrap();
    let http = c.http();
    let url = |path: &str| format!("{}{path}", c.url(1));

    // A digest at a log index far past the log waited 10 s and answered 503; it does not exist.
    for index in ["9223372036854775808", "18446744073709551615"] {
        let started = Instant::now();
        let resp = http.get(url(&format!("/api/v1/cluster/digest/{index}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(refusal(resp).await, (404, "not_found".into()), "digest at {index}");
        assert!(started.elapsed() < Duration::from_secs(3), "digest at {index} took {:?}", started.elapsed());
    }
    let resp = http.get(url("/api/v1/cluster/digest/18446744073709551616")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refusal(resp).await, (400, "invalid_path".into()));

    // Draining the only node left every later upload with 507; it is refused instead.
    let resp = http.post(url("/api/v1/cluster/members/1/drain")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refusal(resp).await, (409, "conflict".into()));
    let drain = admin.drain_status(1).await.unwrap();
    assert!(!drain.draining, "{drain:?}");

    // A join naming the node's own addresses made the leader replicate to itself until the
    // catch-up timeout (60 s); it is refused at once.
    let me = admin.cluster_status().await.unwrap().members.remove(0);
    for (http_addr, quic_addr) in [
        (me.http_addr.clone(), me.quic_addr.clone()),
        ("127.0.0.1:1".to_string(), me.quic_addr.clone()),
        (me.http_addr.clone(), "127.0.0.1:1".to_string()),
    ] {
        let started = Instant::now();
        let body = serde_json::json!({"node_id": 296, "http_addr": http_addr, "quic_addr": quic_addr});
        let resp = http.post(url("/api/v1/cluster/members")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(refusal(resp).await, (409, "conflict".into()), "{body}");
        assert!(started.elapsed() < Duration::from_secs(3), "join {body} took {:?}", started.elapsed());
    }
    let body = serde_json::json!({"node_id": me.node_id, "http_addr": "127.0.0.1:1", "quic_addr": "127.0.0.1:2"});
    let resp = http.post(url("/api/v1/cluster/members")).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(refusal(resp).await, (409, "conflict".into()), "{body}");
    assert_eq!(admin.cluster_status().await.unwrap().members.len(), 1);

    // An unknown storage element answered 404 with the code `conflict`.
    let resp = http
        .patch(url("/api/v1/storage-elements/1/no-such-element"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"mode": "ro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(resp).await, (404, "not_found".into()));

    // A JSON array is read by serde as a positional struct: `[null]` changed a file (200, its
    // version bumped). A body must be a JSON object.
    let file = admin.upload("after.txt", b"still taking files".to_vec(), &UploadOptions::default()).await.unwrap();
    for body in ["[null]", "[]", r#"["new name"]"#] {
        let resp = http
            .patch(url(&format!("/api/v1/files/{}", file.id)))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(refusal(resp).await, (422, "invalid_body".into()), "PATCH {body}");
    }
    let after = admin.get_file(&file.id).await.unwrap();

    // RFC 3339 times with an offset other than Z were refused as "not an RFC 3339 time".
    for t in ["2030-01-01T01:00:00%2B01:00", "2029-12-31T18:30:00-05:30", "2030-01-01t00:00:00z"] {
        let resp = http.get(url(&format!("/api/v1/files?created_after={t}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "created_after={t}: {}", resp.text().await.unwrap());
    }
    assert_eq!((after.version, after.name.as_str()), (file.version, "after.txt"));
    assert!(!c.log(1).contains("panicked"), "{}", c.log(1));
}
