//! The storage protocol on [`STREAM_STORAGE`](artstore_raft::transport::STREAM_STORAGE) streams:
//! one request per stream. A frame is a big-endian `u32` length and that much JSON; a chunk body
//! follows its header raw.

use artstore_raft::RetentionPolicy;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest header frame accepted (a file record with many chunks fits).
const MAX_FRAME: u32 = 16 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// `size` bytes of body follow; the receiver stores them durably (fsync) before answering.
    PutChunk { policy: RetentionPolicy, sha256: String, size: u64 },
    /// The answer's header is followed by `size` bytes.
    GetChunk { element: String, sha256: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub error: Option<String>,
    /// The error is a damaged replica (missing or corrupt), not a passing failure.
    #[serde(default)]
    pub damaged: bool,
    /// The error is a lack of room (the peer's elements are full), not a passing failure.
    #[serde(default)]
    pub no_space: bool,
    /// For PutChunk: the element that stored it.
    pub element: Option<String>,
    /// For GetChunk: how many body bytes follow.
    pub size: Option<u64>,
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    w.write_all(&(json.len() as u32).to_be_bytes()).await?;
    w.write_all(&json).await
}

pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> std::io::Result<T> {
    let len = r.read_u32().await?;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes is too large")));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf).map_err(std::io::Error::other)
}
