//! The audit trail of changes made through the API and the dashboard.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl AuditStore for PgStore {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        sqlx::query(sql::RECORD)
            .bind(Uuid::now_v7())
            .bind(&entry.who)
            .bind(&entry.via)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(i32::from(entry.status))
            .execute(self.db())
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
            .bind(before)
            .bind(limit.max(0))
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                let status: i32 = row.try_get("status").map_err(from_sqlx)?;
                Ok(AuditEntry {
                    id: row.try_get("id").map_err(from_sqlx)?,
                    at: row.try_get("at").map_err(from_sqlx)?,
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
            .bind(millis(older_than))
            .bind(limit)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
