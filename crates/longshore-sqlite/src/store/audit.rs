//! The audit trail of changes made through the API and the dashboard.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        sqlx::query(sql::RECORD)
            .bind(Uuid::now_v7().to_string())
            .bind(now_us())
            .bind(&entry.who)
            .bind(&entry.via)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(i64::from(entry.status))
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        limit: i64,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(sql::ENTRIES)
            .bind(before.map(|id| id.to_string()))
            .bind(limit.max(0))
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(from_sqlx)?;
                let status: i64 = row.try_get("status").map_err(from_sqlx)?;
                Ok(AuditEntry {
                    id: id.parse().map_err(|e| {
                        StoreError::Database(
                            format!("stored audit id `{id}` is not a UUID: {e}").into(),
                        )
                    })?,
                    at: row::time(row.try_get("at").map_err(from_sqlx)?)?,
                    entry: NewAuditEntry {
                        who: row.try_get("who").map_err(from_sqlx)?,
                        via: row.try_get("via").map_err(from_sqlx)?,
                        action: row.try_get("action").map_err(from_sqlx)?,
                        target: row.try_get("target").map_err(from_sqlx)?,
                        status: u16::try_from(status).unwrap_or_default(),
                    },
                })
            })
            .collect()
    }

    async fn purge_audit(&self, older_than: Duration, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PURGE)
            .bind(now_us().saturating_sub(micros(older_than)))
            .bind(limit)
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
