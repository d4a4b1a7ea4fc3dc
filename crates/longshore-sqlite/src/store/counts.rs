//! Task counts by queue, actor and state, which the database keeps as
//! tasks change; stats and queue depths read them, never the tasks.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl CountStore for SqliteStore {
    async fn stats(&self, key: StatsKey) -> Result<Vec<StatsRow>, StoreError> {
        let query = match key {
            StatsKey::State => sql::STATS_BY_STATE,
            StatsKey::Actor => sql::STATS_BY_ACTOR,
            StatsKey::Queue => sql::STATS_BY_QUEUE,
        };
        let rows = sqlx::query(query)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn queue_depths(&self) -> Result<Vec<StatsRow>, StoreError> {
        let rows = sqlx::query(sql::QUEUE_DEPTHS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn fold_counts(&self) -> Result<u64, StoreError> {
        // The triggers update the totals in place (migration 9).
        Ok(0)
    }

    async fn recount(&self) -> Result<u64, StoreError> {
        // One write transaction: no task changes in between.
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM longshore_task_counts")
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let groups = sqlx::query(
            "INSERT INTO longshore_task_counts (queue, actor, state, n)
             SELECT queue, actor, state, count(*) FROM longshore_tasks GROUP BY queue, actor, state",
        )
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(from_sqlx)?;
        Ok(groups)
    }
}
