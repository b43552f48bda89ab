//! How the benchmarks reach the nodes: plain HTTP, or HTTPS trusting every cluster CA registered
//! with [`trust`] (a spawned TLS cluster's, or `--ca-cert`), so that one process can drive a plain
//! and a TLS cluster side by side.

use std::sync::Mutex;

static ROOTS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Trusts the CA certificate(s) in `pem` for every client made from now on.
pub fn trust(pem: Vec<u8>) {
    if let Ok(mut r) = ROOTS.lock() {
        r.push(pem);
    }
}

fn roots() -> Vec<Vec<u8>> {
    ROOTS.lock().map(|r| r.clone()).unwrap_or_default()
}

/// A raw HTTP client trusting the registered CAs.
pub fn http() -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    for pem in roots() {
        for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default() {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().unwrap_or_default()
}

/// An SDK client for `urls` trusting the registered CAs.
pub fn sdk<I: IntoIterator<Item = String>>(urls: I) -> anyhow::Result<artstore_client::Client> {
    let mut c = artstore_client::Client::new(urls)?;
    for pem in roots() {
        c = c.with_ca_cert(&pem)?;
    }
    Ok(c)
}
