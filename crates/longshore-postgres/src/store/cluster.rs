//! The cluster: worker nodes' presence and the roles one node holds at a
//! time (leases on `longshore_leases`).

pub(crate) mod sql;

use super::*;

#[async_trait]
impl ClusterStore for PgStore {
    async fn worker_seen(&self, worker: &WorkerPresence) -> Result<bool, StoreError> {
        sqlx::query_scalar(sql::WORKER_SEEN)
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(&worker.version)
            .bind(&worker.queues)
            .bind(worker.concurrency)
            .bind(worker.running)
            .bind(worker.agent.as_ref().map(|a| a.pool.as_str()))
            .bind(worker.agent.as_ref().map(|a| &a.labels))
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)
    }

    async fn workers_seen(&self, workers: &[WorkerPresence]) -> Result<Vec<String>, StoreError> {
        if workers.is_empty() {
            return Ok(Vec::new());
        }
        let presences: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                serde_json::json!({
                    "id": w.id,
                    "host": w.host,
                    "version": w.version,
                    "queues": w.queues,
                    "concurrency": w.concurrency,
                    "running": w.running,
                    "pool": w.agent.as_ref().map(|a| &a.pool),
                    "labels": w.agent.as_ref().map(|a| &a.labels),
                })
            })
            .collect();
        let rows = sqlx::query(sql::WORKERS_SEEN)
            .bind(serde_json::Value::Array(presences))
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        let mut draining = Vec::new();
        for row in rows {
            if row
                .try_get::<bool, _>("drain_requested")
                .map_err(from_sqlx)?
            {
                draining.push(row.try_get("id").map_err(from_sqlx)?);
            }
        }
        Ok(draining)
    }

    async fn request_drain(&self, id: &str) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar(sql::REQUEST_DRAIN)
            .bind(id)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(found.is_some())
    }

    async fn worker_stopped(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(sql::WORKER_STOPPED)
            .bind(id)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        sqlx::query(sql::WORKERS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                Ok(WorkerInfo {
                    presence: WorkerPresence {
                        id: row.try_get("id")?,
                        host: row.try_get("host")?,
                        version: row.try_get("version")?,
                        queues: row.try_get("queues")?,
                        concurrency: row.try_get("concurrency")?,
                        running: row.try_get("running")?,
                        agent: match row.try_get::<Option<String>, _>("pool")? {
                            Some(pool) => Some(AgentPresence {
                                pool,
                                labels: row
                                    .try_get::<Option<Vec<String>>, _>("labels")?
                                    .unwrap_or_default(),
                            }),
                            None => None,
                        },
                    },
                    drain_requested: row.try_get("drain_requested")?,
                    started_at: row.try_get("started_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }

    async fn forget_workers(&self, unseen_for: Duration) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::FORGET_WORKERS)
            .bind(millis(unseen_for))
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn try_lead(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held = sqlx::query(sql::TRY_LEAD)
            .bind(name)
            .bind(holder)
            .bind(millis(ttl))
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(held.is_some())
    }

    async fn resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(sql::RESIGN)
            .bind(name)
            .bind(holder)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn leaders(&self) -> Result<Vec<Leadership>, StoreError> {
        sqlx::query(sql::LEADERS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                Ok(Leadership {
                    name: row.try_get("name")?,
                    holder: row.try_get("holder")?,
                    acquired_at: row.try_get("acquired_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }
}
