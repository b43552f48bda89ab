//! The HTTP client with fail-over across nodes and a cached, self-refreshing access token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use crate::wire::{
    AuditPage, AuditVerification, ClusterStatus, CreateServiceAccount, ErrorResponse, Health, JoinRequest, KeyRotated,
    RotateSecret, ServiceAccount, ServiceAccountWithSecret, ServiceAccounts, Setting, SettingValue, Settings,
    TokenResponse, UpdateServiceAccount,
};
use crate::wire::{ElementModeChange, FileInfo, FileList, StorageElementInfo, StorageElements, UpdateFile};

/// A handle on an ArtStore cluster; cheap to clone (clones share the token cache).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    urls: Vec<String>,
    credentials: Option<Arc<Credentials>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("urls", &self.urls)
            .field("client_id", &self.credentials.as_ref().map(|c| c.client_id.as_str()))
            .finish()
    }
}

/// Service-account credentials and the token they last obtained.
struct Credentials {
    client_id: String,
    client_secret: String,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// Options of an upload; every field may be left at its default.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `permanent` (default) or `temporary`.
    pub retention_policy: Option<String>,
    pub ttl_days: Option<u32>,
    /// Alternative to `ttl_days`.
    pub ttl_seconds: Option<u64>,
    /// RFC 3339.
    pub retention_until: Option<String>,
    pub idempotency_key: Option<String>,
    /// Expected SHA-256 (hex) of the body; the server refuses a mismatch with 422.
    pub sha256: Option<String>,
    /// Store the chunks zstd-compressed (downloads are unaffected).
    pub compress: bool,
}

impl UploadOptions {
    /// The query string of an upload.
    fn query(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&'static str, String)> = vec![("name", name.to_string())];
        let optional = [
            ("description", self.description.clone()),
            ("tags", (!self.tags.is_empty()).then(|| self.tags.join(","))),
            ("retention_policy", self.retention_policy.clone()),
            ("ttl_days", self.ttl_days.map(|t| t.to_string())),
            ("ttl_seconds", self.ttl_seconds.map(|t| t.to_string())),
            ("retention_until", self.retention_until.clone()),
            ("compression", self.compress.then(|| "zstd".to_string())),
        ];
        q.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        q
    }

    /// The headers of an upload (content type, attributes, idempotency key, digest, token).
    fn headers(&self, mut req: reqwest::RequestBuilder, bearer: Option<&str>) -> reqwest::RequestBuilder {
        req = req.header("content-type", self.content_type.as_deref().unwrap_or("application/octet-stream"));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(a) = &self.attributes {
            req = req.header("x-artstore-attributes", serde_json::Value::Object(a.clone()).to_string());
        }
        if let Some(k) = &self.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if let Some(h) = &self.sha256 {
            req = req.header("x-checksum-sha256", h);
        }
        req
    }
}

