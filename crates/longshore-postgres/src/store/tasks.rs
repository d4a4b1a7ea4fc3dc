//! Tasks: enqueue, the hot path (claim, heartbeat, complete and the
//! complete-and-claim of a refill), rescue and release of leases, the
//! operator's reads and changes (list, retry, cancel, count and delete by
//! selection, purge).

pub(crate) mod sql;

use super::*;

/// Inserts `tasks` on `conn`, which may be inside the caller's transaction:
/// the tasks then exist (and workers are woken) only if it commits.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use longshore_core::NewTask;
/// let mut tx = pool.begin().await?;
/// // ... the application's own writes ...
/// longshore_postgres::enqueue_in(&mut tx, vec![NewTask::new("send_email", serde_json::json!({"to": "a@example.com"}))]).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub async fn enqueue_in(
    conn: &mut PgConnection,
    tasks: Vec<NewTask>,
) -> Result<Vec<EnqueueResult>, StoreError> {
    enqueue_on(conn, true, tasks).await
}

/// [`enqueue_in`], with statements `named` or not (see [`crate::exec`]).
pub(crate) async fn enqueue_on(
    conn: &mut PgConnection,
    named: bool,
    tasks: Vec<NewTask>,
) -> Result<Vec<EnqueueResult>, StoreError> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    for task in &tasks {
        task.validate().map_err(StoreError::InvalidInput)?;
    }
    let n = tasks.len();
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let queues: Vec<&str> = tasks.iter().map(|t| t.queue.as_str()).collect();
    let actors: Vec<&str> = tasks.iter().map(|t| t.actor.as_str()).collect();
    let args: Vec<&serde_json::Value> = tasks.iter().map(|t| &t.args).collect();
    let priorities: Vec<i16> = tasks.iter().map(|t| t.priority).collect();
    let run_ats: Vec<_> = tasks.iter().map(|t| t.run_at).collect();
    let max_attempts: Vec<i32> = tasks.iter().map(|t| t.max_attempts).collect();
    let time_limits: Vec<Option<i64>> = tasks.iter().map(|t| t.time_limit_ms).collect();
    let unique_keys: Vec<Option<&str>> = tasks.iter().map(|t| t.unique_key.as_deref()).collect();
    let related_kinds: Vec<Option<&str>> = tasks
        .iter()
        .map(|t| t.related.as_ref().map(|r| r.kind.as_str()))
        .collect();
    let related_ids: Vec<Option<&str>> = tasks
        .iter()
        .map(|t| t.related.as_ref().map(|r| r.id.as_str()))
        .collect();
    let schedules: Vec<Option<&str>> = tasks.iter().map(|t| t.schedule.as_deref()).collect();
    // Labels cannot hold a comma (see `check_labels`): one text per task,
    // split in the statement (a text[] per task would not unnest).
    let requires: Vec<Option<String>> = tasks
        .iter()
        .map(|t| (!t.requires.is_empty()).then(|| t.requires.join(",")))
        .collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(sql::ENQUEUE)
        .bind(&ids)
        .bind(queues)
        .bind(actors)
        .bind(args)
        .bind(priorities)
        .bind(run_ats)
        .bind(max_attempts)
        .bind(time_limits)
        .bind(unique_keys)
        .bind(related_kinds)
        .bind(related_ids)
        .bind(schedules)
        .bind(requires)
        .fetch_all(on(&mut *conn, named))
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .collect();
    if inserted.len() == n {
        return Ok(EnqueueResult::for_batch(&tasks, &inserted, &HashMap::new()));
    }
    // Some were duplicates of active tasks: report whose key holds them.
    let skipped_keys: Vec<&str> = tasks
        .iter()
        .filter(|t| !inserted.contains(&t.id))
        .filter_map(|t| t.unique_key.as_deref())
        .collect();
    let holders: HashMap<String, Uuid> = sqlx::query(sql::UNIQUE_HOLDERS)
        .bind(&skipped_keys)
        .fetch_all(on(&mut *conn, named))
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(from_sqlx)?;
    Ok(EnqueueResult::for_batch(&tasks, &inserted, &holders))
}

/// Log lines as the parallel arrays that the heartbeat and completion
/// statements insert from.
pub(crate) struct LogColumns<'a> {
    ids: Vec<Uuid>,
    executions: Vec<i32>,
    ats: Vec<chrono::DateTime<chrono::Utc>>,
    levels: Vec<i16>,
    messages: Vec<&'a str>,
}

