//! Access tokens: the claims ArtStore puts in a JWT, signing with the active key, and local
//! validation on any node (signature, algorithm allow-list, issuer, audience, time, and the
//! account still being active right now).

use std::collections::HashSet;

use artstore_raft::Role;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::{self, KeyRing};
use crate::AdminError;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of an ArtStore access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub roles: Vec<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// RFC 8705 confirmation: the client certificate the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` of a certificate-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// SHA-256 of the certificate (DER), base64url without padding.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// A client certificate the TLS handshake verified against `[http.tls] client_ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's common name: the service account the certificate names.
    pub subject: Option<String>,
    /// SHA-256 of the certificate (DER), base64url without padding (RFC 8705 `x5t#S256`).
    pub thumbprint: String,
}

/// Who is calling, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub client_id: String,
    /// The account's roles now (a role removed since the token was issued no longer counts).
    pub roles: Vec<Role>,
    pub jti: String,
    pub expires_at: i64,
}

impl Principal {
    /// `Ok` when the principal has `role` (or `admin`).
    pub fn require(&self, role: Role) -> Result<(), AdminError> {
        if self.roles.contains(&Role::Admin) || self.roles.contains(&role) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(role.as_str()))
        }
    }
}

pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String, AdminError> {
    let kid = ring.active.as_ref().ok_or_else(|| AdminError::Unavailable("no signing key yet".into()))?;
    let key = ring.keys.get(kid).ok_or_else(|| AdminError::Internal("active signing key missing".into()))?;
    let mut header = Header::new(keys::jwt_algorithm(key.meta.algorithm));
    header.kid = Some(kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| AdminError::Internal(format!("signing: {e}")))
}

/// Checks the signature and the standard claims; the caller checks the account.
pub fn verify(ring: &KeyRing, token: &str, issuer: &str, audience: &str, now_ms: i64) -> Result<Claims, AdminError> {
    let invalid = |m: String| AdminError::InvalidToken(m);
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("malformed token: {e}")))?;
    // Allow-list: EdDSA and RS256 only (never `none`, never HMAC with a public key as secret).
    if !matches!(header.alg, Algorithm::EdDSA | Algorithm::RS256) {
        return Err(invalid(format!("algorithm {:?} is not accepted", header.alg)));
    }
    let kid = header.kid.ok_or_else(|| invalid("token has no kid".into()))?;
    let key = ring.keys.get(&kid).ok_or_else(|| invalid(format!("unknown signing key {kid:?}")))?;
    // The key decides the algorithm, not the token: no algorithm confusion.
    let alg = keys::jwt_algorithm(key.meta.algorithm);
    if header.alg != alg {
        return Err(invalid(format!("token says {:?} but key {kid:?} is {alg:?}", header.alg)));
    }
    if !key.meta.validates_at(now_ms) {
        return Err(invalid(format!("signing key {kid:?} is no longer valid")));
    }
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.required_spec_claims = HashSet::from(["exp", "nbf", "iat", "iss", "aud", "sub"].map(String::from));
    let data =
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &v).map_err(|e| invalid(format!("invalid token: {e}")))?;
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use artstore_raft::KeyAlgorithm;

    use super::*;

    fn claims(exp_offset: i64) -> Claims {
        let now = crate::admin::now_ms() / 1000;
        Claims {
            iss: "c".into(),
            aud: "artstore".into(),
            sub: "app".into(),
            roles: vec!["reader".into()],
            iat: now,
            nbf: now,
            exp: now + exp_offset,
            jti: "j".into(),
            cnf: None,
        }
    }

    fn ring() -> KeyRing {
        KeyRing::build(&[keys::generate(KeyAlgorithm::EdDSA, crate::admin::now_ms(), 3_600_000).unwrap()])
    }

    #[test]
    fn rs256_keys_sign_and_verify_and_publish_n_and_e() {
        let key = keys::generate(KeyAlgorithm::RS256, crate::admin::now_ms(), 3_600_000).unwrap();
        let ring = KeyRing::build(std::slice::from_ref(&key));
        let token = sign(&ring, &claims(10_000_000_000)).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().alg, Algorithm::RS256);
        assert_eq!(verify(&ring, &token, "c", "artstore", crate::admin::now_ms()).unwrap().sub, "app");
        let jwks = serde_json::to_value(keys::jwks(&[key], crate::admin::now_ms())).unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert!(jwks["keys"][0]["n"].as_str().unwrap().len() > 300);
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
    }

    #[test]
    fn signed_tokens_verify_and_carry_their_kid() {
        let ring = ring();
        // `exp` far ahead: jsonwebtoken checks time against the real clock.
        let token = sign(&ring, &claims(10_000_000_000)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid, ring.active);
        assert_eq!(verify(&ring, &token, "c", "artstore", crate::admin::now_ms()).unwrap().sub, "app");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let ring = ring();
        let good = sign(&ring, &claims(10_000_000_000)).unwrap();
        assert!(verify(&ring, &good, "other-cluster", "artstore", crate::admin::now_ms()).is_err(), "wrong issuer");
        assert!(verify(&ring, &good, "c", "someone-else", crate::admin::now_ms()).is_err(), "wrong audience");
        let expired = sign(&ring, &claims(-(10_000_000_000))).unwrap();
        assert!(verify(&ring, &expired, "c", "artstore", crate::admin::now_ms()).is_err(), "expired");

        let parts: Vec<&str> = good.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["roles"] = serde_json::json!(["admin"]);
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
        assert!(verify(&ring, &forged, "c", "artstore", crate::admin::now_ms()).is_err(), "tampered payload");

        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(verify(&ring, &unsigned, "c", "artstore", crate::admin::now_ms()).is_err(), "alg none");
        let other_ring = KeyRing::build(&[keys::generate(KeyAlgorithm::EdDSA, crate::admin::now_ms(), 1).unwrap()]);
        assert!(verify(&other_ring, &good, "c", "artstore", crate::admin::now_ms()).is_err(), "unknown kid");
    }
}
