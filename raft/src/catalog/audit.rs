//! The audit log: an append-only hash chain in the catalog.
//!
//! Each record holds the SHA-256 of the previous record, its own SHA-256 over `(seq, prev_hash,
//! event)`, and an HMAC-SHA256 of that hash under the cluster's audit key. The state machine
//! computes all three when applying, so every node holds the identical chain; `verify` recomputes
//! it and names the first record that does not match.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened, as proposed (the proposer fixes the time so every node records the same one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: i64,
    /// `client_id` of who did it (`-` when unauthenticated).
    pub actor: String,
    /// e.g. `token.issue`, `account.create`, `key.rotate`.
    pub action: String,
    /// What it was done to (an account id, a key id, …).
    pub target: String,
    /// `ok`, `denied`, or `rejected: <reason>`.
    pub outcome: String,
    /// Source address of the request, if any.
    pub source: String,
}

/// A record of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
    pub hmac: String,
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// The first record that does not verify, and why.
    pub first_broken: Option<(u64, String)>,
}

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn record_hash(seq: u64, prev_hash: &str, event: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(prev_hash.as_bytes());
    // serde_json of a struct is deterministic (fields in declaration order).
    h.update(serde_json::to_vec(event).unwrap_or_default());
    hex::encode(h.finalize())
}

pub(crate) fn record_hmac(key: &[u8], hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(hash.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Builds the record following `(prev_seq, prev_hash)`.
pub(crate) fn seal(key: &[u8], prev_seq: u64, prev_hash: &str, event: AuditEvent) -> AuditRecord {
    let seq = prev_seq + 1;
    let hash = record_hash(seq, prev_hash, &event);
    let hmac = record_hmac(key, &hash);
    AuditRecord { seq, event, prev_hash: prev_hash.to_string(), hash, hmac }
}

/// Checks a run of records in order (starting at seq 1).
pub(crate) fn verify<'a>(key: &[u8], records: impl IntoIterator<Item = &'a AuditRecord>) -> AuditVerification {
    let mut prev_hash = GENESIS.to_string();
    let mut entries = 0;
    for (expected_seq, r) in (1u64..).zip(records) {
        entries += 1;
        let problem = if r.seq != expected_seq {
            Some(format!("sequence {} where {expected_seq} was expected (a record is missing)", r.seq))
        } else if r.prev_hash != prev_hash {
            Some("prev_hash does not match the previous record".to_string())
        } else if record_hash(r.seq, &r.prev_hash, &r.event) != r.hash {
            Some("content does not match its hash (the record was modified)".to_string())
        } else if record_hmac(key, &r.hash) != r.hmac {
            Some("HMAC does not verify under the cluster audit key".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            return AuditVerification { entries, first_broken: Some((r.seq, p)) };
        }
        prev_hash = r.hash.clone();
    }
    AuditVerification { entries, first_broken: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: i64) -> AuditEvent {
        AuditEvent {
            at: i,
            actor: "admin".into(),
            action: "token.issue".into(),
            target: "admin".into(),
            outcome: "ok".into(),
            source: "127.0.0.1".into(),
        }
    }

    #[test]
    fn a_modified_record_is_found() {
        let key = b"k";
        let mut chain = Vec::new();
        let (mut seq, mut hash) = (0, GENESIS.to_string());
        for i in 0..5 {
            let r = seal(key, seq, &hash, event(i));
            seq = r.seq;
            hash = r.hash.clone();
            chain.push(r);
        }
        assert_eq!(verify(key, &chain).first_broken, None);
        chain[2].event.outcome = "denied".into();
        assert_eq!(verify(key, &chain).first_broken.map(|b| b.0), Some(3));
        assert!(verify(b"other", &chain[..1]).first_broken.is_some(), "wrong key is detected");
    }
}
