//! Downloads: into memory, one byte range, any `AsyncWrite`, or a path (resumable).
//!
//! Invariant: a download that reports success has hashed every byte of the file, in order, to
//! the SHA-256 the catalog records for it. An interrupted stream is resumed with a `Range`
//! request from the first missing byte (`If-Range` pins it to the same content), within the call
//! under the retry policy and, for paths, across calls through the `<path>.part` file.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::error_chain;
use crate::error::ClientError;
use crate::wire::FileInfo;
use crate::Client;

/// Where [`Client::download_to_path`] keeps the bytes received so far: `<path>.part`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(artstore_client::partial_path(Path::new("out/report.pdf")), Path::new("out/report.pdf.part"));
/// ```
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

impl Client {
    /// The whole body of a file, in memory (for large files use
    /// [`download_to_path`](Self::download_to_path) or [`download_to_writer`](Self::download_to_writer)).
    pub async fn download(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.content_response(id, None, None).await?;
        resp.bytes().await.map(|b| b.to_vec()).map_err(|e| ClientError::Unavailable(error_chain(&e)))
    }

    /// Bytes `start..=end` of a file (`end` is clamped to the last byte), in memory.
    pub async fn download_range(&self, id: &str, start: u64, end: u64) -> Result<Vec<u8>, ClientError> {
        let resp = self.content_response(id, Some(&format!("bytes={start}-{end}")), None).await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(no_range(resp.status()));
        }
        resp.bytes().await.map(|b| b.to_vec()).map_err(|e| ClientError::Unavailable(error_chain(&e)))
    }

    /// Streams a file's content into `writer` and checks it against the file's SHA-256 (the bytes
    /// are written as they arrive, so on [`ClientError::ChecksumMismatch`] the writer already holds
    /// them: discard them). An interrupted stream is resumed from the next byte, through any node,
    /// under the retry policy. `progress` gets bytes received and the total.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// let mut out = Vec::new(); // any tokio AsyncWrite: a file, a socket, a pipe...
    /// let info = client.download_to_writer("0190b0b6-8b5c-7cc2-9a57-3d3f0e4c2a11", &mut out, |_, _| {}).await?;
    /// assert_eq!(out.len() as u64, info.size);
    /// # Ok(()) }
    /// ```
    pub async fn download_to_writer<W>(
        &self,
        id: &str,
        mut writer: W,
        progress: impl Fn(u64, u64),
    ) -> Result<FileInfo, ClientError>
    where
        W: AsyncWrite + Unpin,
    {
        let info = self.get_file(id).await?;
        let mut hasher = Sha256::new();
        let io = |e: std::io::Error| ClientError::Invalid(format!("writing the download of {id}: {e}"));
        self.stream_from(&info, 0, &mut hasher, &mut writer, &progress).await?;
        writer.flush().await.map_err(io)?;
        verify(&info, hasher)?;
        Ok(info)
    }

    /// Downloads a file into `path`, resuming where an earlier attempt stopped.
    ///
    /// Bytes go to `<path>.part` ([`partial_path`]) first; if that file exists, only the rest is
    /// requested (a `Range` request) and appended. Once complete, the whole file is hashed and
    /// compared with the file's SHA-256: on a match it is renamed to `path`; on a mismatch (say the
    /// partial file held other bytes) it is deleted and [`ClientError::ChecksumMismatch`] is
    /// returned, so the next attempt starts from scratch. If the transfer fails for good (every
    /// node unreachable), the partial file is kept and calling again resumes it. `progress` gets
    /// the bytes on disk and the total.
    ///
    /// ```no_run
    /// # async fn demo(client: artstore_client::Client) -> Result<(), artstore_client::ClientError> {
    /// let path = std::path::Path::new("report.pdf");
    /// // Safe to call again after a failure: it picks up from report.pdf.part.
    /// let info = client
    ///     .download_to_path("0190b0b6-8b5c-7cc2-9a57-3d3f0e4c2a11", path, |done, total| eprintln!("{done}/{total}"))
    ///     .await?;
    /// println!("{} bytes, SHA-256 {}", info.size, info.sha256);
    /// # Ok(()) }
    /// ```
    pub async fn download_to_path(
        &self,
        id: &str,
        path: &Path,
        progress: impl Fn(u64, u64),
    ) -> Result<FileInfo, ClientError> {
        let info = self.get_file(id).await?;
        let part = partial_path(path);
        let io = |e: std::io::Error| ClientError::Invalid(format!("{}: {e}", part.display()));
        let (file, offset, mut hasher) = {
            let (part, size) = (part.clone(), info.size);
            tokio::task::spawn_blocking(move || open_partial(&part, size))
                .await
                .map_err(|e| ClientError::Invalid(format!("hashing the partial download: {e}")))?
                .map_err(io)?
        };
        progress(offset, info.size);
        let mut out = tokio::fs::File::from_std(file);
        let streamed = self.stream_from(&info, offset, &mut hasher, &mut out, &progress).await;
        // Keep what arrived, even on failure: the next call resumes from it.
        out.flush().await.map_err(io)?;
        out.sync_all().await.map_err(io)?;
        drop(out);
        streamed?;
        if let Err(e) = verify(&info, hasher) {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        tokio::fs::rename(&part, path).await.map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(info)
    }

    /// Streams `info`'s content from byte `offset` on into `out`, hashing it; an interrupted stream
    /// is resumed from the next byte after a backoff, up to the retry policy's attempts.
    async fn stream_from<W: AsyncWrite + Unpin>(
        &self,
        info: &FileInfo,
        mut offset: u64,
        hasher: &mut Sha256,
        out: &mut W,
        progress: &impl Fn(u64, u64),
    ) -> Result<(), ClientError> {
        let io = |e: std::io::Error| ClientError::Invalid(format!("writing the download of {}: {e}", info.id));
        let etag = format!("\"{}\"", info.sha256);
        let mut attempt = 1;
        while offset < info.size {
            let range = (offset > 0).then(|| format!("bytes={offset}-"));
            let resp = self.content_response(&info.id, range.as_deref(), Some(&etag)).await?;
            if offset > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
                return Err(no_range(resp.status()));
            }
            let mut body = resp.bytes_stream();
            let mut cause = String::from("the stream ended early");
            while let Some(piece) = body.next().await {
                match piece {
                    Ok(piece) => {
                        let piece = &piece[..piece.len().min((info.size - offset) as usize)];
                        hasher.update(piece);
                        out.write_all(piece).await.map_err(io)?;
                        offset += piece.len() as u64;
                        progress(offset, info.size);
                    }
                    Err(e) => {
                        cause = error_chain(&e);
                        break;
                    }
                }
            }
            if offset >= info.size {
                break;
            }
            if attempt >= self.retry.max_attempts {
                return Err(ClientError::Unavailable(format!(
                    "download of {} interrupted at byte {offset} of {}: {cause}",
                    info.id, info.size
                )));
            }
            tokio::time::sleep(self.retry.delay(attempt)).await;
            attempt += 1;
        }
        Ok(())
    }

    /// The response of `GET /api/v1/files/{id}/content` (optionally one byte range, valid only
    /// while the content's ETag is `if_range`) from the first node that serves it.
    async fn content_response(
        &self,
        id: &str,
        range: Option<&str>,
        if_range: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        self.execute(true, |base, bearer| {
            let mut req = self.http.get(format!("{base}/api/v1/files/{id}/content"));
            if let Some(r) = range {
                req = req.header(reqwest::header::RANGE, r);
                if let Some(tag) = if_range {
                    req = req.header(reqwest::header::IF_RANGE, tag);
                }
            }
            Ok(match bearer {
                Some(t) => req.bearer_auth(t),
                None => req,
            })
        })
        .await
    }
}

