//! The HTTP client: fail-over across nodes, retries with backoff for idempotent calls, and a
//! cached, self-refreshing access token.
//!
//! Invariants: a request is only ever repeated when repeating it cannot change the outcome
//! (idempotent methods, uploads with an `Idempotency-Key`); the node that last answered is tried
//! first, so a dead node costs one refused connection per call at most once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use crate::retry::RetryPolicy;
use crate::search::Search;
use crate::wire::{
    ClusterStatus, ErrorResponse, FileInfo, FileList, Health, JoinRequest, SearchHit, SearchResults, Setting,
    SettingValue, Settings, TokenResponse, UpdateFile,
};

/// A handle on an ArtStore cluster; cheap to clone (clones share the token cache).
///
/// ```no_run
/// # async fn demo() -> Result<(), artstore_client::ClientError> {
/// use artstore_client::{Client, RetryPolicy};
///
/// let client = Client::new(["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"])?
///     .with_credentials("sa-billing", "the-client-secret")
///     .with_retry_policy(RetryPolicy::default());
/// let file = client.get_file("0190b0b6-8b5c-7cc2-9a57-3d3f0e4c2a11").await?;
/// println!("{} has {} bytes", file.name, file.size);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    urls: Vec<String>,
    credentials: Option<Arc<Credentials>>,
    /// How the HTTP client was built (extra trusted roots, a client certificate), kept to
    /// rebuild it.
    tls: TlsSettings,
    pub(crate) retry: RetryPolicy,
    /// Index into `urls` of the node that last answered; tried first.
    preferred: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("urls", &self.urls)
            .field("client_id", &self.credentials.as_ref().map(|c| c.client_id.as_str()))
            .field("retry", &self.retry)
            .finish()
    }
}

