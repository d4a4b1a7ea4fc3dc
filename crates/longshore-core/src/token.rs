//! API tokens: what a bearer token may do, and how its secret is made and
//! stored.
//!
//! A token's secret is 32 random bytes from the operating system's CSPRNG,
//! shown once as `ls_` followed by their unpadded base64url form. Only the
//! SHA-256 of the whole secret (in lower-case hex) is stored. A fast hash is
//! the right one here: a password needs a slow, salted hash because people
//! choose guessable ones, but a 256-bit random secret cannot be guessed or
//! looked up in a table however fast the hash is, and the API hashes the
//! presented token on every request, so a slow hash would only cost time.
//! Lookup is by the hash itself (an indexed equality), so no comparison of
//! secrets happens in this process that could leak timing.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::StoreError;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Look at everything, change nothing.
    Read,
    /// Everything `Read` may, and every change an operator can make.
    Admin,
}

impl TokenScope {
    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }

    /// True when a token of this scope may do what `needed` allows.
    pub fn allows(self, needed: TokenScope) -> bool {
        match needed {
            TokenScope::Read => true,
            TokenScope::Admin => self == TokenScope::Admin,
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is neither `read` nor `admin`.
#[derive(Debug, thiserror::Error)]
#[error("unknown token scope `{0}`: expected read or admin")]
pub struct UnknownScope(pub String);

impl FromStr for TokenScope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(TokenScope::Read),
            "admin" => Ok(TokenScope::Admin),
            other => Err(UnknownScope(other.to_owned())),
        }
    }
}

/// A stored token, without its secret (which is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: Uuid,
    /// What operators call it; unique among all tokens, revoked ones too.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, to within
    /// [`TokenInfo::LAST_USED_PRECISION`] (`None`: never).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: it is valid).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// The longest name a token may have.
    pub const MAX_NAME_CHARS: usize = 100;

    /// How stale `last_used_at` may be. An engine records a use only when the
    /// recorded one is older than this, so that a busy client costs one
    /// write per token per minute, not one per request.
    pub const LAST_USED_PRECISION: std::time::Duration = std::time::Duration::from_secs(60);

    /// Whether a use at `now` should be recorded: the recorded one is
    /// missing or older than [`TokenInfo::LAST_USED_PRECISION`]. (The
    /// engine's write checks again against the database's own clock.)
    pub fn use_is_stale(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at.is_none_or(|at| {
            now.signed_duration_since(at).to_std().unwrap_or_default() >= Self::LAST_USED_PRECISION
        })
    }

    /// Refuses what no token may be created with: a malformed name, or a
    /// secret hash that is not SHA-256 in hex.
    pub fn check_new(name: &str, secret_hash: &str) -> Result<(), StoreError> {
        TokenInfo::check_name(name)?;
        check_hash(secret_hash)
    }

    /// Refuses a name operators could not type or tell apart.
    pub fn check_name(name: &str) -> Result<(), StoreError> {
        if name.is_empty() {
            return Err(StoreError::InvalidInput("token name is empty".into()));
        }
        if name.chars().count() > TokenInfo::MAX_NAME_CHARS {
            return Err(StoreError::InvalidInput(format!(
                "token name is longer than {} characters",
                TokenInfo::MAX_NAME_CHARS
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')))
        {
            return Err(StoreError::InvalidInput(format!(
                "token name `{name}` contains `{c}`: use letters, digits, `-`, `_`, `.` and `@`"
            )));
        }
        Ok(())
    }

    /// True while it authenticates requests.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A token's secret, as handed to its owner once. Its `Debug` form hides
/// it, so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// What every secret starts with, so that it is recognisable in a
    /// configuration file or a secret scanner.
    pub const PREFIX: &'static str = "ls_";
    /// Random bytes in a secret.
    pub const RANDOM_BYTES: usize = 32;

    /// A new secret from the operating system's CSPRNG.
    pub fn generate() -> Result<TokenSecret, NoRandomness> {
        Ok(TokenSecret(format!(
            "{}{}",
            TokenSecret::PREFIX,
            random_text()?
        )))
    }

    /// The secret itself, to show its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored of it.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }

    /// True when `presented` could be a secret of this form at all: a cheap
    /// check that spares the database a lookup for garbage.
    pub fn looks_valid(presented: &str) -> bool {
        presented
            .strip_prefix(TokenSecret::PREFIX)
            .is_some_and(|rest| {
                rest.len() == 43
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

/// [`TokenSecret::RANDOM_BYTES`] bytes from the operating system's CSPRNG,
/// in base64url: what token secrets, dashboard session cookies and their
/// CSRF tokens are made of.
pub fn random_text() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; TokenSecret::RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The operating system would not hand out random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes for a token secret: {0}")]
pub struct NoRandomness(pub String);

/// The stored form of a presented secret: SHA-256, lower-case hex (64
/// characters). See the module documentation for why a fast hash.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Refuses a stored hash that is not SHA-256 hex, so that a secret passed by
/// mistake where its hash belongs is never stored.
pub fn check_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() == 64 && hash.bytes().all(|b| HEX.contains(&b)) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(
            "a token hash must be 64 lower-case hex digits (SHA-256)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed_stably() {
        let a = TokenSecret::generate().expect("random bytes");
        let b = TokenSecret::generate().expect("random bytes");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("ls_"), "{}", a.expose());
        assert!(TokenSecret::looks_valid(a.expose()));
        assert_eq!(a.hash(), hash_secret(a.expose()));
        assert!(check_hash(&a.hash()).is_ok());
        assert_eq!(format!("{a:?}"), "TokenSecret(***)");
        // The SHA-256 of "abc", a published test vector.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_secrets_and_hashes_are_told_apart() {
        assert!(!TokenSecret::looks_valid("ls_short"));
        assert!(!TokenSecret::looks_valid(&format!("xx_{}", "a".repeat(43))));
        assert!(!TokenSecret::looks_valid(&format!("ls_{}", "+".repeat(43))));
        assert!(check_hash("ls_abc").is_err());
        assert!(check_hash(&"A".repeat(64)).is_err());
    }

    #[test]
    fn admin_allows_everything_read_only_reading() {
        assert!(TokenScope::Admin.allows(TokenScope::Admin));
        assert!(TokenScope::Admin.allows(TokenScope::Read));
        assert!(TokenScope::Read.allows(TokenScope::Read));
        assert!(!TokenScope::Read.allows(TokenScope::Admin));
        assert_eq!("admin".parse::<TokenScope>().ok(), Some(TokenScope::Admin));
        assert!("write".parse::<TokenScope>().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(TokenInfo::check_name("ci-deploy_1.prod@eu").is_ok());
        assert!(TokenInfo::check_name("").is_err());
        assert!(TokenInfo::check_name("has space").is_err());
        assert!(TokenInfo::check_name(&"x".repeat(101)).is_err());
    }
}
