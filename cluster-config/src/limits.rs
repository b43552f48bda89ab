//! `[limits]`: every bound the node puts on what a client may send, in one place.
//!
//! Each limit is enforced where the input is parsed, before any hashing, Raft proposal or disk
//! write is done for the request; a request over a limit gets a 4xx naming it. The README's limits
//! table lists the same keys and defaults.

use serde::{Deserialize, Serialize};

use crate::error::Problem;

/// Bounds on requests and connections of the HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request line plus all headers of one request.
    pub max_header_bytes: usize,
    /// JSON bodies (account changes, metadata updates, settings, membership).
    pub max_json_body_bytes: usize,
    /// The token endpoint's body (form or JSON).
    pub max_token_body_bytes: usize,
    /// The `metadata` part of a multipart upload.
    pub max_metadata_part_bytes: usize,
    /// A file name, in characters (and at most four times as many bytes).
    pub max_name_chars: usize,
    /// A file description, in bytes of UTF-8.
    pub max_description_bytes: usize,
    /// Tags of one file.
    pub max_tags: usize,
    /// One tag, in bytes of UTF-8.
    pub max_tag_bytes: usize,
    /// Nesting of `custom_attributes` (an object of scalars is depth 1).
    pub max_attribute_depth: usize,
    /// The search text `q`, in bytes.
    pub max_query_bytes: usize,
    /// Parentheses nested in `q`.
    pub max_query_depth: usize,
    /// Words, phrases and operators in `q`.
    pub max_query_terms: usize,
    /// Parameters in one search or listing query string.
    pub max_query_params: usize,
    /// Files in one `POST /api/v1/files/batch`.
    pub max_batch_files: usize,
    /// A request's headers must have arrived this long after the connection was accepted (or
    /// the previous response was sent).
    pub header_read_timeout_secs: u64,
    /// An upload whose body sends nothing for this long is aborted (nothing is committed).
    pub body_idle_timeout_secs: u64,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout_secs: u64,
    /// Open HTTP connections, all sources together.
    pub max_connections: usize,
    /// Open HTTP connections from one source address.
    pub max_connections_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_json_body_bytes: 1024 * 1024,
            max_token_body_bytes: 8 * 1024,
            max_metadata_part_bytes: 256 * 1024,
            max_name_chars: 1024,
            max_description_bytes: 16 * 1024,
            max_tags: 64,
            max_tag_bytes: 128,
            max_attribute_depth: 8,
            max_query_bytes: 2048,
            max_query_depth: 16,
            max_query_terms: 64,
            max_query_params: 64,
            max_batch_files: 1000,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 30,
            idle_timeout_secs: 30,
            max_connections: 4096,
            max_connections_per_source: 512,
        }
    }
}

impl Limits {
    pub(crate) fn validate(&self, p: &mut Vec<Problem>) {
        let sizes = [
            ("limits.max_header_bytes", self.max_header_bytes, 8 * 1024),
            ("limits.max_json_body_bytes", self.max_json_body_bytes, 1024),
            ("limits.max_token_body_bytes", self.max_token_body_bytes, 512),
            ("limits.max_metadata_part_bytes", self.max_metadata_part_bytes, 1024),
            ("limits.max_name_chars", self.max_name_chars, 16),
            ("limits.max_description_bytes", self.max_description_bytes, 0),
            ("limits.max_tags", self.max_tags, 0),
            ("limits.max_tag_bytes", self.max_tag_bytes, 1),
            ("limits.max_attribute_depth", self.max_attribute_depth, 1),
            ("limits.max_query_bytes", self.max_query_bytes, 16),
            ("limits.max_query_depth", self.max_query_depth, 0),
            ("limits.max_query_terms", self.max_query_terms, 1),
            ("limits.max_query_params", self.max_query_params, 8),
            ("limits.max_batch_files", self.max_batch_files, 1),
            ("limits.max_connections", self.max_connections, 1),
            ("limits.max_connections_per_source", self.max_connections_per_source, 1),
        ];
        for (key, value, min) in sizes {
            if value < min {
                p.push(Problem::new(key, format!("must be at least {min}")));
            }
        }
        // Deeper nesting than this is exactly what overflows parsers' stacks.
        if self.max_query_depth > 64 {
            p.push(Problem::new("limits.max_query_depth", "must be at most 64"));
        }
        if self.max_attribute_depth > 32 {
            p.push(Problem::new("limits.max_attribute_depth", "must be at most 32"));
        }
        if self.max_name_chars > 4096 {
            p.push(Problem::new("limits.max_name_chars", "must be at most 4096"));
        }
        for (key, value) in [
            ("limits.header_read_timeout_secs", self.header_read_timeout_secs),
            ("limits.body_idle_timeout_secs", self.body_idle_timeout_secs),
            ("limits.idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                p.push(Problem::new(key, "must be at least 1"));
            }
        }
        if self.max_connections_per_source > self.max_connections {
            p.push(Problem::new("limits.max_connections_per_source", "must not exceed limits.max_connections"));
        }
    }
}
