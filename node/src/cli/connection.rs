//! Where the CLI reaches the cluster and who it is there: flags, then environment variables,
//! then a profile from the profile file, then defaults. Problems with these settings are
//! [`UsageError`]s (exit code 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use artstore_client::Client;
use serde::Deserialize;

/// A mistake in how the command was called or configured (exit code 2, like clap's own).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow` error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Node URL used when neither flags, environment nor profile name one.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where to reach the cluster and who to be. Flags and environment variables win over the
/// profile, which wins over the default URL.
#[derive(clap::Args)]
pub struct Connection {
    /// Node URLs, comma separated; tried in order [default: http://127.0.0.1:8080].
    #[arg(long, env = "ARTSTORE_URL", value_delimiter = ',')]
    url: Vec<String>,
    /// A credentials file such as `admin-credentials.json` ({"client_id", "client_secret"}).
    #[arg(long, env = "ARTSTORE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Service account id (with --client-secret); wins over --credentials and the profile.
    #[arg(long, env = "ARTSTORE_CLIENT_ID")]
    client_id: Option<String>,
    /// Service account secret (with --client-id).
    #[arg(long, env = "ARTSTORE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A PEM CA certificate to trust for https:// URLs: the cluster CA (`ca/ca.pem` of
    /// `cluster init`, `DATA_DIR/tls/ca.pem` of `dev --tls`). The system's roots are trusted too.
    #[arg(long, env = "ARTSTORE_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// A PEM file with a client certificate and its key, for mutual TLS (`cluster client-cert`).
    #[arg(long, env = "ARTSTORE_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// A profile of the profile file (`ARTSTORE_PROFILE_FILE`, or ~/.config/artstore/profiles.toml);
    /// without it, the profile named `default` is used if there is one.
    #[arg(long, env = "ARTSTORE_PROFILE")]
    profile: Option<String>,
}

/// One `[name]` table of the profile file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    /// One URL, or several comma separated.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    /// Relative paths are relative to the profile file's folder.
    #[serde(default)]
    ca_cert: Option<PathBuf>,
    /// A client certificate and key (PEM), relative like `ca_cert`.
    #[serde(default)]
    client_cert: Option<PathBuf>,
}

/// The profile file: `ARTSTORE_PROFILE_FILE`, or `profiles.toml` in `~/.config/artstore`.
fn profile_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARTSTORE_PROFILE_FILE") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".config").join("artstore").join("profiles.toml"))
}

impl Connection {
    /// The profile in effect: the named one (which must exist), or `default` if the file has it.
    fn load_profile(&self) -> anyhow::Result<Profile> {
        let file = profile_file();
        let text = match (&file, &self.profile) {
            (Some(f), _) if f.exists() => {
                std::fs::read_to_string(f).map_err(|e| usage(format!("profile file {}: {e}", f.display())))?
            }
            (_, Some(name)) => {
                let place = file.map(|f| f.display().to_string()).unwrap_or_else(|| "(no HOME)".into());
                return Err(usage(format!("--profile {name}: no profile file at {place} (set ARTSTORE_PROFILE_FILE)")));
            }
            _ => return Ok(Profile::default()),
        };
        let file = file.unwrap_or_default();
        let mut profiles: BTreeMap<String, Profile> =
            toml::from_str(&text).map_err(|e| usage(format!("profile file {}: {e}", file.display())))?;
        let wanted = self.profile.as_deref().unwrap_or("default");
        let Some(mut profile) = profiles.remove(wanted) else {
            if self.profile.is_none() {
                return Ok(Profile::default());
            }
            let known: Vec<&String> = profiles.keys().collect();
            return Err(usage(format!("profile {wanted:?} is not in {} (it has {known:?})", file.display())));
        };
        if let Some(dir) = file.parent() {
            profile.ca_cert = profile.ca_cert.map(|p| dir.join(p));
            profile.client_cert = profile.client_cert.map(|p| dir.join(p));
        }
        Ok(profile)
    }

    /// An SDK client from the settings in effect.
    pub fn client(&self) -> anyhow::Result<Client> {
        let profile = self.load_profile()?;
        let urls: Vec<String> = if !self.url.is_empty() {
            self.url.clone()
        } else if let Some(u) = &profile.url {
            u.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        } else {
            vec![DEFAULT_URL.to_string()]
        };
        let mut client = Client::new(urls).map_err(|e| usage(format!("--url: {e}")))?;
        if let Some(ca) = self.ca_cert.as_ref().or(profile.ca_cert.as_ref()) {
            let pem = std::fs::read(ca).map_err(|e| usage(format!("CA certificate {}: {e}", ca.display())))?;
            client = client.with_ca_cert(&pem).map_err(|e| usage(format!("CA certificate {}: {e}", ca.display())))?;
        }
        if let Some(cert) = self.client_cert.as_ref().or(profile.client_cert.as_ref()) {
            let pem = std::fs::read(cert).map_err(|e| usage(format!("client certificate {}: {e}", cert.display())))?;
            client = client
                .with_client_certificate(&pem)
                .map_err(|e| usage(format!("client certificate {}: {e}", cert.display())))?;
        }
        match (&self.client_id, &self.client_secret, &self.credentials) {
            (Some(id), Some(secret), _) => Ok(client.with_credentials(id.clone(), secret.clone())),
            (Some(_), None, _) | (None, Some(_), _) => Err(usage(
                "give both --client-id and --client-secret (or ARTSTORE_CLIENT_ID and ARTSTORE_CLIENT_SECRET)",
            )),
            (None, None, Some(path)) => {
                let c = artstore_cluster_config::AdminCredentials::read(path)
                    .map_err(|e| usage(format!("--credentials {}: {e}", path.display())))?;
                Ok(client.with_credentials(c.client_id, c.client_secret))
            }
            (None, None, None) => match (profile.client_id, profile.client_secret) {
                (Some(id), Some(secret)) => Ok(client.with_credentials(id, secret)),
                _ => Err(usage(
                    "no credentials: give --client-id and --client-secret, or --credentials FILE, or --profile NAME \
                     (or set ARTSTORE_CLIENT_ID and ARTSTORE_CLIENT_SECRET, ARTSTORE_CREDENTIALS, ARTSTORE_PROFILE)",
                )),
            },
        }
        .context("connection settings")
    }
}
