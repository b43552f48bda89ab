//! The catalog: the replicated state of the cluster as seen by one node, stored in the state
//! machine's key space.
//!
//! Only the state machine writes it (through [`Catalog::apply`], in log order); everyone else reads.
//! Keys are namespaced by a prefix (`setting/`, `account/`, `key/`, `audit/`, …) so that a
//! snapshot is simply every key of the tree. Applying is deterministic: time, randomness and
//! hashing of secrets happen in the proposer and travel in the command.

mod accounts;
mod audit;
mod feed;
mod files;
mod refusal;

use std::collections::BTreeMap;

pub use accounts::{AccountChanges, KeyAlgorithm, Role, ServiceAccount, SigningKey};
pub use audit::{AuditEvent, AuditRecord, AuditVerification};
pub use feed::{FeedBatch, SetAside, Subscription};
pub use files::{ChunkRef, ElementMode, FileChanges, FileRecord, Replica, RetentionPolicy, StorageElement};
pub use refusal::Refusal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::engine::{Tree, WriteBatch};
use crate::types::{Command, CommandResult, NodeId};
use crate::Error;

const SETTING: &str = "setting/";
const ACCOUNT: &str = "account/";
const KEY: &str = "key/";
const REVOKED_TOKEN: &str = "revoked/token/";
const REVOKED_ACCOUNT: &str = "revoked/account/";
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
/// `_digest/<log index>`: catalog digests taken by `Command::Digest`.
const DIGEST: &str = "_digest/";
/// Stored as JSON `Option<LogId>` (`null` after installing an empty snapshot).
pub(crate) const LAST_APPLIED: &[u8] = b"_meta/last_applied";
const AUDIT_HEAD: &str = "_security/audit_head";
const AUDIT_KEY: &str = "_security/audit_key";

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

/// Every token of an account issued before `issued_before` is revoked, until `until`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Revocation {
    pub(crate) issued_before: i64,
    pub(crate) until: i64,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn audit_key(seq: u64) -> String {
    format!("{AUDIT}{seq:020}")
}

impl Catalog {
    /// Whether a token (`jti`, of `client_id`, issued at `issued_at` unix ms) was revoked.
    pub fn token_revoked(&self, jti: &str, client_id: &str, issued_at: i64) -> Result<bool, Error> {
        if self.get::<i64>(&format!("{REVOKED_TOKEN}{jti}"))?.is_some() {
            return Ok(true);
        }
        Ok(self
            .get::<Revocation>(&format!("{REVOKED_ACCOUNT}{client_id}"))?
            .is_some_and(|r| issued_at < r.issued_before))
    }

    /// The key prefix of file records.
    pub(crate) const FILE_PREFIX: &'static str = FILE;

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
            if feed::is_node_local(&k) || k.starts_with(DIGEST.as_bytes()) {
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

    /// The sequence number of the newest audit record (0 before the first).
    pub fn audit_head_seq(&self) -> Result<u64, Error> {
        Ok(self.get::<AuditHead>(AUDIT_HEAD)?.map(|h| h.seq).unwrap_or(0))
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
            | Command::PruneSigningKeys { .. }
            | Command::RevokeTokens { .. }
            | Command::PruneRevocations { .. } => self.apply_admin(command, batch)?,
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
