//! The PostgreSQL storage engine for Longshore.
//!
//! # Brief overview
//!
//! [`PgStore`] implements [`longshore_core::Store`] on a PostgreSQL database
//! that many worker nodes share:
//!
//! - claims lock up to the free slots' worth of due tasks with
//!   `FOR UPDATE SKIP LOCKED` in one statement;
//! - completions, heartbeats and log lines are written many rows per
//!   statement, from array parameters;
//! - an enqueue raises one `NOTIFY` per queue per transaction, which
//!   PostgreSQL delivers at commit; workers `LISTEN` on a dedicated
//!   connection ([`PgStore::listen`]) and poll as a safety net;
//! - [`enqueue_in`] inserts tasks inside the caller's own transaction, so a
//!   task exists only if that transaction commits.
//!
//! All SQL lives in `sql.rs`; the schema and its indexes in `migrations/`.

mod error;
mod migrate;
mod row;
mod sql;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use longshore_core::schedule::{FireWrite, check_builtin_edit, plan_fire};
use longshore_core::{
    CancelResult, Claim, ClusterSettings, ClusterStore, Completion, CountStore, EnqueueResult,
    EventSource, Fire, FireKind, FireOutcome, Heartbeat, Leadership, LogEntry, NewTask, PutMode,
    QueueSettings, QueueStore, Schedule, ScheduleDef, ScheduleStore, StatsKey, StatsRow, Store,
    StoreError, StoreEvent, TaskFilter, TaskRow, TaskSelection, TaskState, TaskStore, TokenInfo,
    TokenScope, TokenStore, WorkerInfo, WorkerPresence,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

pub use migrate::latest_version;

use error::from_sqlx;

/// How to connect.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in the pool (default 10).
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the database
    /// unavailable (default 5 s).
    pub acquire_timeout: Duration,
    /// Do not LISTEN: rely on polling alone (for PgBouncer in transaction
    /// mode, which cannot hold a LISTEN).
    pub poll_only: bool,
    /// Make claims, heartbeats and completions wait for the WAL flush like
    /// enqueues do (default false: see the "Durability" section of
    /// docs/configuration.md; a database crash can then re-run, never lose,
    /// a task).
    pub durable_hot_path: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            poll_only: false,
            durable_hot_path: false,
        }
    }
}

/// The PostgreSQL engine. Cheap to clone: clones share one pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    poll_only: bool,
    commit_mode: &'static str,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`). Fails at once,
    /// with the reason, if the database cannot be reached.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        PgStore::connect_with(parse_url(url)?, options).await
    }

    /// Connects with sqlx's connection options.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: &PgOptions,
    ) -> Result<PgStore, StoreError> {
        // One direct connection first: a pool would retry until its timeout
        // and report only that it timed out, hiding the cause.
        let probe = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!("no answer within {:?}", options.acquire_timeout))
        })?
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let _ = probe.close().await;
        // The hot-path statements take arrays and a limit; their best plan does
        // not depend on the values, so plan them once per connection instead
        // of on every execution.
        // Not in poll-only mode: that mode is for PgBouncer in transaction
        // pooling, which refuses unknown startup parameters.
        let connect = if options.poll_only {
            connect
        } else {
            connect.options([("plan_cache_mode", "force_generic_plan")])
        };
        let pool = PgPoolOptions::new()
            // sqlx pings every connection it hands out by default: one more
            // round trip per statement. Every caller here already treats a
            // broken connection as a transient error and retries.
            .test_before_acquire(false)
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| match from_sqlx(e) {
                StoreError::Database(inner) => StoreError::Unavailable(inner.to_string()),
                other => other,
            })?;
        Ok(PgStore {
            pool,
            poll_only: options.poll_only,
            commit_mode: commit_mode(options.durable_hot_path),
        })
    }

    /// Wraps an existing pool (an application's own).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            poll_only: false,
            commit_mode: commit_mode(false),
        }
    }

    /// Relies on polling only (no LISTEN).
    pub fn with_poll_only(mut self, poll_only: bool) -> PgStore {
        self.poll_only = poll_only;
        self
    }

    /// Runs a statement that claims. Under running-task caps, in a
    /// transaction holding the cluster-wide claim lock: one claim at a time,
    /// each seeing the others' commits, so two nodes cannot both fill the
    /// last place.
    async fn fetch_claiming(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        capped: bool,
    ) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
        if !capped {
            return query.fetch_all(&self.pool).await.map_err(from_sqlx);
        }
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query(sql::CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let rows = query.fetch_all(&mut *tx).await.map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(rows)
    }

    /// The pool, for an application that wants to share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Parses a `postgres://` URL, with an error that says so.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    url.parse().map_err(|e| {
        StoreError::InvalidInput(format!("database URL is not a valid PostgreSQL URL: {e}"))
    })
}

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
        .fetch_all(&mut *conn)
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
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(from_sqlx)?;
    Ok(EnqueueResult::for_batch(&tasks, &inserted, &holders))
}

