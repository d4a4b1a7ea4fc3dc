//! API tokens: create, list, revoke, and the lookup every request makes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::token::{TokenInfo, TokenScope};

/// A dashboard session: a browser signed in with an API token. Its secret
/// (the cookie) is never stored, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The token it was opened with, as it is now (its scope decides what
    /// the session may do).
    pub token: TokenInfo,
    /// What every form of the session carries back, so that another site
    /// cannot make the browser post one.
    pub csrf: String,
    /// When it ends unless its holder signs out sooner.
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// The longest a session may last.
    pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
}

/// API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new API token `name` with `scope`, of which only the hash
    /// of its secret is kept (see [`TokenSecret`](crate::TokenSecret) for
    /// how a secret is made and hashed). Refuses a name already taken, by a
    /// revoked token too ([`StoreError::TokenExists`]), a malformed name and
    /// anything but a SHA-256 hex hash.
    async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        secret_hash: &str,
    ) -> Result<TokenInfo, StoreError>;

    /// Every API token, revoked ones too, by name.
    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Revokes the token `name`: requests bearing it are refused from the
    /// moment this returns. Returns the token as it is now; revoking a
    /// revoked token changes nothing (it keeps its first revocation time).
    /// A name no token has is [`StoreError::TokenNotFound`].
    async fn revoke_token(&self, name: &str) -> Result<TokenInfo, StoreError>;

    /// The token that is not revoked whose secret hashes to `secret_hash`,
    /// if any: what the API asks on every request. Records the use in
    /// `last_used_at` only when the recorded one is older than
    /// [`TokenInfo::LAST_USED_PRECISION`], so that a busy client costs a
    /// write a minute, not one per request; a failure to record it does not
    /// refuse the token.
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError>;

    /// Opens a dashboard session for token `token_id` for `ttl` (at most
    /// [`Session::MAX_TTL`]), keeping only the hash of its secret
    /// (`secret_hash`, SHA-256 hex) and its CSRF token.
    async fn create_session(
        &self,
        token_id: Uuid,
        secret_hash: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The session whose secret hashes to `secret_hash`, if it has not
    /// expired and its token is not revoked. What the dashboard asks on
    /// every page, on whichever node the browser reaches.
    async fn session(&self, secret_hash: &str) -> Result<Option<Session>, StoreError>;

    /// Ends the session whose secret hashes to `secret_hash` (signing
    /// out); ending one that does not exist changes nothing.
    async fn end_session(&self, secret_hash: &str) -> Result<(), StoreError>;

    /// Deletes expired sessions, at most `limit`; returns how many. The
    /// maintenance purge calls it.
    async fn purge_sessions(&self, limit: i64) -> Result<u64, StoreError>;
}
