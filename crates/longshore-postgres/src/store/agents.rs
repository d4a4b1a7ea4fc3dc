//! Agent pools and agent tokens.

pub(crate) mod sql;

use longshore_core::{AgentStore, AgentTokenInfo, NewPool, Pool, PoolChange};

use super::*;

#[async_trait]
impl AgentStore for PgStore {
    async fn create_pool(&self, pool: &NewPool) -> Result<Pool, StoreError> {
        pool.validate()?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let created_at: DateTime<Utc> = sqlx::query_scalar(sql::CREATE_POOL)
            .bind(&pool.name)
            .bind(&pool.labels)
            .bind(pool.max_running)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::PoolExists(pool.name.clone()))?;
        refuse_taken(&mut tx, self.named(), &pool.queues, &pool.name).await?;
        sqlx::query(sql::ASSIGN_QUEUES)
            .bind(&pool.queues)
            .bind(&pool.name)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        let mut queues = pool.queues.clone();
        queues.sort();
        Ok(Pool {
            name: pool.name.clone(),
            queues,
            labels: pool.labels.clone(),
            max_running: pool.max_running,
            created_at,
        })
    }

    async fn pools(&self) -> Result<Vec<Pool>, StoreError> {
        sqlx::query(sql::POOLS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                Ok(Pool {
                    name: row.try_get("name").map_err(from_sqlx)?,
                    queues: row.try_get("queues").map_err(from_sqlx)?,
                    labels: row.try_get("labels").map_err(from_sqlx)?,
                    max_running: row.try_get("max_running").map_err(from_sqlx)?,
                    created_at: row.try_get("created_at").map_err(from_sqlx)?,
                })
            })
            .collect()
    }

    async fn update_pool(&self, name: &str, change: &PoolChange) -> Result<Pool, StoreError> {
        change.validate(name)?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let found: Option<String> = sqlx::query_scalar(sql::UPDATE_POOL)
            .bind(name)
            .bind(change.labels.as_ref())
            .bind(change.max_running.is_some())
            .bind(change.max_running.flatten())
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        if found.is_none() {
            return Err(StoreError::PoolNotFound(name.to_owned()));
        }
        if let Some(queues) = &change.queues {
            refuse_taken(&mut tx, self.named(), queues, name).await?;
            sqlx::query(sql::RELEASE_OTHER_QUEUES)
                .bind(name)
                .bind(queues)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
            sqlx::query(sql::ASSIGN_QUEUES)
                .bind(queues)
                .bind(name)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        self.pools()
            .await?
            .into_iter()
            .find(|pool| pool.name == name)
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))
    }

    async fn delete_pool(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let deleted: Option<String> = sqlx::query_scalar(sql::DELETE_POOL)
            .bind(name)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        if deleted.is_none() {
            return Err(StoreError::PoolNotFound(name.to_owned()));
        }
        sqlx::query(sql::RELEASE_QUEUES)
            .bind(name)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)
    }

    async fn create_agent_token(
        &self,
        name: &str,
        pool: &str,
        secret_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<AgentTokenInfo, StoreError> {
        AgentTokenInfo::check_new(name, pool, secret_hash)?;
        let exists: bool = sqlx::query_scalar(sql::POOL_EXISTS)
            .bind(pool)
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)?;
        if !exists {
            return Err(StoreError::PoolNotFound(pool.to_owned()));
        }
        sqlx::query(sql::CREATE_AGENT_TOKEN)
            .bind(Uuid::now_v7())
            .bind(name)
            .bind(pool)
            .bind(secret_hash)
            .bind(expires_at)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::agent_token)
            .transpose()?
            .ok_or_else(|| StoreError::AgentTokenExists(name.to_owned()))
    }

    async fn agent_tokens(&self) -> Result<Vec<AgentTokenInfo>, StoreError> {
        sqlx::query(sql::AGENT_TOKENS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::agent_token)
            .collect()
    }

    async fn revoke_agent_token(&self, name: &str) -> Result<AgentTokenInfo, StoreError> {
        sqlx::query(sql::REVOKE_AGENT_TOKEN)
            .bind(name)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::agent_token)
            .transpose()?
            .ok_or_else(|| StoreError::AgentTokenNotFound(name.to_owned()))
    }

    async fn agent_token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<AgentTokenInfo>, StoreError> {
        sqlx::query(sql::AGENT_TOKEN_BY_HASH)
            .bind(secret_hash)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::agent_token)
            .transpose()
    }

    async fn delete_expired_agent_tokens(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::DELETE_EXPIRED_AGENT_TOKENS)
            .bind(before)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?
            .rows_affected())
    }
}

/// Refuses `queues` for pool `pool` when one belongs to another pool.
async fn refuse_taken(
    conn: &mut PgConnection,
    named: bool,
    queues: &[String],
    pool: &str,
) -> Result<(), StoreError> {
    match sqlx::query(sql::QUEUES_TAKEN)
        .bind(queues)
        .bind(pool)
        .fetch_optional(on(conn, named))
        .await
        .map_err(from_sqlx)?
    {
        None => Ok(()),
        Some(row) => {
            let queue: String = row.try_get("name").map_err(from_sqlx)?;
            let owner: String = row.try_get("pool").map_err(from_sqlx)?;
            Err(StoreError::InvalidInput(format!(
                "queue `{queue}` belongs to pool `{owner}` already"
            )))
        }
    }
}
