//! Service accounts and JWT signing keys as the catalog stores them.
//!
//! These records hold secrets (an argon2id hash, private keys); they never leave the server as
//! they are. The HTTP layer maps them to wire types without those fields.

use super::{encode, Refusal, Revocation, ACCOUNT, AUDIT_KEY, KEY, REVOKED_ACCOUNT, REVOKED_TOKEN};
use crate::store::engine::WriteBatch;
use crate::types::Command;
use serde::{Deserialize, Serialize};

/// What an account may do. `Admin` implies every other role; `Operator` runs the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Writer,
    Reader,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Writer, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An application's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub roles: Vec<Role>,
    pub enabled: bool,
    /// The bootstrap admin: cannot be deleted or disabled.
    pub builtin: bool,
    /// argon2id PHC string of the current secret.
    pub secret_hash: String,
    /// The secret replaced by the last rotation, still accepted until `previous_valid_until`.
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// Tokens are issued only over a connection with a client certificate naming this account
    /// (mutual TLS as a second factor besides the secret).
    #[serde(default)]
    pub require_client_cert: bool,
    /// When the current secret was set (unix milliseconds); absent on records from before
    /// secrets aged, where the creation time stands in.
    #[serde(default)]
    pub secret_set_at: Option<i64>,
    /// argon2id hashes of the secrets before the current one, newest first (at most the
    /// `keep_history` of the last rotation): a chosen secret may not be one of them.
    #[serde(default)]
    pub secret_history: Vec<String>,
}

impl ServiceAccount {
    /// An enabled account created at `at` (unix ms) with its first secret's hash; the other
    /// fields empty or off, for the caller to set.
    pub fn new(client_id: impl Into<String>, roles: Vec<Role>, secret_hash: String, at: i64) -> Self {
        Self {
            client_id: client_id.into(),
            name: String::new(),
            description: String::new(),
            roles,
            enabled: true,
            builtin: false,
            secret_hash,
            previous_secret_hash: None,
            previous_valid_until: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            require_client_cert: false,
            secret_set_at: Some(at),
            secret_history: Vec::new(),
        }
    }

    /// When the current secret was set (unix milliseconds).
    pub fn secret_age_from(&self) -> i64 {
        self.secret_set_at.unwrap_or(self.created_at)
    }

    /// Enabled and not deleted.
    pub fn is_active(&self) -> bool {
        self.enabled && self.deleted_at.is_none()
    }

    pub fn has_role(&self, needed: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&needed)
    }
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub require_client_cert: Option<bool>,
}

/// Signature algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    EdDSA,
    RS256,
}

/// A JWT signing key. The newest key without `retired_at` signs; retired keys keep validating
/// until `retired_at + grace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 DER of the private key, hex-encoded.
    pub private_pkcs8_hex: String,
    /// The public key as the JWK needs it: Ed25519 raw 32 bytes; RSA modulus (`n`), hex.
    pub public_hex: String,
    /// RSA public exponent (`e`), hex; empty for Ed25519.
    pub public_exponent_hex: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// Milliseconds a retired key keeps validating (at least the longest token lifetime).
    pub grace_ms: i64,
}

impl SigningKey {
    /// Whether tokens signed with this key are still accepted at `now` (unix ms).
    pub fn validates_at(&self, now: i64) -> bool {
        self.retired_at.is_none_or(|r| now < r + self.grace_ms)
    }
}

