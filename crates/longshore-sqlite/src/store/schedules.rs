//! Cron schedules: create, change, pause, delete, read the due ones, and
//! fire a run in one transaction under its overlap policy.

pub(crate) mod sql;

use super::tasks::{self, enqueue_on};
use super::*;

/// [`ScheduleStore::put_schedule`](longshore_core::ScheduleStore::put_schedule) on `conn`, in one transaction.
pub(crate) async fn put_schedule_on(
    conn: &mut sqlx::SqliteConnection,
    def: &ScheduleDef,
    mode: PutMode,
    next_run_at: Option<DateTime<Utc>>,
) -> Result<Schedule, StoreError> {
    let mut tx = Connection::begin_with(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let existing = sqlx::query(sql::SCHEDULE)
        .bind(&def.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(row::schedule)
        .transpose()?;
    mode.check(existing.as_ref(), def)?;
    let statement = if existing.is_some() {
        sql::UPDATE_SCHEDULE
    } else {
        sql::INSERT_SCHEDULE
    };
    let row = sqlx::query(statement)
        .bind(&def.name)
        .bind(&def.actor)
        .bind(to_json(&def.args)?)
        .bind(&def.queue)
        .bind(def.priority)
        .bind(def.max_attempts)
        .bind(def.time_limit_ms)
        .bind(def.related.as_ref().map(|r| r.kind.as_str()))
        .bind(def.related.as_ref().map(|r| r.id.as_str()))
        .bind(&def.cron)
        .bind(&def.time_zone)
        .bind(def.overlap.as_str())
        .bind(opt_micros(next_run_at))
        .bind(now_us())
        .fetch_one(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    let schedule = row::schedule(&row)?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(schedule)
}

/// [`ScheduleStore::delete_schedule`](longshore_core::ScheduleStore::delete_schedule) on `conn`, in one transaction.
pub(crate) async fn delete_schedule_on(
    conn: &mut sqlx::SqliteConnection,
    name: &str,
) -> Result<(), StoreError> {
    let mut tx = Connection::begin_with(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let builtin: i64 = sqlx::query_scalar(sql::SCHEDULE_BUILTIN)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?
        .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))?;
    if builtin != 0 {
        return Err(StoreError::InvalidInput(format!(
            "{name} is a built-in schedule and cannot be deleted; pause it instead"
        )));
    }
    sqlx::query(sql::DELETE_SCHEDULE)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(())
}

/// What [`fire_on`] did, and what to tell this process's workers once it
/// committed.
pub(crate) struct Fired {
    outcome: FireOutcome,
    /// The running previous run that `replace` asked to cancel.
    cancel_signalled: Option<Uuid>,
    /// The queue of the new run, when it is due at once.
    wake: Vec<String>,
}

/// [`ScheduleStore::fire_schedule`](longshore_core::ScheduleStore::fire_schedule) on `conn`, in one transaction: the schedule and
/// its previous run as read under the write lock, the overlap rules
/// ([`plan_fire`], shared with the other engines), then their writes.
pub(crate) async fn fire_on(
    conn: &mut sqlx::SqliteConnection,
    fire: &Fire,
) -> Result<Fired, StoreError> {
    let mut tx = Connection::begin_with(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let now = now_us();
    let Some(row) = sqlx::query(sql::SCHEDULE)
        .bind(&fire.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?
    else {
        return match fire.kind {
            FireKind::Now => Err(StoreError::ScheduleNotFound(fire.name.clone())),
            FireKind::Due(_) | FireKind::Requested => Ok(Fired {
                outcome: FireOutcome::Stale,
                cancel_signalled: None,
                wake: Vec::new(),
            }),
        };
    };
    let schedule = row::schedule(&row)?;
    let previous = match schedule.last_task_id {
        Some(id) if fire.task.is_some() => {
            // Gone (purged): as good as finished.
            match sqlx::query(tasks::sql::TASK_STATE)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?
            {
                Some(row) => Some((
                    id,
                    row::state(&row.try_get::<String, _>("state").map_err(from_sqlx)?)?,
                )),
                None => None,
            }
        }
        _ => None,
    };
    let (outcome, writes) = plan_fire(&schedule, fire, previous)?;
    let due = matches!(fire.kind, FireKind::Due(_));
    let next_run_at = opt_micros(fire.next_run_at);
    let mut cancel_signalled = None;
    let mut wake = Vec::new();
    for write in writes {
        match write {
            FireWrite::RequestRun => {
                sqlx::query(sql::SCHEDULE_REQUEST_RUN)
                    .bind(&fire.name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            FireWrite::Skip {
                moves_next,
                clears_request,
            } => {
                sqlx::query(sql::SCHEDULE_SKIPPED)
                    .bind(&fire.name)
                    .bind(now)
                    .bind(moves_next)
                    .bind(next_run_at)
                    .bind(clears_request)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            FireWrite::Cancel(id, state) => {
                // As `Store::cancel` does.
                let statement = match state {
                    TaskState::Scheduled | TaskState::Queued => tasks::sql::CANCEL_WAITING,
                    TaskState::Running => {
                        cancel_signalled = Some(id);
                        tasks::sql::CANCEL_RUNNING
                    }
                    terminal => {
                        return Err(StoreError::InvalidState {
                            id,
                            state: terminal,
                            action: "cancel",
                        });
                    }
                };
                sqlx::query(statement)
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            FireWrite::Enqueue(task) => {
                let (inserted, due_queues, _) =
                    enqueue_on(&mut tx, std::slice::from_ref(&*task), now).await?;
                if !inserted.contains(&task.id) {
                    // An active task holds its unique key: nothing is
                    // recorded, the run stays due.
                    return Err(StoreError::UniqueConflict {
                        key: task.unique_key.clone().unwrap_or_default(),
                    });
                }
                wake = due_queues;
            }
            FireWrite::Ran(task) => {
                sqlx::query(sql::SCHEDULE_RAN)
                    .bind(&fire.name)
                    .bind(now)
                    .bind(task.map(|id| id.to_string()))
                    .bind(due)
                    .bind(next_run_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
        }
    }
    tx.commit().await.map_err(from_sqlx)?;
    Ok(Fired {
        outcome,
        cancel_signalled,
        wake,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn put_schedule(
        &self,
        def: &ScheduleDef,
        mode: PutMode,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<Schedule, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = put_schedule_on(&mut conn, def, mode, next_run_at).await;
        self.restore(conn).await;
        result
    }

    async fn schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        sqlx::query(sql::SCHEDULE)
            .bind(name)
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::schedule)
            .transpose()
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::SCHEDULES)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::schedule)
            .collect()
    }

    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::SET_SCHEDULE_PAUSED)
            .bind(name)
            .bind(paused)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::schedule)
            .transpose()?
            .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = delete_schedule_on(&mut conn, name).await;
        self.restore(conn).await;
        result
    }

    async fn due_schedules(&self, limit: i64) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::DUE_SCHEDULES)
            .bind(now_us())
            .bind(limit.max(0))
            .fetch_all(&self.file.reader)
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
        let mut conn = self.durable_writer().await?;
        let result = fire_on(&mut conn, fire).await;
        self.restore(conn).await;
        let fired = result?;
        if let Some(id) = fired.cancel_signalled {
            // A worker of another process learns of it from its heartbeat.
            let _ = self.file.events.send(StoreEvent::CancelRequested { id });
        }
        self.wake(fired.wake.iter().map(String::as_str));
        Ok(fired.outcome)
    }
}
