//! Queues and capacity: pause and resume, running-task caps per queue and
//! across the cluster.

pub(crate) mod sql;

use super::*;

#[async_trait]
impl QueueStore for SqliteStore {
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        QueueSettings::check_name(queue)?;
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::SET_QUEUE_PAUSED)
            .bind(queue)
            .bind(paused)
            .bind(now_us())
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?;
        if !paused {
            self.wake([queue]);
        }
        Ok(())
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>, StoreError> {
        sqlx::query(sql::QUEUE_SETTINGS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(from_sqlx)?;
                let max_running = row
                    .try_get::<Option<i64>, _>("max_running")
                    .map_err(from_sqlx)?
                    .map(|n| {
                        i32::try_from(n).map_err(|e| {
                            StoreError::Database(
                                format!("queue {name}: stored max_running out of range: {e}")
                                    .into(),
                            )
                        })
                    })
                    .transpose()?;
                Ok(QueueSettings {
                    paused: row.try_get::<i64, _>("paused").map_err(from_sqlx)? != 0,
                    max_running,
                    name,
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
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::SET_QUEUE_LIMIT)
            .bind(queue)
            .bind(max_running)
            .bind(now_us())
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?;
        // A higher cap or none may leave room for the queue's tasks.
        self.wake([queue]);
        Ok(())
    }

    async fn cluster_settings(&self) -> Result<ClusterSettings, StoreError> {
        let value: Option<String> = sqlx::query_scalar(sql::MAX_RUNNING)
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        let corrupt = |what: &str| {
            StoreError::Database(
                format!("stored setting max_running is not a running-task cap: {what}").into(),
            )
        };
        let max_running = match value {
            None => None,
            Some(text) => match serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| corrupt(&e.to_string()))?
            {
                serde_json::Value::Null => None,
                value => Some(
                    value
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| corrupt(&text))?,
                ),
            },
        };
        Ok(ClusterSettings { max_running })
    }

    async fn set_max_running(&self, max_running: Option<i32>) -> Result<(), StoreError> {
        ClusterSettings::check_cap(max_running)?;
        let mut conn = self.durable_writer().await?;
        let result = match max_running {
            Some(cap) => {
                sqlx::query(sql::SET_MAX_RUNNING)
                    .bind(cap.to_string())
                    .bind(now_us())
                    .execute(&mut *conn)
                    .await
            }
            None => {
                sqlx::query(sql::DELETE_MAX_RUNNING)
                    .execute(&mut *conn)
                    .await
            }
        }
        .map_err(from_sqlx);
        self.restore(conn).await;
        result?;
        Ok(())
    }
}
