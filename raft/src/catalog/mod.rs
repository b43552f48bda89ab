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

use std::collections::BTreeMap;

pub use accounts::{AccountChanges, KeyAlgorithm, Role, ServiceAccount, SigningKey};
pub use audit::{AuditEvent, AuditRecord, AuditVerification};
pub use files::{ChunkRef, ElementMode, FileChanges, FileRecord, Replica, RetentionPolicy, StorageElement};
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
                    CommandResult { rejected: Some("batches do not nest".into()), ..Default::default() }
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
            Err(Rejection(reason)) => {
                *batch = WriteBatch::default();
                result.rejected = Some(reason);
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
    ) -> Result<(), Rejection> {
        let store = |e: Error| Rejection(e.to_string());
        match command {
            Command::SetSetting { key, value } => {
                result.previous = self.setting(key).map_err(store)?;
                batch.put(format!("{SETTING}{key}").into_bytes(), value.clone().into_bytes());
            }
            Command::DeleteSetting { key } => {
                result.previous = self.setting(key).map_err(store)?;
                batch.delete(format!("{SETTING}{key}").into_bytes());
            }
            Command::InitSecurity { admin, audit_key_hex, key } => {
                if self.security_initialized().map_err(store)? {
                    return Err(Rejection("security is already initialised".into()));
                }
                batch.put(AUDIT_KEY.as_bytes().to_vec(), encode(audit_key_hex));
                batch.put(format!("{ACCOUNT}{}", admin.client_id).into_bytes(), encode(admin));
                batch.put(format!("{KEY}{}", key.kid).into_bytes(), encode(key));
            }
            Command::Audited { command, .. } => {
                if matches!(**command, Command::Audited { .. } | Command::InitSecurity { .. }) {
                    return Err(Rejection("this command cannot be audited".into()));
                }
                self.check_and_write(command, batch, result)?;
            }
            Command::AuditOnly => {}
            Command::CreateAccount { account } => {
                if self.account(&account.client_id).map_err(store)?.is_some() {
                    return Err(Rejection(format!("account {:?} already exists", account.client_id)));
                }
                batch.put(format!("{ACCOUNT}{}", account.client_id).into_bytes(), encode(account));
            }
            Command::UpdateAccount { client_id, changes, at } => {
                let mut a = self.live_account(client_id)?;
                if a.builtin
                    && (changes.enabled == Some(false)
                        || changes.roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)))
                {
                    return Err(Rejection(
                        "the bootstrap admin account cannot be disabled or lose the admin role".into(),
                    ));
                }
                if let Some(n) = &changes.name {
                    a.name = n.clone();
                }
                if let Some(d) = &changes.description {
                    a.description = d.clone();
                }
                if let Some(r) = &changes.roles {
                    a.roles = r.clone();
                }
                if let Some(e) = changes.enabled {
                    a.enabled = e;
                }
                if let Some(r) = changes.require_client_cert {
                    a.require_client_cert = r;
                }
                a.updated_at = *at;
                batch.put(format!("{ACCOUNT}{client_id}").into_bytes(), encode(&a));
            }
            Command::RotateSecret { client_id, secret_hash, grace_until, at } => {
                let mut a = self.live_account(client_id)?;
                a.previous_secret_hash = grace_until.map(|_| a.secret_hash.clone());
                a.previous_valid_until = *grace_until;
                a.secret_hash = secret_hash.clone();
                a.updated_at = *at;
                batch.put(format!("{ACCOUNT}{client_id}").into_bytes(), encode(&a));
            }
            Command::DeleteAccount { client_id, at } => {
                let mut a = self.live_account(client_id)?;
                if a.builtin {
                    return Err(Rejection("the bootstrap admin account cannot be deleted".into()));
                }
                a.deleted_at = Some(*at);
                a.enabled = false;
                a.updated_at = *at;
                batch.put(format!("{ACCOUNT}{client_id}").into_bytes(), encode(&a));
            }
            Command::AddSigningKey { key } => {
                for mut old in self.signing_keys().map_err(store)? {
                    if old.retired_at.is_none() {
                        old.retired_at = Some(key.created_at);
                        batch.put(format!("{KEY}{}", old.kid).into_bytes(), encode(&old));
                    }
                }
                batch.put(format!("{KEY}{}", key.kid).into_bytes(), encode(key));
            }
            Command::RegisterElement { element } => {
                let key = format!("{ELEMENT}{:020}/{}", element.node_id, element.name);
                let merged = match self.element(element.node_id, &element.name).map_err(store)? {
                    // Re-registration (a restart) refreshes capacity but never moves the mode back.
                    Some(old) => StorageElement { mode: old.mode, ..element.clone() },
                    None => element.clone(),
                };
                batch.put(key.into_bytes(), encode(&merged));
            }
            Command::SetElementMode { node_id, name, mode } => {
                let Some(mut e) = self.element(*node_id, name).map_err(store)? else {
                    return Err(Rejection(format!("no storage element {name:?} on node {node_id}")));
                };
                if !e.mode.may_become(*mode) {
                    return Err(Rejection(format!(
                        "element {name:?} is {}; modes move forward only (rw → ro → ar) and edit stays edit",
                        e.mode.as_str()
                    )));
                }
                e.mode = *mode;
                batch.put(format!("{ELEMENT}{node_id:020}/{name}").into_bytes(), encode(&e));
            }
            Command::CreateFile { file, idempotency } => {
                if let Some((client, key)) = idempotency {
                    if let Some(existing) = self.idempotent_file(client, key).map_err(store)? {
                        result.existing = Some(existing);
                        return Ok(());
                    }
                    batch.put(format!("{IDEMPOTENCY}{client}/{key}").into_bytes(), encode(&file.id));
                }
                if let Some(existing) = self.file(&file.id).map_err(store)? {
                    // The same upload applied again (a forwarded proposal whose reply was lost and
                    // that was retried): the id is fresh per upload, so this is not a conflict.
                    if existing.sha256 == file.sha256 && existing.created_by == file.created_by {
                        result.existing = Some(file.id.clone());
                        return Ok(());
                    }
                    return Err(Rejection(format!("file {} already exists", file.id)));
                }
                if let Some(at) = file.expires_at {
                    batch.put(format!("{EXPIRY}{at:020}/{}", file.id).into_bytes(), Vec::new());
                }
                Self::put_file(file, batch);
            }
            Command::UpdateFile { id, changes, at } => {
                let mut f = self.live_file(id)?;
                if let Some(until) = f.retention_until {
                    if changes.retention_until.is_some_and(|new| new < until) {
                        return Err(Rejection("retention_until can only be extended".into()));
                    }
                }
                if let Some(n) = &changes.name {
                    f.name = n.clone();
                }
                if let Some(d) = &changes.description {
                    f.description = d.clone();
                }
                if let Some(t) = &changes.tags {
                    f.tags = t.clone();
                }
                if let Some(a) = &changes.attributes_json {
                    f.attributes_json = a.clone();
                }
                if let Some(r) = changes.retention_until {
                    f.retention_until = Some(r);
                }
                f.version += 1;
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::DeleteFile { id, at } => {
                let mut f = self.live_file(id)?;
                if let Some(until) = f.retention_until {
                    if *at < until {
                        return Err(Rejection(format!(
                            "retention: the file may not be deleted before {until} (unix ms)"
                        )));
                    }
                }
                if f.policy == RetentionPolicy::Permanent {
                    return Err(Rejection("permanent files live on rw elements, which never delete".into()));
                }
                if let Some(exp) = f.expires_at {
                    batch.delete(format!("{EXPIRY}{exp:020}/{id}").into_bytes());
                }
                f.deleted_at = Some(*at);
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::FinalizeFile { id, chunks, at } => {
                let mut f = self.live_file(id)?;
                if f.policy != RetentionPolicy::Temporary {
                    return Err(Rejection(format!("file {id} is already permanent")));
                }
                if chunks.len() != f.chunks.len() || chunks.iter().zip(&f.chunks).any(|(a, b)| a.sha256 != b.sha256) {
                    return Err(Rejection("the permanent copy does not match the file's chunks".into()));
                }
                if let Some(exp) = f.expires_at {
                    batch.delete(format!("{EXPIRY}{exp:020}/{id}").into_bytes());
                }
                f.policy = RetentionPolicy::Permanent;
                f.expires_at = None;
                f.chunks = chunks.clone();
                f.version += 1;
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::MarkReplicaDamaged { id, sha256, node_id } => {
                let Some(mut f) = self.file(id).map_err(store)? else {
                    return Err(Rejection(format!("no file {id}")));
                };
                let mut changed = false;
                for c in f.chunks.iter_mut().filter(|c| &c.sha256 == sha256) {
                    if c.replicas.len() > 1 {
                        let before = c.replicas.len();
                        c.replicas.retain(|r| r.node_id != *node_id);
                        changed |= c.replicas.len() != before;
                    }
                    if !c.missing.contains(node_id) {
                        c.missing.push(*node_id);
                        changed = true;
                    }
                }
                if changed {
                    Self::put_file(&f, batch);
                }
            }
            Command::RepairChunk { id, sha256, added, dropped } => {
                let f = self.live_file(id)?;
                let mut f = f;
                for c in f.chunks.iter_mut().filter(|c| &c.sha256 == sha256) {
                    // Never drop the last replica without a new one in its place.
                    if added.is_empty() && c.replicas.iter().all(|r| dropped.contains(&r.node_id)) {
                        return Err(Rejection(format!("chunk {sha256} would be left without a replica")));
                    }
                    c.replicas.retain(|r| !dropped.contains(&r.node_id));
                    c.missing.retain(|n| !dropped.contains(n));
                    for r in added {
                        c.replicas.retain(|old| old.node_id != r.node_id);
                        c.replicas.push(r.clone());
                        c.missing.retain(|n| *n != r.node_id);
                    }
                }
                Self::put_file(&f, batch);
            }
            Command::RecoverFiles { files, overwrite } => {
                for f in files {
                    if !overwrite && self.file(&f.id).map_err(store)?.is_some() {
                        return Err(Rejection(format!("file {} is already in the catalog", f.id)));
                    }
                }
                for f in files {
                    if let Some(at) = f.expires_at {
                        batch.put(format!("{EXPIRY}{at:020}/{}", f.id).into_bytes(), Vec::new());
                    }
                    Self::put_file(f, batch);
                }
            }
            // Computed by the state machine, which sees the whole tree.
            Command::Digest => {}
            Command::Batch(_) => return Err(Rejection("batches do not nest".into())),
            Command::PruneSigningKeys { now } => {
                for old in self.signing_keys().map_err(store)? {
                    if !old.validates_at(*now) {
                        batch.delete(format!("{KEY}{}", old.kid).into_bytes());
                    }
                }
            }
        }
        Ok(())
    }

    fn live_file(&self, id: &str) -> Result<FileRecord, Rejection> {
        match self.file(id).map_err(|e| Rejection(e.to_string()))? {
            Some(f) if f.deleted_at.is_none() => Ok(f),
            _ => Err(Rejection(format!("no file {id}"))),
        }
    }

    fn live_account(&self, client_id: &str) -> Result<ServiceAccount, Rejection> {
        match self.account(client_id).map_err(|e| Rejection(e.to_string()))? {
            Some(a) if a.deleted_at.is_none() => Ok(a),
            _ => Err(Rejection(format!("no account {client_id:?}"))),
        }
    }
}

/// Why the catalog refused a command.
struct Rejection(String);
