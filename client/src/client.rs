//! The HTTP client with fail-over across nodes and a cached, self-refreshing access token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use crate::search::Search;
use crate::wire::{
    AuditPage, AuditVerification, ClusterStatus, CreateServiceAccount, ErrorResponse, Health, JoinRequest, KeyRotated,
    RotateSecret, ServiceAccount, ServiceAccountWithSecret, ServiceAccounts, Setting, SettingValue, Settings,
    TokenResponse, UpdateServiceAccount,
};
use crate::wire::{
    CatalogDigest, DrainStatus, ElementModeChange, FileInfo, FileList, RepairStatus, SearchHit, SearchResults,
    StorageElementInfo, StorageElements, UpdateFile,
};

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
        let resp = self
            .authorized(|base, bearer| {
                options.headers(self.http.post(format!("{base}/api/v1/files")).query(&query), bearer).body(body.clone())
            })
            .await?;
        Self::json(resp).await
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
        // A streamed body cannot be sent twice: the file is reopened for each node tried.
        let bearer = self.bearer(false).await?;
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))?;
            let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let progress = progress.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
                if let Ok(c) = &chunk {
                    let now = sent.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed) + c.len() as u64;
                    progress(now, total);
                }
                chunk
            });
            let req = options.headers(self.http.post(format!("{base}/api/v1/files")).query(&query), bearer.as_deref());
            let req = req.header("content-length", total).body(reqwest::Body::wrap_stream(stream));
            let result = match req.send().await {
                Ok(resp) => Self::checked(resp).await,
                Err(e) => Err(ClientError::Unavailable(format!("{base}: {}", error_chain(&e)))),
            };
            match result {
                Ok(resp) => return Self::json(resp).await,
                Err(e @ ClientError::Unavailable(_)) => last = e,
                Err(e) => return Err(e),
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
        let resp = self.content_response(id, None).await?;
        {
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
            Ok(info)
        }
    }

    /// A file's metadata (read-after-write from any node).
    pub async fn get_file(&self, id: &str) -> Result<FileInfo, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/files/{id}"), None).await
    }

    /// Files in creation order after `after` (empty for the first page).
    pub async fn list_files(&self, after: &str, limit: usize) -> Result<FileList, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/files?after={after}&limit={limit}"), None).await
    }

    /// One page of a search; pass the previous page's `next_cursor` for the next.
    pub async fn search_page(&self, search: &Search, cursor: Option<&str>) -> Result<SearchResults, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/search?{}", search.to_query(cursor)), None).await
    }

    /// The first page of a search.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// use artstore_client::Search;
    /// let page = client.search(&Search::text("годовой отчёт").tag("finance")).await?;
    /// for hit in &page.hits {
    ///     println!("{} {} ({} bytes)", hit.id, hit.name, hit.size);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn search(&self, search: &Search) -> Result<SearchResults, ClientError> {
        self.search_page(search, None).await
    }

    /// Every hit of a search, page after page, as a stream.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// use futures::TryStreamExt;
    /// let ids: Vec<String> = client
    ///     .search_all(artstore_client::Search::all().tag("invoices").limit(200))
    ///     .map_ok(|hit| hit.id)
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn search_all(&self, search: Search) -> impl futures::Stream<Item = Result<SearchHit, ClientError>> + '_ {
        enum State {
            Start,
            Next(String),
            Done,
        }
        let pages = futures::stream::try_unfold(State::Start, move |state| {
            let search = search.clone();
            async move {
                let cursor = match state {
                    State::Start => None,
                    State::Next(c) => Some(c),
                    State::Done => return Ok(None),
                };
                let page = self.search_page(&search, cursor.as_deref()).await?;
                let next = page.next_cursor.clone().map_or(State::Done, State::Next);
                Ok(Some((futures::stream::iter(page.hits.into_iter().map(Ok)), next)))
            }
        });
        futures::TryStreamExt::try_flatten(pages)
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

    /// The response of `GET /api/v1/files/{id}/content` (optionally one byte range) from the
    /// first node that serves it.
    async fn content_response(&self, id: &str, range: Option<&str>) -> Result<reqwest::Response, ClientError> {
        self.authorized(|base, bearer| {
            let mut req = self.http.get(format!("{base}/api/v1/files/{id}/content"));
            if let Some(r) = range {
                req = req.header(reqwest::header::RANGE, r);
            }
            match bearer {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        })
        .await
    }

    /// The whole body of a file, in memory (for large files use
    /// [`download_to_path`](Self::download_to_path)).
    pub async fn download(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.content_response(id, None).await?;
        resp.bytes().await.map(|b| b.to_vec()).map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// Bytes `start..=end` of a file (`end` is clamped to the last byte), in memory.
    pub async fn download_range(&self, id: &str, start: u64, end: u64) -> Result<Vec<u8>, ClientError> {
        let resp = self.content_response(id, Some(&format!("bytes={start}-{end}"))).await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::Server {
                status: resp.status().as_u16(),
                code: "no_range".into(),
                message: "the server did not answer the range request with 206".into(),
            });
        }
        resp.bytes().await.map(|b| b.to_vec()).map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// The repair queue and the answering node's repair and scrub counters (operator role).
    pub async fn repair_status(&self) -> Result<RepairStatus, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/repair/status", None).await
    }

    /// Starts draining a node: it leaves placement and the leader moves its replicas elsewhere.
    pub async fn drain_node(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::POST, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// How far draining a node has come.
    pub async fn drain_status(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// Stops draining a node (it takes new replicas again).
    pub async fn cancel_drain(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::DELETE, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// Appends a catalog digest entry; returns its log index (operator role).
    pub async fn take_digest(&self) -> Result<u64, ClientError> {
        let d: CatalogDigest = self.send::<(), _>(Method::POST, "/api/v1/cluster/digest", None).await?;
        Ok(d.log_index)
    }

    /// The catalog digest the answering node recorded at `log_index`.
    pub async fn digest_at(&self, log_index: u64) -> Result<CatalogDigest, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/cluster/digest/{log_index}"), None).await
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

    /// Sends the request `make` builds for each node in turn and returns the first success; an
    /// error status is returned as a typed error at once, except that connection errors and
    /// 503/502 move on to the next node.
    async fn first_success<F>(&self, make: F) -> Result<reqwest::Response, ClientError>
    where
        F: Fn(&str) -> reqwest::RequestBuilder,
    {
        let mut last = ClientError::Unavailable("no node tried".into());
        for base in &self.urls {
            let resp = match make(base).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = ClientError::Unavailable(format!("{base}: {}", error_chain(&e)));
                    continue;
                }
            };
            match Self::checked(resp).await {
                Err(e @ ClientError::Unavailable(_)) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// A success response as it is; an error status as a typed error (503/502 → `Unavailable`).
    async fn checked(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let err = ClientError::from_status(status.as_u16(), resp.json::<ErrorResponse>().await.ok().map(|e| e.error));
        if status == StatusCode::BAD_GATEWAY {
            return Err(ClientError::Unavailable(err.to_string()));
        }
        Err(err)
    }

    /// Like [`Client::first_success`] with the bearer token, retried once with a fresh token after
    /// a 401.
    async fn authorized<F>(&self, make: F) -> Result<reqwest::Response, ClientError>
    where
        F: Fn(&str, Option<&str>) -> reqwest::RequestBuilder,
    {
        let bearer = self.bearer(false).await?;
        match self.first_success(|base| make(base, bearer.as_deref())).await {
            Err(ClientError::Unauthorized(_)) if self.credentials.is_some() => {
                let fresh = self.bearer(true).await?;
                self.first_success(|base| make(base, fresh.as_deref())).await
            }
            other => other,
        }
    }

    /// Decodes a success body, naming a body that does not parse.
    async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        resp.json().await.map_err(|e| ClientError::Server { status, code: "bad_body".into(), message: e.to_string() })
    }

    /// A JSON request to any node (fail-over, bearer token, one retry after a 401); a 204 decodes
    /// as JSON `null`.
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let resp = self
            .authorized(|base, bearer| {
                let mut req = self.http.request(method.clone(), format!("{base}{path}"));
                if let Some(t) = bearer {
                    req = req.bearer_auth(t);
                }
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return serde_json::from_value(serde_json::Value::Null).map_err(|e| ClientError::Server {
                status: 204,
                code: "bad_body".into(),
                message: e.to_string(),
            });
        }
        Self::json(resp).await
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
