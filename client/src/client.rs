//! The HTTP client with fail-over across nodes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use crate::wire::{ClusterStatus, ErrorResponse, Health, JoinRequest, Setting, SettingValue, Settings};

/// A handle on an ArtStore cluster; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    urls: Vec<String>,
}

impl Client {
    /// A client for the nodes at `urls` (e.g. `http://10.0.0.1:8080`), tried in order.
    pub fn new<I, S>(urls: I) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.into().trim_end_matches('/').to_string()).collect();
        if urls.is_empty() {
            return Err(ClientError::Invalid("at least one node URL is needed".into()));
        }
        for u in &urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ClientError::Invalid(format!("{u:?} is not an http:// or https:// URL")));
            }
        }
        // One crypto provider for the whole process (aws-lc-rs); ignore "already installed".
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        Ok(Self { http, urls })
    }

    /// The configured node URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `GET /health/ready` of the first node that answers: Ok when it has a leader and is caught up.
    pub async fn ready(&self) -> Result<Health, ClientError> {
        self.send::<(), _>(Method::GET, "/health/ready", None).await
    }

    /// `GET /api/v1/cluster/status` of the first node that answers.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/cluster/status", None).await
    }

    /// Adds a node to the cluster; returns once it has caught up and become a voter.
    pub async fn join(&self, request: &JoinRequest) -> Result<ClusterStatus, ClientError> {
        self.send(Method::POST, "/api/v1/cluster/members", Some(request)).await
    }

    /// Removes a node from the cluster.
    pub async fn remove(&self, node_id: u64) -> Result<ClusterStatus, ClientError> {
        self.send::<(), _>(Method::DELETE, &format!("/api/v1/cluster/members/{node_id}"), None).await
    }

    /// Sets a cluster-wide setting (replicated through Raft).
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<Setting, ClientError> {
        let body = SettingValue { value: value.to_string() };
        self.send(Method::PUT, &format!("/api/v1/cluster/settings/{key}"), Some(&body)).await
    }

    /// Reads one setting; with `consistent` the answer reflects every write acknowledged before.
    pub async fn get_setting(&self, key: &str, consistent: bool) -> Result<Setting, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/cluster/settings/{key}?consistent={consistent}"), None).await
    }

    /// Every setting as the answering node knows it.
    pub async fn settings(&self) -> Result<Settings, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/cluster/settings", None).await
    }

    /// Sends to each node in turn until one gives an answer that is not "unavailable".
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e)));
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() {
                return resp.json::<T>().await.map_err(|e| ClientError::Server {
                    status: status.as_u16(),
                    code: "bad_body".into(),
                    message: format!("{base}: {e}"),
                });
            }
            let err_body = resp.json::<ErrorResponse>().await.ok().map(|e| e.error);
            let err = ClientError::from_status(status.as_u16(), err_body);
            if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY {
                last = err;
                continue;
            }
            return Err(err);
        }
        Err(last)
    }
}

/// "outer: inner: root cause", so a connection failure says *why* (refused, timed out, DNS).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}
