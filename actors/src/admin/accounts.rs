//! Service-account management on the admin handle: create (the secret is returned once), list,
//! get, update, rotate the secret (with an optional grace period for the old one), soft delete.
//! Every change is an audited Raft proposal; all of it needs the `admin` role.

use std::net::IpAddr;

use artstore_cluster_config::secret;
use artstore_raft::{AccountChanges, Command, Role, ServiceAccount};

use super::{now_ms, tokens, AdminHandle, Principal};
use crate::AdminError;

/// A request to create an account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// Chosen by the caller, or generated (`sa-` + random hex).
    pub client_id: Option<String>,
    pub name: String,
    pub description: String,
    pub roles: Vec<Role>,
    /// Operator-chosen secret (policy-checked); generated when absent.
    pub secret: Option<String>,
    /// Tokens only over mutual TLS with a certificate naming the account.
    pub require_client_cert: bool,
}

/// A partial update of an account.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub enabled: Option<bool>,
    pub require_client_cert: Option<bool>,
}

fn check_client_id(id: &str) -> Result<(), AdminError> {
    let ok =
        (3..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::InvalidRequest(format!(
            "client_id {id:?}: use 3 to 64 characters from A-Z, a-z, 0-9, '-', '_', '.'"
        )))
    }
}

/// Longest account name and description (bytes): they travel in every token check's catalog read.
const MAX_NAME_BYTES: usize = 256;
const MAX_DESCRIPTION_BYTES: usize = 4096;

fn check_text(name: Option<&str>, description: Option<&str>) -> Result<(), AdminError> {
    if let Some(n) = name {
        if n.trim().is_empty() || n.len() > MAX_NAME_BYTES || n.chars().any(char::is_control) {
            return Err(AdminError::InvalidRequest(format!(
                "name: 1 to {MAX_NAME_BYTES} bytes, no control characters"
            )));
        }
    }
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES) {
        return Err(AdminError::InvalidRequest(format!("description: at most {MAX_DESCRIPTION_BYTES} bytes")));
    }
    Ok(())
}

fn check_roles(roles: &[Role]) -> Result<(), AdminError> {
    if roles.is_empty() {
        return Err(AdminError::InvalidRequest("roles: give at least one of admin, operator, writer, reader".into()));
    }
    Ok(())
}

async fn hash(secret: String) -> Result<String, AdminError> {
    tokio::task::spawn_blocking(move || secret::hash_secret(&secret))
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
        .map_err(AdminError::Internal)
}

impl AdminHandle {
    /// Creates an account and returns it with its secret — the only time the secret is shown.
    pub async fn create_account(
        &self,
        actor: &Principal,
        req: NewAccount,
        source: Option<IpAddr>,
    ) -> Result<(ServiceAccount, String), AdminError> {
        actor.require(Role::Admin)?;
        let client_id = req.client_id.unwrap_or_else(|| format!("sa-{}", hex::encode(rand::random::<[u8; 6]>())));
        check_client_id(&client_id)?;
        check_roles(&req.roles)?;
        check_text(Some(&req.name), Some(&req.description))?;
        let plain = match req.secret {
            Some(s) => {
                secret::check_secret_policy(&s).map_err(AdminError::InvalidRequest)?;
                s
            }
            None => secret::generate_secret(),
        };
        let now = now_ms();
        let account = ServiceAccount {
            name: req.name,
            description: req.description,
            require_client_cert: req.require_client_cert,
            ..ServiceAccount::new(client_id.clone(), req.roles, hash(plain.clone()).await?, now)
        };
        let event = Self::event(&actor.client_id, "account.create", &client_id, "ok", source);
        self.audited(Command::CreateAccount { account: account.clone() }, event).await?;
        Ok((account, plain))
    }

    /// Every account (deleted ones only when asked).
    pub fn list_accounts(&self, actor: &Principal, include_deleted: bool) -> Result<Vec<ServiceAccount>, AdminError> {
        actor.require(Role::Admin)?;
        let mut all = self.node().catalog().accounts()?;
        all.retain(|a| include_deleted || a.deleted_at.is_none());
        Ok(all)
    }

    pub fn get_account(&self, actor: &Principal, client_id: &str) -> Result<ServiceAccount, AdminError> {
        actor.require(Role::Admin)?;
        self.node()
            .catalog()
            .account(client_id)?
            .ok_or_else(|| AdminError::NotFound(format!("no account {client_id:?}")))
    }

    pub async fn update_account(
        &self,
        actor: &Principal,
        client_id: &str,
        update: AccountUpdate,
        source: Option<IpAddr>,
    ) -> Result<ServiceAccount, AdminError> {
        actor.require(Role::Admin)?;
        if let Some(r) = &update.roles {
            check_roles(r)?;
        }
        check_text(update.name.as_deref(), update.description.as_deref())?;
        let changes = AccountChanges {
            name: update.name,
            description: update.description,
            roles: update.roles,
            enabled: update.enabled,
            require_client_cert: update.require_client_cert,
        };
        let event = Self::event(&actor.client_id, "account.update", client_id, "ok", source);
        let command = Command::UpdateAccount { client_id: client_id.to_string(), changes, at: now_ms() };
        self.audited(command, event).await?;
        self.node().read_barrier().await?;
        self.get_account(actor, client_id)
    }

