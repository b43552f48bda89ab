//! The storage protocol: how chunk bodies move between nodes.
//!
//! Calls with small arguments and answers (Raft, forwarded proposals, membership, pings) go
//! through the tarpc service ([`ClusterRpc`](artstore_raft::transport::ClusterRpc)). Chunk bodies
//! do not: each transfer opens its own QUIC stream tagged
//! [`STREAM_STORAGE`](artstore_raft::transport::STREAM_STORAGE), so a 4 MiB body is neither copied
//! into an RPC frame nor queued ahead of Raft heartbeats on a shared stream, and a lost packet
//! stalls only its own transfer.
//!
//! A stream carries one [`Call`] header (a [`Request`] and the caller's trace context) and, for a
//! put, the raw body; the answer is one
//! [`Reply`] header and, for a get, the raw body. A header is a frame: a big-endian `u32` length,
//! then the protocol [`VERSION`] (`u16`), then the message in bincode (the encoding tarpc uses),
//! decoded with a size limit so that no length inside it can make the reader allocate more than
//! the frame holds. A peer speaking another version gets [`Refusal::Version`] naming ours.

use artstore_raft::RetentionPolicy;
use bincode::Options;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The storage protocol version this node speaks (1 was JSON headers; 2 had no trace context).
pub const VERSION: u16 = 3;

/// Largest header frame accepted: headers hold a digest and an element name, never a body.
pub const MAX_FRAME: u32 = 64 * 1024;

/// What a peer asks of this node's storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// `size` bytes of body follow; the receiver checks their digest and stores them durably
    /// (fsync) before answering.
    PutChunk { policy: RetentionPolicy, sha256: String, size: u64 },
    /// The answer's header is followed by the chunk's bytes.
    GetChunk { element: String, sha256: String },
}

/// The header a caller sends: what it asks, and the trace it asks within.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub request: Request,
    /// The caller's span, when its trace is exported; the receiver's span becomes its child.
    pub trace: Option<TraceContext>,
}

/// A W3C trace context (`traceparent`) in binary: which trace, which span, sampled or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// W3C trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// The context of `span`, if it belongs to an exported trace (none when tracing is off).
    pub fn of(span: &tracing::Span) -> Option<Self> {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| Self {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    /// Makes `span` a child of this remote context.
    pub fn adopt(&self, span: &tracing::Span) {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let remote = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::default(),
        );
        if remote.is_valid() {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
    }
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The chunk is durable on this element.
    Stored {
        element: String,
    },
    /// `size` bytes of chunk body follow.
    Body {
        size: u64,
    },
    Refused(Refusal),
}

/// Why a peer did not do what was asked; each kind is handled differently by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The replica is missing or does not hash to its name: it needs repair.
    Damaged(String),
    /// The peer's elements are full.
    NoSpace(String),
    /// The request itself is wrong (bad digest, unknown element, too large).
    Invalid(String),
    /// A passing failure (disk, shutdown): another replica or a retry may do.
    Failed(String),
    /// The request's protocol version is not one this node speaks; `spoken` is ours.
    Version { spoken: u16 },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME} allowed")]
    TooLarge(u32),
    #[error("frame of {0} bytes is too short for a header")]
    TooShort(u32),
    /// The peer speaks another protocol version (its version, in the frame).
    #[error("the peer speaks storage protocol v{0}; this node speaks v{VERSION}")]
    Version(u16),
    #[error("malformed header: {0}")]
    Malformed(String),
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_limit(u64::from(MAX_FRAME))
}

/// Encodes `value` as one frame (length, version, bincode).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding our own enums into a Vec cannot fail; an empty body would be refused by the peer.
    let body = codec().serialize(value).unwrap_or_default();
    let mut frame = Vec::with_capacity(6 + body.len());
    frame.extend_from_slice(&((body.len() + 2) as u32).to_be_bytes());
    frame.extend_from_slice(&VERSION.to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Decodes one frame's contents (after its length): the version, then the message.
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, FrameError> {
    let Some((version, body)) = frame.split_first_chunk::<2>() else {
        return Err(FrameError::TooShort(frame.len() as u32));
    };
    let version = u16::from_be_bytes(*version);
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    codec().deserialize(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, value: &T) -> std::io::Result<()> {
    w.write_all(&encode(value)).await
}

pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> Result<T, FrameError> {
    let len = r.read_u32().await?;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    decode(&buf)
}

#[cfg(test)]
mod fuzz {
    //! The storage header parser meets whatever a peer sends (fuzz/README.md).
    use proptest::prelude::*;

    use super::*;

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (any::<bool>(), "[0-9a-f]{64}", any::<u64>()).prop_map(|(temp, sha256, size)| Request::PutChunk {
                policy: if temp { RetentionPolicy::Temporary } else { RetentionPolicy::Permanent },
                sha256,
                size
            }),
            (".{0,40}", ".{0,80}").prop_map(|(element, sha256)| Request::GetChunk { element, sha256 }),
        ]
    }

    fn call() -> impl Strategy<Value = Call> {
        let trace = proptest::option::of((any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>()))
            .prop_map(|t| t.map(|(trace_id, span_id, flags)| TraceContext { trace_id, span_id, flags }));
        (request(), trace).prop_map(|(request, trace)| Call { request, trace })
    }

    proptest! {
        /// Arbitrary bytes decode to a message or a clear error, never a panic or a huge allocation.
        #[test]
        fn arbitrary_frames_are_refused_or_decoded(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Call>(&bytes);
            let _ = decode::<Reply>(&bytes);
            let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            let _ = futures::executor::block_on(read_frame::<_, Call>(&mut framed.as_slice()));
        }

        /// A version and a tag that look right followed by a huge length inside is refused.
        #[test]
        fn lengths_inside_a_frame_are_bounded(len in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut frame = VERSION.to_be_bytes().to_vec();
            frame.push(1); // GetChunk
            frame.push(253); // varint: a u64 follows
            frame.extend_from_slice(&len.to_le_bytes());
            frame.extend_from_slice(&tail);
            let _ = decode::<Call>(&frame);
        }

        /// Every call survives the wire unchanged, its trace context included.
        #[test]
        fn calls_round_trip(c in call()) {
            let frame = encode(&c);
            let back: Call = futures::executor::block_on(read_frame(&mut frame.as_slice())).unwrap();
            prop_assert_eq!(back, c);
        }

        /// A header of another version is refused with that version named.
        #[test]
        fn other_versions_are_named(version in any::<u16>().prop_filter("not ours", |v| *v != VERSION), c in call()) {
            let mut frame = encode(&c);
            frame[4..6].copy_from_slice(&version.to_be_bytes());
            match decode::<Call>(&frame[4..]) {
                Err(FrameError::Version(v)) => prop_assert_eq!(v, version),
                other => prop_assert!(false, "expected a version refusal, got {other:?}"),
            }
        }
    }
}
