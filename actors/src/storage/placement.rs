//! Where a chunk goes: rendezvous (highest-random-weight) hashing over the nodes that have an
//! element taking the file's retention policy, spread over zones first. The storage actor hands a
//! [`Placement`] to whoever writes a file (ingest's uploads and finalize, repair); the bytes then
//! flow on the writer's own task through [`StorageHandle::store_chunk`].
//!
//! Invariant: placement is over every node with a writable element, reachable or not, so that a
//! node that is down still gets its share, recorded as missing (queued for repair) rather than
//! silently lowering the replication factor.

use artstore_raft::{ElementMode, MemberStatus, NodeId, RetentionPolicy};
use sha2::{Digest, Sha256};

use super::StorageHandle;
use crate::StorageError;

/// A node and its zone (empty when zones are not configured).
pub type ZonedNode = (NodeId, String);

/// Zone-aware placement: rendezvous order, but the first pass takes at most one node per zone, so
/// replicas spread over as many zones as there are; the second pass fills up in rendezvous order.
pub fn place_zoned(chunk_sha256: &str, candidates: &[ZonedNode], r: usize) -> Vec<NodeId> {
    let ids: Vec<NodeId> = candidates.iter().map(|(n, _)| *n).collect();
    let ranked = place(chunk_sha256, &ids, ids.len());
    let zone_of = |n: NodeId| candidates.iter().find(|(m, _)| *m == n).map(|(_, z)| z.as_str()).unwrap_or("");
    let mut chosen: Vec<NodeId> = Vec::new();
    let mut zones: Vec<&str> = Vec::new();
    for n in &ranked {
        if chosen.len() < r && !zones.contains(&zone_of(*n)) {
            chosen.push(*n);
            zones.push(zone_of(*n));
        }
    }
    for n in ranked {
        if chosen.len() < r && !chosen.contains(&n) {
            chosen.push(n);
        }
    }
    chosen
}

/// Highest-random-weight placement: the `r` nodes with the largest hash of (chunk, node).
pub fn place(chunk_sha256: &str, candidates: &[NodeId], r: usize) -> Vec<NodeId> {
    let mut scored: Vec<([u8; 32], NodeId)> = candidates
        .iter()
        .map(|n| {
            let mut h = Sha256::new();
            h.update(chunk_sha256.as_bytes());
            h.update(n.to_be_bytes());
            (h.finalize().into(), *n)
        })
        .collect();
    scored.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    scored.into_iter().take(r).map(|(_, n)| n).collect()
}

/// What a writer of one file needs to place its chunks: the candidate nodes, the number of
/// replicas and the write quorum. Liveness is not part of it: it is read again for every chunk.
#[derive(Debug, Clone)]
pub struct Placement {
    pub policy: RetentionPolicy,
    pub candidates: Vec<ZonedNode>,
    /// Replicas wanted per chunk (the replication factor, capped by the candidates).
    pub replicas: usize,
    /// Replicas that must be durable before a chunk counts as stored.
    pub quorum: usize,
}

impl Placement {
    /// The nodes a chunk goes to, in rendezvous order.
    pub fn targets(&self, chunk_sha256: &str) -> Vec<NodeId> {
        place_zoned(chunk_sha256, &self.candidates, self.replicas)
    }
}

impl StorageHandle {
    /// The replication factor the cluster is configured with.
    pub fn replication_factor(&self) -> usize {
        self.inner.replication_factor
    }

    /// The placement of a new file of `policy`; a 507 naming every element that could have
    /// taken it and why it did not, when no reachable node can.
    pub fn placement(&self, policy: RetentionPolicy) -> Result<Placement, StorageError> {
        let (candidates, live) = self.candidates(policy)?;
        if live.is_empty() {
            return Err(self.no_room(policy));
        }
        let replicas = self.replication_factor().min(candidates.len());
        Ok(Placement { policy, candidates, replicas, quorum: replicas / 2 + 1 })
    }

