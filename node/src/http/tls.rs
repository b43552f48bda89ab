//! HTTPS for the API (`[http.tls]`): the rustls server configuration, reloaded without a restart,
//! and what a client's certificate says about it.
//!
//! Invariants:
//! - TLS 1.3 only unless `min_version = "1.2"`; the suites are aws-lc-rs's AEAD suites with
//!   forward secrecy (no CBC, no RSA key exchange), ALPN `http/1.1`.
//! - A reload (SIGHUP, or a change of a file's size or modification time seen by the periodic
//!   check) builds a complete new configuration first and swaps it in only if every file loads
//!   and the key matches the certificate; otherwise the old one stays and the failure is logged.
//!   Open connections keep the session they have; new handshakes use the new certificate.
//! - With `client_ca`, clients are asked for a certificate; one that does not verify against the
//!   CA fails the handshake, and no certificate at all is allowed (the account decides whether it
//!   needs one, see [`ClientCertificate`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use artstore_cluster_config::ApiTlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sha2::Digest;

/// The API's TLS configuration in force, and how to renew it.
pub struct ApiTls {
    settings: ApiTlsConfig,
    current: RwLock<Arc<ServerConfig>>,
    /// Size and modification time of each file when last loaded.
    seen: Mutex<Vec<Option<(u64, SystemTime)>>>,
}

pub use artstore_actors::admin::ClientCertificate;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(key: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("{key}: {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("{key}: {}: no PEM certificate in the file", path.display()));
    }
    Ok(certs)
}

fn build(settings: &ApiTlsConfig) -> anyhow::Result<ServerConfig> {
    let chain = read_certs("http.tls.cert", &settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key)
        .map_err(|e| anyhow!("http.tls.key: {}: {e}", settings.key.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.allows_tls12() {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .context("http.tls.min_version")?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs("http.tls.client_ca", ca)? {
                roots.add(c).map_err(|e| anyhow!("http.tls.client_ca: {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| anyhow!("http.tls.client_ca: {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("http.tls.key: {} does not match http.tls.cert: {e}", settings.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl ApiTls {
    /// Loads `[http.tls]`; an error names the key of the file that failed.
    pub fn load(settings: &ApiTlsConfig) -> anyhow::Result<Arc<Self>> {
        let config = build(settings)?;
        crate::certificates::publish_expiry("api", &settings.cert);
        Ok(Arc::new(Self {
            seen: Mutex::new(stamps(&files(settings))),
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// The acceptor for a new connection, with the configuration in force now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self.current.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone());
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Loads the files again and swaps the configuration in if they are good; `why` is logged.
    pub fn reload(&self, why: &str) -> bool {
        // The stamp is remembered whatever the outcome: a half-written file is retried when it
        // changes again (or on SIGHUP), not logged every few seconds.
        if let Ok(mut s) = self.seen.lock() {
            *s = stamps(&files(&self.settings));
        }
        match build(&self.settings) {
            Ok(config) => {
                match self.current.write() {
                    Ok(mut c) => *c = Arc::new(config),
                    Err(p) => *p.into_inner() = Arc::new(config),
                }
                metrics::counter!("artstore_http_tls_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!(why, cert = %self.settings.cert.display(), "API certificate reloaded");
                crate::certificates::publish_expiry("api", &self.settings.cert);
                true
            }
            Err(e) => {
                metrics::counter!("artstore_http_tls_reloads_total", "outcome" => "failed").increment(1);
                tracing::error!(why, error = %format!("{e:#}"), "API certificate not reloaded; the previous one stays in use");
                false
            }
        }
    }

    /// Whether a file changed since it was last loaded.
    fn changed(&self) -> bool {
        let now = stamps(&files(&self.settings));
        self.seen.lock().map(|s| *s != now).unwrap_or(true)
    }

    /// Reloads on SIGHUP and when the periodic check sees a file change, until `stop` fires.
    pub fn watch(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let every = self.settings.reload_check_secs;
            let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = hangup => {
                        let tls = self.clone();
                        let _ = tokio::task::spawn_blocking(move || tls.reload("SIGHUP")).await;
                    }
                    _ = tick.tick(), if every > 0 => {
                        // File reads and key parsing: off the reactor.
                        let tls = self.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            if tls.changed() {
                                tls.reload("a certificate or key file changed");
                            }
                        })
                        .await;
                    }
                }
            }
        });
    }
}

fn files(s: &ApiTlsConfig) -> Vec<PathBuf> {
    [Some(&s.cert), Some(&s.key), s.client_ca.as_ref()].into_iter().flatten().cloned().collect()
}

fn stamps(files: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    files.iter().map(|f| std::fs::metadata(f).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

/// What the handshake's verified peer certificate (the first of the chain) says.
pub fn client_certificate(der: &[u8]) -> ClientCertificate {
    use base64::Engine;
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der));
    ClientCertificate { subject: subject_common_name(der), thumbprint }
}

/// The subject's common name of an X.509 certificate (DER), or `None` when it has none or the
/// bytes are not a certificate. Walks Certificate → TBSCertificate → subject with a DER reader
/// that bounds every length by the input.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    const CN: [u64; 4] = [2, 5, 4, 3];
    let text_tags = [yasna::tags::TAG_UTF8STRING, yasna::tags::TAG_PRINTABLESTRING];
    crate::certificates::read_tbs_field(der, crate::certificates::TbsField::Subject, |subject| {
        let mut cn = None;
        // subject: SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }
        subject.read_sequence_of(|r| {
            r.read_set_of(|r| {
                r.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let value = r.next().read_der()?;
                    if cn.is_none() && oid.components().as_slice() == CN {
                        cn = yasna::parse_der(&value, |r| r.read_tagged_der())
                            .ok()
                            .filter(|v| text_tags.contains(&v.tag()))
                            .and_then(|v| String::from_utf8(v.value().to_vec()).ok());
                    }
                    Ok(())
                })
            })
        })?;
        Ok(cn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    #[test]
    fn the_subject_names_the_account() {
        let ca = artstore_cluster_config::ClusterCa::generate("t").unwrap();
        let client = ca.issue_client("sa-billing").unwrap();
        let c = client_certificate(&der(&client.cert_pem));
        assert_eq!(c.subject.as_deref(), Some("sa-billing"));
        assert_eq!(c.thumbprint.len(), 43);
        assert_eq!(subject_common_name(&der(&ca.cert_pem)).as_deref(), Some("ArtStore cluster CA (t)"));
        assert_eq!(subject_common_name(b"not a certificate"), None);
    }

    proptest! {
        /// Any bytes, and any certificate with bytes changed: a name or nothing, never a panic.
        #[test]
        fn fuzz_subject_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600), at in any::<usize>(), to in any::<u8>()) {
            let _ = subject_common_name(&bytes);
            let ca = artstore_cluster_config::ClusterCa::generate("t").unwrap();
            let mut cert = der(&ca.cert_pem);
            let i = at % cert.len();
            cert[i] = to;
            let _ = subject_common_name(&cert);
            let _ = subject_common_name(&cert[..i]);
        }
    }
}
