//! Cron schedules: create, change, pause, delete, read the due ones, and
//! fire a run in one transaction under its overlap policy.

pub(crate) mod sql;

use super::tasks::{cancel_locked, enqueue_on};
use super::*;

/// The schedule-definition parameters `$1`..`$13` of `sql` bound.
pub(crate) fn schedule_query<'q>(
    sql: &'q str,
    def: &'q ScheduleDef,
    next_run_at: Option<DateTime<Utc>>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(&def.name)
        .bind(&def.actor)
        .bind(&def.args)
        .bind(&def.queue)
        .bind(def.priority)
        .bind(def.max_attempts)
        .bind(def.time_limit_ms)
        .bind(def.related.as_ref().map(|r| r.kind.as_str()))
        .bind(def.related.as_ref().map(|r| r.id.as_str()))
        .bind(&def.cron)
        .bind(&def.time_zone)
        .bind(def.overlap.as_str())
        .bind(next_run_at)
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn put_schedule(
        &self,
        def: &ScheduleDef,
        mode: PutMode,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<Schedule, StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let existing = sqlx::query(sql::SCHEDULE_FOR_UPDATE)
            .bind(&def.name)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::schedule)
            .transpose()?;
        mode.check(existing.as_ref(), def)?;
        let statement = match mode {
            PutMode::Create => sql::CREATE_SCHEDULE,
            PutMode::Update | PutMode::Upsert => sql::PUT_SCHEDULE,
        };
        let row = schedule_query(statement, def, next_run_at)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            // Created by someone else since the read above.
            .ok_or_else(|| StoreError::ScheduleExists(def.name.clone()))?;
        let schedule = row::schedule(&row)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(schedule)
    }

    async fn schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        sqlx::query(sql::SCHEDULE)
            .bind(name)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::schedule)
            .transpose()
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::SCHEDULES)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::schedule)
            .collect()
    }

    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, StoreError> {
        let row = sqlx::query(sql::SET_SCHEDULE_PAUSED)
            .bind(name)
            .bind(paused)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))?;
        row::schedule(&row)
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let existing = sqlx::query(sql::SCHEDULE_FOR_UPDATE)
            .bind(name)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))?;
        if row::schedule(&existing)?.builtin {
            return Err(StoreError::InvalidInput(format!(
                "{name} is a built-in schedule and cannot be deleted; pause it instead"
            )));
        }
        sqlx::query(sql::DELETE_SCHEDULE)
            .bind(name)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(())
    }

    async fn due_schedules(&self, limit: i64) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::DUE_SCHEDULES)
            .bind(limit.max(0))
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::schedule)
            .collect()
    }

    async fn fire_schedule(&self, fire: &Fire) -> Result<FireOutcome, StoreError> {
        if let Some(task) = &fire.task {
            task.validate().map_err(StoreError::InvalidInput)?;
        }
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let Some(row) = sqlx::query(sql::SCHEDULE_FOR_UPDATE)
            .bind(&fire.name)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
        else {
            return match fire.kind {
                FireKind::Now => Err(StoreError::ScheduleNotFound(fire.name.clone())),
                _ => Ok(FireOutcome::Stale),
            };
        };
        let schedule = row::schedule(&row)?;
        let previous = match schedule.last_task_id {
            Some(id) if fire.task.is_some() => {
                let state: Option<String> = sqlx::query_scalar(sql::TASK_STATE_FOR_UPDATE)
                    .bind(id)
                    .fetch_optional(self.on(&mut tx))
                    .await
                    .map_err(from_sqlx)?;
                match state {
                    Some(state) => Some((
                        id,
                        state
                            .parse::<TaskState>()
                            .map_err(|e| StoreError::Database(Box::new(e)))?,
                    )),
                    None => None,
                }
            }
            _ => None,
        };
        let (outcome, writes) = plan_fire(&schedule, fire, previous)?;
        let due = matches!(fire.kind, FireKind::Due(_));
        for write in writes {
            match write {
                FireWrite::RequestRun => {
                    sqlx::query(sql::SCHEDULE_REQUEST_RUN)
                        .bind(&fire.name)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(from_sqlx)?;
                }
                FireWrite::Skip {
                    moves_next,
                    clears_request,
                } => {
                    sqlx::query(sql::SCHEDULE_SKIPPED)
                        .bind(&fire.name)
                        .bind(moves_next)
                        .bind(fire.next_run_at)
                        .bind(clears_request)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(from_sqlx)?;
                }
                FireWrite::Cancel(id, state) => {
                    cancel_locked(&mut tx, self.named(), id, state).await?;
                }
                FireWrite::Enqueue(task) => {
                    enqueue_on(&mut tx, self.named(), vec![*task]).await?;
                }
                FireWrite::Ran(task) => {
                    sqlx::query(sql::SCHEDULE_RAN)
                        .bind(&fire.name)
                        .bind(task)
                        .bind(due)
                        .bind(fire.next_run_at)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(from_sqlx)?;
                }
            }
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(outcome)
    }
}