fn commit_mode(durable: bool) -> &'static str {
    if durable {
        sql::COMMIT_MODE_DURABLE
    } else {
        sql::COMMIT_MODE_FAST
    }
}

/// Log lines as the parallel arrays that the heartbeat and completion
/// statements insert from.
struct LogColumns<'a> {
    ids: Vec<Uuid>,
    attempts: Vec<i32>,
    ats: Vec<chrono::DateTime<chrono::Utc>>,
    levels: Vec<i16>,
    messages: Vec<&'a str>,
}

impl<'a> LogColumns<'a> {
    fn new<I: IntoIterator<Item = &'a LogEntry>>(logs: I) -> LogColumns<'a> {
        let logs: Vec<&LogEntry> = logs.into_iter().collect();
        LogColumns {
            ids: logs.iter().map(|l| l.task_id).collect(),
            attempts: logs.iter().map(|l| l.attempt).collect(),
            ats: logs.iter().map(|l| l.at).collect(),
            levels: logs.iter().map(|l| l.level.as_i16()).collect(),
            messages: logs.iter().map(|l| l.message.as_str()).collect(),
        }
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.ids)
            .bind(self.attempts)
            .bind(self.ats)
            .bind(self.levels)
            .bind(self.messages)
    }
}

/// The completion statement `sql` with its first fourteen parameters bound.
fn completion_query<'q>(
    sql: &'q str,
    owner: &'q str,
    completions: &'q [Completion],
    commit_mode: &'static str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let ids: Vec<Uuid> = completions.iter().map(|c| c.id).collect();
    let attempts: Vec<i32> = completions.iter().map(|c| c.attempt).collect();
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
    let extend: Vec<bool> = completions
        .iter()
        .map(|c| c.transition.extend_attempts)
        .collect();
    let query = sqlx::query(sql)
        .bind(owner)
        .bind(ids)
        .bind(attempts)
        .bind(states)
        .bind(delays)
        .bind(errors)
        .bind(worst)
        .bind(extend)
        .bind(commit_mode);
    LogColumns::new(completions.iter().flat_map(|c| &c.logs)).bind(query)
}

/// Cancels task `id`, locked in `tx` and found in `state`: a waiting task
/// at once, a running one by telling its worker at commit.
async fn cancel_locked(
    tx: &mut PgConnection,
    id: Uuid,
    state: TaskState,
) -> Result<CancelResult, StoreError> {
    match state {
        TaskState::Scheduled | TaskState::Queued => {
            sqlx::query(sql::CANCEL_WAITING)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            Ok(CancelResult::Cancelled)
        }
        TaskState::Running => {
            sqlx::query(sql::CANCEL_RUNNING)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            sqlx::query(sql::NOTIFY_CANCEL)
                .bind(id.to_string())
                .execute(&mut *tx)
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

/// The schedule-definition parameters `$1`..`$13` of `sql` bound.
fn schedule_query<'q>(
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

/// The statements' shape for `selection` over `states` (see [`sql::Selection`]).
fn selection_sql<'a>(selection: &TaskSelection, states: &'a [TaskState]) -> sql::Selection<'a> {
    sql::Selection {
        states,
        actor: selection.actor.is_some(),
        queue: selection.queue.is_some(),
        older_than: selection.older_than.is_some(),
    }
}

/// Binds the filters `selection` has, in the order [`sql::Selection`]
/// numbers them.
fn bind_selection<'q>(
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        migrate::run(&self.pool).await
    }

    fn schema_version(&self) -> i32 {
        latest_version()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM longshore_migrations LIMIT 1")
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn listen(&self) -> Result<Option<Box<dyn EventSource>>, StoreError> {
        if self.poll_only {
            return Ok(None);
        }
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(from_sqlx)?;
        listener
            .listen_all([sql::CHANNEL_AVAILABLE, sql::CHANNEL_CANCEL])
            .await
            .map_err(from_sqlx)?;
        Ok(Some(Box::new(PgEvents { listener })))
    }
}

