//! Traces across nodes: a 3-node cluster exports spans over OTLP/HTTP (JSON) to a receiver this
//! test runs, and one upload through a follower must come back as one trace, correctly parented,
//! with spans from every node that stored it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::{account_token, set, started_cluster};
use serde_json::Value;

/// One exported span, as far as this test cares.
#[derive(Debug, Clone)]
struct Span {
    node: u64,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i64,
}

const SERVER: i64 = 2;
const CLIENT: i64 = 3;

/// An OTLP/HTTP receiver on loopback that keeps every span it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(spans): State<Arc<Mutex<Vec<Span>>>>, body: axum::body::Bytes| async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    spans.lock().unwrap().extend(parse(&v));
                }
                ([("content-type", "application/json")], "{}")
            }),
        )
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

/// The spans of an OTLP `ExportTraceServiceRequest` in JSON.
fn parse(v: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
        let node = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "artstore.node_id")
            .and_then(|a| {
                let v = &a["value"]["intValue"];
                v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64())
            })
            .unwrap_or(0);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_ascii_lowercase();
                out.push(Span {
                    node,
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent: text("parentSpanId"),
                    name: text("name"),
                    kind: s["kind"].as_i64().unwrap_or(0),
                });
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn one_upload_through_a_follower_is_one_trace_across_the_three_nodes() {
    let (endpoint, spans) = receiver().await;
    let (c, leader) = started_cluster(3, |t| {
        set(t, "telemetry", "otlp_endpoint", endpoint.clone());
    })
    .await;
    let follower = c.node_ids().into_iter().find(|&n| n != leader).unwrap();
    let (_, token) = account_token(&c, "tracer", &["writer"]).await;

    // The caller's own span: the upload's server span on the follower must be its child.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let resp = c
        .http()
        .post(format!("{}/api/v1/files?name=traced.txt", c.url(follower)))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .body("a traced upload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let trace: Vec<Span> = loop {
        let trace: Vec<Span> = spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        let nodes: BTreeSet<u64> = trace.iter().map(|s| s.node).collect();
        if nodes.len() == 3 {
            break trace;
        }
        if std::time::Instant::now() > deadline {
            let all = spans.lock().unwrap();
            let seen: Vec<String> = all
                .iter()
                .take(60)
                .map(|s| format!("node {} {} {} kind {}", s.node, s.trace_id, s.name, s.kind))
                .collect();
            panic!(
                "no spans of trace {trace_id} from three nodes within 30 s; {} spans received: {seen:#?}",
                all.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A little longer for the last batches (the commit's spans may trail the replicas').
    tokio::time::sleep(Duration::from_secs(2)).await;
    let trace: Vec<Span> = {
        let all = spans.lock().unwrap();
        let later: Vec<Span> = all.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        if later.len() >= trace.len() {
            later
        } else {
            trace
        }
    };
    let by_id: BTreeMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let summary: Vec<String> = trace
        .iter()
        .map(|s| format!("node {} {} kind {} {}<-{}", s.node, s.name, s.kind, s.span_id, s.parent))
        .collect();

    // The request's server span on the follower is the caller's child.
    let root = trace
        .iter()
        .find(|s| s.node == follower && s.kind == SERVER && s.name.starts_with("post /api/v1/files"))
        .unwrap_or_else(|| panic!("no server span of the upload on node {follower}: {summary:#?}"));
    assert_eq!(root.parent, caller_span, "{summary:#?}");

    // Every span hangs off the caller's span or off another span of the trace: nothing dangles.
    for s in &trace {
        assert!(
            s.parent == caller_span || by_id.contains_key(s.parent.as_str()),
            "span with an unknown parent: {s:?}\n{summary:#?}"
        );
    }

    // Each other node stored a chunk: its server span's parent is a client span on the follower,
    // which descends from the request.
    for node in c.node_ids().into_iter().filter(|&n| n != follower) {
        let served = trace
            .iter()
            .find(|s| s.node == node && s.kind == SERVER && s.name == "storage.put_chunk")
            .unwrap_or_else(|| panic!("node {node} has no storage.put_chunk server span: {summary:#?}"));
        let caller = by_id.get(served.parent.as_str()).expect("the put's parent was exported");
        assert_eq!((caller.node, caller.kind), (follower, CLIENT), "{summary:#?}");
        let mut at = *caller;
        let mut hops = 0;
        while at.span_id != root.span_id {
            at = by_id.get(at.parent.as_str()).unwrap_or_else(|| panic!("{at:?} does not lead to the request"));
            hops += 1;
            assert!(hops < 20, "parent chain too long: {summary:#?}");
        }
    }
}
