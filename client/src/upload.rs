//! Uploads: from memory, from a path, or from any `AsyncRead`, streamed and never held whole.
//!
//! Every upload carries an `Idempotency-Key` (the caller's, or a random one made here), so the
//! client may send it again through another node after a failure without ever creating a second
//! file: the server answers a repeated key with the first upload's record.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use crate::error::ClientError;
use crate::wire::FileInfo;
use crate::Client;

/// Options of an upload; every field may be left at its default.
///
/// ```
/// let options = artstore_client::UploadOptions {
///     content_type: Some("application/pdf".into()),
///     tags: vec!["contracts".into()],
///     retention_until: Some("2033-01-01T00:00:00Z".into()),
///     ..Default::default()
/// };
/// assert!(options.idempotency_key.is_none(), "one is generated per upload");
/// ```
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// MIME type (default `application/octet-stream`).
    pub content_type: Option<String>,
    /// Free text, searchable.
    pub description: Option<String>,
    /// Tags, searchable and filterable.
    pub tags: Vec<String>,
    /// Custom attributes (a JSON object), searchable and filterable.
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `permanent` (default) or `temporary`.
    pub retention_policy: Option<String>,
    /// Lifetime of a temporary file, in days (1–365).
    pub ttl_days: Option<u32>,
    /// Alternative to `ttl_days`.
    pub ttl_seconds: Option<u64>,
    /// RFC 3339: the file cannot be deleted or overwritten before this, by anyone.
    pub retention_until: Option<String>,
    /// Makes retries safe: an upload repeating a key returns the first upload's record. When
    /// absent, the SDK generates one per call (so its own retries are safe); give your own to make
    /// retries across calls or processes safe too.
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

    /// The caller's idempotency key, or a fresh random one.
    fn key(&self) -> String {
        self.idempotency_key.clone().unwrap_or_else(|| format!("sdk-{}", hex::encode(rand::random::<[u8; 16]>())))
    }

    /// The request of an upload (query, content type, attributes, idempotency key, digest, token).
    fn request(
        &self,
        client: &Client,
        base: &str,
        name: &str,
        key: &str,
        bearer: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = client
            .http
            .post(format!("{base}/api/v1/files"))
            .query(&self.query(name))
            .header("content-type", self.content_type.as_deref().unwrap_or("application/octet-stream"))
            .header("idempotency-key", key);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(a) = &self.attributes {
            req = req.header("x-artstore-attributes", serde_json::Value::Object(a.clone()).to_string());
        }
        if let Some(h) = &self.sha256 {
            req = req.header("x-checksum-sha256", h);
        }
        req
    }
}

impl Client {
    /// Uploads `body` as a new file (writer role). Retried through other nodes and after a backoff
    /// like every idempotent call; the idempotency key makes sure only one file is created.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// let file = client.upload("hello.txt", b"hello".to_vec(), &Default::default()).await?;
    /// assert_eq!(file.size, 5);
    /// # Ok(()) }
    /// ```
    pub async fn upload(&self, name: &str, body: Vec<u8>, options: &UploadOptions) -> Result<FileInfo, ClientError> {
        let key = options.key();
        let body = Bytes::from(body);
        let resp = self
            .execute(true, |base, bearer| Ok(options.request(self, base, name, &key, bearer).body(body.clone())))
            .await?;
        Self::json(resp).await
    }

    /// Streams the file at `path` (never read whole into memory); the file is reopened for every
    /// attempt, so the upload is retried like [`upload`](Self::upload). `progress` is called with
    /// the bytes sent so far (in the current attempt) and the total.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// let path = std::path::Path::new("scan.tiff");
    /// let file = client
    ///     .upload_path(path, "scan.tiff", &Default::default(), |sent, total| eprintln!("{sent}/{total}"))
    ///     .await?;
    /// println!("stored as {}", file.id);
    /// # Ok(()) }
    /// ```
    pub async fn upload_path(
        &self,
        path: &std::path::Path,
        name: &str,
        options: &UploadOptions,
        progress: impl Fn(u64, u64) + Send + Sync + Clone + 'static,
    ) -> Result<FileInfo, ClientError> {
        let io = |e: std::io::Error| ClientError::Invalid(format!("{}: {e}", path.display()));
        let total = tokio::fs::metadata(path).await.map_err(io)?.len();
        let key = options.key();
        let resp = self
            .execute(true, |base, bearer| {
                // Opening is one quick syscall; the reading is asynchronous.
                let file = tokio::fs::File::from_std(std::fs::File::open(path).map_err(io)?);
                let slot = Arc::new(Mutex::new(Some(file)));
                let stream = SlotStream::new(slot, Some(total), Arc::new(progress.clone()));
                Ok(options
                    .request(self, base, name, &key, bearer)
                    .header("content-length", total)
                    .body(reqwest::Body::wrap_stream(stream)))
            })
            .await?;
        Self::json(resp).await
    }

