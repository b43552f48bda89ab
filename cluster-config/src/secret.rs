//! Client secrets: generation (CSPRNG), the policy for operator-chosen secrets, and argon2id
//! hashing. Only hashes are ever stored; a secret is shown once, when it is created.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};

/// Length of generated secrets (the policy asks for at least 32).
pub const GENERATED_SECRET_LEN: usize = 48;

/// A new random secret from a CSPRNG (ThreadRng: ChaCha reseeded from the operating system).
pub fn generate_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), GENERATED_SECRET_LEN)
}

/// Checks an operator-chosen secret: at least 12 characters with lower case, upper case, digits
/// and a symbol.
pub fn check_secret_policy(secret: &str) -> Result<(), String> {
    let classes = [
        secret.chars().any(|c| c.is_lowercase()),
        secret.chars().any(|c| c.is_uppercase()),
        secret.chars().any(|c| c.is_ascii_digit()),
        secret.chars().any(|c| !c.is_alphanumeric()),
    ];
    if secret.len() > 256 {
        return Err("a client secret is at most 256 bytes (the token endpoint refuses longer ones)".into());
    }
    if secret.chars().count() < 12 || classes.iter().any(|c| !c) {
        return Err("a client secret needs at least 12 characters with lower and upper case letters, digits and a \
                    symbol"
            .into());
    }
    Ok(())
}

/// The argon2id PHC string of `secret` with a fresh random salt.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `secret` matches the argon2 PHC string `hash` (constant-time comparison).
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_secret() {
        let s = generate_secret();
        let h = hash_secret(&s).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret(&s, &h));
        assert!(!verify_secret("wrong", &h));
        assert!(!verify_secret(&s, "not a hash"));
    }

    #[test]
    fn operator_secrets_need_length_and_mixed_classes() {
        assert!(check_secret_policy("Sh0rt!").is_err());
        assert!(check_secret_policy("alllowercase12!").is_err());
        assert!(check_secret_policy("Good-Secret-123").is_ok());
    }
}
