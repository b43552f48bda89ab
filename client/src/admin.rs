//! Operator and admin calls: repair, drain and catalog digests, storage elements, service accounts, signing keys, the audit log.

use reqwest::Method;

use crate::error::ClientError;
use crate::wire::{
    AuditPage, AuditVerification, CatalogDigest, CreateServiceAccount, DrainStatus, ElementModeChange, KeyRotated,
    RepairStatus, RotateSecret, ServiceAccount, ServiceAccountWithSecret, ServiceAccounts, StorageElementInfo,
    StorageElements, UpdateServiceAccount,
};
use crate::Client;

impl Client {
    /// The repair queue and the answering node's repair and scrub counters (operator role).
    pub async fn repair_status(&self) -> Result<RepairStatus, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/repair/status", None).await
    }

    /// Starts draining a node: it leaves placement and the leader moves its replicas elsewhere
    /// (operator role).
    pub async fn drain_node(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::POST, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// How far draining a node has come.
    pub async fn drain_status(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// Stops draining a node (it takes new replicas again; operator role).
    pub async fn cancel_drain(&self, node_id: u64) -> Result<DrainStatus, ClientError> {
        self.send::<(), _>(Method::DELETE, &format!("/api/v1/cluster/members/{node_id}/drain"), None).await
    }

    /// Appends a catalog digest entry and returns its log index (operator role).
    pub async fn take_digest(&self) -> Result<u64, ClientError> {
        let d: CatalogDigest = self.send::<(), _>(Method::POST, "/api/v1/cluster/digest", None).await?;
        Ok(d.log_index)
    }

    /// A consistent backup of the catalog (admin role): its manifest and image. The caller
    /// should check the image against `manifest.sha256` before keeping it.
    pub async fn backup(&self) -> Result<(crate::wire::BackupManifest, bytes::Bytes), ClientError> {
        let resp = self
            .execute(true, |base, bearer| {
                let mut req = self.http.get(format!("{base}/api/v1/cluster/backup"));
                if let Some(t) = bearer {
                    req = req.bearer_auth(t);
                }
                Ok(req)
            })
            .await?;
        let bad = |message: String| ClientError::Server { status: 200, code: "bad_body".into(), message };
        let manifest = resp
            .headers()
            .get("x-artstore-backup-manifest")
            .ok_or_else(|| bad("the answer has no X-Artstore-Backup-Manifest header".into()))?;
        let manifest = serde_json::from_slice(manifest.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let image = resp.bytes().await.map_err(|e| bad(e.to_string()))?;
        Ok((manifest, image))
    }

    /// The catalog digest the answering node recorded at `log_index`.
    pub async fn digest_at(&self, log_index: u64) -> Result<CatalogDigest, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/cluster/digest/{log_index}"), None).await
    }

    /// Every node's storage elements with their mode and usage.
    pub async fn storage_elements(&self) -> Result<StorageElements, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/storage-elements", None).await
    }

    /// Moves an element to `mode` (forward only: rw → ro → ar).
    pub async fn set_element_mode(
        &self,
        node_id: u64,
        name: &str,
        mode: &str,
    ) -> Result<StorageElementInfo, ClientError> {
        let body = ElementModeChange { mode: mode.to_string() };
        self.send(Method::PATCH, &format!("/api/v1/storage-elements/{node_id}/{name}"), Some(&body)).await
    }

    /// Creates a service account (admin role); the answer carries its secret, shown only now.
    pub async fn create_account(
        &self,
        request: &CreateServiceAccount,
    ) -> Result<ServiceAccountWithSecret, ClientError> {
        self.send(Method::POST, "/api/v1/service-accounts", Some(request)).await
    }

    /// Every service account, the soft-deleted ones too with `include_deleted`.
    pub async fn list_accounts(&self, include_deleted: bool) -> Result<ServiceAccounts, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/service-accounts?include_deleted={include_deleted}"), None)
            .await
    }

    /// One service account.
    pub async fn get_account(&self, client_id: &str) -> Result<ServiceAccount, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/service-accounts/{client_id}"), None).await
    }

    /// Changes an account's name, description, roles or enabled flag.
    pub async fn update_account(
        &self,
        client_id: &str,
        update: &UpdateServiceAccount,
    ) -> Result<ServiceAccount, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/service-accounts/{client_id}"), Some(update)).await
    }

    /// New secret for `client_id`; the old one keeps working for `grace_period_secs` if given.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        grace_period_secs: Option<u64>,
    ) -> Result<ServiceAccountWithSecret, ClientError> {
        let body = RotateSecret { grace_period_secs, client_secret: None };
        self.send(Method::POST, &format!("/api/v1/service-accounts/{client_id}/rotate-secret"), Some(&body)).await
    }

    /// Like [`Client::rotate_secret`], to a secret the operator chose (refused if it is weak or
    /// one the account used recently).
    pub async fn rotate_secret_to(
        &self,
        client_id: &str,
        secret: &str,
        grace_period_secs: Option<u64>,
    ) -> Result<ServiceAccountWithSecret, ClientError> {
        let body = RotateSecret { grace_period_secs, client_secret: Some(secret.to_string()) };
        self.send(Method::POST, &format!("/api/v1/service-accounts/{client_id}/rotate-secret"), Some(&body)).await
    }

    /// Soft-deletes an account: its tokens stop working on every node at once.
    pub async fn delete_account(&self, client_id: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &format!("/api/v1/service-accounts/{client_id}")).await
    }

    /// Revokes tokens on every node (admin role): see [`crate::wire::RevokeTokens`].
    pub async fn revoke_tokens(&self, revoke: &crate::wire::RevokeTokens) -> Result<(), ClientError> {
        self.send::<_, serde_json::Value>(Method::POST, "/api/v1/auth/revoke", Some(revoke)).await.map(|_| ())
    }

    /// Generates a new JWT signing key now (operator role).
    pub async fn rotate_keys(&self) -> Result<KeyRotated, ClientError> {
        self.send::<(), _>(Method::POST, "/api/v1/admin/keys/rotate", None).await
    }

    /// The public signing keys (`/.well-known/jwks.json`), as JSON.
    pub async fn jwks(&self) -> Result<serde_json::Value, ClientError> {
        self.send::<(), _>(Method::GET, "/.well-known/jwks.json", None).await
    }

    /// Audit records from sequence `from`, at most `limit`, optionally of one `action` only.
    pub async fn audit(&self, from: u64, limit: usize, action: Option<&str>) -> Result<AuditPage, ClientError> {
        let filter = AuditFilter { from, limit, action: action.map(String::from), ..Default::default() };
        self.audit_where(&filter).await
    }

    /// Audit records as `filter` selects them (one page; `next_from` continues).
    pub async fn audit_where(&self, filter: &AuditFilter) -> Result<AuditPage, ClientError> {
        let mut q: Vec<(&str, String)> = vec![("from", filter.from.max(1).to_string())];
        if filter.limit > 0 {
            q.push(("limit", filter.limit.to_string()));
        }
        for (k, v) in
            [("action", &filter.action), ("actor", &filter.actor), ("since", &filter.since), ("until", &filter.until)]
        {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        let query = serde_urlencoded::to_string(&q).unwrap_or_default();
        self.send::<(), _>(Method::GET, &format!("/api/v1/audit?{query}"), None).await
    }

    /// Recomputes the audit chain on the answering node and reports the first broken record.
    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.send::<(), _>(Method::GET, "/api/v1/audit/verify", None).await
    }
}

/// Which audit records [`Client::audit_where`] returns: from a sequence number, at most `limit`
/// (0: the server's default), of one action, one actor, and a time range (RFC 3339 or unix
/// milliseconds; `since` inclusive, `until` exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// First sequence number to examine (0 and 1 both mean the first record).
    pub from: u64,
    /// Records per page; 0 takes the server's default (100).
    pub limit: usize,
    /// Only records of this action, such as `token.issue`.
    pub action: Option<String>,
    /// Only records of this actor (a client id, or `system`).
    pub actor: Option<String>,
    /// Only records at or after this time.
    pub since: Option<String>,
    /// Only records before this time.
    pub until: Option<String>,
}
