//! A bound on what a multipart body may send outside its parts' contents.
//!
//! The multipart parser buffers everything until it finds the next boundary or the end of a
//! part's headers; the upload routes lift the body limit (files stream through them), so a body
//! that never sends a boundary, or a part header that never ends, would otherwise grow that
//! buffer without limit. This stream adapter watches the bytes go by and fails the body when the
//! preamble before the first boundary, or the headers of a part (from its boundary to the blank
//! line), pass `max_head` bytes. Part contents are never counted or copied.

use axum::body::Bytes;
use futures::{Stream, StreamExt};

/// Where the scanner is in the multipart body.
#[derive(Debug, PartialEq)]
enum Phase {
    /// Before the first boundary: bytes count against the bound; only a delimiter ends it.
    Preamble,
    /// In a part's headers: bytes count against the bound until the blank line.
    Head,
    /// In a part's contents: only the next boundary is looked for.
    Content,
}

/// Tracks one body; see the module comment.
#[derive(Debug)]
pub struct HeadBound {
    /// `\r\n--boundary`, as it precedes every boundary but the first (which may open the body).
    delimiter: Vec<u8>,
    phase: Phase,
    /// Bytes of the current head so far.
    head: usize,
    max_head: usize,
    /// The last bytes seen, so that a delimiter or blank line split across pieces is found.
    tail: Vec<u8>,
}

impl HeadBound {
    pub fn new(boundary: &str, max_head: usize) -> Self {
        Self {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            phase: Phase::Preamble,
            // The body is scanned as if after a CRLF, so a first boundary at byte 0 matches.
            head: 0,
            max_head,
            tail: b"\r\n".to_vec(),
        }
    }

    /// Accounts for `piece`; `Err` once a head passes the bound.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), String> {
        let keep = self.delimiter.len().max(4);
        // Only the seam (the saved tail and the piece's start) and the piece itself are searched;
        // the piece is not copied.
        let mut seam = std::mem::take(&mut self.tail);
        seam.extend_from_slice(&piece[..piece.len().min(keep)]);
        let mut rest_from = 0; // offset in `piece` after the last event found
        let seam_tail = seam.len() - piece.len().min(keep);
        loop {
            let found = match self.phase {
                Phase::Content | Phase::Preamble => find(&seam, &self.delimiter, seam_tail, rest_from)
                    .map(|end| (end, Phase::Head))
                    .or_else(|| find_in(piece, &self.delimiter, rest_from).map(|end| (end, Phase::Head))),
                Phase::Head => find(&seam, b"\r\n\r\n", seam_tail, rest_from)
                    .map(|end| (end, Phase::Content))
                    .or_else(|| find_in(piece, b"\r\n\r\n", rest_from).map(|end| (end, Phase::Content))),
            };
            match found {
                Some((end, next)) => {
                    if self.phase != Phase::Content {
                        self.head += end.saturating_sub(rest_from);
                        self.check()?;
                    }
                    self.phase = next;
                    self.head = 0;
                    rest_from = end;
                }
                None => {
                    if self.phase != Phase::Content {
                        self.head += piece.len() - rest_from;
                        self.check()?;
                    }
                    break;
                }
            }
        }
        let start = piece.len().saturating_sub(keep);
        self.tail = if piece.len() >= keep {
            piece[start..].to_vec()
        } else {
            let mut t = seam[..seam_tail].to_vec();
            t.extend_from_slice(piece);
            t[t.len().saturating_sub(keep)..].to_vec()
        };
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        if self.head > self.max_head {
            return Err(format!(
                "a multipart preamble or part header is over {} bytes (limits.max_header_bytes)",
                self.max_head
            ));
        }
        Ok(())
    }
}

/// The end offset in `piece` of a `needle` that starts in the saved seam (at or after
/// `seam_tail - needle.len() + 1`) and ends in the piece after `from`.
fn find(seam: &[u8], needle: &[u8], seam_tail: usize, from: usize) -> Option<usize> {
    // A match that began before this piece cannot follow an event inside it.
    if from > 0 {
        return None;
    }
    let start = seam_tail.saturating_sub(needle.len() - 1);
    let at = memchr::memmem::find(&seam[start..], needle)? + start;
    let end_in_piece = (at + needle.len()).checked_sub(seam_tail)?;
    (at < seam_tail && end_in_piece > from).then_some(end_in_piece)
}

/// The end offset of the first `needle` in `piece` at or after `from`.
fn find_in(piece: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(&piece[from..], needle).map(|at| from + at + needle.len())
}

/// `body` with [`HeadBound`] applied: the stream fails at the first head over the bound.
pub fn bounded<S, E>(body: S, boundary: &str, max_head: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut bound = HeadBound::new(boundary, max_head);
    let mut failed = false;
    body.map(move |piece| {
        if failed {
            return Err(std::io::Error::other("multipart body refused"));
        }
        let piece = piece.map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Err(e) = bound.feed(&piece) {
            failed = true;
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        Ok(piece)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, content) in parts {
            out.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    fn feed_in(b: &HeadBound, data: &[u8], size: usize) -> Result<(), String> {
        let mut b = HeadBound::new("XyZ", b.max_head);
        for piece in data.chunks(size.max(1)) {
            b.feed(piece)?;
        }
        Ok(())
    }

    #[test]
    fn well_formed_bodies_pass_however_they_are_cut() {
        let big = vec![b'a'; 100_000];
        let data = body(&[("metadata", b"{}"), ("file", &big)]);
        let b = HeadBound::new("XyZ", 1024);
        for size in [1, 2, 3, 7, 64, 1000, 65536, data.len()] {
            feed_in(&b, &data, size).unwrap_or_else(|e| panic!("cut at {size}: {e}"));
        }
    }

    #[test]
    fn a_body_without_boundary_or_with_endless_headers_is_refused() {
        let b = HeadBound::new("XyZ", 1024);
        assert!(feed_in(&b, &vec![b'x'; 5000], 100).is_err(), "no boundary at all");
        let mut blank_first = b"\r\n\r\n".to_vec();
        blank_first.extend(vec![b'x'; 5000]);
        assert!(feed_in(&b, &blank_first, 100).is_err(), "a blank line does not end the preamble");
        let mut endless = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: ".to_vec();
        endless.extend(vec![b'p'; 5000]);
        assert!(feed_in(&b, &endless, 333).is_err(), "a part header that never ends");
        let mut second = body(&[("metadata", b"{}")]);
        second.truncate(second.len() - b"--XyZ--\r\n".len());
        second.extend_from_slice(b"--XyZ\r\nX-Pad: ");
        second.extend(vec![b'p'; 5000]);
        assert!(feed_in(&b, &second, 100).is_err(), "the second part's header");
    }

    proptest! {
        #[test]
        fn any_cut_of_a_valid_body_passes(content in proptest::collection::vec(any::<u8>(), 0..3000), size in 1usize..400) {
            let data = body(&[("metadata", b"{\"name\":\"x\"}"), ("file", &content)]);
            let b = HeadBound::new("XyZ", 512);
            prop_assert!(feed_in(&b, &data, size).is_ok());
        }
    }
}
