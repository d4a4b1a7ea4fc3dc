//! Tasks: enqueue, the hot path (claim, heartbeat, complete and the
//! complete-and-claim of a refill), rescue and release of leases, the
//! operator's reads and changes (list, retry, cancel, count and delete by
//! selection, purge).

mod claim;

pub(crate) mod sql;

use super::*;
use claim::{check_queue_count, claim_limits};

/// Binds the filters `selection` has, in the order
/// [`SelectionSql`](longshore_core::SelectionSql) numbers them; its age as a cutoff before `now`.
pub(crate) fn bind_selection<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    selection: &'q TaskSelection,
    now: i64,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    if let Some(actor) = &selection.actor {
        query = query.bind(actor);
    }
    if let Some(queue) = &selection.queue {
        query = query.bind(queue);
    }
    if let Some(age) = selection.older_than {
        query = query.bind(now.saturating_sub(micros(age)));
    }
    query
}

/// One task as the enqueue statement reads it.
#[derive(Serialize)]
pub(crate) struct TaskJson<'a> {
    id: Uuid,
    queue: &'a str,
    actor: &'a str,
    args: &'a serde_json::Value,
    priority: i16,
    run_at: Option<i64>,
    max_attempts: i32,
    time_limit_ms: Option<i64>,
    unique_key: Option<&'a str>,
    related_kind: Option<&'a str>,
    related_id: Option<&'a str>,
    schedule_name: Option<&'a str>,
    /// Absent when the task requires no labels (stored NULL).
    #[serde(skip_serializing_if = "Option::is_none")]
    requires: Option<&'a [String]>,
}

/// One completion as the completion statement reads it.
#[derive(Serialize)]
pub(crate) struct CompletionJson<'a> {
    id: Uuid,
    execution: i32,
    next: &'static str,
    delay_us: Option<i64>,
    error: Option<&'a str>,
    worst_level: Option<i16>,
    refund_attempt: i32,
}

/// One log line as the log statement reads it.
#[derive(Serialize)]
pub(crate) struct LogJson<'a> {
    task_id: Uuid,
    execution: i32,
    at: i64,
    level: i16,
    message: &'a str,
}

/// One held execution as the heartbeat reads it.
#[derive(Serialize)]
pub(crate) struct HeldJson {
    id: Uuid,
    execution: i32,
}

pub(crate) fn completions_json(completions: &[Completion]) -> Result<String, StoreError> {
    let rows: Vec<CompletionJson<'_>> = completions
        .iter()
        .map(|c| CompletionJson {
            id: c.id,
            execution: c.execution,
            next: c.transition.state.as_str(),
            delay_us: c.transition.delay.map(micros),
            error: c.transition.error.as_deref(),
            worst_level: c.worst_level.map(|l| l.as_i16()),
            refund_attempt: i32::from(c.transition.refund_attempt),
        })
        .collect();
    to_json(&rows)
}