#[async_trait]
impl TaskStore for PgStore {
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<EnqueueResult>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        enqueue_in(&mut conn, tasks).await
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
            .bind(self.commit_mode);
        let rows = self.fetch_claiming(query, claim.capped).await?;
        let mut claimed = rows.iter().map(row::task).collect::<Result<Vec<_>, _>>()?;
        // RETURNING follows the update, not the pick: most urgent first.
        claimed.sort_by_key(TaskRow::urgency);
        Ok(claimed)
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
        let (task_ids, attempts): (Vec<Uuid>, Vec<i32>) = held.iter().copied().unzip();
        let query = sqlx::query(sql::HEARTBEAT)
            .bind(&task_ids)
            .bind(&attempts)
            .bind(owner)
            .bind(millis(lease))
            .bind(self.commit_mode);
        let rows = LogColumns::new(logs)
            .bind(query)
            .fetch_all(&self.pool)
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
                .fetch_all(&self.pool)
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
        .bind(millis(refill.lease));
        let rows = self.fetch_claiming(query, refill.capped).await?;
        let mut applied = HashSet::new();
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            if applied.is_empty() {
                let ids: Vec<Uuid> = row.try_get("applied").map_err(from_sqlx)?;
                applied.extend(ids);
            }
            let id: Option<Uuid> = row.try_get("id").map_err(from_sqlx)?;
            if id.is_some() {
                claimed.push(row::task(row)?);
            }
        }
        claimed.sort_by_key(TaskRow::urgency);
        Ok((Completion::rejected(completions, &applied), claimed))
    }

    async fn release_untracked(&self, owner: &str, tracked: &[Uuid]) -> Result<u64, StoreError> {
        let released: i64 = sqlx::query_scalar(sql::RELEASE_UNTRACKED)
            .bind(owner)
            .bind(tracked)
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn rescue_expired(&self, limit: i64) -> Result<u64, StoreError> {
        let rescued: i64 = sqlx::query_scalar(sql::RESCUE)
            .bind(limit)
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(rescued).unwrap_or(0))
    }

    async fn promote_due(&self, limit: i64) -> Result<u64, StoreError> {
        let promoted: i64 = sqlx::query_scalar(sql::PROMOTE)
            .bind(limit)
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(promoted).unwrap_or(0))
    }

    async fn task(&self, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query(sql::TASK)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(row::task).transpose()
    }

    async fn logs(&self, id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(sql::LOGS)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::log).collect()
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        filter.validate()?;
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
                let rows = query.fetch_all(&self.pool).await.map_err(from_sqlx)?;
                return rows.iter().map(row::task).collect();
            }
        }
        if filter.filters_only_by_id() {
            let rows = sqlx::query(sql::LIST_RECENT)
                .bind(filter.before)
                .bind(filter.limit.max(0))
                .fetch_all(&self.pool)
                .await
                .map_err(from_sqlx)?;
            return rows.iter().map(row::task).collect();
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
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            let rows = query.fetch_all(&mut *tx).await.map_err(from_sqlx)?;
            tx.commit().await.map_err(from_sqlx)?;
            rows
        } else {
            query.fetch_all(&self.pool).await.map_err(from_sqlx)?
        };
        rows.iter().map(row::task).collect()
    }

    async fn retry(&self, id: Uuid) -> Result<TaskRow, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        let mut tx = conn.begin().await.map_err(from_sqlx)?;
        let current = sqlx::query(sql::TASK_FOR_UPDATE)
            .bind(id)
            .fetch_optional(&mut *tx)
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
            .fetch_one(&mut *tx)
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
            .execute(&mut *tx)
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
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .ok_or(StoreError::NotFound(id))?;
        let state = row::task(&current)?.state;
        let result = cancel_locked(&mut tx, id, state).await?;
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
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn count_matching(
        &self,
        selection: &TaskSelection,
    ) -> Result<Vec<(TaskState, i64)>, StoreError> {
        let states = selection.effective_states();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let statement = selection_sql(selection, &states).count();
        let rows = bind_selection(sqlx::query(&statement), selection)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let mut counts = rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(from_sqlx)?;
                let state: TaskState =
                    state
                        .parse()
                        .map_err(|e: longshore_core::task::UnknownState| {
                            StoreError::Database(Box::new(e))
                        })?;
                Ok((state, row.try_get::<i64, _>("n").map_err(from_sqlx)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        counts.retain(|(_, n)| *n > 0);
        counts.sort_by_key(|(state, _)| *state);
        Ok(counts)
    }

    async fn delete_matching(
        &self,
        selection: &TaskSelection,
        limit: i64,
    ) -> Result<u64, StoreError> {
        selection.check_deletable()?;
        let states = selection.effective_states();
        if states.is_empty() || limit <= 0 {
            return Ok(0);
        }
        let statement = selection_sql(selection, &states).delete();
        let done = bind_selection(sqlx::query(&statement).bind(limit), selection)
            .execute(&self.pool)
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
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(asked).unwrap_or(0))
    }
}

