//! The public face's settings: the HTTP API's listener and its TLS (`[http]`, `[http.tls]`), the
//! browser origins allowed to call it (`[http.cors]`), and the optional separate listener for
//! metrics and health (`[metrics]`).
//!
//! Defaults keep a node that sets none of these exactly as before: plain HTTP, no CORS, metrics on
//! the API listener. `artstore cluster init` writes `[http.tls]` for every node.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{check_addr, check_peer_addr};
use crate::error::Problem;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP API listens on.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// Address other nodes and clients should use (`IP:port` or `dns-name:port`); defaults to
    /// `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// HTTPS for the API; absent means plain HTTP (logged as a warning off loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ApiTlsConfig>,
    #[serde(default, skip_serializing_if = "CorsConfig::is_off")]
    pub cors: CorsConfig,
}

/// The API's server certificate and what TLS it speaks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsConfig {
    /// The certificate chain (PEM): the node's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `"1.3"` (default) or `"1.2"`: the oldest TLS version accepted. Either way only AEAD
    /// suites with forward secrecy are offered.
    #[serde(default = "default_min_version")]
    pub min_version: String,
    /// A CA (PEM) whose client certificates the node asks for: a client that presents one gets
    /// tokens bound to it, and accounts that require a certificate need it (see the README).
    /// Clients without a certificate are still served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for changes, which are then loaded for new connections
    /// (SIGHUP reloads at once); 0 checks only on SIGHUP.
    #[serde(default = "default_reload_check")]
    pub reload_check_secs: u64,
}

/// Cross-origin requests from browser applications.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`, scheme + host + optional port) whose pages may call
    /// the API; empty (the default) allows none. `"*"` is accepted in `dev` mode only.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    #[serde(default = "default_cors_max_age")]
    pub max_age_secs: u64,
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A separate plain-HTTP listener for `/metrics` and the health checks (an internal
    /// interface). When set, the API listener no longer serves `/metrics`; it keeps the health
    /// checks for load balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

fn default_http_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_min_version() -> String {
    "1.3".into()
}
fn default_reload_check() -> u64 {
    10
}
fn default_cors_max_age() -> u64 {
    600
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: default_http_listen(), advertise: None, tls: None, cors: CorsConfig::default() }
    }
}

impl ApiTlsConfig {
    /// The files of a node folder laid out by `cluster init` (relative to `config.toml`).
    pub fn with_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            min_version: default_min_version(),
            client_ca: None,
            reload_check_secs: default_reload_check(),
        }
    }

    pub(crate) fn resolve_paths(&mut self, abs: &impl Fn(&Path) -> PathBuf) {
        self.cert = abs(&self.cert);
        self.key = abs(&self.key);
        if let Some(ca) = &self.client_ca {
            self.client_ca = Some(abs(ca));
        }
    }

    /// Whether TLS 1.2 is accepted besides 1.3.
    pub fn allows_tls12(&self) -> bool {
        self.min_version == "1.2"
    }
}

impl CorsConfig {
    pub fn is_off(&self) -> bool {
        self.allowed_origins.is_empty() && self.max_age_secs == default_cors_max_age()
    }
}

impl HttpConfig {
    /// The scheme clients use: `https` with `[http.tls]`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub(crate) fn validate(&self, p: &mut Vec<Problem>, dev: bool) {
        check_addr(p, "http.listen", &self.listen);
        if let Some(a) = &self.advertise {
            check_peer_addr(p, "http.advertise", a);
        }
        if let Some(t) = &self.tls {
            if t.min_version != "1.3" && t.min_version != "1.2" {
                p.push(Problem::new("http.tls.min_version", format!("{:?}: use \"1.3\" or \"1.2\"", t.min_version)));
            }
            let files = [("http.tls.cert", Some(&t.cert)), ("http.tls.key", Some(&t.key))];
            for (key, path) in files.into_iter().chain([("http.tls.client_ca", t.client_ca.as_ref())]) {
                if let Some(path) = path {
                    if let Err(e) = std::fs::File::open(path) {
                        p.push(Problem::new(key, format!("cannot read {}: {e}", path.display())));
                    }
                }
            }
        }
        for (i, origin) in self.cors.allowed_origins.iter().enumerate() {
            let key = format!("http.cors.allowed_origins[{i}]");
            if origin == "*" {
                if !dev {
                    p.push(Problem::new(key, "\"*\" (any origin) is refused in production mode; list the origins"));
                }
            } else if let Err(why) = check_origin(origin) {
                p.push(Problem::new(key, format!("{origin:?}: {why}")));
            }
        }
        if self.cors.max_age_secs > 86_400 {
            p.push(Problem::new("http.cors.max_age_secs", "must be at most 86400"));
        }
    }
}

impl MetricsConfig {
    pub(crate) fn validate(&self, p: &mut Vec<Problem>, http_listen: &str) {
        if let Some(l) = &self.listen {
            check_addr(p, "metrics.listen", l);
            if l == http_listen {
                p.push(Problem::new("metrics.listen", "must differ from http.listen"));
            }
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("an origin starts with https:// or http://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err("an origin is scheme://host[:port] with no path");
    }
    if origin.len() > 253 + 16 {
        return Err("too long for an origin");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_port_and_wildcard_is_dev_only() {
        let mut c = HttpConfig::default();
        c.cors.allowed_origins =
            vec!["https://app.example.com".into(), "http://localhost:3000".into(), "app.example.com".into()];
        let mut p = Vec::new();
        c.validate(&mut p, false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "http.cors.allowed_origins[2]");
        c.cors.allowed_origins = vec!["*".into(), "https://a.example/path".into()];
        let mut p = Vec::new();
        c.validate(&mut p, false);
        assert_eq!(p.len(), 2, "{p:?}");
        let mut p = Vec::new();
        c.validate(&mut p, true);
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn tls_settings_are_checked() {
        let mut c = HttpConfig {
            tls: Some(ApiTlsConfig { min_version: "1.1".into(), ..ApiTlsConfig::with_files("/nope.pem", "/nope.key") }),
            ..HttpConfig::default()
        };
        let mut p = Vec::new();
        c.validate(&mut p, false);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["http.tls.min_version", "http.tls.cert", "http.tls.key"]);
        assert_eq!(c.scheme(), "https");
        c.tls = None;
        assert_eq!(c.scheme(), "http");
    }
}
