//! The catalog: the replicated state of the cluster as seen by one node, stored in the state
//! machine's key space.
//!
//! Only the state machine writes it (through [`Catalog::apply`], in log order); everyone else reads.
//! Keys are namespaced by a prefix (`setting/`, `account/`, `key/`, `audit/`, …) so that a
//! snapshot is simply every key of the tree. Applying is deterministic: time, randomness and
//! hashing of secrets happen in the proposer and travel in the command.

mod accounts;
mod audit;
mod files;
mod refusal;

use std::collections::BTreeMap;

pub use accounts::{AccountChanges, KeyAlgorithm, Role, ServiceAccount, SigningKey};
pub use audit::{AuditEvent, AuditRecord, AuditVerification};
pub use files::{ChunkRef, ElementMode, FileChanges, FileRecord, Replica, RetentionPolicy, StorageElement};
pub use refusal::Refusal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::engine::{KeyValue, Tree, WriteBatch};
use crate::types::{Command, CommandResult, NodeId};
use crate::Error;

const SETTING: &str = "setting/";
const ACCOUNT: &str = "account/";
const KEY: &str = "key/";
const AUDIT: &str = "audit/";
const FILE: &str = "file/";
const ELEMENT: &str = "element/";
/// `repair/<file id>` for every live file with a chunk below its replica count: the repair queue,
/// kept in the same batch as the record so it survives restarts and travels in snapshots.
const REPAIR: &str = "repair/";
/// Settings under this prefix, followed by a node id, mark nodes being drained.
pub const DRAIN_SETTING: &str = "drain.";
const IDEMPOTENCY: &str = "idem/";
const EXPIRY: &str = "expiry/";
/// The change feed: `change/<log index>/<file id>` for every applied file change, in log order.
/// Node-local consumers (the search index, the sidecar writer) read it and prune what they have
/// made durable; it is therefore not identical across nodes and is left out of catalog comparisons.
const CHANGE: &str = "change/";
/// Node-local bookkeeping of the change feed (its floor and its consumers' cursors).
const CHANGES_LOCAL: &str = "_changes/";
/// Everything in the change feed at or below this log index has been pruned.
const CHANGE_FLOOR: &str = "_changes/floor";
/// `_changes/cursor/<consumer>`: how far a consumer has made the feed durable.
const CHANGE_CURSOR: &str = "_changes/cursor/";
/// `_changes/aside/<consumer>/<file id>`: a change a consumer kept failing on, set aside so that
/// everything after it keeps flowing; retried with backoff until it succeeds.
const CHANGE_ASIDE: &str = "_changes/aside/";
/// The change feed's consumers. The feed is pruned only below every one of them; a consumer
/// that has not recorded a cursor yet holds it at the floor.
pub const CHANGE_CONSUMERS: [&str; 2] = ["index", "sidecars"];
/// `_digest/<log index>`: catalog digests taken by `Command::Digest`.
const DIGEST: &str = "_digest/";
/// Stored as JSON `Option<LogId>` (`null` after installing an empty snapshot).
pub(crate) const LAST_APPLIED: &[u8] = b"_meta/last_applied";
const AUDIT_HEAD: &str = "_security/audit_head";
const AUDIT_KEY: &str = "_security/audit_key";

/// A change a consumer of the feed could not process, kept out of its way (node-local).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub consumer: String,
    pub file_id: String,
    /// Log index of the change (the latest one, when it failed again later).
    pub index: u64,
    pub error: String,
    pub attempts: u32,
    /// Milliseconds since the epoch.
    pub first_failed_at: i64,
    pub next_retry_at: i64,
}

/// Position of the audit chain's last record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditHead {
    seq: u64,
    hash: String,
}

/// Read access to the catalog; cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    tree: Tree,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("catalog entry {key}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn audit_key(seq: u64) -> String {
    format!("{AUDIT}{seq:020}")
}

impl Catalog {
    pub(crate) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.tree.get(key.as_bytes())? {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, Error> {
        self.tree.scan_prefix(prefix.as_bytes())?.iter().map(|(k, v)| decode(&String::from_utf8_lossy(k), v)).collect()
    }

    /// Up to `limit` values under `prefix`, from key `start` on, in key order.
    fn scan_from<T: DeserializeOwned>(&self, prefix: &str, start: String, limit: usize) -> Result<Vec<T>, Error> {
        let end = format!("{prefix}~").into_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(start.into_bytes()..end).take(limit) {
            let (k, v) = item?;
            out.push(decode(&String::from_utf8_lossy(&k), &v)?);
        }
        Ok(out)
    }

    // ----- settings -----

    /// One cluster setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        self.tree.get_string(&format!("{SETTING}{key}"))
    }