/// Opens (or creates) the partial file, drops it if it is longer than the file can be, and hashes
/// what it holds. Returns the file positioned at its end, its length and the running hash.
fn open_partial(part: &Path, size: u64) -> std::io::Result<(std::fs::File, u64, Sha256)> {
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(part)?;
    let mut len = file.metadata()?.len();
    if len > size {
        file.set_len(0)?;
        len = 0;
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.seek(std::io::SeekFrom::Start(len))?;
    Ok((file, len, hasher))
}

/// The whole content hashed to the catalog's SHA-256, or a [`ClientError::ChecksumMismatch`].
fn verify(info: &FileInfo, hasher: Sha256) -> Result<(), ClientError> {
    let actual = hex::encode(hasher.finalize());
    if actual != info.sha256 {
        return Err(ClientError::ChecksumMismatch { id: info.id.clone(), expected: info.sha256.clone(), actual });
    }
    Ok(())
}

fn no_range(status: StatusCode) -> ClientError {
    ClientError::Server {
        status: status.as_u16(),
        code: "no_range".into(),
        message: "the server did not answer the range request with 206".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_is_hashed_and_one_too_long_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.part");
        std::fs::write(&part, b"hello").unwrap();
        let (_, len, hasher) = open_partial(&part, 11).unwrap();
        assert_eq!(len, 5);
        assert_eq!(hex::encode(hasher.finalize()), hex::encode(Sha256::digest(b"hello")));
        let (_, len, _) = open_partial(&part, 3).unwrap();
        assert_eq!(len, 0);
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 0);
    }
}