    /// Streams everything `reader` yields as a new file; `len`, when known, is sent as the
    /// `Content-Length`. `progress` gets the bytes sent and `len` (0 when unknown).
    ///
    /// A reader cannot be rewound, so the upload moves on to another node (now or after a
    /// backoff) only while none of its bytes have been sent; once the body has started, a failure
    /// is returned as [`ClientError::Unavailable`]. Upload again from the start with the same
    /// `options.idempotency_key` then: if the first attempt did commit, no second file is created.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// use artstore_client::UploadOptions;
    /// let options = UploadOptions { idempotency_key: Some("invoice-2026-0042".into()), ..Default::default() };
    /// let reader = tokio::io::stdin();
    /// let file = client.upload_reader("from-stdin.bin", reader, None, &options, |_, _| {}).await?;
    /// println!("{} bytes stored as {}", file.size, file.id);
    /// # Ok(()) }
    /// ```
    pub async fn upload_reader<R>(
        &self,
        name: &str,
        reader: R,
        len: Option<u64>,
        options: &UploadOptions,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<FileInfo, ClientError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let key = options.key();
        let slot = Arc::new(Mutex::new(Some(reader)));
        let progress: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(progress);
        let resp = self
            .execute(true, |base, bearer| {
                if slot.lock().map(|s| s.is_none()).unwrap_or(true) {
                    return Err(ClientError::Unavailable(format!(
                        "the upload of {name:?} was interrupted after its body had started and a reader \
                         cannot be sent twice; upload it again with idempotency key {key:?}"
                    )));
                }
                let stream = SlotStream::new(slot.clone(), len, progress.clone());
                let mut req = options.request(self, base, name, &key, bearer);
                if let Some(n) = len {
                    req = req.header("content-length", n);
                }
                Ok(req.body(reqwest::Body::wrap_stream(stream)))
            })
            .await?;
        Self::json(resp).await
    }
}

/// A request body read from a reader taken out of a shared slot. If the body is dropped before a
/// single byte was read (the connection was refused, say), the reader goes back into the slot so
/// that the next attempt can send it; otherwise the slot stays empty.
struct SlotStream<R> {
    reader: Option<R>,
    slot: Arc<Mutex<Option<R>>>,
    buf: BytesMut,
    sent: u64,
    total: u64,
    progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
}

impl<R: AsyncRead + Unpin> SlotStream<R> {
    fn new(slot: Arc<Mutex<Option<R>>>, total: Option<u64>, progress: Arc<dyn Fn(u64, u64) + Send + Sync>) -> Self {
        let reader = slot.lock().ok().and_then(|mut s| s.take());
        Self { reader, slot, buf: BytesMut::new(), sent: 0, total: total.unwrap_or(0), progress }
    }
}

impl<R: AsyncRead + Unpin> futures::Stream for SlotStream<R> {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(Some(Err(std::io::Error::other("the upload body was already sent"))));
        };
        if this.buf.capacity() < 64 * 1024 {
            this.buf.reserve(256 * 1024);
        }
        match tokio_util::io::poll_read_buf(Pin::new(reader), cx, &mut this.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(0)) => Poll::Ready(None),
            Poll::Ready(Ok(n)) => {
                this.sent += n as u64;
                (this.progress)(this.sent, this.total);
                Poll::Ready(Some(Ok(this.buf.split().freeze())))
            }
        }
    }
}

impl<R> Drop for SlotStream<R> {
    fn drop(&mut self) {
        if self.sent == 0 {
            if let (Some(reader), Ok(mut slot)) = (self.reader.take(), self.slot.lock()) {
                *slot = Some(reader);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn a_reader_goes_back_to_its_slot_only_while_unread() {
        let slot = Arc::new(Mutex::new(Some(std::io::Cursor::new(vec![7u8; 1000]))));
        let seen = Arc::new(AtomicU64::new(0));
        let progress = {
            let seen = seen.clone();
            Arc::new(move |sent: u64, total: u64| {
                assert_eq!(total, 1000);
                seen.store(sent, Ordering::Relaxed);
            })
        };
        // Dropped unread (a refused connection): the next attempt gets the reader back.
        drop(SlotStream::new(slot.clone(), Some(1000), progress.clone()));
        assert!(slot.lock().unwrap().is_some());
        // Read from: the reader is gone for good.
        let mut stream = SlotStream::new(slot.clone(), Some(1000), progress);
        let mut body = Vec::new();
        while let Some(piece) = stream.next().await {
            body.extend_from_slice(&piece.unwrap());
        }
        drop(stream);
        assert_eq!(body, vec![7u8; 1000]);
        assert_eq!(seen.load(Ordering::Relaxed), 1000);
        assert!(slot.lock().unwrap().is_none());
    }

    #[test]
    fn every_upload_gets_an_idempotency_key() {
        let options = UploadOptions::default();
        let (a, b) = (options.key(), options.key());
        assert!(a.starts_with("sdk-") && a.len() == 36 && a != b);
        let given = UploadOptions { idempotency_key: Some("order-42".into()), ..Default::default() };
        assert_eq!(given.key(), "order-42");
    }
}
