//! Every route, called with no token, with a token of each role, and with a token of a disabled
//! account, answers with the status its role table says. The table is checked against the router's
//! source: a route added without an entry here fails this test. The OpenAPI document a node serves
//! is checked against both: the same routes, each with the role of the table, a security
//! requirement unless public, and only schemas that exist.

mod common;

use std::collections::BTreeSet;

use artstore_client::wire::UpdateServiceAccount;
use common::*;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Nobody,
    Reader,
    Writer,
    Operator,
    Admin,
}

use Needs::*;

/// (method, path as routed, role). Path parameters are filled with values that exist nowhere, so
/// that an allowed call does no harm (404, 400 or a harmless answer).
const ROUTES: &[(&str, &str, Needs)] = &[
    ("GET", "/health/live", Nobody),
    ("GET", "/health/ready", Nobody),
    ("GET", "/metrics", Nobody),
    ("POST", "/api/v1/auth/token", Nobody),
    ("GET", "/.well-known/jwks.json", Nobody),
    ("GET", "/api/v1/openapi.json", Nobody),
    ("GET", "/api/v1/service-accounts", Admin),
    ("POST", "/api/v1/service-accounts", Admin),
    ("GET", "/api/v1/service-accounts/{client_id}", Admin),
    ("PATCH", "/api/v1/service-accounts/{client_id}", Admin),
    ("DELETE", "/api/v1/service-accounts/{client_id}", Admin),
    ("POST", "/api/v1/service-accounts/{client_id}/rotate-secret", Admin),
    ("POST", "/api/v1/admin/keys/rotate", Operator),
    ("POST", "/api/v1/auth/revoke", Admin),
    ("GET", "/api/v1/audit", Operator),
    ("GET", "/api/v1/audit/verify", Operator),
    ("GET", "/api/v1/files", Reader),
    ("POST", "/api/v1/files", Writer),
    ("POST", "/api/v1/files/batch", Writer),
    ("GET", "/api/v1/files/{id}", Reader),
    ("PATCH", "/api/v1/files/{id}", Writer),
    ("DELETE", "/api/v1/files/{id}", Writer),
    ("GET", "/api/v1/files/{id}/content", Reader),
    ("GET", "/api/v1/files/{id}/finalize", Reader),
    ("POST", "/api/v1/files/{id}/finalize", Writer),
    ("GET", "/api/v1/search", Reader),
    ("GET", "/api/v1/repair/status", Operator),
    ("POST", "/api/v1/admin/recover", Admin),
    ("GET", "/api/v1/storage-elements", Reader),
    ("PATCH", "/api/v1/storage-elements/{node_id}/{name}", Operator),
    ("GET", "/api/v1/cluster/status", Reader),
    ("POST", "/api/v1/cluster/members", Operator),
    ("DELETE", "/api/v1/cluster/members/{node_id}", Operator),
    ("GET", "/api/v1/cluster/members/{node_id}/drain", Reader),
    ("POST", "/api/v1/cluster/members/{node_id}/drain", Operator),
    ("DELETE", "/api/v1/cluster/members/{node_id}/drain", Operator),
    ("GET", "/api/v1/cluster/backup", Admin),
    ("POST", "/api/v1/cluster/digest", Operator),
    ("GET", "/api/v1/cluster/digest/{index}", Reader),
    ("GET", "/api/v1/cluster/settings", Reader),
    ("GET", "/api/v1/cluster/settings/{key}", Reader),
    ("PUT", "/api/v1/cluster/settings/{key}", Operator),
    ("DELETE", "/api/v1/cluster/settings/{key}", Operator),
];

