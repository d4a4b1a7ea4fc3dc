//! API tokens: create, list, revoke, and the lookup by hash that every
//! request makes.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl TokenStore for PgStore {
    async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        secret_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        TokenInfo::check_new(name, secret_hash)?;
        sqlx::query(sql::CREATE_TOKEN)
            .bind(Uuid::now_v7())
            .bind(name)
            .bind(scope.as_str())
            .bind(secret_hash)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenExists(name.to_owned()))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        sqlx::query(sql::TOKENS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::token)
            .collect()
    }

    async fn revoke_token(&self, name: &str) -> Result<TokenInfo, StoreError> {
        sqlx::query(sql::REVOKE_TOKEN)
            .bind(name)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenNotFound(name.to_owned()))
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(mut token) = sqlx::query(sql::TOKEN_BY_HASH)
            .bind(secret_hash)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
        else {
            return Ok(None);
        };
        let precision = TokenInfo::LAST_USED_PRECISION;
        if token.use_is_stale(Utc::now()) {
            // The database's clock decides; this process's only spares the
            // write when it is plainly not needed.
            match sqlx::query_scalar::<_, DateTime<Utc>>(sql::TOUCH_TOKEN)
                .bind(token.id)
                .bind(millis(precision))
                .fetch_optional(self.db())
                .await
            {
                Ok(Some(at)) => token.last_used_at = Some(at),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(token = %token.name, error = %e, "cannot record a token's use")
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
        sqlx::query(sql::CREATE_SESSION)
            .bind(secret_hash)
            .bind(token_id)
            .bind(csrf)
            .bind(millis(ttl.min(Session::MAX_TTL)))
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn session(&self, secret_hash: &str) -> Result<Option<Session>, StoreError> {
        let Some(row) = sqlx::query(sql::SESSION)
            .bind(secret_hash)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            token: row::token(&row)?,
            csrf: row.try_get("csrf").map_err(from_sqlx)?,
            expires_at: row.try_get("expires_at").map_err(from_sqlx)?,
        }))
    }

    async fn end_session(&self, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query(sql::END_SESSION)
            .bind(secret_hash)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn purge_sessions(&self, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PURGE_SESSIONS)
            .bind(limit)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
