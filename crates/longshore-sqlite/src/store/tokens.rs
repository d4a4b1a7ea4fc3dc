//! API tokens: create, list, revoke, and the lookup by hash that every
//! request makes.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        secret_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        TokenInfo::check_new(name, secret_hash)?;
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::CREATE_TOKEN)
            .bind(Uuid::now_v7().to_string())
            .bind(name)
            .bind(scope.as_str())
            .bind(secret_hash)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenExists(name.to_owned()))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        sqlx::query(sql::TOKENS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::token)
            .collect()
    }

    async fn revoke_token(&self, name: &str) -> Result<TokenInfo, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::REVOKE_TOKEN)
            .bind(name)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenNotFound(name.to_owned()))
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(mut token) = sqlx::query(sql::TOKEN_BY_HASH)
            .bind(secret_hash)
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
        else {
            return Ok(None);
        };
        let now = now_us();
        let stale_before = now.saturating_sub(micros(TokenInfo::LAST_USED_PRECISION));
        if token.use_is_stale(row::time(now)?) {
            // Not durable: losing the last use to a machine crash is harmless.
            match sqlx::query(sql::TOUCH_TOKEN)
                .bind(token.id.to_string())
                .bind(now)
                .bind(stale_before)
                .execute(&self.file.writer)
                .await
            {
                Ok(done) if done.rows_affected() > 0 => {
                    token.last_used_at = Some(row::time(now)?);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(token = %token.name, error = %e, "cannot record a token's use");
                }
            }
        }
        Ok(Some(token))
    }

    async fn create_session(
        &self,
        token_id: Uuid,
        secret_hash: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        longshore_core::token::check_hash(secret_hash)?;
        let now = now_us();
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::CREATE_SESSION)
            .bind(secret_hash)
            .bind(token_id.to_string())
            .bind(csrf)
            .bind(now)
            .bind(now.saturating_add(micros(ttl.min(Session::MAX_TTL))))
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result.map(|_| ())
    }

    async fn session(&self, secret_hash: &str) -> Result<Option<Session>, StoreError> {
        let Some(row) = sqlx::query(sql::SESSION)
            .bind(secret_hash)
            .bind(now_us())
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            token: row::token(&row)?,
            csrf: row.try_get("csrf").map_err(from_sqlx)?,
            expires_at: row::time(row.try_get("expires_at").map_err(from_sqlx)?)?,
        }))
    }

    async fn end_session(&self, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query(sql::END_SESSION)
            .bind(secret_hash)
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn purge_sessions(&self, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PURGE_SESSIONS)
            .bind(now_us())
            .bind(limit)
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
