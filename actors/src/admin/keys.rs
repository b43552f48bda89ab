//! JWT signing keys: generation through aws-lc-rs (Ed25519 by default, RSA-2048 for RS256), the
//! in-memory key ring built from the catalog, and the JWKS document.

use std::collections::HashMap;

use artstore_raft::{KeyAlgorithm, SigningKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;

use crate::AdminError;

/// A fresh signing key with a random `kid`, created at `now` (unix ms). RSA generation takes a
/// noticeable fraction of a second; call it off the async reactor.
pub fn generate(algorithm: KeyAlgorithm, now: i64, grace_ms: i64) -> Result<SigningKey, AdminError> {
    let failed = |e: &dyn std::fmt::Display| AdminError::Internal(format!("key generation: {e}"));
    let (private, public, exponent) = match algorithm {
        KeyAlgorithm::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| failed(&e))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| failed(&e))?;
            (pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec(), Vec::new())
        }
        KeyAlgorithm::RS256 => {
            use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| failed(&e))?;
            let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|e| failed(&e))?;
            let public = pair.public_key();
            (
                pkcs8.as_ref().to_vec(),
                public.modulus().big_endian_without_leading_zero().to_vec(),
                public.exponent().big_endian_without_leading_zero().to_vec(),
            )
        }
    };
    Ok(SigningKey {
        kid: hex::encode(rand::random::<[u8; 8]>()),
        algorithm,
        private_pkcs8_hex: hex::encode(private),
        public_hex: hex::encode(public),
        public_exponent_hex: hex::encode(exponent),
        created_at: now,
        retired_at: None,
        grace_ms,
    })
}

/// The `RSAPrivateKey` (PKCS#1) inside a PKCS#8 `PrivateKeyInfo`, which is what the JWT signer
/// takes: SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, … }.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    /// Splits one DER element off `input`: (tag, contents, rest).
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, info, _) = element(der)? else { return None };
    let (0x02, _, rest) = element(info)? else { return None };
    let (0x30, _, rest) = element(rest)? else { return None };
    let (0x04, key, _) = element(rest)? else { return None };
    Some(key)
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
        KeyAlgorithm::RS256 => {
            let exponent = hex::decode(&key.public_exponent_hex).map_err(bad)?;
            let pkcs1 = pkcs1_from_pkcs8(&private)
                .ok_or_else(|| AdminError::Internal(format!("signing key {}: malformed PKCS#8", key.kid)))?;
            Ok(LoadedKey {
                meta: key.clone(),
                encoding: EncodingKey::from_rsa_der(pkcs1),
                decoding: DecodingKey::from_rsa_raw_components(&public, &exponent),
            })
        }
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

/// The JWT `alg` of a key.
pub fn jwt_algorithm(a: KeyAlgorithm) -> jsonwebtoken::Algorithm {
    match a {
        KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    }
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 7517; OKP keys per RFC 8037).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: &'static str,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// The public halves of every key that still validates at `now`.
pub fn jwks(keys: &[SigningKey], now: i64) -> Jwks {
    let b64 = |h: &str| hex::decode(h).ok().map(|b| URL_SAFE_NO_PAD.encode(b));
    let keys = keys
        .iter()
        .filter(|k| k.validates_at(now))
        .filter_map(|k| {
            let base =
                |kty, alg| Jwk { kty, kid: k.kid.clone(), alg, use_: "sig", crv: None, x: None, n: None, e: None };
            Some(match k.algorithm {
                KeyAlgorithm::EdDSA => {
                    Jwk { crv: Some("Ed25519"), x: Some(b64(&k.public_hex)?), ..base("OKP", "EdDSA") }
                }
                KeyAlgorithm::RS256 => {
                    Jwk { n: Some(b64(&k.public_hex)?), e: Some(b64(&k.public_exponent_hex)?), ..base("RSA", "RS256") }
                }
            })
        })
        .collect();
    Jwks { keys }
}
