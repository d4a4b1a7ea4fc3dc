//! Agent pools and agent tokens.

pub(crate) mod sql;

use longshore_core::{AgentStore, AgentTokenInfo, NewPool, Pool, PoolChange};

use super::*;

#[async_trait]
impl AgentStore for SqliteStore {
    async fn create_pool(&self, pool: &NewPool) -> Result<Pool, StoreError> {
        pool.validate()?;
        let labels = to_json(&pool.labels)?;
        let queues = to_json(&pool.queues)?;
        let mut conn = self.durable_writer().await?;
        let result = async {
            let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .map_err(from_sqlx)?;
            let now = now_us();
            let created_at: i64 = sqlx::query_scalar(sql::CREATE_POOL)
                .bind(&pool.name)
                .bind(&labels)
                .bind(pool.max_running)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?
                .ok_or_else(|| StoreError::PoolExists(pool.name.clone()))?;
            refuse_taken(&mut tx, &queues, &pool.name).await?;
            sqlx::query(sql::ASSIGN_QUEUES)
                .bind(&queues)
                .bind(&pool.name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            tx.commit().await.map_err(from_sqlx)?;
            row::time(created_at)
        }
        .await;
        self.restore(conn).await;
        let mut queues = pool.queues.clone();
        queues.sort();
        Ok(Pool {
            name: pool.name.clone(),
            queues,
            labels: pool.labels.clone(),
            max_running: pool.max_running,
            created_at: result?,
        })
    }

    async fn pools(&self) -> Result<Vec<Pool>, StoreError> {
        sqlx::query(sql::POOLS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                let list = |column: &str| -> Result<Vec<String>, StoreError> {
                    let text: String = row.try_get(column).map_err(from_sqlx)?;
                    serde_json::from_str(&text).map_err(|e| {
                        StoreError::Database(
                            format!("stored {column} are not a JSON list: {e}").into(),
                        )
                    })
                };
                Ok(Pool {
                    name: row.try_get("name").map_err(from_sqlx)?,
                    queues: list("queues")?,
                    labels: list("labels")?,
                    max_running: row.try_get("max_running").map_err(from_sqlx)?,
                    created_at: row::time(row.try_get("created_at").map_err(from_sqlx)?)?,
                })
            })
            .collect()
    }

    async fn update_pool(&self, name: &str, change: &PoolChange) -> Result<Pool, StoreError> {
        change.validate(name)?;
        let labels = change.labels.as_ref().map(to_json).transpose()?;
        let queues = change.queues.as_ref().map(to_json).transpose()?;
        let mut conn = self.durable_writer().await?;
        let result = async {
            let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .map_err(from_sqlx)?;
            let now = now_us();
            let found: Option<String> = sqlx::query_scalar(sql::UPDATE_POOL)
                .bind(name)
                .bind(labels.as_deref())
                .bind(change.max_running.is_some())
                .bind(change.max_running.flatten())
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            if found.is_none() {
                return Err(StoreError::PoolNotFound(name.to_owned()));
            }
            let mut released = Vec::new();
            if let Some(queues) = &queues {
                refuse_taken(&mut tx, queues, name).await?;
                released = sqlx::query_scalar(sql::RELEASE_OTHER_QUEUES)
                    .bind(name)
                    .bind(queues)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                sqlx::query(sql::ASSIGN_QUEUES)
                    .bind(queues)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            tx.commit().await.map_err(from_sqlx)?;
            Ok::<Vec<String>, StoreError>(released)
        }
        .await;
        self.restore(conn).await;
        let released = result?;
        self.wake(released.iter().map(String::as_str));
        self.pools()
            .await?
            .into_iter()
            .find(|pool| pool.name == name)
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))
    }

    async fn delete_pool(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = async {
            let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .map_err(from_sqlx)?;
            let deleted: Option<String> = sqlx::query_scalar(sql::DELETE_POOL)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            if deleted.is_none() {
                return Err(StoreError::PoolNotFound(name.to_owned()));
            }
            let queues: Vec<String> = sqlx::query_scalar(sql::RELEASE_QUEUES)
                .bind(name)
                .bind(now_us())
                .fetch_all(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            tx.commit().await.map_err(from_sqlx)?;
            Ok(queues)
        }
        .await;
        self.restore(conn).await;
        let queues = result?;
        self.wake(queues.iter().map(String::as_str));
        Ok(())
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
            .fetch_one(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        if !exists {
            return Err(StoreError::PoolNotFound(pool.to_owned()));
        }
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::CREATE_AGENT_TOKEN)
            .bind(Uuid::now_v7().to_string())
            .bind(name)
            .bind(pool)
            .bind(secret_hash)
            .bind(expires_at.map(|at| at.timestamp_micros()))
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::agent_token)
            .transpose()?
            .ok_or_else(|| StoreError::AgentTokenExists(name.to_owned()))
    }

    async fn agent_tokens(&self) -> Result<Vec<AgentTokenInfo>, StoreError> {
        sqlx::query(sql::AGENT_TOKENS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::agent_token)
            .collect()
    }

    async fn revoke_agent_token(&self, name: &str) -> Result<AgentTokenInfo, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::REVOKE_AGENT_TOKEN)
            .bind(name)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
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
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::agent_token)
            .transpose()
    }

    async fn delete_expired_agent_tokens(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::DELETE_EXPIRED_AGENT_TOKENS)
            .bind(before.timestamp_micros())
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        Ok(result?.rows_affected())
    }
}

/// Refuses the queues in the JSON array `queues` for pool `pool` when one
/// belongs to another pool.
async fn refuse_taken(
    conn: &mut sqlx::SqliteConnection,
    queues: &str,
    pool: &str,
) -> Result<(), StoreError> {
    match sqlx::query(sql::QUEUES_TAKEN)
        .bind(queues)
        .bind(pool)
        .fetch_optional(conn)
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
