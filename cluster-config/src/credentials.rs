//! The bootstrap admin credentials file (`admin-credentials.json`, mode 0600).
//!
//! The secret is drawn from the operating system's CSPRNG once, written once, and never logged.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub cluster_id: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

impl AdminCredentials {
    /// New credentials for the bootstrap `admin` account with a fresh random secret.
    pub fn generate(cluster_id: &str) -> Self {
        Self {
            client_id: "admin".into(),
            client_secret: crate::secret::generate_secret(),
            cluster_id: cluster_id.into(),
        }
    }

    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.into(), error })?;
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// Writes the file with mode 0600, refusing to replace an existing one.
    pub fn write_new(&self, path: &Path) -> Result<(), ConfigError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| ConfigError::Layout(e.to_string()))?;
        write_private(path, json.as_bytes())
    }
}

/// Creates `path` with mode 0600 (never replacing an existing file) and syncs it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let err = |error| ConfigError::Write { path: path.into(), error };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_redacted_in_debug() {
        let a = AdminCredentials::generate("c");
        let b = AdminCredentials::generate("c");
        assert!(a.client_secret.len() >= 32);
        assert_ne!(a.client_secret, b.client_secret);
        assert!(!format!("{a:?}").contains(&a.client_secret));
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials.json");
        let a = AdminCredentials::generate("c");
        a.write_new(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(AdminCredentials::generate("c").write_new(&path).is_err());
        assert_eq!(AdminCredentials::read(&path).unwrap(), a);
    }
}
