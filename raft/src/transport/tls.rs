//! rustls configurations for the cluster transport: TLS 1.3 only, aws-lc-rs, client certificates
//! required and verified against the cluster CA on both sides.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use artstore_cluster_config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::Error;

const ALPN: &[u8] = b"artstore-cluster/1";

/// The node's identity in the cluster: the CA to trust and its own certificate and key.
pub struct TlsMaterial {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    bbr: bool,
}

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let err = |e: String| Error::Tls(key.into(), format!("{}: {e}", path.display()));
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

impl TlsMaterial {
    /// Loads the files named in the `[tls]` section; errors name the key of the bad file.
    pub fn load(tls: &TlsConfig) -> Result<Self, Error> {
        let mut roots = RootCertStore::empty();
        for ca in certs("tls.ca_cert", &tls.ca_cert)? {
            roots.add(ca).map_err(|e| Error::Tls("tls.ca_cert".into(), format!("{}: {e}", tls.ca_cert.display())))?;
        }
        let chain = certs("tls.cert", &tls.cert)?;
        let key = PrivateKeyDer::from_pem_file(&tls.key)
            .map_err(|e| Error::Tls("tls.key".into(), format!("{}: {e}", tls.key.display())))?;
        let material = Self { roots: Arc::new(roots), chain, key, bbr: false };
        // Build both configurations once now so that a key that does not match the certificate
        // is reported at start-up with the key name.
        material.server_config()?;
        material.client_config()?;
        Ok(material)
    }

    /// Paces the cluster transport with BBR instead of CUBIC (`quic.congestion_control = "bbr"`).
    pub fn with_bbr(mut self, bbr: bool) -> Self {
        self.bbr = bbr;
        self
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    pub(crate) fn server_config(&self) -> Result<quinn::ServerConfig, Error> {
        let tls_err = |e: String| Error::Tls("tls.cert".into(), e);
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), Self::provider())
            .build()
            .map_err(|e| Error::Tls("tls.ca_cert".into(), e.to_string()))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| Error::Tls("tls.key".into(), format!("does not match tls.cert: {e}")))?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(cfg).map_err(|e| tls_err(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
        server.transport_config(transport_config(self.bbr));
        Ok(server)
    }

    pub(crate) fn client_config(&self) -> Result<quinn::ClientConfig, Error> {
        let tls_err = |e: String| Error::Tls("tls.cert".into(), e);
        let mut cfg = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err(e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| Error::Tls("tls.key".into(), format!("does not match tls.cert: {e}")))?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).map_err(|e| tls_err(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic));
        client.transport_config(transport_config(self.bbr));
        Ok(client)
    }
}

/// Keep-alive and idle timeout make a dead peer visible within an election timeout; the stream
/// cap bounds what one peer can make us hold. With `bbr`, BBR paces by measured bandwidth and
/// round trip instead of shrinking at every lost packet: on a lossy link (20 % loss in the chaos
/// suite) CUBIC's window collapses and a chunk takes many round trips (upload p99 2.4–4.4 s
/// there, 1.7–2.3 s with BBR), while on a clean LAN BBR moved large uploads 10–15 % slower.
fn transport_config(bbr: bool) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_millis(300)));
    t.max_idle_timeout(Some(Duration::from_secs(3).try_into().expect("3 s is a valid idle timeout")));
    t.max_concurrent_bidi_streams(256u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    if bbr {
        t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    }
    Arc::new(t)
}