impl super::Catalog {
    /// Applies a command of accounts and signing keys (see `Catalog::apply`).
    pub(super) fn apply_admin(&self, command: &Command, batch: &mut WriteBatch) -> Result<(), Refusal> {
        match command {
            Command::InitSecurity { admin, audit_key_hex, key } => {
                if self.security_initialized()? {
                    return Err(Refusal::Conflict("security is already initialised".into()));
                }
                batch.put(AUDIT_KEY.as_bytes().to_vec(), encode(audit_key_hex));
                batch.put(format!("{ACCOUNT}{}", admin.client_id).into_bytes(), encode(admin));
                batch.put(format!("{KEY}{}", key.kid).into_bytes(), encode(key));
            }
            Command::CreateAccount { account } => {
                if self.account(&account.client_id)?.is_some() {
                    return Err(Refusal::Conflict(format!("account {:?} already exists", account.client_id)));
                }
                batch.put(format!("{ACCOUNT}{}", account.client_id).into_bytes(), encode(account));
            }
            Command::UpdateAccount { client_id, changes, at } => {
                let mut a = self.live_account(client_id)?;
                if a.builtin
                    && (changes.enabled == Some(false)
                        || changes.roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)))
                {
                    return Err(Refusal::Conflict(
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
            Command::RotateSecret { client_id, secret_hash, grace_until, at, keep_history } => {
                let mut a = self.live_account(client_id)?;
                a.secret_history.insert(0, a.secret_hash.clone());
                a.secret_history.truncate(*keep_history as usize);
                a.previous_secret_hash = grace_until.map(|_| a.secret_hash.clone());
                a.previous_valid_until = *grace_until;
                a.secret_hash = secret_hash.clone();
                a.secret_set_at = Some(*at);
                a.updated_at = *at;
                batch.put(format!("{ACCOUNT}{client_id}").into_bytes(), encode(&a));
            }
            Command::DeleteAccount { client_id, at } => {
                let mut a = self.live_account(client_id)?;
                if a.builtin {
                    return Err(Refusal::Conflict("the bootstrap admin account cannot be deleted".into()));
                }
                a.deleted_at = Some(*at);
                a.enabled = false;
                a.updated_at = *at;
                batch.put(format!("{ACCOUNT}{client_id}").into_bytes(), encode(&a));
            }
            Command::AddSigningKey { key } => {
                for mut old in self.signing_keys()? {
                    if old.retired_at.is_none() {
                        old.retired_at = Some(key.created_at);
                        batch.put(format!("{KEY}{}", old.kid).into_bytes(), encode(&old));
                    }
                }
                batch.put(format!("{KEY}{}", key.kid).into_bytes(), encode(key));
            }
            Command::PruneSigningKeys { now } => {
                for old in self.signing_keys()? {
                    if !old.validates_at(*now) {
                        batch.delete(format!("{KEY}{}", old.kid).into_bytes());
                    }
                }
            }
            Command::RevokeTokens { jti, client_id, issued_before, until } => {
                match (jti, client_id) {
                    (Some(jti), None) => batch.put(format!("{REVOKED_TOKEN}{jti}").into_bytes(), encode(until)),
                    (None, Some(client_id)) => {
                        if self.account(client_id)?.is_none() {
                            return Err(Refusal::NotFound(format!("no account {client_id:?}")));
                        }
                        // A later revocation of the account widens the earlier one, never narrows it.
                        let key = format!("{REVOKED_ACCOUNT}{client_id}");
                        let old = self.get::<Revocation>(&key)?;
                        let r = Revocation {
                            issued_before: old.map_or(*issued_before, |o| o.issued_before.max(*issued_before)),
                            until: old.map_or(*until, |o| o.until.max(*until)),
                        };
                        batch.put(key.into_bytes(), encode(&r));
                    }
                    _ => return Err(Refusal::Invalid("revoke either one token (jti) or an account's tokens".into())),
                }
            }
            Command::PruneRevocations { now } => {
                for (k, v) in self.tree.scan_prefix(REVOKED_TOKEN.as_bytes())? {
                    if serde_json::from_slice::<i64>(&v).is_ok_and(|until| until < *now) {
                        batch.delete(k);
                    }
                }
                for (k, v) in self.tree.scan_prefix(REVOKED_ACCOUNT.as_bytes())? {
                    if serde_json::from_slice::<Revocation>(&v).is_ok_and(|r| r.until < *now) {
                        batch.delete(k);
                    }
                }
            }
            other => return Err(Refusal::Invalid(format!("not a admin command: {other:?}"))),
        }
        Ok(())
    }
}
