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
        let (folded, moved): (i64, i64) = sqlx::query_as(sql::FOLD_COUNTS)
            .fetch_one(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        if folded > 0 {
            sqlx::query(sql::FORGET_EMPTY_COUNTS)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
        }
        if moved > 0 {
            sqlx::query(sql::MINUTE_WAITING)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(u64::try_from(folded).unwrap_or(0))
    }

    async fn throughput(&self, since: DateTime<Utc>) -> Result<Vec<MinuteRow>, StoreError> {
        let rows: Vec<(DateTime<Utc>, i64, i64, i64, Option<i64>)> =
            sqlx::query_as(sql::THROUGHPUT)
                .bind(since)
                .fetch_all(self.db())
                .await
                .map_err(from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(minute, enqueued, succeeded, failed, waiting)| MinuteRow {
                minute,
                enqueued,
                succeeded,
                failed,
                waiting,
            })
            .collect())
    }

    async fn purge_throughput(&self, older_than: Duration) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::PURGE_THROUGHPUT)
            .bind(millis(older_than))
            .execute(self.db())
            .await
            .map_err(from_sqlx)?
            .rows_affected())
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
