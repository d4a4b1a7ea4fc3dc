//! Agent pools and agent tokens (see [`crate::pool`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::pool::{AgentTokenInfo, NewPool, Pool, PoolChange};

/// Pools and agent tokens.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Makes a pool and hands its queues to it: from this call's return,
    /// inline workers' claims skip them. Refuses a name taken
    /// ([`StoreError::PoolExists`]) and a queue that belongs to another pool.
    async fn create_pool(&self, pool: &NewPool) -> Result<Pool, StoreError>;

    /// Every pool, by name.
    async fn pools(&self) -> Result<Vec<Pool>, StoreError>;

    /// Changes a pool ([`StoreError::PoolNotFound`] when there is none):
    /// queues it no longer lists go back to inline workers at commit;
    /// queues of another pool are refused.
    async fn update_pool(&self, name: &str, change: &PoolChange) -> Result<Pool, StoreError>;

    /// Deletes a pool; its queues go back to inline workers. Its agent
    /// tokens stop opening the gateway (they name a pool that is gone).
    async fn delete_pool(&self, name: &str) -> Result<(), StoreError>;

    /// Stores a new agent token for `pool` (which must exist), of which
    /// only the hash of its secret is kept.
    async fn create_agent_token(
        &self,
        name: &str,
        pool: &str,
        secret_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<AgentTokenInfo, StoreError>;

    /// Every agent token, revoked and expired ones too, by name.
    async fn agent_tokens(&self) -> Result<Vec<AgentTokenInfo>, StoreError>;

    /// Revokes an agent token: sessions opened with it are not closed, but
    /// it opens no new one.
    async fn revoke_agent_token(&self, name: &str) -> Result<AgentTokenInfo, StoreError>;

    /// The agent token whose secret hashes to `secret_hash`, whatever its
    /// state (the gateway says why it refuses one).
    async fn agent_token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<AgentTokenInfo>, StoreError>;

    /// Deletes agent tokens that expired before `before`; returns how many.
    async fn delete_expired_agent_tokens(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