    /// Replaces the secret; with `grace_secs` the old one keeps working that long, else it stops
    /// at once. Returns the new secret (shown once) and the account as it is now.
    pub async fn rotate_secret(
        &self,
        actor: &Principal,
        client_id: &str,
        grace_secs: Option<u64>,
        chosen: Option<String>,
        source: Option<IpAddr>,
    ) -> Result<(String, ServiceAccount), AdminError> {
        actor.require(Role::Admin)?;
        if grace_secs.is_some_and(|g| g > 7 * 24 * 3600) {
            return Err(AdminError::InvalidRequest("grace_period_secs: at most 604800 (7 days)".into()));
        }
        let keep = self.inner.config.secret_history;
        let plain = match chosen {
            Some(s) => {
                secret::check_secret_policy(&s).map_err(AdminError::InvalidRequest)?;
                let account = self.get_account(actor, client_id)?;
                // The current secret and the last `keep` ones, compared as argon2 verifies them.
                let earlier: Vec<String> = std::iter::once(account.secret_hash)
                    .chain(account.secret_history.into_iter().take(keep as usize))
                    .collect();
                let candidate = s.clone();
                let reused =
                    tokio::task::spawn_blocking(move || earlier.iter().any(|h| secret::verify_secret(&candidate, h)))
                        .await
                        .map_err(|e| AdminError::Internal(e.to_string()))?;
                if reused {
                    return Err(AdminError::InvalidRequest(format!(
                        "client_secret: the account used this secret before (it may not be the current one or \
                         any of the {keep} before it); choose another"
                    )));
                }
                s
            }
            None => secret::generate_secret(),
        };
        let now = now_ms();
        let command = Command::RotateSecret {
            client_id: client_id.to_string(),
            secret_hash: hash(plain.clone()).await?,
            grace_until: grace_secs.map(|g| now + (g * 1000) as i64),
            at: now,
            keep_history: keep,
        };
        let event = Self::event(&actor.client_id, "account.rotate_secret", client_id, "ok", source);
        self.audited(command, event).await?;
        self.node().read_barrier().await?;
        Ok((plain, self.get_account(actor, client_id)?))
    }

    /// Revokes tokens on every node (admin role): the one with `jti`, or every token of
    /// `client_id` issued before `issued_before` (unix ms; default now). Audited. The revocation
    /// is kept for as long as such a token could still be valid.
    pub async fn revoke_tokens(
        &self,
        actor: &Principal,
        jti: Option<String>,
        client_id: Option<String>,
        issued_before: Option<i64>,
        source: Option<IpAddr>,
    ) -> Result<(), AdminError> {
        actor.require(Role::Admin)?;
        let now = now_ms();
        let target = match (&jti, &client_id) {
            (Some(j), None) => {
                if j.is_empty() || j.len() > 64 || !j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(AdminError::InvalidRequest("jti: 1 to 64 letters, digits or hyphens".into()));
                }
                format!("token {j}")
            }
            (None, Some(c)) => {
                check_client_id(c)?;
                format!("tokens of {c}")
            }
            _ => return Err(AdminError::InvalidRequest("give either jti or client_id".into())),
        };
        let issued_before = issued_before.unwrap_or(now + 1).min(now + 1);
        // Nothing issued before `issued_before` outlives it by more than a token lifetime.
        let lifetime = ((self.inner.config.token_ttl_secs + tokens::LEEWAY_SECS) * 1000) as i64;
        let until = issued_before.max(now) + lifetime;
        let event = Self::event(&actor.client_id, "token.revoke", &target, "ok", source);
        self.audited(Command::RevokeTokens { jti, client_id, issued_before, until }, event).await?;
        // Answer once this node enforces it (the others do as they apply the entry).
        self.node().read_barrier().await?;
        Ok(())
    }

    /// Revokes the caller's own token (the console's sign-out): any account may end its own
    /// session, and the token then fails on every node, not only in the browser that held it.
    pub async fn revoke_own_token(&self, actor: &Principal, source: Option<IpAddr>) -> Result<(), AdminError> {
        let now = now_ms();
        let lifetime = ((self.inner.config.token_ttl_secs + tokens::LEEWAY_SECS) * 1000) as i64;
        let event = Self::event(&actor.client_id, "token.revoke", &format!("token {}", actor.jti), "ok", source);
        let command = Command::RevokeTokens {
            jti: Some(actor.jti.clone()),
            client_id: None,
            issued_before: now + 1,
            until: now + lifetime,
        };
        self.audited(command, event).await
    }

    /// Soft delete: the account stops authenticating at once on every node.
    pub async fn delete_account(
        &self,
        actor: &Principal,
        client_id: &str,
        source: Option<IpAddr>,
    ) -> Result<(), AdminError> {
        actor.require(Role::Admin)?;
        let event = Self::event(&actor.client_id, "account.delete", client_id, "ok", source);
        self.audited(Command::DeleteAccount { client_id: client_id.to_string(), at: now_ms() }, event).await
    }
}
