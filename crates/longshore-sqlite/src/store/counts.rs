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
        // The triggers update the totals in place (migration 9); what is
        // left is to add what they counted since the last fold to the
        // current minute (migration 15). Read first, so that an idle
        // cluster's leader takes no write lock.
        let mut reader = self.file.reader.acquire().await.map_err(from_sqlx)?;
        let (totals, seen) = queue_totals(&mut reader).await?;
        drop(reader);
        if totals.iter().all(|t| seen.get(&t.queue) == Some(t)) {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let (totals, seen) = queue_totals(&mut tx).await?;
        let now = now_us();
        let minute = now - now.rem_euclid(60_000_000);
        for total in &totals {
            let before = seen.get(&total.queue);
            // A recount starts the totals again from zero: what happened
            // in between cannot be told, and counts as nothing.
            let grew = |now: i64, then: fn(&QueueTotals) -> i64| {
                before.map_or(now, |b| (now - then(b)).max(0))
            };
            sqlx::query(sql::ADD_TO_MINUTE)
                .bind(minute)
                .bind(&total.queue)
                .bind(grew(total.inserted, |b| b.inserted))
                .bind(grew(total.succeeded, |b| b.succeeded))
                .bind(grew(total.failed, |b| b.failed))
                .bind(total.waiting)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            sqlx::query(sql::SEE)
                .bind(&total.queue)
                .bind(total.inserted)
                .bind(total.succeeded)
                .bind(total.failed)
                .bind(total.waiting)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(0)
    }

    async fn throughput(&self, since: DateTime<Utc>) -> Result<Vec<MinuteRow>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64, Option<i64>)> = sqlx::query_as(sql::THROUGHPUT)
            .bind(since.timestamp_micros())
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.into_iter()
            .map(|(minute, enqueued, succeeded, failed, waiting)| {
                Ok(MinuteRow {
                    minute: row::time(minute)?,
                    enqueued,
                    succeeded,
                    failed,
                    waiting,
                })
            })
            .collect()
    }

    async fn purge_throughput(&self, older_than: Duration) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::PURGE_THROUGHPUT)
            .bind(now_us().saturating_sub(micros(older_than)))
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?
            .rows_affected())
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

/// One queue's totals that only grow, and its backlog (migration 15).
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct QueueTotals {
    queue: String,
    inserted: i64,
    succeeded: i64,
    failed: i64,
    waiting: i64,
}

/// Each queue's totals now, and as the last fold saw them.
async fn queue_totals(
    conn: &mut sqlx::SqliteConnection,
) -> Result<(Vec<QueueTotals>, HashMap<String, QueueTotals>), StoreError> {
    let now: Vec<QueueTotals> = sqlx::query_as(sql::QUEUE_TOTALS)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let seen: Vec<QueueTotals> = sqlx::query_as(sql::SEEN)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok((
        now,
        seen.into_iter().map(|t| (t.queue.clone(), t)).collect(),
    ))
}