/// Service-account credentials and the token they last obtained.
struct Credentials {
    client_id: String,
    client_secret: String,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// A token is refreshed when less than this much of its lifetime is left (or half of it, for
/// short-lived tokens).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// What one round over the nodes produced: a response, or an error and whether another round
/// (after a backoff) may help.
pub(crate) type Round = Result<reqwest::Response, (ClientError, bool)>;

/// Extra trusted roots (PEM) and the client certificate with its key (PEM), if any.
#[derive(Clone, Default)]
struct TlsSettings {
    roots: Vec<Vec<u8>>,
    identity: Option<Vec<u8>>,
}

fn build_http(tls: &TlsSettings) -> Result<reqwest::Client, ClientError> {
    // One crypto provider for the whole process (aws-lc-rs); ignore "already installed".
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        // Per read, not per request: a large transfer may take as long as it needs while bytes flow.
        .read_timeout(Duration::from_secs(60));
    if let Some(pem) = &tls.identity {
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| ClientError::Invalid(format!("client certificate: {}", error_chain(&e))))?;
        builder = builder.identity(identity);
    }
    for pem in &tls.roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Invalid(format!("CA certificate: {}", error_chain(&e))))?;
        if certs.is_empty() {
            return Err(ClientError::Invalid("CA certificate: no PEM `CERTIFICATE` block found".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ClientError::Invalid(format!("HTTP client: {}", error_chain(&e))))
}

impl Client {
    /// A client for the nodes at `urls` (e.g. `http://10.0.0.1:8080`), tried in order.
    ///
    /// ```
    /// let client = artstore_client::Client::new(["http://127.0.0.1:8080/"]).unwrap();
    /// assert_eq!(client.urls(), ["http://127.0.0.1:8080"]);
    /// assert!(artstore_client::Client::new(["ftp://example.com"]).is_err());
    /// ```
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
        Ok(Self {
            http: build_http(&TlsSettings::default())?,
            urls,
            credentials: None,
            tls: TlsSettings::default(),
            retry: RetryPolicy::default(),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
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

    /// The same client with another retry policy for idempotent calls.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = RetryPolicy { max_attempts: policy.max_attempts.max(1), ..policy };
        self
    }

    /// The same client also trusting the CA certificate(s) in `pem` for `https://` URLs.
    ///
    /// Nodes serve HTTPS with certificates from the cluster CA (`ca/ca.pem` of `artstore cluster
    /// init`, `DATA_DIR/tls/ca.pem` of `artstore dev --tls`); trust it with this. The system's
    /// trusted roots are always trusted too (for a proxy or load balancer with a public
    /// certificate).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let pem = std::fs::read("ca.pem")?;
    /// let client = artstore_client::Client::new(["https://archive.example.com"])?.with_ca_cert(&pem)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails with [`ClientError::Invalid`] when `pem` holds no certificate.
    pub fn with_ca_cert(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut tls = self.tls.clone();
        tls.roots.push(pem.to_vec());
        self.http = build_http(&tls)?;
        self.tls = tls;
        Ok(self)
    }

    /// The same client presenting a client certificate (mutual TLS): `pem` holds the certificate
    /// and its private key, as `artstore cluster client-cert` writes them. Nodes with
    /// `[http.tls] client_ca` bind the tokens they issue over it to the certificate, and accounts
    /// created with `require_client_cert` get tokens only this way.
    ///
    /// Fails with [`ClientError::Invalid`] when `pem` holds no certificate and key.
    pub fn with_client_certificate(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut tls = self.tls.clone();
        tls.identity = Some(pem.to_vec());
        self.http = build_http(&tls)?;
        self.tls = tls;
        // A token obtained without the certificate would not be bound to it.
        if let Some(c) = &self.credentials {
            self.credentials = Some(Arc::new(Credentials {
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                token: tokio::sync::Mutex::new(None),
            }));
        }
        Ok(self)
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
                    last = send_error(base, &e);
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
                502 | 503 => ClientError::Unavailable(format!("{base}: {message}")),
                s => ClientError::Server { status: s, code, message },
            };
            if matches!(err, ClientError::Unavailable(_)) {
                last = err;
                continue;
            }
            return Err(err);
        }
        Err(last)
    }

    /// A client for other node URLs that shares this one's credentials, cached token, trusted
    /// roots and retry policy.
    pub fn with_urls<I, S>(&self, urls: I) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut c = Client::new(urls)?;
        c.http = self.http.clone();
        c.tls = self.tls.clone();
        c.credentials = self.credentials.clone();
        c.retry = self.retry;
        Ok(c)
    }

    /// The configured node URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The retry policy of idempotent calls.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
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

    // ----- file metadata and search -----

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

    /// Changes a file's metadata (name, description, tags, attributes, a later `retention_until`);
    /// the version goes up by one. Not retried: a repeat would bump the version twice.
    pub async fn update_file(&self, id: &str, update: &UpdateFile) -> Result<FileInfo, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/files/{id}"), Some(update)).await
    }

    /// Makes a temporary file permanent (same id).
    pub async fn finalize_file(&self, id: &str) -> Result<FileInfo, ClientError> {
        self.send::<(), _>(Method::POST, &format!("/api/v1/files/{id}/finalize"), None).await
    }

    /// Deletes a file where its storage element's mode and its retention allow it (`Conflict`
    /// otherwise).
    pub async fn delete_file(&self, id: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &format!("/api/v1/files/{id}")).await
    }

    // ----- plumbing -----

    /// Like `send`, for responses without a body (204).
    pub(crate) async fn send_empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send::<(), serde_json::Value>(method, path, None).await.map(|_| ())
    }

    /// One round: sends the request `make` builds to each node in turn, starting with the node
    /// that answered last, and returns the first answer. An error status is returned as a typed
    /// error at once; connection errors and 502/503 move on to the next node. `make` failing
    /// (a body that cannot be sent again) ends the round and every retry.
    async fn round<F>(&self, make: &F, bearer: Option<&str>) -> Round
    where
        F: Fn(&str, Option<&str>) -> Result<reqwest::RequestBuilder, ClientError>,
    {
        let n = self.urls.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = ClientError::Unavailable("no node tried".into());
        for i in 0..n {
            let index = (start + i) % n;
            let base = &self.urls[index];
            let request = make(base, bearer).map_err(|e| (e, false))?;
            let resp = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = send_error(base, &e);
                    continue;
                }
            };
            match Self::checked(resp).await {
                Err(ClientError::Unavailable(m)) => last = ClientError::Unavailable(format!("{base}: {m}")),
                other => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return other.map_err(|e| (e, false));
                }
            }
        }
        // A certificate that cannot be trusted stays so: no point in another round.
        let again = !matches!(last, ClientError::Tls(_));
        Err((last, again))
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

    /// Rounds over the nodes with the bearer token (fetched again once after a 401). With
    /// `idempotent`, a round in which no node could serve is repeated after a backoff, up to the
    /// retry policy's attempts.
    pub(crate) async fn execute<F>(&self, idempotent: bool, make: F) -> Result<reqwest::Response, ClientError>
    where
        F: Fn(&str, Option<&str>) -> Result<reqwest::RequestBuilder, ClientError>,
    {
        let attempts = if idempotent { self.retry.max_attempts.max(1) } else { 1 };
        let mut attempt = 1;
        loop {
            let outcome = match self.bearer(false).await {
                Ok(bearer) => match self.round(&make, bearer.as_deref()).await {
                    Err((ClientError::Unauthorized(_), _)) if self.credentials.is_some() => {
                        match self.bearer(true).await {
                            Ok(fresh) => self.round(&make, fresh.as_deref()).await,
                            Err(e @ ClientError::Unavailable(_)) => Err((e, true)),
                            Err(e) => Err((e, false)),
                        }
                    }
                    other => other,
                },
                Err(e @ ClientError::Unavailable(_)) => Err((e, true)),
                Err(e) => Err((e, false)),
            };
            match outcome {
                Ok(resp) => return Ok(resp),
                Err((_, true)) if attempt < attempts => {
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Decodes a success body, naming a body that does not parse.
    pub(crate) async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        resp.json().await.map_err(|e| ClientError::Server { status, code: "bad_body".into(), message: e.to_string() })
    }

    /// A JSON request to any node (fail-over, bearer token, one retry after a 401, backoff rounds
    /// for idempotent methods); a 204 decodes as JSON `null`.
    pub(crate) async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE);
        let resp = self
            .execute(idempotent, |base, bearer| {
                let mut req = self.http.request(method.clone(), format!("{base}{path}"));
                if let Some(t) = bearer {
                    req = req.bearer_auth(t);
                }
                Ok(match body {
                    Some(b) => req.json(b),
                    None => req,
                })
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

/// What a request that got no response failed with: [`ClientError::Tls`] when the node's
/// certificate cannot be trusted (naming the host asked for and the names the certificate
/// covers), else [`ClientError::Unavailable`] with the whole cause.
fn send_error(base: &str, e: &reqwest::Error) -> ClientError {
    use rustls::{CertificateError, Error as TlsError};
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        // rustls' error travels inside io::Errors (nested), whose `source()` skips it.
        let mut inner: &(dyn std::error::Error + 'static) = err;
        while let Some(wrapped) = inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            inner = wrapped;
        }
        let tls = inner.downcast_ref::<TlsError>();
        if let Some(TlsError::InvalidCertificate(c)) = tls {
            let why = match c {
                CertificateError::NotValidForNameContext { expected, presented } => format!(
                    "the certificate of {base} is not valid for {}: it covers {}",
                    server_name(expected),
                    presented.join(", ")
                ),
                CertificateError::NotValidForName => format!("the certificate of {base} does not cover its host name"),
                CertificateError::UnknownIssuer => format!(
                    "the certificate of {base} is not issued by a trusted CA (trust the cluster CA: \
                     Client::with_ca_cert, or --ca-cert / ARTSTORE_CA_CERT)"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the certificate of {base} has expired")
                }
                other => format!("the certificate of {base} is refused: {other}"),
            };
            return ClientError::Tls(why);
        }
        cur = err.source();
    }
    ClientError::Unavailable(format!("{base}: {}", error_chain(e)))
}

fn server_name(n: &rustls::pki_types::ServerName<'_>) -> String {
    match n {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// "outer: inner: root cause", so a connection failure says *why* (refused, timed out, DNS).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