    /// Nodes (with their zones) that have an element taking `policy` uploads, and which of them
    /// are reachable now.
    pub fn candidates(&self, policy: RetentionPolicy) -> Result<(Vec<ZonedNode>, Vec<NodeId>), StorageError> {
        let want = Self::mode_for(policy);
        let status = self.inner.node.status();
        let elements = self.inner.node.catalog().elements()?;
        let draining = self.inner.node.catalog().draining_nodes()?;
        let writable: Vec<&MemberStatus> = status
            .members
            .iter()
            .filter(|m| !draining.contains(&m.node_id))
            .filter(|m| elements.iter().any(|e| e.node_id == m.node_id && e.mode == want && !e.full))
            .collect();
        let zone = |n: NodeId| elements.iter().find(|e| e.node_id == n).map(|e| e.zone.clone()).unwrap_or_default();
        let all = writable.iter().map(|m| (m.node_id, zone(m.node_id))).collect();
        let live = writable.iter().filter(|m| m.reachable).map(|m| m.node_id).collect();
        Ok((all, live))
    }

    /// The 507 for an upload no element can take, naming every element that could have and why
    /// it did not (its mode, or its free space).
    fn no_room(&self, policy: RetentionPolicy) -> StorageError {
        let want = Self::mode_for(policy);
        let elements = self.inner.node.catalog().elements().unwrap_or_default();
        let draining = self.inner.node.catalog().draining_nodes().unwrap_or_default();
        let why: Vec<String> = elements
            .iter()
            .filter(|e| e.mode == want || (want == ElementMode::Rw && e.mode == ElementMode::Ro))
            .map(|e| {
                let free = e.capacity_bytes.saturating_sub(e.used_bytes);
                let state = if e.mode != want {
                    e.mode.as_str()
                } else if e.full {
                    "full"
                } else if draining.contains(&e.node_id) {
                    "its node is draining"
                } else {
                    "unreachable"
                };
                format!("element {} on node {}: {state}, {free} bytes free of {}", e.name, e.node_id, e.capacity_bytes)
            })
            .collect();
        StorageError::NoSpace(format!(
            "no reachable node has a {} storage element accepting uploads ({})",
            want.as_str(),
            if why.is_empty() { "none is configured".to_string() } else { why.join("; ") }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_placement_spreads_replicas_over_zones() {
        let nodes: Vec<(NodeId, String)> =
            [(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "c")].into_iter().map(|(n, z)| (n, z.to_string())).collect();
        for i in 0..200 {
            let chosen = place_zoned(&format!("chunk{i}"), &nodes, 3);
            let mut zones: Vec<&str> =
                chosen.iter().map(|n| nodes.iter().find(|(m, _)| m == n).unwrap().1.as_str()).collect();
            zones.sort_unstable();
            assert_eq!(zones, ["a", "b", "c"], "chunk{i}: {chosen:?}");
        }
        // Without zones it is plain rendezvous placement.
        let flat: Vec<(NodeId, String)> = (1..=5).map(|n| (n, String::new())).collect();
        assert_eq!(place_zoned("x", &flat, 3), place("x", &[1, 2, 3, 4, 5], 3));
    }

    #[test]
    fn placement_is_deterministic_distinct_and_spread() {
        let nodes = [1, 2, 3, 4, 5];
        let a = place("abc", &nodes, 3);
        assert_eq!(a, place("abc", &nodes, 3));
        assert_eq!(a.len(), 3);
        let mut d = a.clone();
        d.dedup();
        assert_eq!(d.len(), 3);
        // Over many chunks every node gets some.
        let mut counts = [0; 6];
        for i in 0..300 {
            for n in place(&format!("chunk{i}"), &nodes, 3) {
                counts[n as usize] += 1;
            }
        }
        assert!(counts[1..].iter().all(|c| *c > 100), "{counts:?}");
        // Removing a node only moves the chunks it held (rendezvous property).
        let fewer = [1, 2, 3, 4];
        for i in 0..100 {
            let before = place(&format!("c{i}"), &nodes, 3);
            if !before.contains(&5) {
                assert_eq!(before, place(&format!("c{i}"), &fewer, 3));
            }
        }
    }
}
