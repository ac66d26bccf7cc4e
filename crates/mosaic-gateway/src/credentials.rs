//! Credentials the gateway makes and checks: passwords (argon2id), and random tokens
//! (bearer tokens, session cookies, bootstrap tokens), which are stored as SHA-256
//! hashes — they carry 256 bits of entropy, so a fast hash is enough.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// Token kinds, told apart by prefix so a leaked string says what it is.
pub const API_TOKEN_PREFIX: &str = "mos_";
pub const SESSION_PREFIX: &str = "mss_";
pub const BOOTSTRAP_PREFIX: &str = "msb_";

/// A fresh random token: the prefix and 32 random bytes, base64url.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal-time comparison, for secrets compared in the clear (CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Passwords must be 8 to 1024 characters.
pub fn check_password_policy(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if n < 8 {
        return Err(ApiError::bad_request(
            "password must be at least 8 characters",
        ));
    }
    if n > 1024 {
        return Err(ApiError::bad_request(
            "password must be at most 1024 characters",
        ));
    }
    Ok(())
}

/// argon2id works in 19 MiB for tens of milliseconds: at most one hash per core runs
/// at a time, so a burst of logins queues instead of exhausting memory.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores)
    })
}

/// Hash a password with argon2id (on the blocking pool: it is deliberately slow).
pub async fn hash_password(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ApiError::internal()
    })
}

/// A real argon2id hash of a random password, made once: checked when the user does
/// not exist, so that an unknown username costs as much time as a wrong password.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(random_token("").as_bytes(), &salt)
                .map(|h| h.to_string())
                .ok()
        })
        .as_deref()
}

/// Check a password against a stored hash. With no hash (unknown user) a dummy hash is
/// checked anyway, so the answer takes as long either way.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.is_some();
    let hash = hash.map(str::to_owned);
    let password = password.to_owned();
    let Ok(_permit) = hashing_permits().acquire().await else {
        return false;
    };
    let ok = tokio::task::spawn_blocking(move || {
        let Some(hash) = hash.or_else(|| dummy_hash().map(str::to_owned)) else {
            return false;
        };
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)).await);
        assert!(!verify_password("wrong horse", Some(&hash)).await);
        assert!(!verify_password("correct horse", None).await);
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = random_token(API_TOKEN_PREFIX);
        let b = random_token(API_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("mos_") && a.len() == 4 + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &b));
    }
}
