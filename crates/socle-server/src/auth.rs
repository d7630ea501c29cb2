//! Users, roles and API tokens.
//!
//! - Passwords are stored as argon2id PHC strings (`$argon2id$v=19$...`), never in clear;
//!   a generated password is random (20 characters from a 56-letter alphabet without
//!   look-alikes, about 116 bits) and must be changed at first login.
//! - Roles are ordered: `viewer` (dashboards and catalog) < `analyst` (+ query and read all
//!   data) < `editor` (+ run, rerun and backfill pipelines) < `admin` (+ users, tokens,
//!   configuration, audit log).
//! - An API token reads `socle_<id>_<secret>`: the id (12 hex characters) finds it, the
//!   SHA-256 of the secret (32 random bytes, base64url) is what is stored. A token has a
//!   role no higher than its owner's and an expiry.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use sha2::Digest;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a password needs at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("no random numbers from the system: {0}")]
    Random(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// What a principal may do; each role includes the ones below it (stored as text by the
/// metadata layer).
pub use socle_meta::Role;

/// The argon2id PHC string of a password (after checking its length).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::WeakPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(b)
}

/// A random password to hand out once (20 characters, no look-alike letters).
pub fn generate_password() -> Result<String, AuthError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in random_bytes::<32>()? {
            // Rejection sampling keeps every letter equally likely.
            let limit = 256 - 256 % ALPHABET.len();
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// SHA-256 (hex) of a secret, as stored for sessions and tokens.
pub fn secret_hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new API token: (id, the full token to show once, the hash to store).
pub fn new_token() -> Result<(String, String, String), AuthError> {
    let id: String = random_bytes::<6>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let hash = secret_hash(&secret);
    Ok((id.clone(), format!("socle_{id}_{secret}"), hash))
}

/// Splits a presented token into its id and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix("socle_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

/// A random session cookie value or CSRF token (32 bytes, base64url).
pub fn new_secret() -> Result<String, AuthError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::WeakPassword)
        ));
        let p = generate_password().unwrap();
        assert_eq!(p.len(), 20);
        assert_ne!(p, generate_password().unwrap());
    }

    #[test]
    fn tokens_and_roles() {
        let (id, token, hash) = new_token().unwrap();
        let (pid, secret) = parse_token(&token).unwrap();
        assert_eq!(pid, id);
        assert_eq!(secret_hash(secret), hash);
        assert_eq!(parse_token("socle_zz_x"), None);
        assert!(Role::Admin.allows(Role::Editor));
        assert!(!Role::Analyst.allows(Role::Editor));
        assert_eq!("Editor".parse::<Role>().unwrap(), Role::Editor);
        assert!("root".parse::<Role>().is_err());
    }
}
