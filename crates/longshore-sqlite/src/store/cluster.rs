//! The cluster: worker nodes' presence and the roles one node holds at a
//! time (leases on `longshore_leases`).

pub(crate) mod sql;

use super::*;

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn worker_seen(&self, worker: &WorkerPresence) -> Result<bool, StoreError> {
        seen(worker, now_us())?
            .fetch_one(&self.file.writer)
            .await
            .map_err(from_sqlx)
    }

    /// One write transaction for all: SQLite's statements cost no round
    /// trip, its transactions a file sync.
    async fn workers_seen(&self, workers: &[WorkerPresence]) -> Result<Vec<String>, StoreError> {
        if workers.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let now = now_us();
        let mut draining = Vec::new();
        for worker in workers {
            let drain: bool = seen(worker, now)?
                .fetch_one(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            if drain {
                draining.push(worker.id.clone());
            }
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(draining)
    }

    async fn request_drain(&self, id: &str) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar(sql::REQUEST_DRAIN)
            .bind(id)
            .fetch_optional(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(found.is_some())
    }

    async fn worker_stopped(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(sql::WORKER_STOPPED)
            .bind(id)
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        sqlx::query(sql::WORKERS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                let queues: String = row.try_get("queues").map_err(from_sqlx)?;
                Ok(WorkerInfo {
                    presence: WorkerPresence {
                        id: row.try_get("id").map_err(from_sqlx)?,
                        host: row.try_get("host").map_err(from_sqlx)?,
                        version: row.try_get("version").map_err(from_sqlx)?,
                        queues: serde_json::from_str(&queues).map_err(|e| {
                            StoreError::Database(
                                format!("stored queues are not a JSON list: {e}").into(),
                            )
                        })?,
                        concurrency: row.try_get("concurrency").map_err(from_sqlx)?,
                        running: row.try_get("running").map_err(from_sqlx)?,
                        agent: match row
                            .try_get::<Option<String>, _>("pool")
                            .map_err(from_sqlx)?
                        {
                            None => None,
                            Some(pool) => {
                                let labels: Option<String> =
                                    row.try_get("labels").map_err(from_sqlx)?;
                                Some(AgentPresence {
                                    pool,
                                    labels: match labels {
                                        None => Vec::new(),
                                        Some(text) => serde_json::from_str(&text).map_err(|e| {
                                            StoreError::Database(
                                                format!("stored labels are not a JSON list: {e}")
                                                    .into(),
                                            )
                                        })?,
                                    },
                                })
                            }
                        },
                    },
                    drain_requested: row.try_get("drain_requested").map_err(from_sqlx)?,
                    started_at: row::time(row.try_get("started_at").map_err(from_sqlx)?)?,
                    last_seen_at: row::time(row.try_get("last_seen_at").map_err(from_sqlx)?)?,
                })
            })
            .collect()
    }

    async fn forget_workers(&self, unseen_for: Duration) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::FORGET_WORKERS)
            .bind(now_us().saturating_sub(micros(unseen_for)))
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn try_lead(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        // Read once the lock is near: waiting must not shorten the lease.
        let now = now_us();
        let held = sqlx::query(sql::TRY_LEAD)
            .bind(name)
            .bind(holder)
            .bind(now)
            .bind(now.saturating_add(micros(ttl)))
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        Ok(held.is_some())
    }

    async fn resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(sql::RESIGN)
            .bind(name)
            .bind(holder)
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn leaders(&self) -> Result<Vec<Leadership>, StoreError> {
        sqlx::query(sql::LEADERS)
            .bind(now_us())
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                Ok(Leadership {
                    name: row.try_get("name").map_err(from_sqlx)?,
                    holder: row.try_get("holder").map_err(from_sqlx)?,
                    acquired_at: row::time(row.try_get("acquired_at").map_err(from_sqlx)?)?,
                    expires_at: row::time(row.try_get("expires_at").map_err(from_sqlx)?)?,
                })
            })
            .collect()
    }
}

/// [`sql::WORKER_SEEN`] for `worker` at time `now`, bound.
fn seen(
    worker: &WorkerPresence,
    now: i64,
) -> Result<
    sqlx::query::QueryScalar<'static, sqlx::Sqlite, bool, sqlx::sqlite::SqliteArguments<'static>>,
    StoreError,
> {
    Ok(sqlx::query_scalar(sql::WORKER_SEEN)
        .bind(worker.id.clone())
        .bind(worker.host.clone())
        .bind(worker.version.clone())
        .bind(to_json(&worker.queues)?)
        .bind(worker.concurrency)
        .bind(worker.running)
        .bind(now)
        .bind(worker.agent.as_ref().map(|a| a.pool.clone()))
        .bind(
            worker
                .agent
                .as_ref()
                .map(|a| to_json(&a.labels))
                .transpose()?,
        ))
}
