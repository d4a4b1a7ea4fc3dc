//! API tokens: create, list, revoke, and the lookup every request makes.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::token::{TokenInfo, TokenScope};

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
}
