//! Service accounts and tokens across a real 3-node cluster: a token from one node works on
//! every node, JWKS agree, rotation keeps old tokens valid, bad tokens and disabled accounts are
//! refused everywhere, the bootstrap admin is protected, secrets never reach the logs, and the
//! token endpoint answers malformed requests as RFC 6749 says.

mod common;

use std::time::Duration;

use artstore_client::wire::{CreateServiceAccount, UpdateServiceAccount};
use artstore_client::ClientError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;

fn kid(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

/// `GET /api/v1/cluster/status` with a raw bearer token; returns the status code.
async fn status_with(cluster: &LocalCluster, url: &str, token: &str) -> u16 {
    cluster
        .http()
        .get(format!("{url}/api/v1/cluster/status"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn new_account(cluster: &LocalCluster, roles: &[&str]) -> (String, String) {
    let req = CreateServiceAccount {
        name: "test app".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    let created = cluster.client(1).create_account(&req).await.unwrap();
    (created.account.client_id, created.client_secret)
}

#[tokio::test]
async fn tokens_work_on_every_node_and_survive_key_rotation() {
    let (cluster, _) = started_cluster(3, |_| {}).await;

    // A token from node 1 is accepted by node 3 (validation is local on every node).
    let token = cluster.client(1).token().await.unwrap();
    for id in [1, 2, 3] {
        assert_eq!(status_with(&cluster, &cluster.url(id), &token).await, 200, "node {id}");
    }
    // JWKS is identical everywhere.
    let jwks1 = cluster.anonymous(1).jwks().await.unwrap();
    for id in [2, 3] {
        let other = eventually(Duration::from_secs(5), "jwks replicated", || async {
            let j = cluster.anonymous(id).jwks().await.ok()?;
            (j == jwks1).then_some(j)
        })
        .await;
        assert_eq!(other, jwks1);
    }

    // Rotation: new tokens carry the new kid, the old token keeps working, JWKS lists both.
    let rotated = cluster.client(2).rotate_keys().await.unwrap();
    assert_ne!(rotated.kid, kid(&token));
    let (id, secret) = cluster.admin_credentials();
    let new_token = eventually(Duration::from_secs(5), "a token with the new kid", || async {
        // A new client each time: no cached token.
        let fresh = cluster.anonymous(3).with_credentials(id.clone(), secret.clone());
        let t = fresh.token().await.ok()?;
        (kid(&t) == rotated.kid).then_some(t)
    })
    .await;
    for id in [1, 2, 3] {
        assert_eq!(status_with(&cluster, &cluster.url(id), &token).await, 200, "old token on node {id}");
        eventually(Duration::from_secs(5), "new token accepted", || async {
            (status_with(&cluster, &cluster.url(id), &new_token).await == 200).then_some(())
        })
        .await;
    }
    let kids: Vec<String> = cluster.anonymous(1).jwks().await.unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert!(kids.contains(&kid(&token)) && kids.contains(&rotated.kid), "{kids:?}");
}

#[tokio::test]
async fn bad_tokens_roles_and_disabled_accounts_are_refused_everywhere() {
    let (cluster, _) = started_cluster(3, |_| {}).await;
    let url = cluster.url(2);

    // No token: 401 with a Bearer challenge.
    let resp = cluster.http().get(format!("{url}/api/v1/cluster/status")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));

    // Tampered, unsigned (`alg: none`) and garbage tokens.
    let token = cluster.client(1).token().await.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "someone-else".into();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    for bad in [tampered.as_str(), none.as_str(), "not-a-token"] {
        assert_eq!(status_with(&cluster, &url, bad).await, 401, "{bad}");
    }
    // A token of another cluster (other issuer, other keys).
    let (other, _) = started_cluster(1, |_| {}).await;
    let foreign = other.client(1).token().await.unwrap();
    assert_eq!(status_with(&cluster, &url, &foreign).await, 401);

    // A reader may read but not change settings: 403.
    let (reader_id, reader_secret) = new_account(&cluster, &["reader"]).await;
    let reader = cluster.anonymous(3).with_credentials(reader_id.clone(), reader_secret);
    reader.settings().await.unwrap();
    assert!(matches!(reader.put_setting("x", "y").await, Err(ClientError::Forbidden(_))));
    assert!(matches!(reader.list_accounts(false).await, Err(ClientError::Forbidden(_))));

    // Disabling the account stops its token on every node.
    let reader_token = reader.token().await.unwrap();
    let update = UpdateServiceAccount { enabled: Some(false), ..Default::default() };
    cluster.client(1).update_account(&reader_id, &update).await.unwrap();
    for id in [1, 2, 3] {
        eventually(Duration::from_secs(2), "disabled account refused", || async {
            (status_with(&cluster, &cluster.url(id), &reader_token).await == 401).then_some(())
        })
        .await;
    }
    let fresh = cluster.anonymous(2).with_credentials(reader_id, "whatever");
    assert!(matches!(fresh.token().await, Err(ClientError::Unauthorized(_))));

    // The bootstrap admin can be neither deleted nor disabled.
    let admin = cluster.client(3);
    assert!(matches!(admin.delete_account("admin").await, Err(ClientError::Conflict { .. })));
    let disable = UpdateServiceAccount { enabled: Some(false), ..Default::default() };
    assert!(matches!(admin.update_account("admin", &disable).await, Err(ClientError::Conflict { .. })));
    assert!(admin.get_account("admin").await.unwrap().enabled);
}

#[tokio::test]
async fn secret_rotation_and_secrets_never_reach_the_logs() {
    let (mut cluster, _) = started_cluster(3, |_| {}).await;
    let (id, first) = new_account(&cluster, &["writer"]).await;
    let login = |secret: &str| cluster.anonymous(2).with_credentials(id.clone(), secret.to_string());
    login(&first).token().await.unwrap();

    // With a grace period both secrets work; without one the old secret stops at once.
    let second = cluster.client(1).rotate_secret(&id, Some(300)).await.unwrap().client_secret;
    login(&first).token().await.unwrap();
    login(&second).token().await.unwrap();
    let rotated = cluster.client(1).rotate_secret(&id, None).await.unwrap();
    let third = rotated.client_secret;
    assert!(login(&second).token().await.is_err());
    // A secret expires `[auth] secret_max_age_days` (90 by default) after it was set.
    let at = |t: &str| humantime::parse_rfc3339(t).unwrap();
    let expires = at(rotated.account.secret_expires_at.as_deref().expect("secret_expires_at"));
    let lifetime = expires.duration_since(at(&rotated.account.updated_at)).unwrap().as_secs();
    assert!((90 * 86_400 - 5..=90 * 86_400 + 5).contains(&lifetime), "{lifetime} s");

    // A chosen secret may be neither weak nor one of the account's recent ones.
    let (earlier, chosen) = ("Earlier-Secret-2025", "Chosen-Secret-2026");
    cluster.client(1).rotate_secret_to(&id, earlier, None).await.unwrap();
    cluster.client(1).rotate_secret_to(&id, chosen, None).await.unwrap();
    login(chosen).token().await.unwrap();
    for reused in [chosen, earlier] {
        let e = cluster.client(2).rotate_secret_to(&id, reused, None).await.unwrap_err();
        assert!(e.to_string().contains("used this secret before"), "{e}");
    }
    let weak = cluster.client(1).rotate_secret_to(&id, "short", None).await.unwrap_err();
    assert!(matches!(weak, ClientError::BadRequest { .. }), "{weak}");
    login(chosen).token().await.unwrap();
    assert!(login(&third).token().await.is_err(), "a replaced secret still opens the account");
    assert!(login("Wrong-Secret-123").token().await.is_err());

    // Listing and reading never return a secret or its hash.
    let listed = serde_json::to_string(&cluster.client(3).list_accounts(true).await.unwrap()).unwrap();
    assert!(!listed.contains(&third) && !listed.contains("argon2"));

    let (_, admin_secret) = cluster.admin_credentials();
    for node in [1, 2, 3] {
        cluster.terminate(node);
        let log = cluster.log(node);
        assert!(!log.is_empty());
        for secret in [first.as_str(), &second, &third, &admin_secret, earlier, chosen] {
            assert!(!log.contains(secret), "a secret appeared in node {node}'s log");
        }
    }
}

#[tokio::test]
async fn the_token_endpoint_follows_rfc_6749_and_rate_limits() {
    let (cluster, _) = started_cluster(1, |t| set(t, "auth", "token_requests_per_minute", 8)).await;
    let url = format!("{}/api/v1/auth/token", cluster.url(1));
    let (id, secret) = cluster.admin_credentials();
    let http = cluster.http();
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap();
    let post = |body: String, ct: &'static str| http.post(&url).header("content-type", ct).body(body).send();
    const FORM: &str = "application/x-www-form-urlencoded";

    // Success with form credentials; no-store; RFC fields.
    let ok = post(form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]), FORM)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0 && body["access_token"].is_string() && body["scope"] == "admin");

    // HTTP Basic; and a JSON body.
    let basic = http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let json = serde_json::json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
    assert_eq!(post(json.to_string(), "application/json").await.unwrap().status(), 200);

    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        (status, v["error"].as_str().unwrap().to_string())
    };
    let no_grant = post(form(&[("client_id", &id), ("client_secret", &secret)]), FORM).await.unwrap();
    assert_eq!(error_of(no_grant).await, (400, "invalid_request".into()));
    let password =
        post(form(&[("grant_type", "password"), ("client_id", &id), ("client_secret", &secret)]), FORM).await.unwrap();
    assert_eq!(error_of(password).await, (400, "unsupported_grant_type".into()));
    let no_secret = post(form(&[("grant_type", "client_credentials"), ("client_id", &id)]), FORM).await.unwrap();
    assert_eq!(error_of(no_secret).await, (400, "invalid_request".into()));
    let wrong = http
        .post(&url)
        .basic_auth(&id, Some("Wrong-Secret-123"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(wrong.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(error_of(wrong).await, (401, "invalid_client".into()));

    // The per-client limit (8 per minute here) answers 429 with Retry-After.
    let mut limited = None;
    for _ in 0..10 {
        let r = http
            .post(&url)
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the rate limit never triggered");
    assert!(limited.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

    // Every issue and refusal is in the audit log, whose chain verifies.
    let client = cluster.client(1);
    let issued = client.audit(1, 1000, Some("token.issue")).await.unwrap().records;
    assert!(issued.iter().any(|r| r.outcome == "ok") && issued.iter().any(|r| r.outcome == "denied"));
    assert!(client.verify_audit().await.unwrap().ok);
}

#[tokio::test]
async fn a_cluster_configured_for_rs256_issues_and_accepts_rs256_tokens() {
    let (cluster, _) = started_cluster(2, |t| set(t, "auth", "key_algorithm", "RS256")).await;
    let token = cluster.client(1).token().await.unwrap();
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&header).unwrap()["alg"], "RS256");
    assert_eq!(status_with(&cluster, &cluster.url(2), &token).await, 200);
    let jwks = cluster.anonymous(2).jwks().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
}

fn jti(token: &str) -> String {
    let claims = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["jti"].as_str().unwrap().to_string()
}

/// Revocation by `jti` and by account takes effect on every node, only for the tokens it names,
/// and is audited; a token issued afterwards works.
#[tokio::test]
async fn revoked_tokens_are_refused_on_every_node() {
    use artstore_client::wire::RevokeTokens;
    let (cluster, _) = started_cluster(3, |_| {}).await;
    let (id, secret) = new_account(&cluster, &["reader"]).await;
    let login = |node: u64| cluster.anonymous(node).with_credentials(id.clone(), secret.clone());
    let (first, second) = (login(1).token().await.unwrap(), login(2).token().await.unwrap());
    assert_ne!(jti(&first), jti(&second));
    let admin = cluster.client(3);

    // One token by its jti: refused everywhere at once, the other token of the account still works.
    admin.revoke_tokens(&RevokeTokens { jti: Some(jti(&first)), ..Default::default() }).await.unwrap();
    for node in [1, 2, 3] {
        eventually(Duration::from_secs(5), "the revocation applied", || async {
            (status_with(&cluster, &cluster.url(node), &first).await == 401).then_some(())
        })
        .await;
        assert_eq!(status_with(&cluster, &cluster.url(node), &second).await, 200, "node {node}");
    }
    // Every token of the account issued until now.
    admin.revoke_tokens(&RevokeTokens { client_id: Some(id.clone()), ..Default::default() }).await.unwrap();
    for node in [1, 2, 3] {
        eventually(Duration::from_secs(5), "the account's revocation applied", || async {
            (status_with(&cluster, &cluster.url(node), &second).await == 401).then_some(())
        })
        .await;
    }
    // Tokens issued in the revocation's second are revoked too; a later one works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = login(1).token().await.unwrap();
    for node in [1, 2, 3] {
        assert_eq!(status_with(&cluster, &cluster.url(node), &fresh).await, 200, "node {node}");
    }

    // Bad requests are refused with what is wrong; only an admin may revoke.
    let both = RevokeTokens { jti: Some("x".into()), client_id: Some(id.clone()), ..Default::default() };
    assert!(matches!(admin.revoke_tokens(&both).await, Err(ClientError::BadRequest { .. })));
    let nobody = RevokeTokens { client_id: Some("no-such-account".into()), ..Default::default() };
    assert!(matches!(admin.revoke_tokens(&nobody).await, Err(ClientError::NotFound(_))));
    let reader = login(2);
    let mine = RevokeTokens { client_id: Some(id.clone()), ..Default::default() };
    assert!(matches!(reader.revoke_tokens(&mine).await, Err(ClientError::Forbidden(_))));
    // Both revocations are audited, and so is the refused one.
    let audited = admin.audit(1, 1000, Some("token.revoke")).await.unwrap().records;
    let outcomes: Vec<&str> = audited.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "ok").count(), 2, "{audited:?}");
    assert!(outcomes.iter().any(|o| o.starts_with("rejected")), "{audited:?}");
}