impl<'a> LogColumns<'a> {
    pub(crate) fn new<I: IntoIterator<Item = &'a LogEntry>>(logs: I) -> LogColumns<'a> {
        let logs: Vec<&LogEntry> = logs.into_iter().collect();
        LogColumns {
            ids: logs.iter().map(|l| l.task_id).collect(),
            executions: logs.iter().map(|l| l.execution).collect(),
            ats: logs.iter().map(|l| l.at).collect(),
            levels: logs.iter().map(|l| l.level.as_i16()).collect(),
            messages: logs.iter().map(|l| l.message.as_str()).collect(),
        }
    }

    pub(crate) fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.ids)
            .bind(self.executions)
            .bind(self.ats)
            .bind(self.levels)
            .bind(self.messages)
    }
}

/// The completion statement `sql` with its first fourteen parameters bound.
pub(crate) fn completion_query<'q>(
    sql: &'q str,
    owner: &'q str,
    completions: &'q [Completion],
    commit_mode: &'static str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let ids: Vec<Uuid> = completions.iter().map(|c| c.id).collect();
    let executions: Vec<i32> = completions.iter().map(|c| c.execution).collect();
    let states: Vec<&str> = completions
        .iter()
        .map(|c| c.transition.state.as_str())
        .collect();
    let delays: Vec<Option<i64>> = completions
        .iter()
        .map(|c| c.transition.delay.map(millis))
        .collect();
    let errors: Vec<Option<&str>> = completions
        .iter()
        .map(|c| c.transition.error.as_deref())
        .collect();
    let worst: Vec<Option<i16>> = completions
        .iter()
        .map(|c| c.worst_level.map(|l| l.as_i16()))
        .collect();
    let refund: Vec<bool> = completions
        .iter()
        .map(|c| c.transition.refund_attempt)
        .collect();
    let query = sqlx::query(sql)
        .bind(owner)
        .bind(ids)
        .bind(executions)
        .bind(states)
        .bind(delays)
        .bind(errors)
        .bind(worst)
        .bind(refund)
        .bind(commit_mode);
    LogColumns::new(completions.iter().flat_map(|c| &c.logs)).bind(query)
}

/// Cancels task `id`, locked in `tx` and found in `state`: a waiting task
/// at once, a running one by telling its worker at commit.
pub(crate) async fn cancel_locked(
    tx: &mut PgConnection,
    named: bool,
    id: Uuid,
    state: TaskState,
) -> Result<CancelResult, StoreError> {
    match state {
        TaskState::Scheduled | TaskState::Queued => {
            sqlx::query(sql::CANCEL_WAITING)
                .bind(id)
                .execute(on(tx, named))
                .await
                .map_err(from_sqlx)?;
            Ok(CancelResult::Cancelled)
        }
        TaskState::Running => {
            sqlx::query(sql::CANCEL_RUNNING)
                .bind(id)
                .execute(on(tx, named))
                .await
                .map_err(from_sqlx)?;
            sqlx::query(sql::NOTIFY_CANCEL)
                .bind(id.to_string())
                .execute(on(tx, named))
                .await
                .map_err(from_sqlx)?;
            Ok(CancelResult::Signalled)
        }
        terminal => Err(StoreError::InvalidState {
            id,
            state: terminal,
            action: "cancel",
        }),
    }
}

/// Binds the filters `selection` has, in the order
/// [`SelectionSql`](longshore_core::SelectionSql) numbers them.
pub(crate) fn bind_selection<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    selection: &'q TaskSelection,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    if let Some(actor) = &selection.actor {
        query = query.bind(actor);
    }
    if let Some(queue) = &selection.queue {
        query = query.bind(queue);
    }
    if let Some(age) = selection.older_than {
        query = query.bind(millis(age));
    }
    query
}

/// The first window of a finished state's ids that one actor's list reads;
/// each next one is four times larger, up to [`LAST_WINDOW`].
const FIRST_WINDOW: i64 = 1_000;
const LAST_WINDOW: i64 = 64_000;

