//! JWT signing keys: generation (Ed25519 through aws-lc-rs), the in-memory key ring built from the
//! catalog, and the JWKS document.

use std::collections::HashMap;

use artstore_raft::{KeyAlgorithm, SigningKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;

use crate::AdminError;

/// A fresh Ed25519 signing key with a random `kid`, created at `now` (unix ms).
pub fn generate(now: i64, grace_ms: i64) -> Result<SigningKey, AdminError> {
    let rng = SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| AdminError::Internal(format!("key generation: {e}")))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| AdminError::Internal(format!("key: {e}")))?;
    Ok(SigningKey {
        kid: hex::encode(rand::random::<[u8; 8]>()),
        algorithm: KeyAlgorithm::EdDSA,
        private_pkcs8_hex: hex::encode(pkcs8.as_ref()),
        public_hex: hex::encode(pair.public_key().as_ref()),
        public_exponent_hex: String::new(),
        created_at: now,
        retired_at: None,
        grace_ms,
    })
}

/// One key ready for use.
pub struct LoadedKey {
    pub meta: SigningKey,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

fn load(key: &SigningKey) -> Result<LoadedKey, AdminError> {
    let bad = |e: hex::FromHexError| AdminError::Internal(format!("signing key {}: {e}", key.kid));
    let private = hex::decode(&key.private_pkcs8_hex).map_err(bad)?;
    let public = hex::decode(&key.public_hex).map_err(bad)?;
    match key.algorithm {
        KeyAlgorithm::EdDSA => Ok(LoadedKey {
            meta: key.clone(),
            encoding: EncodingKey::from_ed_der(&private),
            decoding: DecodingKey::from_ed_der(&public),
        }),
        KeyAlgorithm::RS256 => Err(AdminError::Internal(format!("signing key {}: RS256 is not supported", key.kid))),
    }
}

/// The keys of the catalog, by `kid`, with the one that signs new tokens.
#[derive(Default)]
pub struct KeyRing {
    pub keys: HashMap<String, LoadedKey>,
    pub active: Option<String>,
    /// The catalog's kids this ring was built from, to notice changes cheaply.
    pub fingerprint: Vec<(String, Option<i64>)>,
}

impl KeyRing {
    pub fn build(keys: &[SigningKey]) -> Self {
        let mut ring = KeyRing::default();
        for k in keys {
            match load(k) {
                Ok(l) => {
                    ring.keys.insert(k.kid.clone(), l);
                }
                Err(e) => tracing::error!(error = %e, "skipping unusable signing key"),
            }
        }
        ring.active = keys.iter().rev().find(|k| k.retired_at.is_none()).map(|k| k.kid.clone());
        ring.fingerprint = fingerprint(keys);
        ring
    }
}

pub fn fingerprint(keys: &[SigningKey]) -> Vec<(String, Option<i64>)> {
    keys.iter().map(|k| (k.kid.clone(), k.retired_at)).collect()
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The public halves of every key that still validates at `now`.
pub fn jwks(keys: &[SigningKey], now: i64) -> Jwks {
    let keys = keys
        .iter()
        .filter(|k| k.validates_at(now) && k.algorithm == KeyAlgorithm::EdDSA)
        .filter_map(|k| {
            let x = hex::decode(&k.public_hex).ok()?;
            Some(Jwk {
                kty: "OKP",
                crv: "Ed25519",
                x: URL_SAFE_NO_PAD.encode(x),
                kid: k.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            })
        })
        .collect();
    Jwks { keys }
}