#[async_trait]
impl CountStore for PgStore {
    async fn stats(&self, key: StatsKey) -> Result<Vec<StatsRow>, StoreError> {
        let query = match key {
            StatsKey::State => sql::STATS_BY_STATE,
            StatsKey::Actor => sql::STATS_BY_ACTOR,
            StatsKey::Queue => sql::STATS_BY_QUEUE,
        };
        let rows = sqlx::query(query)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn queue_depths(&self) -> Result<Vec<StatsRow>, StoreError> {
        let rows = sqlx::query(sql::QUEUE_DEPTHS)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(row::stats).collect()
    }

    async fn fold_counts(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let folded = sqlx::query(sql::FOLD_COUNTS)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        if folded > 0 {
            sqlx::query(sql::FORGET_EMPTY_COUNTS)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(folded)
    }

    async fn recount(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        for statement in sql::RECOUNT {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        let groups: i64 = sqlx::query_scalar("SELECT count(*) FROM longshore_task_counts")
            .fetch_one(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(u64::try_from(groups).unwrap_or(0))
    }
}

#[async_trait]
impl QueueStore for PgStore {
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        QueueSettings::check_name(queue)?;
        sqlx::query(sql::SET_QUEUE_PAUSED)
            .bind(queue)
            .bind(paused)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>, StoreError> {
        sqlx::query(sql::QUEUE_SETTINGS)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn cluster_settings(&self) -> Result<ClusterSettings, StoreError> {
        let max_running: Option<i32> = sqlx::query_scalar(sql::MAX_RUNNING)
            .fetch_optional(&self.pool)
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
        query.execute(&self.pool).await.map_err(from_sqlx)?;
        Ok(())
    }
}

#[async_trait]
impl ClusterStore for PgStore {
    async fn worker_seen(&self, worker: &WorkerPresence) -> Result<(), StoreError> {
        sqlx::query(sql::WORKER_SEEN)
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(&worker.version)
            .bind(&worker.queues)
            .bind(worker.concurrency)
            .bind(worker.running)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn worker_stopped(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(sql::WORKER_STOPPED)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        sqlx::query(sql::WORKERS)
            .fetch_all(&self.pool)
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
                    },
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
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn try_lead(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held = sqlx::query(sql::TRY_LEAD)
            .bind(name)
            .bind(holder)
            .bind(millis(ttl))
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(held.is_some())
    }

    async fn resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(sql::RESIGN)
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn leaders(&self) -> Result<Vec<Leadership>, StoreError> {
        sqlx::query(sql::LEADERS)
            .fetch_all(&self.pool)
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
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::schedule)
            .transpose()?;
        match (mode, &existing) {
            (PutMode::Create, Some(_)) => return Err(StoreError::ScheduleExists(def.name.clone())),
            (PutMode::Update, None) => return Err(StoreError::ScheduleNotFound(def.name.clone())),
            _ => {}
        }
        check_builtin_edit(existing.as_ref(), def)?;
        let statement = match mode {
            PutMode::Create => sql::CREATE_SCHEDULE,
            PutMode::Update | PutMode::Upsert => sql::PUT_SCHEDULE,
        };
        let row = schedule_query(statement, def, next_run_at)
            .fetch_optional(&mut *tx)
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
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::schedule)
            .transpose()
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::SCHEDULES)
            .fetch_all(&self.pool)
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
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))?;
        row::schedule(&row)
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let existing = sqlx::query(sql::SCHEDULE_FOR_UPDATE)
            .bind(name)
            .fetch_optional(&mut *tx)
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
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(())
    }

    async fn due_schedules(&self, limit: i64) -> Result<Vec<Schedule>, StoreError> {
        sqlx::query(sql::DUE_SCHEDULES)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
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
            .fetch_optional(&mut *tx)
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
                    .fetch_optional(&mut *tx)
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
                        .bind(moves_next)
                        .bind(fire.next_run_at)
                        .bind(clears_request)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                }
                FireWrite::Cancel(id, state) => {
                    cancel_locked(&mut tx, id, state).await?;
                }
                FireWrite::Enqueue(task) => {
                    enqueue_in(&mut tx, vec![*task]).await?;
                }
                FireWrite::Ran(task) => {
                    sqlx::query(sql::SCHEDULE_RAN)
                        .bind(&fire.name)
                        .bind(task)
                        .bind(due)
                        .bind(fire.next_run_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                }
            }
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(outcome)
    }
}