/// A token is refreshed when less than this much of its lifetime is left.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

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
        Ok(Self { http, urls, credentials: None })
    }

    /// The same client authenticating as a service account: it fetches an access token on first
    /// use, caches it, refreshes it before it expires, and once more after a `401`.
    pub fn with_credentials(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.credentials = Some(Arc::new(Credentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            token: tokio::sync::Mutex::new(None),
        }));
        self
    }

    /// A valid access token (cached, or fetched now).
    pub async fn token(&self) -> Result<String, ClientError> {
        self.bearer(false).await?.ok_or_else(|| ClientError::Invalid("this client has no credentials".into()))
    }

    async fn bearer(&self, force: bool) -> Result<Option<String>, ClientError> {
        let Some(c) = &self.credentials else { return Ok(None) };
        let mut cached = c.token.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref() {
            if !force && Instant::now() < *refresh_at {
                return Ok(Some(token.clone()));
            }
        }
        let form =
            [("grant_type", "client_credentials"), ("client_id", &c.client_id), ("client_secret", &c.client_secret)];
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let resp = match self.http.post(format!("{base}/api/v1/auth/token")).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e)));
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() {
                let t: TokenResponse = resp.json().await.map_err(|e| ClientError::Server {
                    status: status.as_u16(),
                    code: "bad_body".into(),
                    message: e.to_string(),
                })?;
                let lifetime = Duration::from_secs(t.expires_in);
                let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
                *cached = Some((t.access_token.clone(), refresh_at));
                return Ok(Some(t.access_token));
            }
            // RFC 6749 §5.2 error body: {"error": "...", "error_description": "..."}.
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let code = body["error"].as_str().unwrap_or("unknown").to_string();
            let message = body["error_description"].as_str().unwrap_or(&code).to_string();
            let err = match status.as_u16() {
                401 => ClientError::Unauthorized(format!("{code}: {message}")),
                429 => ClientError::RateLimited { retry_after_secs: retry_after.unwrap_or(1), message },
                400 => ClientError::BadRequest { code, message },
                503 => ClientError::Unavailable(message),
                s => ClientError::Server { status: s, code, message },
            };
            if status == StatusCode::SERVICE_UNAVAILABLE {
                last = err;
                continue;
            }
            return Err(err);
        }
        Err(last)
    }

    /// A client for other node URLs that shares this one's credentials and cached token.
    pub fn with_urls<I, S>(&self, urls: I) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut c = Client::new(urls)?;
        c.http = self.http.clone();
        c.credentials = self.credentials.clone();
        Ok(c)
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

    // ----- files -----

    /// Uploads `body` as a new file (writer role). With `options.idempotency_key`, a retry
    /// returns the first upload's record instead of creating a duplicate.
    pub async fn upload(&self, name: &str, body: Vec<u8>, options: &UploadOptions) -> Result<FileInfo, ClientError> {
        let query = options.query(name);
        let body = bytes::Bytes::from(body);
        let mut last = ClientError::Unavailable("no node tried".into());
        for attempt in 0..2 {
            let bearer = self.bearer(attempt > 0).await?;
            for base in &self.urls {
                let req =
                    options.headers(self.http.post(format!("{base}/api/v1/files")).query(&query), bearer.as_deref());
                let req = req.body(body.clone());
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e)));
                        continue;
                    }
                };
                let status = resp.status();
                if status.is_success() {
                    return resp.json().await.map_err(|e| ClientError::Server {
                        status: status.as_u16(),
                        code: "bad_body".into(),
                        message: e.to_string(),
                    });
                }
                let err =
                    ClientError::from_status(status.as_u16(), resp.json::<ErrorResponse>().await.ok().map(|e| e.error));
                match err {
                    ClientError::Unavailable(_) => last = err,
                    ClientError::Unauthorized(_) if attempt == 0 && self.credentials.is_some() => {
                        last = err;
                        break;
                    }
                    other => return Err(other),
                }
            }
            if !matches!(last, ClientError::Unauthorized(_)) {
                break;
            }
        }
        Err(last)
    }

    /// Streams the file at `path` (never read whole into memory). `progress` is called with the
    /// bytes sent so far and the total. Fails over to the next node on connection errors; use an
    /// idempotency key in `options` so a retried upload cannot create a duplicate.
    pub async fn upload_path(
        &self,
        path: &std::path::Path,
        name: &str,
        options: &UploadOptions,
        progress: impl Fn(u64, u64) + Send + Sync + Clone + 'static,
    ) -> Result<FileInfo, ClientError> {
        let total = tokio::fs::metadata(path)
            .await
            .map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))?
            .len();
        let query = options.query(name);
        let bearer = self.bearer(false).await?;
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))?;
            let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let (sent2, progress) = (sent.clone(), progress.clone());
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
                if let Ok(c) = &chunk {
                    let now = sent2.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed) + c.len() as u64;
                    progress(now, total);
                }
                chunk
            });
            let req = options.headers(self.http.post(format!("{base}/api/v1/files")).query(&query), bearer.as_deref());
            let req = req.header("content-length", total).body(reqwest::Body::wrap_stream(stream));
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(|e| ClientError::Unavailable(e.to_string()));
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let err = ClientError::from_status(status, r.json::<ErrorResponse>().await.ok().map(|e| e.error));
                    if status != 503 {
                        return Err(err);
                    }
                    last = err;
                }
                Err(e) => last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e))),
            }
        }
        Err(last)
    }

    /// Streams a file's content into `path` (through a temporary file, renamed at the end) and
    /// checks it against the file's SHA-256. `progress` gets bytes received and the total.
    pub async fn download_to_path(
        &self,
        id: &str,
        path: &std::path::Path,
        progress: impl Fn(u64, u64),
    ) -> Result<FileInfo, ClientError> {
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let info = self.get_file(id).await?;
        let bearer = self.bearer(false).await?;
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let mut req = self.http.get(format!("{base}/api/v1/files/{id}/content"));
            if let Some(t) = &bearer {
                req = req.bearer_auth(t);
            }
            let resp = match req.send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    let status = r.status().as_u16();
                    last = ClientError::from_status(status, r.json::<ErrorResponse>().await.ok().map(|e| e.error));
                    if status != 503 {
                        return Err(last);
                    }
                    continue;
                }
                Err(e) => {
                    last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e)));
                    continue;
                }
            };
            let tmp = path.with_extension(format!("artstore-partial-{}", std::process::id()));
            let io = |e: std::io::Error| ClientError::Invalid(format!("{}: {e}", tmp.display()));
            let mut out = tokio::fs::File::create(&tmp).await.map_err(io)?;
            let mut hasher = sha2::Sha256::new();
            let mut received = 0u64;
            let mut body = resp.bytes_stream();
            while let Some(piece) = body.next().await {
                let piece = match piece {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(ClientError::Unavailable(format!("download interrupted: {}", error_chain(&e))));
                    }
                };
                hasher.update(&piece);
                out.write_all(&piece).await.map_err(io)?;
                received += piece.len() as u64;
                progress(received, info.size);
            }
            out.sync_all().await.map_err(io)?;
            let got = hex::encode(hasher.finalize());
            if got != info.sha256 {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ClientError::Server {
                    status: 200,
                    code: "checksum_mismatch".into(),
                    message: format!("downloaded content hashes to {got}, expected {}", info.sha256),
                });
            }
            tokio::fs::rename(&tmp, path).await.map_err(io)?;
            return Ok(info);
        }
        Err(last)
    }

    /// A file's metadata (read-after-write from any node).
    pub async fn get_file(&self, id: &str) -> Result<FileInfo, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/files/{id}"), None).await
    }

    /// Files in creation order after `after` (empty for the first page).
    pub async fn list_files(&self, after: &str, limit: usize) -> Result<FileList, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/files?after={after}&limit={limit}"), None).await
    }

    pub async fn update_file(&self, id: &str, update: &UpdateFile) -> Result<FileInfo, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/files/{id}"), Some(update)).await
    }

    /// Makes a temporary file permanent (same id).
    pub async fn finalize_file(&self, id: &str) -> Result<FileInfo, ClientError> {
        self.send::<(), _>(Method::POST, &format!("/api/v1/files/{id}/finalize"), None).await
    }

    pub async fn delete_file(&self, id: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &format!("/api/v1/files/{id}")).await
    }

    /// The whole body of a file, in memory (for large files stream instead).
    pub async fn download(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let bearer = self.bearer(false).await?;
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let mut req = self.http.get(format!("{base}/api/v1/files/{id}/content"));
            if let Some(t) = &bearer {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    return r.bytes().await.map(|b| b.to_vec()).map_err(|e| ClientError::Unavailable(e.to_string()))
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let err = ClientError::from_status(status, r.json::<ErrorResponse>().await.ok().map(|e| e.error));
                    if status != 503 {
                        return Err(err);
                    }
                    last = err;
                }
                Err(e) => last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e))),
            }
        }
        Err(last)
    }

    pub async fn storage_elements(&self) -> Result<StorageElements, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/storage-elements", None).await
    }

    /// Moves an element to `mode` (forward only: rw → ro → ar).
    pub async fn set_element_mode(
        &self,
        node_id: u64,
        name: &str,
        mode: &str,
    ) -> Result<StorageElementInfo, ClientError> {
        let body = ElementModeChange { mode: mode.to_string() };
        self.send(Method::PATCH, &format!("/api/v1/storage-elements/{node_id}/{name}"), Some(&body)).await
    }

    // ----- service accounts (admin role) -----

    pub async fn create_account(
        &self,
        request: &CreateServiceAccount,
    ) -> Result<ServiceAccountWithSecret, ClientError> {
        self.send(Method::POST, "/api/v1/service-accounts", Some(request)).await
    }

    pub async fn list_accounts(&self, include_deleted: bool) -> Result<ServiceAccounts, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/service-accounts?include_deleted={include_deleted}"), None)
            .await
    }

    pub async fn get_account(&self, client_id: &str) -> Result<ServiceAccount, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/service-accounts/{client_id}"), None).await
    }

    pub async fn update_account(
        &self,
        client_id: &str,
        update: &UpdateServiceAccount,
    ) -> Result<ServiceAccount, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/service-accounts/{client_id}"), Some(update)).await
    }

    /// New secret for `client_id`; the old one keeps working for `grace_period_secs` if given.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        grace_period_secs: Option<u64>,
    ) -> Result<ServiceAccountWithSecret, ClientError> {
        let body = RotateSecret { grace_period_secs };
        self.send(Method::POST, &format!("/api/v1/service-accounts/{client_id}/rotate-secret"), Some(&body)).await
    }

    pub async fn delete_account(&self, client_id: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &format!("/api/v1/service-accounts/{client_id}")).await
    }

    // ----- keys and audit (operator role) -----

    pub async fn rotate_keys(&self) -> Result<KeyRotated, ClientError> {
        self.send::<(), _>(Method::POST, "/api/v1/admin/keys/rotate", None).await
    }

    /// The public signing keys (`/.well-known/jwks.json`), as JSON.
    pub async fn jwks(&self) -> Result<serde_json::Value, ClientError> {
        self.send::<(), _>(Method::GET, "/.well-known/jwks.json", None).await
    }

    /// Audit records from sequence `from`, at most `limit`, optionally of one `action` only.
    pub async fn audit(&self, from: u64, limit: usize, action: Option<&str>) -> Result<AuditPage, ClientError> {
        let mut path = format!("/api/v1/audit?from={from}&limit={limit}");
        if let Some(a) = action {
            path.push_str(&format!("&action={a}"));
        }
        self.send::<(), _>(Method::GET, &path, None).await
    }

    /// Recomputes the audit chain on the answering node and reports the first broken record.
    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/audit/verify", None).await
    }

    /// Like `send`, for responses without a body (204).
    async fn send_empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send::<(), serde_json::Value>(method, path, None).await.map(|_| ())
    }

    /// Sends to each node in turn until one gives an answer that is not "unavailable"; with
    /// credentials, attaches the bearer token and retries once with a fresh one after a 401.
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        match self.send_once(method.clone(), path, body, false).await {
            Err(ClientError::Unauthorized(_)) if self.credentials.is_some() => {
                self.send_once(method, path, body, true).await
            }
            other => other,
        }
    }

    async fn send_once<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        fresh_token: bool,
    ) -> Result<T, ClientError> {
        let bearer = self.bearer(fresh_token).await?;
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(t) = &bearer {
                req = req.bearer_auth(t);
            }
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
            if status == StatusCode::NO_CONTENT {
                return serde_json::from_value(serde_json::Value::Null).map_err(|e| ClientError::Server {
                    status: 204,
                    code: "bad_body".into(),
                    message: e.to_string(),
                });
            }
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