/// `(METHOD, path)` of every route in the router's source.
fn routed() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs")).unwrap();
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, up to its matching parenthesis.
        let (mut depth, mut end) = (1, 0);
        for (i, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let call = &rest[..end];
        let path = call.split('"').nth(1).unwrap().to_string();
        for (name, method) in
            [("get(", "GET"), ("post(", "POST"), ("patch(", "PATCH"), ("delete(", "DELETE"), ("put(", "PUT")]
        {
            let called = call.match_indices(name).any(|(i, _)| {
                let before = call[..i].chars().last();
                matches!(before, Some('.') | Some(' ') | Some(':') | Some('\n') | Some(','))
            });
            if called {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_role_table_covers_every_route_in_the_router() {
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let routed = routed();
    let missing: Vec<_> = routed.difference(&table).collect();
    let stale: Vec<_> = table.difference(&routed).collect();
    assert!(missing.is_empty(), "routes without an entry in ROUTES: {missing:?}");
    assert!(stale.is_empty(), "ROUTES entries the router does not have: {stale:?}");
}

fn concrete(path: &str) -> String {
    path.replace("{client_id}", "nobody-here")
        .replace("{id}", "00000000-0000-7000-8000-000000000000")
        .replace("{node_id}", "999")
        .replace("{name}", "no-such-element")
        .replace("{key}", "routes.test")
        .replace("{index}", "1")
}

#[tokio::test]
async fn every_route_answers_each_role_as_its_table_says() {
    let (c, _) = started_cluster(1, |_| {}).await;
    let admin = c.client(1);
    let mut tokens: Vec<(&str, String)> = vec![("admin", admin.token().await.unwrap())];
    for role in ["operator", "writer", "reader"] {
        tokens.push((role, account_token(&c, &format!("role-{role}"), &[role]).await.1));
    }
    let (_, disabled_token) = account_token(&c, "role-disabled", &["admin"]).await;
    admin
        .update_account("role-disabled", &UpdateServiceAccount { enabled: Some(false), ..Default::default() })
        .await
        .unwrap();

    let http = c.http();
    let call = |method: &str, path: &str, token: Option<&str>| {
        let url = format!("{}{}", c.url(1), concrete(path));
        let mut r = http.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let mut wrong = Vec::new();
    for (method, path, needs) in ROUTES {
        let anonymous = call(method, path, None).await.unwrap().status().as_u16();
        if *needs == Nobody {
            if anonymous == 401 || anonymous == 403 || anonymous >= 500 {
                wrong.push(format!("{method} {path} without a token: {anonymous}"));
            }
            continue;
        }
        if anonymous != 401 {
            wrong.push(format!("{method} {path} without a token: {anonymous}, not 401"));
        }
        let d = call(method, path, Some(&disabled_token)).await.unwrap().status().as_u16();
        if d != 401 {
            wrong.push(format!("{method} {path} with a disabled account's token: {d}, not 401"));
        }
        for (role, token) in &tokens {
            let allowed = *role == "admin"
                || matches!((role, needs), (&"operator", Operator) | (&"writer", Writer) | (&"reader", Reader));
            let status = call(method, path, Some(token)).await.unwrap().status().as_u16();
            let ok = if allowed { status != 401 && status != 403 && status < 500 } else { status == 403 };
            if !ok {
                wrong.push(format!("{method} {path} as {role}: {status} (allowed: {allowed})"));
            }
        }
    }
    assert!(wrong.is_empty(), "routes answering the wrong status:\n{}", wrong.join("\n"));
    assert!(!c.log(1).contains("panicked"));
}

fn role_name(needs: Needs) -> Option<&'static str> {
    match needs {
        Nobody => None,
        Reader => Some("reader"),
        Writer => Some("writer"),
        Operator => Some("operator"),
        Admin => Some("admin"),
    }
}

/// Every `$ref` under `v`.
fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// What is wrong with one operation of the document (empty when nothing).
fn check_operation(method: &str, path: &str, op: &serde_json::Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(needs) = ROUTES.iter().find(|(m, p, _)| *m == method && *p == path).map(|r| r.2) else {
        return vec![format!("{method} {path} is documented but not in ROUTES")];
    };
    let role = op["x-required-role"].as_str();
    if role != role_name(needs) {
        wrong.push(format!("{method} {path}: x-required-role {role:?}, the table says {needs:?}"));
    }
    let security = op["security"].as_array().cloned().unwrap_or_default();
    match role_name(needs) {
        // Public: nothing, or the token endpoint's optional HTTP Basic.
        None => {
            let ok = security.iter().all(|r| r.as_object().is_some_and(|o| o.keys().all(|k| k == "client_basic")));
            if !ok {
                wrong.push(format!("{method} {path} is public but documented with security {security:?}"));
            }
        }
        Some(role) => {
            for scheme in ["oauth2", "bearer"] {
                let has = security.iter().any(|r| r[scheme].as_array().is_some_and(|s| s.len() == 1 && s[0] == role));
                if !has {
                    wrong.push(format!("{method} {path}: no {scheme} requirement with scope {role}: {security:?}"));
                }
            }
            for status in ["401", "403"] {
                if op["responses"][status].is_null() {
                    wrong.push(format!("{method} {path} needs a role but documents no {status}"));
                }
            }
        }
    }
    let responses = op["responses"].as_object().cloned().unwrap_or_default();
    if !responses.keys().any(|s| s.starts_with('2')) {
        wrong.push(format!("{method} {path} documents no success response"));
    }
    for (status, r) in &responses {
        if status.as_str() >= "400" {
            let codes = r["x-error-codes"].as_array().map(Vec::len).unwrap_or(0);
            if codes == 0 || r["content"]["application/json"]["schema"].is_null() {
                wrong
                    .push(format!("{method} {path} {status}: an error response needs a JSON schema and x-error-codes"));
            }
        }
    }
    wrong
}

#[tokio::test]
async fn the_openapi_document_has_every_route_with_its_role_and_existing_schemas() {
    let (c, _) = started_cluster(1, |_| {}).await;
    // Public, like the other `Nobody` routes.
    let resp = c.http().get(format!("{}/api/v1/openapi.json", c.url(1))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);

    let mut wrong = Vec::new();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let method = method.to_uppercase();
            if !["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"].contains(&method.as_str()) {
                continue;
            }
            wrong.extend(check_operation(&method, path, op));
            documented.insert((method, path.clone()));
        }
    }
    let routed = routed();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented operations the router does not have: {unrouted:?}");

    let operation_ids: BTreeSet<&str> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(|item| item.as_object())
        .flat_map(|item| item.values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                for (name, link) in r["links"].as_object().into_iter().flatten() {
                    let target = link["operationId"].as_str().unwrap_or_default();
                    if !operation_ids.contains(target) {
                        wrong.push(format!("{method} {path} {status}: link {name} names no operation: {link}"));
                    }
                }
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/");
        if !name.is_some_and(|n| doc["components"]["schemas"][n].is_object()) {
            wrong.push(format!("$ref {r} does not resolve to a schema of the document"));
        }
    }
    for scheme in ["oauth2", "bearer", "client_basic"] {
        if !doc["components"]["securitySchemes"][scheme].is_object() {
            wrong.push(format!("security scheme {scheme} is not defined"));
        }
    }
    let token_url = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"];
    if token_url != "/api/v1/auth/token" {
        wrong.push(format!("the OAuth 2.0 flow's tokenUrl is {token_url}"));
    }
    assert!(wrong.is_empty(), "the OpenAPI document is wrong:\n{}", wrong.join("\n"));
}