pub(crate) async fn insert_logs<'a>(
    conn: &mut sqlx::SqliteConnection,
    logs: impl IntoIterator<Item = &'a LogEntry>,
) -> Result<(), StoreError> {
    let rows: Vec<LogJson<'_>> = logs
        .into_iter()
        .map(|l| LogJson {
            task_id: l.task_id,
            execution: l.execution,
            at: l.at.timestamp_micros(),
            level: l.level.as_i16(),
            message: &l.message,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(sql::INSERT_LOGS)
        .bind(to_json(&rows)?)
        .execute(conn)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// From rows of (id, queue, state): the ids, and the queues of the rows
/// now `queued` (whose workers to wake).
pub(crate) fn ids_and_due_queues(
    rows: &[SqliteRow],
) -> Result<(HashSet<Uuid>, Vec<String>), StoreError> {
    let mut ids = HashSet::with_capacity(rows.len());
    let mut due_queues = Vec::new();
    for row in rows {
        let id: String = row.try_get(0).map_err(from_sqlx)?;
        ids.insert(row::uuid(&id)?);
        let state: String = row.try_get(2).map_err(from_sqlx)?;
        if state == TaskState::Queued.as_str() {
            due_queues.push(row.try_get(1).map_err(from_sqlx)?);
        }
    }
    Ok((ids, due_queues))
}

/// The first column of each row, a queue name.
pub(crate) fn queues(rows: &[SqliteRow]) -> Result<Vec<String>, StoreError> {
    rows.iter()
        .map(|row| row.try_get::<String, _>("queue").map_err(from_sqlx))
        .collect()
}

/// What one enqueue did: the ids inserted, the queues that got a due task,
/// and the active holders of the unique keys that refused a task.
pub(crate) type Enqueued = (HashSet<Uuid>, Vec<String>, HashMap<String, Uuid>);

/// Inserts `tasks` at time `now` inside the caller's transaction.
pub(crate) async fn enqueue_on(
    conn: &mut sqlx::SqliteConnection,
    tasks: &[NewTask],
    now: i64,
) -> Result<Enqueued, StoreError> {
    let rows: Vec<TaskJson<'_>> = tasks
        .iter()
        .map(|t| TaskJson {
            id: t.id,
            queue: &t.queue,
            actor: &t.actor,
            args: &t.args,
            priority: t.priority,
            run_at: t.run_at.map(|at| at.timestamp_micros()),
            max_attempts: t.max_attempts,
            time_limit_ms: t.time_limit_ms,
            unique_key: t.unique_key.as_deref(),
            related_kind: t.related.as_ref().map(|r| r.kind.as_str()),
            related_id: t.related.as_ref().map(|r| r.id.as_str()),
            schedule_name: t.schedule.as_deref(),
            requires: (!t.requires.is_empty()).then_some(t.requires.as_slice()),
        })
        .collect();
    let inserted_rows = sqlx::query(sql::ENQUEUE)
        .bind(to_json(&rows)?)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let (inserted, due_queues) = ids_and_due_queues(&inserted_rows)?;
    let mut holders = HashMap::new();
    if inserted.len() < tasks.len() {
        // Some were duplicates of active tasks: find whose key holds them.
        let keys: Vec<&str> = tasks
            .iter()
            .filter(|t| !inserted.contains(&t.id))
            .filter_map(|t| t.unique_key.as_deref())
            .collect();
        for row in sqlx::query(sql::UNIQUE_HOLDERS)
            .bind(to_json(&keys)?)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?
        {
            let key: String = row.try_get(0).map_err(from_sqlx)?;
            let id: String = row.try_get(1).map_err(from_sqlx)?;
            holders.insert(key, row::uuid(&id)?);
        }
    }
    Ok((inserted, due_queues, holders))
}

/// What an operator's change needs to know of a task.
pub(crate) struct Current {
    state: TaskState,
    queue: String,
    unique_key: Option<String>,
}

pub(crate) async fn current(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<Current, StoreError> {
    let row = sqlx::query(sql::TASK_STATE)
        .bind(id.to_string())
        .fetch_optional(conn)
        .await
        .map_err(from_sqlx)?
        .ok_or(StoreError::NotFound(id))?;
    let state: String = row.try_get("state").map_err(from_sqlx)?;
    Ok(Current {
        state: row::state(&state)?,
        queue: row.try_get("queue").map_err(from_sqlx)?,
        unique_key: row.try_get("unique_key").map_err(from_sqlx)?,
    })
}

/// [`TaskStore::retry`](longshore_core::TaskStore::retry) on `conn`; returns the task and its queue.
pub(crate) async fn retry_on(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<(TaskRow, String), StoreError> {
    let mut tx = Connection::begin_with(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let current = current(&mut tx, id).await?;
    if !current.state.is_terminal() {
        return Err(StoreError::InvalidState {
            id,
            state: current.state,
            action: "retry",
        });
    }
    let row = sqlx::query(sql::RETRY)
        .bind(id.to_string())
        .bind(now_us())
        .fetch_one(&mut *tx)
        .await
        .map_err(from_sqlx)
        .map_err(|e| match e {
            StoreError::UniqueConflict { .. } => StoreError::UniqueConflict {
                key: current.unique_key.clone().unwrap_or_default(),
            },
            other => other,
        })?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok((row::task(&row)?, current.queue))
}

/// [`TaskStore::cancel`](longshore_core::TaskStore::cancel) on `conn`.
pub(crate) async fn cancel_on(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<CancelResult, StoreError> {
    let mut tx = Connection::begin_with(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let (statement, result) = match current(&mut tx, id).await?.state {
        TaskState::Scheduled | TaskState::Queued => (sql::CANCEL_WAITING, CancelResult::Cancelled),
        TaskState::Running => (sql::CANCEL_RUNNING, CancelResult::Signalled),
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
        .bind(now_us())
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(result)
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<EnqueueResult>, StoreError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        for task in &tasks {
            task.validate().map_err(StoreError::InvalidInput)?;
        }
        let mut conn = self.durable_writer().await?;
        let result = async {
            let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .map_err(from_sqlx)?;
            let enqueued = enqueue_on(&mut tx, &tasks, now_us()).await?;
            tx.commit().await.map_err(from_sqlx)?;
            Ok::<_, StoreError>(enqueued)
        }
        .await;
        self.restore(conn).await;
        let (inserted, due_queues, holders) = result?;
        self.wake(due_queues.iter().map(String::as_str));
        Ok(EnqueueResult::for_batch(&tasks, &inserted, &holders))
    }

    async fn claim(&self, claim: &Claim) -> Result<Vec<TaskRow>, StoreError> {
        if claim.limit == 0 || claim.queues.is_empty() {
            return Ok(Vec::new());
        }
        check_queue_count(claim)?;
        let queues = to_json(&claim.queues)?;
        // Caps are rare: look for one without the write lock. The uncapped
        // claim checks again itself, so a cap set meanwhile is not missed.
        let capped: i64 = sqlx::query_scalar(sql::CLAIM_CAPPED)
            .bind(&queues)
            .bind(claim.pool.as_ref().map(|p| p.name.as_str()))
            .fetch_one(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        if capped == 0 {
            // One statement: its own transaction, which takes the write
            // lock as it starts.
            let mut conn = self.file.writer.acquire().await.map_err(from_sqlx)?;
            return self.claim_on(&mut conn, claim, now_us(), None).await;
        }
        // The counts and the claim in one write transaction: no other
        // claim can fill the same places meanwhile.
        let mut tx = self.begin().await?;
        let now = now_us();
        let limits = claim_limits(&mut tx, claim, &queues, None).await?;
        let claimed = self.claim_on(&mut tx, claim, now, limits.as_ref()).await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(claimed)
    }

    async fn due_requirements(
        &self,
        queues: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = now_us();
        let mut found = Vec::new();
        for queue in queues {
            let rows: Vec<Option<String>> = sqlx::query_scalar(sql::DUE_REQUIREMENTS)
                .bind(queue)
                .bind(now)
                .bind(limit)
                .fetch_all(&self.file.reader)
                .await
                .map_err(from_sqlx)?;
            for requires in rows {
                found.push(match requires {
                    None => Vec::new(),
                    Some(text) => serde_json::from_str(&text).map_err(|e| {
                        StoreError::Database(
                            format!("stored required labels are not a JSON list: {e}").into(),
                        )
                    })?,
                });
            }
        }
        Ok(found)
    }

    async fn heartbeat(
        &self,
        owner: &str,
        held: &[(Uuid, i32)],
        lease: Duration,
        logs: &[LogEntry],
    ) -> Result<Heartbeat, StoreError> {
        if held.is_empty() && logs.is_empty() {
            return Ok(Heartbeat::default());
        }
        let held_json: Vec<HeldJson> = held
            .iter()
            .map(|&(id, execution)| HeldJson { id, execution })
            .collect();
        let mut tx = self.begin().await?;
        // Read once the lock is held: waiting for it must not shorten leases.
        let now = now_us();
        insert_logs(&mut tx, logs).await?;
        let rows = sqlx::query(sql::HEARTBEAT)
            .bind(now)
            .bind(now.saturating_add(micros(lease)))
            .bind(owner)
            .bind(to_json(&held_json)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        let renewed = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get(0).map_err(from_sqlx)?;
                let cancel: i64 = row.try_get(1).map_err(from_sqlx)?;
                Ok((row::uuid(&id)?, cancel != 0))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Heartbeat::from_renewed(held, renewed))
    }

    async fn complete(
        &self,
        owner: &str,
        completions: &[Completion],
    ) -> Result<Vec<Uuid>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let now = now_us();
        let (applied, requeued) = Self::complete_on(&mut tx, owner, completions, now).await?;
        tx.commit().await.map_err(from_sqlx)?;
        self.wake(requeued.iter().map(String::as_str));
        Ok(Completion::rejected(completions, &applied))
    }

    async fn complete_and_claim(
        &self,
        owner: &str,
        completions: &[Completion],
        refill: &Claim,
    ) -> Result<(Vec<Uuid>, Vec<TaskRow>), StoreError> {
        if refill.limit == 0 || refill.queues.is_empty() {
            return Ok((self.complete(owner, completions).await?, Vec::new()));
        }
        check_queue_count(refill)?;
        let queues = to_json(&refill.queues)?;
        let finishing = completions_json(completions)?;
        let mut tx = self.begin().await?;
        let now = now_us();
        // The claim first: it must not see tasks this completion puts back
        // in the queue (PostgreSQL's single statement does not either). The
        // tasks the completion finishes leave their places under the caps
        // to the claim.
        let limits = claim_limits(&mut tx, refill, &queues, Some((owner, &finishing))).await?;
        let claimed = self.claim_on(&mut tx, refill, now, limits.as_ref()).await?;
        let (applied, requeued) = Self::complete_on(&mut tx, owner, completions, now).await?;
        tx.commit().await.map_err(from_sqlx)?;
        self.wake(requeued.iter().map(String::as_str));
        Ok((Completion::rejected(completions, &applied), claimed))
    }

    async fn release_untracked(&self, owner: &str, tracked: &[Uuid]) -> Result<u64, StoreError> {
        let rows = sqlx::query(sql::RELEASE_UNTRACKED)
            .bind(owner)
            .bind(to_json(tracked)?)
            .bind(now_us())
            .fetch_all(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        let (_, requeued) = ids_and_due_queues(&rows)?;
        self.wake(requeued.iter().map(String::as_str));
        Ok(rows.len() as u64)
    }

    async fn rescue_expired(&self, limit: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let now = now_us();
        let rows = sqlx::query(sql::RESCUE)
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let mut logs = Vec::with_capacity(rows.len());
        let mut requeued = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id").map_err(from_sqlx)?;
            let execution: i64 = row.try_get("execution").map_err(from_sqlx)?;
            let state: String = row.try_get("state").map_err(from_sqlx)?;
            if state == TaskState::Queued.as_str() {
                requeued.push(row.try_get::<String, _>("queue").map_err(from_sqlx)?);
            }
            logs.push(LogEntry {
                task_id: row::uuid(&id)?,
                execution: i32::try_from(execution).unwrap_or(i32::MAX),
                at: row::time(now)?,
                level: longshore_core::LogLevel::Error,
                message: row.try_get("last_error").map_err(from_sqlx)?,
            });
        }
        insert_logs(&mut tx, &logs).await?;
        tx.commit().await.map_err(from_sqlx)?;
        self.wake(requeued.iter().map(String::as_str));
        Ok(rows.len() as u64)
    }

    async fn promote_due(&self, limit: i64) -> Result<u64, StoreError> {
        let rows = sqlx::query(sql::PROMOTE)
            .bind(now_us())
            .bind(limit.max(0))
            .fetch_all(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        let queues = queues(&rows)?;
        self.wake(queues.iter().map(String::as_str));
        Ok(rows.len() as u64)
    }

    async fn task(&self, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query(sql::TASK)
            .bind(id.to_string())
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(row::shown_task).transpose()
    }

    async fn logs(&self, id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(sql::LOGS)
            .bind(id.to_string())
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::log).collect()
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        filter.validate()?;
        // None of one actor's (or queue's) tasks in the states asked: no
        // walk of those states' index to find none.
        if longshore_core::store::counted_none(self, filter).await? {
            return Ok(Vec::new());
        }
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        // The statement that can use the index of the most selective
        // filter given (see each one's note in sql.rs).
        let statement = if filter.related_id.is_some() {
            sql::LIST_BY_RELATED_OBJECT
        } else if filter.schedule.is_some() {
            sql::LIST_BY_SCHEDULE
        } else if filter.related_kind.is_some() {
            sql::LIST_BY_RELATED_KIND
        } else {
            match filter.states[..] {
                [TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled] => {
                    sql::LIST_FINISHED_IN_STATE
                }
                [TaskState::Running] => sql::LIST_RUNNING,
                [TaskState::Scheduled] => sql::LIST_SCHEDULED,
                // Queued tasks are the newest as a rule: the primary key's
                // top has them.
                _ => sql::LIST,
            }
        };
        let mut query = sqlx::query(statement)
            .bind(to_json(&states)?)
            .bind(filter.actor.as_deref())
            .bind(filter.queue.as_deref())
            .bind(filter.before.map(|id| id.to_string()))
            .bind(filter.limit.max(0))
            .bind(to_json(&statuses)?)
            .bind(filter.exclude_successful)
            .bind(filter.standalone)
            .bind(opt_micros(filter.created_after))
            .bind(opt_micros(filter.created_before))
            .bind(opt_micros(filter.finished_after))
            .bind(opt_micros(filter.finished_before))
            .bind(filter.related_kind.as_deref())
            .bind(filter.related_id.as_deref())
            .bind(filter.schedule.as_deref())
            .bind(now_us());
        if statement == sql::LIST_FINISHED_IN_STATE {
            query = query.bind(filter.states[0].as_str());
        }
        let rows = query
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::shown_task).collect()
    }

    async fn retry(&self, id: Uuid) -> Result<TaskRow, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = retry_on(&mut conn, id).await;
        self.restore(conn).await;
        let (row, queue) = result?;
        self.wake([queue.as_str()]);
        Ok(row)
    }

    async fn cancel(&self, id: Uuid) -> Result<CancelResult, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = cancel_on(&mut conn, id).await;
        self.restore(conn).await;
        let result = result?;
        if result == CancelResult::Signalled {
            // A worker of another process learns of it from its heartbeat.
            let _ = self.file.events.send(StoreEvent::CancelRequested { id });
        }
        Ok(result)
    }

    async fn purge_finished(
        &self,
        state: TaskState,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, StoreError> {
        longshore_core::store::check_purgeable(state)?;
        let done = sqlx::query(sql::PURGE_FINISHED)
            .bind(state.as_str())
            .bind(now_us().saturating_sub(micros(older_than)))
            .bind(limit.max(0))
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn count_matching(
        &self,
        selection: &TaskSelection,
    ) -> Result<Vec<(TaskState, i64)>, StoreError> {
        let Some(states) = selection.counted_states() else {
            return Ok(Vec::new());
        };
        let statement = selection.sql(&states, Dialect::Sqlite).count();
        let rows = bind_selection(sqlx::query(&statement), selection, now_us())
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        let counts = rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(from_sqlx)?;
                Ok((
                    row::state(&state)?,
                    row.try_get::<i64, _>("n").map_err(from_sqlx)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(TaskSelection::tally(counts))
    }

    async fn delete_tasks(&self, ids: &[Uuid]) -> Result<u64, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::DELETE_IDS)
            .bind(to_json(&ids)?)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        Ok(result?.rows_affected())
    }

    async fn delete_matching(
        &self,
        selection: &TaskSelection,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let Some(states) = selection.deleted_states(limit)? else {
            return Ok(0);
        };
        let statement = selection.sql(&states, Dialect::Sqlite).delete();
        let mut conn = self.durable_writer().await?;
        let result = bind_selection(sqlx::query(&statement).bind(limit), selection, now_us())
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        Ok(result?.rows_affected())
    }

    async fn cancel_running_in_queue(&self, queue: &str, limit: i64) -> Result<u64, StoreError> {
        QueueSettings::check_name(queue)?;
        if limit <= 0 {
            return Ok(0);
        }
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::CANCEL_RUNNING_IN_QUEUE)
            .bind(queue)
            .bind(limit)
            .bind(now_us())
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        let rows = result?;
        for row in &rows {
            let id: String = row.try_get("id").map_err(from_sqlx)?;
            if let Ok(id) = id.parse::<Uuid>() {
                // A worker of another process learns of it from its heartbeat.
                let _ = self.file.events.send(StoreEvent::CancelRequested { id });
            }
        }
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
    }
}