impl PgStore {
    /// A page of one actor's tasks in finished `state`: windows of the
    /// state's ids, newest first, from its own index, then the actor's
    /// rows among them, until the page is full or the state has no more
    /// (see [`sql::FINISHED_IDS_WINDOW`]). An actor with a share of the
    /// state's newest tasks fills its page from the first window; one with
    /// few of them is read the longest.
    async fn list_finished_of_actor(
        &self,
        filter: &TaskFilter,
        state: TaskState,
        actor: &str,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let limit = filter.limit.max(0);
        let mut page: Vec<TaskRow> = Vec::new();
        let mut before = filter.before;
        let mut window = FIRST_WINDOW;
        while i64::try_from(page.len()).unwrap_or(i64::MAX) < limit {
            let ids: Vec<Uuid> = sqlx::query_scalar(sql::FINISHED_IDS_WINDOW)
                .bind(before)
                .bind(window)
                .bind(state.as_str())
                .fetch_all(self.db())
                .await
                .map_err(from_sqlx)?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            let wanted = limit - i64::try_from(page.len()).unwrap_or(i64::MAX);
            let rows = sqlx::query(sql::LIST_IDS_OF_ACTOR)
                .bind(&ids)
                .bind(actor)
                .bind(wanted)
                .fetch_all(self.db())
                .await
                .map_err(from_sqlx)?;
            for row in &rows {
                page.push(row::shown_task(row)?);
            }
            if i64::try_from(ids.len()).unwrap_or(i64::MAX) < window {
                break;
            }
            before = Some(last);
            window = (window * 4).min(LAST_WINDOW);
        }
        Ok(page)
    }

    /// The tasks of claimed `rows`. A row that cannot be decoded (its
    /// stored arguments, say) is failed on the spot, alone, with the
    /// decoder's words in its log: it must never fail the claim of the
    /// others, nor come back to fail it again.
    async fn decode_claimed<'r>(
        &self,
        owner: &str,
        rows: impl Iterator<Item = &'r sqlx::postgres::PgRow>,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let mut claimed = Vec::new();
        let mut undecodable = Vec::new();
        for row in rows {
            match row::task(row) {
                Ok(task) => claimed.push(task),
                Err(e) => {
                    let fence = (|| {
                        Ok::<_, sqlx::Error>((
                            row.try_get("id")?,
                            row.try_get("queue")?,
                            row.try_get("execution")?,
                        ))
                    })();
                    match fence {
                        Ok((id, queue, execution)) => {
                            tracing::error!(task = %id, error = %e, "a claimed task cannot be decoded; failing it");
                            undecodable.push(Completion::undecodable(
                                id,
                                queue,
                                execution,
                                &e.to_string(),
                            ));
                        }
                        Err(fence_error) => tracing::error!(
                            error = %e,
                            %fence_error,
                            "a claimed task cannot be decoded, nor its id: it returns when its lease expires"
                        ),
                    }
                }
            }
        }
        if !undecodable.is_empty() {
            self.complete(owner, &undecodable).await?;
        }
        Ok(claimed)
    }
}

#[async_trait]
impl TaskStore for PgStore {
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<EnqueueResult>, StoreError> {
        if !self.poll_only {
            let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
            return enqueue_on(&mut conn, true, tasks).await;
        }
        // Behind a transaction pooler every statement needs a transaction.
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let results = enqueue_on(&mut tx, false, tasks).await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(results)
    }