    /// Every cluster setting, ordered by key.
    pub fn settings(&self) -> Result<BTreeMap<String, String>, Error> {
        let mut out = BTreeMap::new();
        for (k, v) in self.tree.scan_prefix(SETTING.as_bytes())? {
            out.insert(
                String::from_utf8_lossy(&k[SETTING.len()..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
        Ok(out)
    }

    // ----- accounts and keys -----

    /// Whether the security bootstrap (admin account, audit key, first signing key) happened.
    pub fn security_initialized(&self) -> Result<bool, Error> {
        Ok(self.tree.get(AUDIT_KEY.as_bytes())?.is_some())
    }

    pub fn account(&self, client_id: &str) -> Result<Option<ServiceAccount>, Error> {
        self.get(&format!("{ACCOUNT}{client_id}"))
    }

    /// Every account, deleted ones included, ordered by `client_id`.
    pub fn accounts(&self) -> Result<Vec<ServiceAccount>, Error> {
        self.scan(ACCOUNT)
    }

    /// Every signing key, oldest first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, Error> {
        let mut keys: Vec<SigningKey> = self.scan(KEY)?;
        keys.sort_by_key(|k| (k.created_at, k.kid.clone()));
        Ok(keys)
    }

    /// The key that signs new tokens: the newest one not retired.
    pub fn active_signing_key(&self) -> Result<Option<SigningKey>, Error> {
        Ok(self.signing_keys()?.into_iter().rev().find(|k| k.retired_at.is_none()))
    }

    // ----- files and storage elements -----

    pub fn file(&self, id: &str) -> Result<Option<FileRecord>, Error> {
        self.get(&format!("{FILE}{id}"))
    }

    /// Files with ids after `after` (ids are UUIDv7, so this is creation order), at most `limit`.
    pub fn files_after(&self, after: &str, limit: usize) -> Result<Vec<FileRecord>, Error> {
        self.scan_from(FILE, format!("{FILE}{after}\u{0}"), limit)
    }

    /// Index of the last log entry applied to this catalog (0 before the first).
    pub fn applied_index(&self) -> Result<u64, Error> {
        let id: Option<Option<crate::types::LogId>> = self.get(&String::from_utf8_lossy(LAST_APPLIED))?;
        Ok(id.flatten().map(|l| l.index).unwrap_or(0))
    }

    pub(crate) fn record_change(index: u64, file_id: &str, batch: &mut WriteBatch) {
        batch.put(format!("{CHANGE}{index:020}/{file_id}").into_bytes(), Vec::new());
    }

    /// Up to `limit` file changes with a log index in `(after, upto]`, in log order.
    pub fn changes(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<(u64, String)>, Error> {
        let start = format!("{CHANGE}{:020}", after.saturating_add(1)).into_bytes();
        let end = format!("{CHANGE}{:020}~", upto).into_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(start..end).take(limit) {
            let (k, _) = item?;
            let k = String::from_utf8_lossy(&k[CHANGE.len()..]).into_owned();
            let (index, id) = k.split_once('/').ok_or_else(|| Error::Storage(format!("bad change key {k}")))?;
            let index = index.parse().map_err(|_| Error::Storage(format!("bad change key {k}")))?;
            out.push((index, id.to_string()));
        }
        Ok(out)
    }

    /// The change feed has nothing at or below this index (it was pruned up to here).
    pub fn change_floor(&self) -> Result<u64, Error> {
        Ok(self.get::<u64>(CHANGE_FLOOR)?.unwrap_or(0))
    }

    /// How far `consumer` has made the feed durable (the floor if it has not said yet). Below
    /// the floor after a snapshot install: the changes in between are gone from the feed.
    pub fn change_cursor(&self, consumer: &str) -> Result<u64, Error> {
        match self.get::<u64>(&format!("{CHANGE_CURSOR}{consumer}"))? {
            Some(cursor) => Ok(cursor),
            None => self.change_floor(),
        }
    }

    /// Records that `consumer` has made every change up to `upto` durable elsewhere, and drops
    /// the changes every consumer is done with. Returns how many were dropped.
    pub fn prune_changes(&self, consumer: &str, upto: u64) -> Result<usize, Error> {
        debug_assert!(CHANGE_CONSUMERS.contains(&consumer), "unknown change consumer {consumer}");
        let floor = self.change_floor()?;
        let mut batch = WriteBatch::default();
        batch.put(format!("{CHANGE_CURSOR}{consumer}").into_bytes(), encode(&upto));
        let mut prune_to = upto;
        for other in CHANGE_CONSUMERS.iter().filter(|c| **c != consumer) {
            prune_to = prune_to.min(self.get::<u64>(&format!("{CHANGE_CURSOR}{other}"))?.unwrap_or(floor));
        }
        let end = format!("{CHANGE}{:020}~", prune_to).into_bytes();
        let mut n = 0;
        if prune_to > floor {
            for item in self.tree.range(CHANGE.as_bytes().to_vec()..end) {
                batch.delete(item?.0);
                n += 1;
            }
            batch.put(CHANGE_FLOOR.as_bytes().to_vec(), encode(&prune_to));
        }
        self.tree.apply(batch)?;
        Ok(n)
    }

    /// Sets the change of `file_id` aside for `consumer` after a failure: recorded with its error
    /// (the first 1 000 bytes), retried after a backoff that doubles with every attempt (1 s to
    /// an hour). Returns the record as stored.
    pub fn set_aside(
        &self,
        consumer: &str,
        file_id: &str,
        index: u64,
        error: &str,
        now_ms: i64,
    ) -> Result<SetAside, Error> {
        let key = format!("{CHANGE_ASIDE}{consumer}/{file_id}");
        let previous: Option<SetAside> = self.get(&key)?;
        let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        let backoff_ms = 1000i64.saturating_mul(1 << (attempts - 1).min(12)).min(3_600_000);
        let mut error = error.to_string();
        if error.len() > 1000 {
            let mut cut = 1000;
            while !error.is_char_boundary(cut) {
                cut -= 1;
            }
            error.truncate(cut);
        }
        let record = SetAside {
            consumer: consumer.to_string(),
            file_id: file_id.to_string(),
            index: previous.as_ref().map_or(index, |p| p.index.max(index)),
            error,
            attempts,
            first_failed_at: previous.as_ref().map_or(now_ms, |p| p.first_failed_at),
            next_retry_at: now_ms.saturating_add(backoff_ms),
        };
        let mut batch = WriteBatch::default();
        batch.put(key.into_bytes(), encode(&record));
        self.tree.apply(batch)?;
        Ok(record)
    }

    /// The changes `consumer` set aside whose retry time has come, at most `limit`.
    pub fn set_aside_due(&self, consumer: &str, now_ms: i64, limit: usize) -> Result<Vec<SetAside>, Error> {
        let all: Vec<SetAside> = self.scan(&format!("{CHANGE_ASIDE}{consumer}/"))?;
        Ok(all.into_iter().filter(|a| a.next_retry_at <= now_ms).take(limit).collect())
    }

    /// Forgets a set-aside change (it went through, or the file is gone).
    pub fn clear_set_aside(&self, consumer: &str, file_id: &str) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.delete(format!("{CHANGE_ASIDE}{consumer}/{file_id}").into_bytes());
        self.tree.apply(batch)
    }

    /// How many changes `consumer` has set aside (a key count; nothing is decoded).
    pub fn set_aside_count(&self, consumer: &str) -> Result<usize, Error> {
        Ok(self.tree.scan_prefix(format!("{CHANGE_ASIDE}{consumer}/").as_bytes())?.len())
    }

    /// Every set-aside change of every consumer on this node.
    pub fn set_aside_all(&self) -> Result<Vec<SetAside>, Error> {
        self.scan(CHANGE_ASIDE)
    }

    /// The consumers' cursors, to carry over a snapshot install (they describe this node, not
    /// the snapshot's sender).
    /// (Their set-aside changes too.)
    pub(crate) fn change_cursors(&self) -> Result<Vec<KeyValue>, Error> {
        let mut kept = self.tree.scan_prefix(CHANGE_CURSOR.as_bytes())?;
        kept.extend(self.tree.scan_prefix(CHANGE_ASIDE.as_bytes())?);
        Ok(kept)
    }

    pub(crate) fn is_change_cursor(key: &[u8]) -> bool {
        key.starts_with(CHANGE_CURSOR.as_bytes()) || key.starts_with(CHANGE_ASIDE.as_bytes())
    }

    /// Nodes being drained (setting `drain.<node id>`): out of placement, their replicas moving away.
    pub fn draining_nodes(&self) -> Result<Vec<NodeId>, Error> {
        let prefix = format!("{SETTING}{DRAIN_SETTING}");
        Ok(self
            .tree
            .scan_prefix(prefix.as_bytes())?
            .iter()
            .filter_map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).parse().ok())
            .collect())
    }

    /// SHA-256 (hex) of every catalog key and value, leaving out node-local keys (the change
    /// feed and earlier digests): equal on every node at the same log position.
    pub(crate) fn digest(&self) -> Result<String, Error> {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for item in self.tree.range(Vec::new()..) {
            let (k, v) = item?;
            if [CHANGE, CHANGES_LOCAL, DIGEST].iter().any(|p| k.starts_with(p.as_bytes())) {
                continue;
            }
            h.update((k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok(hex::encode(h.finalize()))
    }

    pub(crate) fn record_digest(index: u64, digest: &str, batch: &mut WriteBatch) {
        batch.put(format!("{DIGEST}{index:020}").into_bytes(), encode(&digest));
    }

    /// The digest recorded when this node applied the `Digest` entry at `index`.
    pub fn digest_at(&self, index: u64) -> Result<Option<String>, Error> {
        self.get(&format!("{DIGEST}{index:020}"))
    }

    /// Files queued for repair (ids after `after`, at most `limit`).
    pub fn repair_queue(&self, after: &str, limit: usize) -> Result<Vec<String>, Error> {
        let start = format!("{REPAIR}{after}\u{0}").into_bytes();
        let end = format!("{REPAIR}~").into_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(start..end).take(limit) {
            let (k, _) = item?;
            out.push(String::from_utf8_lossy(&k[REPAIR.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Writes a file record and keeps the repair queue in step with it.
    fn put_file(f: &FileRecord, batch: &mut WriteBatch) {
        batch.put(format!("{FILE}{}", f.id).into_bytes(), encode(f));
        let key = format!("{REPAIR}{}", f.id).into_bytes();
        if f.needs_repair() {
            batch.put(key, Vec::new());
        } else {
            batch.delete(key);
        }
    }

    /// The file an earlier upload with this idempotency key created.
    pub fn idempotent_file(&self, client_id: &str, key: &str) -> Result<Option<String>, Error> {
        self.get(&format!("{IDEMPOTENCY}{client_id}/{key}"))
    }

    /// Ids of live temporary files whose TTL ended before `now` (unix ms), oldest first.
    pub fn expired_files(&self, now: i64, limit: usize) -> Result<Vec<String>, Error> {
        let start = EXPIRY.as_bytes().to_vec();
        let end = format!("{EXPIRY}{now:020}").into_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(start..end) {
            let (k, _) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some(id) = key.rsplit('/').next() {
                out.push(id.to_string());
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every file record (deleted ones included), for scans such as garbage collection.
    pub fn all_files(&self) -> Result<Vec<FileRecord>, Error> {
        self.scan(FILE)
    }

    pub fn element(&self, node_id: NodeId, name: &str) -> Result<Option<StorageElement>, Error> {
        self.get(&format!("{ELEMENT}{node_id:020}/{name}"))
    }

    /// Every storage element of every node, by node then name.
    pub fn elements(&self) -> Result<Vec<StorageElement>, Error> {
        self.scan(ELEMENT)
    }

    // ----- audit -----

    /// Audit records with `seq >= from`, at most `limit`, in order.
    pub fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, Error> {
        self.scan_from(AUDIT, audit_key(from.max(1)), limit)
    }

    /// Recomputes the whole chain and names the first record that does not verify.
    pub fn verify_audit(&self) -> Result<AuditVerification, Error> {
        let key = self.audit_hmac_key()?;
        let records: Vec<AuditRecord> = self.scan(AUDIT)?;
        Ok(audit::verify(&key, &records))
    }

    fn audit_hmac_key(&self) -> Result<Vec<u8>, Error> {
        let hex_key: Option<String> = self.get(AUDIT_KEY)?;
        hex::decode(hex_key.unwrap_or_default()).map_err(|e| Error::Storage(format!("audit key: {e}")))
    }

    // ----- apply -----

    /// Applies one command: records its writes in `batch` and returns its result. A command the
    /// catalog refuses (e.g. deleting the bootstrap admin) writes nothing and reports why in
    /// `rejected`; every node refuses it identically.
    pub(crate) fn apply(&self, command: &Command, batch: &mut WriteBatch) -> Result<CommandResult, Error> {
        if let Command::Batch(commands) = command {
            // Each command on its own batch, so that one refusal leaves the others' writes alone.
            // Proposers only batch commands that do not read what the others write.
            let mut results = Vec::with_capacity(commands.len());
            for c in commands {
                let mut own = WriteBatch::default();
                let r = if matches!(c, Command::Batch(_)) {
                    CommandResult {
                        rejected: Some(Refusal::Invalid("batches do not nest".into())),
                        ..Default::default()
                    }
                } else {
                    self.apply(c, &mut own)?
                };
                batch.append(own);
                results.push(r);
            }
            return Ok(CommandResult { batch: results, ..Default::default() });
        }
        let mut result = CommandResult::default();
        match self.check_and_write(command, batch, &mut result) {
            Ok(()) => {}
            Err(refusal) => {
                *batch = WriteBatch::default();
                result.rejected = Some(refusal);
            }
        }
        if let Command::Audited { event, .. } = command {
            // The audit record is written whatever the outcome, after the rejection reset.
            let mut event = event.clone();
            if let Some(r) = &result.rejected {
                event.outcome = format!("rejected: {r}");
            }
            self.append_audit(event, batch, &mut result)?;
        }
        Ok(result)
    }

    fn append_audit(&self, event: AuditEvent, batch: &mut WriteBatch, result: &mut CommandResult) -> Result<(), Error> {
        let key = self.audit_hmac_key()?;
        let head: AuditHead = self.get(AUDIT_HEAD)?.unwrap_or(AuditHead { seq: 0, hash: audit::GENESIS.into() });
        let record = audit::seal(&key, head.seq, &head.hash, event);
        batch.put(audit_key(record.seq).into_bytes(), encode(&record));
        batch.put(AUDIT_HEAD.as_bytes().to_vec(), encode(&AuditHead { seq: record.seq, hash: record.hash.clone() }));
        result.audit_seq = Some(record.seq);
        Ok(())
    }

    fn check_and_write(
        &self,
        command: &Command,
        batch: &mut WriteBatch,
        result: &mut CommandResult,
    ) -> Result<(), Refusal> {
        match command {
            Command::SetSetting { .. } | Command::DeleteSetting { .. } => self.apply_setting(command, batch, result)?,
            Command::InitSecurity { .. }
            | Command::CreateAccount { .. }
            | Command::UpdateAccount { .. }
            | Command::RotateSecret { .. }
            | Command::DeleteAccount { .. }
            | Command::AddSigningKey { .. }
            | Command::PruneSigningKeys { .. } => self.apply_admin(command, batch)?,
            Command::RegisterElement { .. } | Command::SetElementMode { .. } => self.apply_element(command, batch)?,
            Command::CreateFile { .. }
            | Command::UpdateFile { .. }
            | Command::DeleteFile { .. }
            | Command::FinalizeFile { .. }
            | Command::MarkReplicaDamaged { .. }
            | Command::RepairChunk { .. }
            | Command::RecoverFiles { .. } => self.apply_file(command, batch, result)?,
            Command::Audited { command, .. } => {
                if matches!(**command, Command::Audited { .. } | Command::InitSecurity { .. }) {
                    return Err(Refusal::Invalid("this command cannot be audited".into()));
                }
                self.check_and_write(command, batch, result)?;
            }
            Command::AuditOnly => {}
            // Computed by the state machine, which sees the whole tree.
            Command::Digest => {}
            Command::Batch(_) => return Err(Refusal::Invalid("batches do not nest".into())),
        }
        Ok(())
    }

    /// Applies a command of cluster settings (see `Catalog::apply`).
    pub(super) fn apply_setting(
        &self,
        command: &Command,
        batch: &mut WriteBatch,
        result: &mut CommandResult,
    ) -> Result<(), Refusal> {
        match command {
            Command::SetSetting { key, value } => {
                result.previous = self.setting(key)?;
                batch.put(format!("{SETTING}{key}").into_bytes(), value.clone().into_bytes());
            }
            Command::DeleteSetting { key } => {
                result.previous = self.setting(key)?;
                batch.delete(format!("{SETTING}{key}").into_bytes());
            }
            other => return Err(Refusal::Invalid(format!("not a settings command: {other:?}"))),
        }
        Ok(())
    }

    fn live_file(&self, id: &str) -> Result<FileRecord, Refusal> {
        match self.file(id)? {
            Some(f) if f.deleted_at.is_none() => Ok(f),
            _ => Err(Refusal::NotFound(format!("no file {id}"))),
        }
    }

    fn live_account(&self, client_id: &str) -> Result<ServiceAccount, Refusal> {
        match self.account(client_id)? {
            Some(a) if a.deleted_at.is_none() => Ok(a),
            _ => Err(Refusal::NotFound(format!("no account {client_id:?}"))),
        }
    }
}
