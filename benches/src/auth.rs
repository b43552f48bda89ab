//! Authentication workloads: token issue rate, and what a bearer token adds to a request.

use std::time::Duration;

use crate::report::{drive, row, Row};

/// Token requests spread over the nodes. The per-client rate limit applies: a spawned cluster
/// raises it for the run; against `--url`, raise `auth.token_requests_per_minute` first (refused
/// requests are counted as errors).
pub async fn token_issue(
    urls: &[String],
    (id, secret): &(String, String),
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let http = crate::net::http();
    let urls = urls.to_vec();
    let (id, secret) = (id.clone(), secret.clone());
    let result = drive(concurrency, duration, move |w| {
        let (http, url, id, secret) = (http.clone(), urls[w % urls.len()].clone(), id.clone(), secret.clone());
        async move {
            let form = [("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", secret.as_str())];
            matches!(http.post(format!("{url}/api/v1/auth/token")).form(&form).send().await, Ok(r) if r.status().is_success())
        }
    })
    .await?;
    Ok(row("token-issue", concurrency, result))
}

/// `/health/live` (no auth) next to `/api/v1/cluster/status` (bearer token validated locally).
pub async fn overhead(
    urls: &[String],
    creds: &(String, String),
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Vec<Row>> {
    let url = urls[0].clone();
    let token = crate::net::sdk([url.clone()])?.with_credentials(creds.0.clone(), creds.1.clone()).token().await?;
    let http = crate::net::http();
    // Alternate the two (plain, authenticated, plain, authenticated) so that warm-up and the
    // cluster settling after start-up do not favour either; each row is the second run.
    let mut rows = Vec::new();
    for _ in 0..2 {
        let (h, u) = (http.clone(), url.clone());
        let plain = drive(concurrency, duration / 2, move |_| {
            let (h, u) = (h.clone(), u.clone());
            async move { matches!(h.get(format!("{u}/health/live")).send().await, Ok(r) if r.status().is_success()) }
        })
        .await?;
        let (h, u, t) = (http.clone(), url.clone(), token.clone());
        let authed = drive(concurrency, duration / 2, move |_| {
            let (h, u, t) = (h.clone(), u.clone(), t.clone());
            async move {
                matches!(h.get(format!("{u}/api/v1/cluster/status")).bearer_auth(&t).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await?;
        rows = vec![row("health-live", concurrency, plain), row("status+auth", concurrency, authed)];
    }
    Ok(rows)
}