    async fn claim(&self, claim: &Claim) -> Result<Vec<TaskRow>, StoreError> {
        if claim.limit == 0 || claim.queues.is_empty() {
            return Ok(Vec::new());
        }
        let query = sqlx::query(sql::CLAIM)
            .bind(&claim.queues)
            .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX))
            .bind(&claim.owner)
            .bind(millis(claim.lease))
            .bind(self.commit_mode)
            .bind(claim.pool.as_ref().map(|p| p.name.as_str()))
            .bind(claim.pool.as_ref().map(|p| &p.labels));
        let rows = self.fetch_claiming(query, claim.capped).await?;
        let mut claimed = self.decode_claimed(&claim.owner, rows.iter()).await?;
        // RETURNING follows the update, not the pick: most urgent first.
        claimed.sort_by_key(TaskRow::urgency);
        Ok(claimed)
    }

    async fn due_requirements(
        &self,
        queues: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        if limit == 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(sql::DUE_REQUIREMENTS)
            .bind(queues)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)
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
        let (task_ids, executions): (Vec<Uuid>, Vec<i32>) = held.iter().copied().unzip();
        let query = sqlx::query(sql::HEARTBEAT)
            .bind(&task_ids)
            .bind(&executions)
            .bind(owner)
            .bind(millis(lease))
            .bind(self.commit_mode);
        let rows = LogColumns::new(logs)
            .bind(query)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        let renewed = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(Uuid, bool)>, sqlx::Error>>()
            .map_err(from_sqlx)?;
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
        let applied: HashSet<Uuid> =
            completion_query(sql::COMPLETE, owner, completions, self.commit_mode)
                .fetch_all(self.db())
                .await
                .map_err(from_sqlx)?
                .iter()
                .map(|row| row.try_get::<Uuid, _>(0))
                .collect::<Result<_, _>>()
                .map_err(from_sqlx)?;
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
        let query = completion_query(
            sql::COMPLETE_AND_CLAIM,
            owner,
            completions,
            self.commit_mode,
        )
        .bind(&refill.queues)
        .bind(i64::try_from(refill.limit).unwrap_or(i64::MAX))
        .bind(millis(refill.lease))
        .bind(refill.pool.as_ref().map(|p| p.name.as_str()))
        .bind(refill.pool.as_ref().map(|p| &p.labels));
        let rows = self.fetch_claiming(query, refill.capped).await?;
        let mut applied = HashSet::new();
        let mut refills = Vec::with_capacity(rows.len());
        for row in &rows {
            if applied.is_empty() {
                let ids: Vec<Uuid> = row.try_get("applied").map_err(from_sqlx)?;
                applied.extend(ids);
            }
            let id: Option<Uuid> = row.try_get("id").map_err(from_sqlx)?;
            if id.is_some() {
                refills.push(row);
            }
        }
        let mut claimed = self.decode_claimed(owner, refills.into_iter()).await?;
        claimed.sort_by_key(TaskRow::urgency);
        Ok((Completion::rejected(completions, &applied), claimed))
    }

    async fn release_untracked(&self, owner: &str, tracked: &[Uuid]) -> Result<u64, StoreError> {
        let released: i64 = sqlx::query_scalar(sql::RELEASE_UNTRACKED)
            .bind(owner)
            .bind(tracked)
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn rescue_expired(&self, limit: i64) -> Result<u64, StoreError> {
        let rescued: i64 = sqlx::query_scalar(sql::RESCUE)
            .bind(limit)
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(rescued).unwrap_or(0))
    }

    async fn promote_due(&self, limit: i64) -> Result<u64, StoreError> {
        let promoted: i64 = sqlx::query_scalar(sql::PROMOTE)
            .bind(limit)
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(promoted).unwrap_or(0))
    }

    async fn task(&self, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query(sql::TASK)
            .bind(id)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(row::shown_task).transpose()
    }

    async fn logs(&self, id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(sql::LOGS)
            .bind(id)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::log).collect()
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        filter.validate()?;
        if longshore_core::store::counted_none(self, filter).await? {
            return Ok(Vec::new());
        }
        // One finished state of one actor (the counts said some match).
        if let Some((state, actor)) = filter.only_state_and_actor()
            && state.is_terminal()
        {
            return self.list_finished_of_actor(filter, state, actor).await;
        }
        // One state and nothing else: a page of that state's own index,
        // except queued tasks, the newest as a rule, whose first page the
        // general statement finds at the top of the primary key.
        if let Some(state) = filter.only_state() {
            let query = match state {
                TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled => Some(
                    sqlx::query(sql::LIST_FINISHED_IN_STATE)
                        .bind(filter.before)
                        .bind(filter.limit.max(0))
                        .bind(state.as_str()),
                ),
                TaskState::Running => Some(
                    sqlx::query(sql::LIST_RUNNING)
                        .bind(filter.before)
                        .bind(filter.limit.max(0)),
                ),
                TaskState::Scheduled => Some(
                    sqlx::query(sql::LIST_SCHEDULED)
                        .bind(filter.before)
                        .bind(filter.limit.max(0)),
                ),
                TaskState::Queued => None,
            };
            if let Some(query) = query {
                let rows = query.fetch_all(self.db()).await.map_err(from_sqlx)?;
                return rows.iter().map(row::shown_task).collect();
            }
        }
        if filter.filters_only_by_id() {
            let rows = sqlx::query(sql::LIST_RECENT)
                .bind(filter.before)
                .bind(filter.limit.max(0))
                .fetch_all(self.db())
                .await
                .map_err(from_sqlx)?;
            return rows.iter().map(row::shown_task).collect();
        }
        // The statement whose plan can use the index of the most selective
        // filter given (see each one's note in sql.rs); without one, the
        // general statement, planned for the values given.
        let statement = if filter.related_id.is_some() {
            sql::LIST_BY_RELATED_OBJECT
        } else if filter.schedule.is_some() {
            sql::LIST_BY_SCHEDULE
        } else if filter.related_kind.is_some() {
            sql::LIST_BY_RELATED_KIND
        } else {
            sql::LIST
        };
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let query = sqlx::query(statement)
            .bind(states)
            .bind(filter.actor.as_deref())
            .bind(filter.queue.as_deref())
            .bind(filter.before)
            .bind(filter.limit.max(0))
            .bind(statuses)
            .bind(filter.exclude_successful)
            .bind(filter.standalone)
            .bind(filter.created_after)
            .bind(filter.created_before)
            .bind(filter.finished_after)
            .bind(filter.finished_before)
            .bind(filter.related_kind.as_deref())
            .bind(filter.related_id.as_deref())
            .bind(filter.schedule.as_deref());
        let rows = if statement == sql::LIST {
            let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
            sqlx::query(sql::PLAN_FOR_VALUES)
                .execute(self.on(&mut tx))
                .await
                .map_err(from_sqlx)?;
            let rows = query.fetch_all(self.on(&mut tx)).await.map_err(from_sqlx)?;
            tx.commit().await.map_err(from_sqlx)?;
            rows
        } else {
            query.fetch_all(self.db()).await.map_err(from_sqlx)?
        };
        rows.iter().map(row::shown_task).collect()
    }

    async fn retry(&self, id: Uuid) -> Result<TaskRow, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        let mut tx = conn.begin().await.map_err(from_sqlx)?;
        let current = sqlx::query(sql::TASK_FOR_UPDATE)
            .bind(id)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .ok_or(StoreError::NotFound(id))?;
        let current = row::task(&current)?;
        if !current.state.is_terminal() {
            return Err(StoreError::InvalidState {
                id,
                state: current.state,
                action: "retry",
            });
        }
        let row = sqlx::query(sql::RETRY)
            .bind(id)
            .fetch_one(self.on(&mut tx))
            .await
            .map_err(from_sqlx)
            .map_err(|e| match e {
                StoreError::UniqueConflict { .. } => StoreError::UniqueConflict {
                    key: current.unique_key.clone().unwrap_or_default(),
                },
                other => other,
            })?;
        sqlx::query(sql::NOTIFY_AVAILABLE)
            .bind(&current.queue)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        row::task(&row)
    }

    async fn cancel(&self, id: Uuid) -> Result<CancelResult, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        let mut tx = conn.begin().await.map_err(from_sqlx)?;
        let current = sqlx::query(sql::TASK_FOR_UPDATE)
            .bind(id)
            .fetch_optional(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?
            .ok_or(StoreError::NotFound(id))?;
        let state = row::task(&current)?.state;
        let result = cancel_locked(&mut tx, self.named(), id, state).await?;
        tx.commit().await.map_err(from_sqlx)?;
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
            .bind(millis(older_than))
            .bind(limit.max(0))
            .execute(self.db())
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
        let statement = selection.sql(&states, Dialect::Postgres).count();
        let rows = bind_selection(sqlx::query(&statement), selection)
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?;
        let counts = rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(from_sqlx)?;
                Ok((
                    TaskState::from_stored(&state)?,
                    row.try_get::<i64, _>("n").map_err(from_sqlx)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(TaskSelection::tally(counts))
    }

    async fn delete_tasks(&self, ids: &[Uuid]) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::DELETE_IDS)
            .bind(ids)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?
            .rows_affected())
    }

    async fn delete_matching(
        &self,
        selection: &TaskSelection,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let Some(states) = selection.deleted_states(limit)? else {
            return Ok(0);
        };
        let statement = selection.sql(&states, Dialect::Postgres).delete();
        let done = bind_selection(sqlx::query(&statement).bind(limit), selection)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn cancel_running_in_queue(&self, queue: &str, limit: i64) -> Result<u64, StoreError> {
        QueueSettings::check_name(queue)?;
        if limit <= 0 {
            return Ok(0);
        }
        let asked: i64 = sqlx::query_scalar(sql::CANCEL_RUNNING_IN_QUEUE)
            .bind(queue)
            .bind(limit)
            .fetch_one(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(asked).unwrap_or(0))
    }
}