#[async_trait]
impl TokenStore for PgStore {
    async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        secret_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        TokenInfo::check_name(name)?;
        longshore_core::token::check_hash(secret_hash)?;
        sqlx::query(sql::CREATE_TOKEN)
            .bind(Uuid::now_v7())
            .bind(name)
            .bind(scope.as_str())
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenExists(name.to_owned()))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        sqlx::query(sql::TOKENS)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::token)
            .collect()
    }

    async fn revoke_token(&self, name: &str) -> Result<TokenInfo, StoreError> {
        sqlx::query(sql::REVOKE_TOKEN)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenNotFound(name.to_owned()))
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(mut token) = sqlx::query(sql::TOKEN_BY_HASH)
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
        else {
            return Ok(None);
        };
        let precision = TokenInfo::LAST_USED_PRECISION;
        let stale = token.last_used_at.is_none_or(|at| {
            Utc::now()
                .signed_duration_since(at)
                .to_std()
                .unwrap_or_default()
                >= precision
        });
        if stale {
            // The database's clock decides; this process's only spares the
            // write when it is plainly not needed.
            match sqlx::query_scalar::<_, DateTime<Utc>>(sql::TOUCH_TOKEN)
                .bind(token.id)
                .bind(millis(precision))
                .fetch_optional(&self.pool)
                .await
            {
                Ok(Some(at)) => token.last_used_at = Some(at),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(token = %token.name, error = %e, "cannot record a token's use")
                }
            }
        }
        Ok(Some(token))
    }
}

/// LISTEN on a dedicated connection.
struct PgEvents {
    listener: PgListener,
}

#[async_trait]
impl EventSource for PgEvents {
    async fn recv(&mut self) -> Result<StoreEvent, StoreError> {
        loop {
            // `try_recv` returns `None` when the connection was lost;
            // notifications sent meanwhile are gone, so the caller must poll.
            let notification = self
                .listener
                .try_recv()
                .await
                .map_err(from_sqlx)?
                .ok_or_else(|| StoreError::Unavailable("the LISTEN connection was lost".into()))?;
            match notification.channel() {
                sql::CHANNEL_AVAILABLE => {
                    return Ok(StoreEvent::TaskAvailable {
                        queue: notification.payload().to_owned(),
                    });
                }
                sql::CHANNEL_CANCEL => {
                    if let Ok(id) = notification.payload().parse() {
                        return Ok(StoreEvent::CancelRequested { id });
                    }
                }
                _ => {}
            }
        }
    }
}
