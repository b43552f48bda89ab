//! How old a client secret may get (`[auth] secret_max_age_days`, default 90): warned about
//! `secret_expiry_warning_days` before (a metric, and an audit record once per secret), refused
//! at the token endpoint after, with `invalid_client` saying that the secret expired. The
//! bootstrap admin's secret is warned about but never refused: refusing it could leave a cluster
//! with no account able to rotate secrets.

use std::collections::HashSet;
use std::time::Duration;

use artstore_raft::{rfc3339, Command, ServiceAccount};

use super::{now_ms, AdminHandle};
use crate::worker::{Next, Stop, Worker};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Where a secret stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAge {
    Fresh {
        expires_at: i64,
    },
    /// Within the warning period before `expires_at`.
    Expiring {
        expires_at: i64,
    },
    Expired {
        expires_at: i64,
    },
}

impl SecretAge {
    /// `account`'s secret at `now` under a maximum age and a warning period (days).
    pub fn of(account: &ServiceAccount, now: i64, max_age_days: u32, warning_days: u32) -> Self {
        let expires_at = account.secret_age_from().saturating_add(i64::from(max_age_days) * DAY_MS);
        if now >= expires_at {
            SecretAge::Expired { expires_at }
        } else if now >= expires_at - i64::from(warning_days) * DAY_MS {
            SecretAge::Expiring { expires_at }
        } else {
            SecretAge::Fresh { expires_at }
        }
    }

    pub fn expires_at(self) -> i64 {
        match self {
            SecretAge::Fresh { expires_at }
            | SecretAge::Expiring { expires_at }
            | SecretAge::Expired { expires_at } => expires_at,
        }
    }
}

impl AdminHandle {
    /// Where `account`'s secret stands now under this node's policy.
    pub fn secret_age(&self, account: &ServiceAccount) -> SecretAge {
        let c = &self.inner.config;
        SecretAge::of(account, now_ms(), c.secret_max_age_days, c.secret_expiry_warning_days)
    }

    /// Why a token request with the right secret is still refused, if its secret expired.
    pub(super) fn expired_secret(&self, account: &ServiceAccount) -> Option<String> {
        match self.secret_age(account) {
            SecretAge::Expired { expires_at } if !account.builtin => Some(format!(
                "the client secret expired at {} ({} days after it was set); an admin must rotate it",
                rfc3339(expires_at),
                self.inner.config.secret_max_age_days
            )),
            _ => None,
        }
    }

    /// The worker that counts aging secrets and audits each one entering its warning period.
    pub fn secret_ages(&self) -> SecretAges {
        SecretAges { admin: self.clone(), warned: HashSet::new() }
    }
}

/// Every minute: `artstore_auth_secrets_expiring` and `artstore_auth_secrets_expired` (active
/// accounts) on every node, and on the leader an `account.secret_expiring` audit record per
/// secret (account and the time it was set) once. A new leader may audit a secret once more.
pub struct SecretAges {
    admin: AdminHandle,
    warned: HashSet<(String, i64)>,
}

impl Worker for SecretAges {
    fn name(&self) -> &'static str {
        "secret-ages"
    }

    async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
        let node = self.admin.node().clone();
        let accounts = node.catalog().accounts().map_err(|e| e.to_string())?;
        let (mut expiring, mut expired) = (0u64, 0u64);
        let leads = node.leads();
        for a in accounts.iter().filter(|a| a.is_active()) {
            let age = self.admin.secret_age(a);
            match age {
                SecretAge::Fresh { .. } => continue,
                SecretAge::Expiring { .. } => expiring += 1,
                SecretAge::Expired { .. } => expired += 1,
            }
            let key = (a.client_id.clone(), a.secret_age_from());
            if !leads || self.warned.contains(&key) {
                continue;
            }
            let outcome = match age {
                SecretAge::Expired { expires_at } => format!("expired at {}", rfc3339(expires_at)),
                _ => format!("expires at {}", rfc3339(age.expires_at())),
            };
            tracing::warn!(client_id = %a.client_id, %outcome, "client secret needs rotating");
            let event = AdminHandle::event("system", "account.secret_expiring", &a.client_id, &outcome, None);
            self.admin.audited(Command::AuditOnly, event).await.map_err(|e| e.to_string())?;
            self.warned.insert(key);
        }
        if !leads {
            self.warned.clear();
        }
        metrics::gauge!("artstore_auth_secrets_expiring").set(expiring as f64);
        metrics::gauge!("artstore_auth_secrets_expired").set(expired as f64);
        Ok(Next::After(Duration::from_secs(60)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(set_at: Option<i64>, created_at: i64) -> ServiceAccount {
        ServiceAccount { secret_set_at: set_at, ..ServiceAccount::new("app", vec![], String::new(), created_at) }
    }

    #[test]
    fn a_secret_is_fresh_then_expiring_then_expired() {
        let set = 1_000 * DAY_MS;
        let a = account(Some(set), 0);
        let expires_at = set + 90 * DAY_MS;
        assert_eq!(SecretAge::of(&a, set, 90, 14), SecretAge::Fresh { expires_at });
        assert_eq!(SecretAge::of(&a, expires_at - 14 * DAY_MS - 1, 90, 14), SecretAge::Fresh { expires_at });
        assert_eq!(SecretAge::of(&a, expires_at - 14 * DAY_MS, 90, 14), SecretAge::Expiring { expires_at });
        assert_eq!(SecretAge::of(&a, expires_at - 1, 90, 14), SecretAge::Expiring { expires_at });
        assert_eq!(SecretAge::of(&a, expires_at, 90, 14), SecretAge::Expired { expires_at });
    }

    #[test]
    fn records_from_before_aging_count_from_their_creation() {
        let a = account(None, 5 * DAY_MS);
        assert_eq!(SecretAge::of(&a, 0, 30, 7).expires_at(), 35 * DAY_MS);
    }
}
