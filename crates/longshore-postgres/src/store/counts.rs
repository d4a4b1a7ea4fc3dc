//! Task counts by queue, actor and state, which the database keeps as
//! tasks change; stats and queue depths read them, never the tasks.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl CountStore for PgStore {
    async fn stats(&self, key: StatsKey) -> Result<Vec<StatsRow>, StoreError> {
        let query = match key {
            StatsKey::State => sql::STATS_BY_STATE,
            StatsKey::Actor => sql::STATS_BY_ACTOR,
            StatsKey::Queue => sql::STATS_BY_QUEUE,
        };
        let rows = sqlx::query(query)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn queue_depths(&self) -> Result<Vec<StatsRow>, StoreError> {
        let rows = sqlx::query(sql::QUEUE_DEPTHS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn fold_counts(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let folded = sqlx::query(sql::FOLD_COUNTS)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        if folded > 0 {
            sqlx::query(sql::FORGET_EMPTY_COUNTS)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(folded)
    }

    async fn recount(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        for statement in sql::RECOUNT {
            sqlx::query(statement)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
        }
        let groups: i64 = sqlx::query_scalar("SELECT count(*) FROM longshore_task_counts")
            .fetch_one(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(u64::try_from(groups).unwrap_or(0))
    }
}
