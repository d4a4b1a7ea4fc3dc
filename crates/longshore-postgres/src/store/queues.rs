//! Queues and capacity: pause and resume, running-task caps per queue and
//! across the cluster.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl QueueStore for PgStore {
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        QueueSettings::check_name(queue)?;
        sqlx::query(sql::SET_QUEUE_PAUSED)
            .bind(queue)
            .bind(paused)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>, StoreError> {
        sqlx::query(sql::QUEUE_SETTINGS)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                Ok(QueueSettings {
                    name: row.try_get("name").map_err(from_sqlx)?,
                    paused: row.try_get("paused").map_err(from_sqlx)?,
                    max_running: row.try_get("max_running").map_err(from_sqlx)?,
                })
            })
            .collect()
    }

    async fn set_queue_limit(
        &self,
        queue: &str,
        max_running: Option<i32>,
    ) -> Result<(), StoreError> {
        QueueSettings::check_name(queue)?;
        ClusterSettings::check_cap(max_running)?;
        sqlx::query(sql::SET_QUEUE_LIMIT)
            .bind(queue)
            .bind(max_running)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn cluster_settings(&self) -> Result<ClusterSettings, StoreError> {
        let max_running: Option<i32> = sqlx::query_scalar(sql::MAX_RUNNING)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .flatten();
        Ok(ClusterSettings { max_running })
    }

    async fn set_max_running(&self, max_running: Option<i32>) -> Result<(), StoreError> {
        ClusterSettings::check_cap(max_running)?;
        let query = match max_running {
            Some(cap) => sqlx::query(sql::SET_MAX_RUNNING).bind(cap),
            None => sqlx::query(sql::LIFT_MAX_RUNNING),
        };
        query.execute(self.db()).await.map_err(from_sqlx)?;
        Ok(())
    }
}
