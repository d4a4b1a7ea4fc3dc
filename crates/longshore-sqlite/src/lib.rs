//! The embedded SQLite storage engine for Longshore.
//!
//! # Brief overview
//!
//! [`SqliteStore`] implements [`longshore_core::Store`] on one SQLite file,
//! for a single process (the `longshore serve` default) and the occasional
//! second one (a `longshore enqueue` from another terminal):
//!
//! - the file runs in WAL mode, so reads never wait for the writer;
//! - every write goes through one connection, so writers of this process
//!   queue in the pool instead of fighting over SQLite's file lock; other
//!   processes wait for that lock up to a busy timeout;
//! - transactions that write take the lock up front (`BEGIN IMMEDIATE`);
//! - many rows travel as one JSON array parameter, one statement for a whole
//!   batch, as the PostgreSQL engine does with arrays;
//! - where PostgreSQL has `NOTIFY`, this engine wakes the workers of its own
//!   process directly ([`SqliteStore::listen`]); workers poll for tasks that
//!   another process wrote.
//!
//! All SQL lives in `sql.rs`; the schema and its indexes in `migrations/`.

mod error;
mod migrate;
mod row;
mod sql;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
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
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};
use tokio::sync::broadcast;
use uuid::Uuid;

pub use migrate::latest_version;

use error::from_sqlx;

/// How to open the database file.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How long a write waits for another process's lock on the file before
    /// it is reported as unavailable (default 5 s).
    pub busy_timeout: Duration,
    /// Connections for reads (default 4). Writes always use one connection.
    pub read_connections: u32,
    /// Do not wake this process's workers directly: rely on polling alone.
    pub poll_only: bool,
    /// Make claims, heartbeats and completions wait for the disk like
    /// enqueues do (default false: a crash of the machine, not of the
    /// process, can then undo the last ones, and the tasks run again).
    pub durable_hot_path: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            poll_only: false,
            durable_hot_path: false,
        }
    }
}

/// Events for this process's workers: what `NOTIFY` is to PostgreSQL.
/// Enough room for bursts; a listener that falls further behind is told to
/// poll.
const EVENT_CAPACITY: usize = 1024;

/// The SQLite engine. Cheap to clone.
///
/// Every store this process opens on one file shares that file's
/// connections and events (the first opening's options hold): writers of
/// the process then queue for the one write connection in turn, instead of
/// racing for SQLite's file lock, and every worker on the file is woken
/// when tasks arrive.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    file: Arc<File>,
    poll_only: bool,
}

/// One open database file.
#[derive(Debug)]
struct File {
    /// The one connection that writes.
    writer: SqlitePool,
    /// Connections that only read.
    reader: SqlitePool,
    path: PathBuf,
    events: broadcast::Sender<StoreEvent>,
    durable_hot_path: bool,
    /// Claim statements by number of queues and whether they are capped,
    /// built once each.
    claims: Mutex<HashMap<(usize, bool), Arc<str>>>,
}

/// The files this process has open, by canonical path. An entry goes when
/// the last store on its file does.
fn open_files() -> &'static tokio::sync::Mutex<HashMap<PathBuf, Weak<File>>> {
    static FILES: OnceLock<tokio::sync::Mutex<HashMap<PathBuf, Weak<File>>>> = OnceLock::new();
    FILES.get_or_init(tokio::sync::Mutex::default)
}

/// `path` spelled one way whatever way it was given (the file itself need
/// not exist yet; its directory must).
fn canonical(path: &Path) -> PathBuf {
    let name = path.file_name().map(ToOwned::to_owned);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), name) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// Microseconds since the Unix epoch: how the schema stores time.
pub(crate) fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`. Fails at
    /// once, with the reason, if the file cannot be opened.
    pub async fn open(
        path: impl AsRef<Path>,
        options: &SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::new().filename(path.as_ref());
        SqliteStore::connect_with(connect, options).await
    }

    /// Opens the database a `sqlite://PATH` (or `sqlite:PATH`) URL names,
    /// creating the file if missing.
    pub async fn connect(url: &str, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        SqliteStore::connect_with(parse_url(url)?, options).await
    }

    /// Opens with sqlx's connection options (WAL, the busy timeout and the
    /// synchronous level are set here whatever they say).
    pub async fn connect_with(
        connect: SqliteConnectOptions,
        options: &SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = connect.get_filename().to_owned();
        let name = path.to_string_lossy();
        if name == ":memory:" || name.starts_with("file:sqlx-in-memory") {
            return Err(StoreError::InvalidInput(
                "an in-memory SQLite database cannot be shared by the engine's connections: \
                 give a file path"
                    .into(),
            ));
        }
        let key = canonical(&path);
        // Held while opening, so that two opens of one file make one.
        let mut files = open_files().lock().await;
        files.retain(|_, file| file.strong_count() > 0);
        if let Some(file) = files
            .get(&key)
            .and_then(Weak::upgrade)
            .filter(|file| !file.writer.is_closed())
        {
            if file.durable_hot_path != options.durable_hot_path {
                tracing::warn!(
                    path = %path.display(),
                    "this SQLite file is already open in this process with durable_hot_path = {}; keeping that",
                    file.durable_hot_path
                );
            }
            return Ok(SqliteStore {
                file,
                poll_only: options.poll_only,
            });
        }
        let synchronous = if options.durable_hot_path {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let unavailable = |e: sqlx::Error| {
            StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
        };
        // Opened first, alone: it switches a new file to WAL before readers
        // arrive, and a wrong path fails here with SQLite's reason.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await
            .map_err(unavailable)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(unavailable)?;
        let file = Arc::new(File {
            writer,
            reader,
            path,
            events: broadcast::channel(EVENT_CAPACITY).0,
            durable_hot_path: options.durable_hot_path,
            claims: Mutex::default(),
        });
        files.insert(key, Arc::downgrade(&file));
        Ok(SqliteStore {
            file,
            poll_only: options.poll_only,
        })
    }

    /// Relies on polling only: this store's workers are not woken directly.
    pub fn with_poll_only(mut self, poll_only: bool) -> SqliteStore {
        self.poll_only = poll_only;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The connections that only read, for an application's own queries.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.file.reader
    }

    /// How many workers of this process listen for events on this file.
    pub fn listeners(&self) -> usize {
        self.file.events.receiver_count()
    }

    /// Closes every connection (checkpointing the write-ahead log), for
    /// every store of this process on the file.
    pub async fn close(&self) {
        open_files().lock().await.retain(|_, file| {
            file.upgrade()
                .is_some_and(|file| !Arc::ptr_eq(&file, &self.file))
        });
        self.file.reader.close().await;
        self.file.writer.close().await;
    }

    /// A write transaction holding the file's write lock from the start, so
    /// that it never has to give up half-way for another writer.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        match self.file.writer.begin_with("BEGIN IMMEDIATE").await {
            Err(sqlx::Error::InvalidSavePointStatement) => {
                // The connection believes a transaction is still open (see
                // `writer`): replace it and try once more.
                drop(self.writer().await?);
                self.file
                    .writer
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(from_sqlx)
            }
            other => other.map_err(from_sqlx),
        }
    }

    /// The write connection, replaced first if it is unusable: when a
    /// statement fails with a disk-full or I/O error, SQLite rolls the
    /// transaction back by itself, sqlx still counts it as open, and would
    /// refuse every later transaction on that connection.
    async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = self.file.writer.acquire().await.map_err(from_sqlx)?;
        if conn.is_in_transaction() {
            tracing::warn!(
                path = %self.file.path.display(),
                "replacing the SQLite write connection after a transaction SQLite rolled back by itself"
            );
            conn.close_on_drop();
            drop(conn);
            conn = self.file.writer.acquire().await.map_err(from_sqlx)?;
        }
        Ok(conn)
    }

    /// The write connection, set to wait for the disk at commit (enqueues
    /// and operators' changes, whatever the hot path's setting). Hand it
    /// back with [`SqliteStore::restore`].
    async fn durable_writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = self.writer().await?;
        if !self.file.durable_hot_path {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .map_err(from_sqlx)?;
        }
        Ok(conn)
    }

    /// Puts a [`SqliteStore::durable_writer`] connection back to the hot
    /// path's setting. Its work is committed by now, so a failure here is
    /// not the caller's: the connection is replaced instead (a new one
    /// starts with the hot path's setting).
    async fn restore(&self, mut conn: PoolConnection<Sqlite>) {
        if self.file.durable_hot_path {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, "cannot reset the SQLite write connection; replacing it");
            conn.close_on_drop();
        }
    }

    /// Wakes this process's workers of each queue in `queues`.
    fn wake<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        if self.file.events.receiver_count() == 0 {
            return;
        }
        let distinct: HashSet<&str> = queues.into_iter().collect();
        for queue in distinct {
            // Err only means nobody listens any more.
            let _ = self.file.events.send(StoreEvent::TaskAvailable {
                queue: queue.to_owned(),
            });
        }
    }

    /// The claim statement for `queues` queues, capped or not.
    fn claim_sql(&self, queues: usize, capped: bool) -> Arc<str> {
        let mut cache = self
            .file
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry((queues, capped))
            .or_insert_with(|| {
                Arc::from(if capped {
                    sql::claim_capped(queues)
                } else {
                    sql::claim(queues)
                })
            })
            .clone()
    }

    /// Claims on `conn` (inside the caller's transaction or alone), within
    /// `limits` when caps apply (read in the same write transaction).
    async fn claim_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        claim: &Claim,
        now: i64,
        limits: Option<&ClaimLimits>,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let limit = claim_limit(claim);
        let statement = self.claim_sql(claim.queues.len(), limits.is_some());
        let mut query = sqlx::query(&statement);
        match limits {
            None => {
                query = query
                    .bind(now)
                    .bind(limit)
                    .bind(&claim.owner)
                    .bind(now.saturating_add(micros(claim.lease)));
                for queue in &claim.queues {
                    query = query.bind(queue);
                }
            }
            Some(limits) => {
                let total = limits.total.min(limit);
                let per_queue = |queue: &str| {
                    limits
                        .per_queue
                        .get(queue)
                        .map_or(total, |room| (*room).min(total))
                };
                if total == 0 || claim.queues.iter().all(|q| per_queue(q) == 0) {
                    return Ok(Vec::new());
                }
                query = query
                    .bind(now)
                    .bind(total)
                    .bind(&claim.owner)
                    .bind(now.saturating_add(micros(claim.lease)));
                for queue in &claim.queues {
                    query = query.bind(queue).bind(per_queue(queue));
                }
            }
        }
        let rows = query.fetch_all(conn).await.map_err(from_sqlx)?;
        let mut claimed = rows.iter().map(row::task).collect::<Result<Vec<_>, _>>()?;
        // RETURNING comes in the order rows were updated, not picked: hand
        // the batch out most urgent first, as the PostgreSQL engine does.
        claimed.sort_by_key(TaskRow::urgency);
        Ok(claimed)
    }

    /// Applies completions on `conn`; returns the ids whose fence held and
    /// the queues that got a task back at once.
    async fn complete_on(
        conn: &mut sqlx::SqliteConnection,
        owner: &str,
        completions: &[Completion],
        now: i64,
    ) -> Result<(HashSet<Uuid>, Vec<String>), StoreError> {
        let rows = sqlx::query(sql::COMPLETE)
            .bind(now)
            .bind(owner)
            .bind(completions_json(completions)?)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        let (applied, requeued) = ids_and_due_queues(&rows)?;
        insert_logs(conn, completions.iter().flat_map(|c| &c.logs)).await?;
        Ok((applied, requeued))
    }
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
/// numbers them; its age as a cutoff before `now`.
fn bind_selection<'q>(
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

/// Parses a `sqlite://PATH` or `sqlite:PATH` URL, with an error that says so.
pub fn parse_url(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    SqliteConnectOptions::from_str(url).map_err(|e| {
        StoreError::InvalidInput(format!("database URL is not a valid SQLite URL: {e}"))
    })
}

/// One task as the enqueue statement reads it.
#[derive(Serialize)]
struct TaskJson<'a> {
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
}

/// One completion as the completion statement reads it.
#[derive(Serialize)]
struct CompletionJson<'a> {
    id: Uuid,
    attempt: i32,
    next: &'static str,
    delay_us: Option<i64>,
    error: Option<&'a str>,
    worst_level: Option<i16>,
    extend_attempts: i32,
}

/// One log line as the log statement reads it.
#[derive(Serialize)]
struct LogJson<'a> {
    task_id: Uuid,
    attempt: i32,
    at: i64,
    level: i16,
    message: &'a str,
}

/// One held execution as the heartbeat reads it.
#[derive(Serialize)]
struct HeldJson {
    id: Uuid,
    attempt: i32,
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidInput(format!("cannot encode parameters: {e}")))
}

fn completions_json(completions: &[Completion]) -> Result<String, StoreError> {
    let rows: Vec<CompletionJson<'_>> = completions
        .iter()
        .map(|c| CompletionJson {
            id: c.id,
            attempt: c.attempt,
            next: c.transition.state.as_str(),
            delay_us: c.transition.delay.map(micros),
            error: c.transition.error.as_deref(),
            worst_level: c.worst_level.map(|l| l.as_i16()),
            extend_attempts: i32::from(c.transition.extend_attempts),
        })
        .collect();
    to_json(&rows)
}

async fn insert_logs<'a>(
    conn: &mut sqlx::SqliteConnection,
    logs: impl IntoIterator<Item = &'a LogEntry>,
) -> Result<(), StoreError> {
    let rows: Vec<LogJson<'_>> = logs
        .into_iter()
        .map(|l| LogJson {
            task_id: l.task_id,
            attempt: l.attempt,
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
fn ids_and_due_queues(rows: &[SqliteRow]) -> Result<(HashSet<Uuid>, Vec<String>), StoreError> {
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
fn queues(rows: &[SqliteRow]) -> Result<Vec<String>, StoreError> {
    rows.iter()
        .map(|row| row.try_get::<String, _>("queue").map_err(from_sqlx))
        .collect()
}

/// What one enqueue did: the ids inserted, the queues that got a due task,
/// and the active holders of the unique keys that refused a task.
type Enqueued = (HashSet<Uuid>, Vec<String>, HashMap<String, Uuid>);

/// Inserts `tasks` at time `now` inside the caller's transaction.
async fn enqueue_on(
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

/// The most queues one claim may read: SQLite allows 500 parts in one
/// compound SELECT, and the claim has two per queue.
const MAX_CLAIM_QUEUES: usize = 200;

/// The most a claim may take in all and from each of its capped queues,
/// under the running-task caps: the room each cap leaves.
struct ClaimLimits {
    /// In all (the claim's own limit when the cluster has no cap).
    total: i64,
    /// From each queue of the claim that has a cap (the others: `total`).
    per_queue: HashMap<String, i64>,
}

/// A claim's own limit, as SQLite takes it.
fn claim_limit(claim: &Claim) -> i64 {
    i64::try_from(claim.limit).unwrap_or(i64::MAX)
}

/// The room the running-task caps leave `claim`, read on `conn` inside the
/// claim's write transaction; `None` when no cap applies to it (the claim
/// then needs no counts). `queues` is the claim's queues as JSON.
///
/// `finishing` is the owner and the completions (as `completions_json`) of
/// a completion applied in the same transaction as the claim: the tasks it
/// finishes no longer run once it commits, so their places are free.
async fn claim_limits(
    conn: &mut sqlx::SqliteConnection,
    claim: &Claim,
    queues: &str,
    finishing: Option<(&str, &str)>,
) -> Result<Option<ClaimLimits>, StoreError> {
    let caps = sqlx::query(sql::CLAIM_CAPS)
        .bind(queues)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    if caps.is_empty() {
        return Ok(None);
    }
    let mut finished: HashMap<String, i64> = HashMap::new();
    if let Some((owner, completions)) = finishing {
        for row in sqlx::query(sql::FINISHING)
            .bind(owner)
            .bind(completions)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?
        {
            finished.insert(
                row.try_get("queue").map_err(from_sqlx)?,
                row.try_get("finishing").map_err(from_sqlx)?,
            );
        }
    }
    let mut limits = ClaimLimits {
        total: claim_limit(claim),
        per_queue: HashMap::new(),
    };
    for row in &caps {
        let queue: Option<String> = row.try_get("queue").map_err(from_sqlx)?;
        let cap: i64 = row.try_get("max_running").map_err(from_sqlx)?;
        let running: i64 = row.try_get("running").map_err(from_sqlx)?;
        let freed = match &queue {
            Some(queue) => finished.get(queue).copied().unwrap_or(0),
            None => finished.values().sum(),
        };
        let room = cap.saturating_sub(running.saturating_sub(freed)).max(0);
        match queue {
            Some(queue) => {
                limits.per_queue.insert(queue, room);
            }
            None => limits.total = limits.total.min(room),
        }
    }
    Ok(Some(limits))
}

fn check_queue_count(claim: &Claim) -> Result<(), StoreError> {
    if claim.queues.len() > MAX_CLAIM_QUEUES {
        return Err(StoreError::InvalidInput(format!(
            "a worker on SQLite serves at most {MAX_CLAIM_QUEUES} queues, got {}",
            claim.queues.len()
        )));
    }
    Ok(())
}

/// What an operator's change needs to know of a task.
struct Current {
    state: TaskState,
    queue: String,
    unique_key: Option<String>,
}

async fn current(conn: &mut sqlx::SqliteConnection, id: Uuid) -> Result<Current, StoreError> {
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
async fn retry_on(
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
async fn cancel_on(
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

fn opt_micros(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|at| at.timestamp_micros())
}

/// [`ScheduleStore::put_schedule`](longshore_core::ScheduleStore::put_schedule) on `conn`, in one transaction.
async fn put_schedule_on(
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
    match (mode, &existing) {
        (PutMode::Create, Some(_)) => return Err(StoreError::ScheduleExists(def.name.clone())),
        (PutMode::Update, None) => return Err(StoreError::ScheduleNotFound(def.name.clone())),
        _ => {}
    }
    check_builtin_edit(existing.as_ref(), def)?;
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
async fn delete_schedule_on(
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
struct Fired {
    outcome: FireOutcome,
    /// The running previous run that `replace` asked to cancel.
    cancel_signalled: Option<Uuid>,
    /// The queue of the new run, when it is due at once.
    wake: Vec<String>,
}

/// [`ScheduleStore::fire_schedule`](longshore_core::ScheduleStore::fire_schedule) on `conn`, in one transaction: the schedule and
/// its previous run as read under the write lock, the overlap rules
/// ([`plan_fire`], shared with the other engines), then their writes.
async fn fire_on(conn: &mut sqlx::SqliteConnection, fire: &Fire) -> Result<Fired, StoreError> {
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
            match sqlx::query(sql::TASK_STATE)
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
                    TaskState::Scheduled | TaskState::Queued => sql::CANCEL_WAITING,
                    TaskState::Running => {
                        cancel_signalled = Some(id);
                        sql::CANCEL_RUNNING
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
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        migrate::run(&self.file.writer).await
    }

    fn schema_version(&self) -> i32 {
        latest_version()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM longshore_migrations LIMIT 1")
            .execute(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn listen(&self) -> Result<Option<Box<dyn EventSource>>, StoreError> {
        if self.poll_only {
            return Ok(None);
        }
        Ok(Some(Box::new(SqliteEvents {
            receiver: self.file.events.subscribe(),
        })))
    }
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
            .map(|&(id, attempt)| HeldJson { id, attempt })
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
            let attempt: i64 = row.try_get("attempt").map_err(from_sqlx)?;
            let state: String = row.try_get("state").map_err(from_sqlx)?;
            if state == TaskState::Queued.as_str() {
                requeued.push(row.try_get::<String, _>("queue").map_err(from_sqlx)?);
            }
            logs.push(LogEntry {
                task_id: row::uuid(&id)?,
                attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
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
        row.as_ref().map(row::task).transpose()
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
        rows.iter().map(row::task).collect()
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
        let states = selection.effective_states();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let statement = selection_sql(selection, &states).count();
        let rows = bind_selection(sqlx::query(&statement), selection, now_us())
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?;
        let mut counts = rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(from_sqlx)?;
                Ok((
                    row::state(&state)?,
                    row.try_get::<i64, _>("n").map_err(from_sqlx)?,
                ))
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
        // The triggers update the totals in place (migration 9).
        Ok(0)
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

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn worker_seen(&self, worker: &WorkerPresence) -> Result<(), StoreError> {
        sqlx::query(sql::WORKER_SEEN)
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(&worker.version)
            .bind(to_json(&worker.queues)?)
            .bind(worker.concurrency)
            .bind(worker.running)
            .bind(now_us())
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
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
                    },
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

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        secret_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        TokenInfo::check_name(name)?;
        longshore_core::token::check_hash(secret_hash)?;
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::CREATE_TOKEN)
            .bind(Uuid::now_v7().to_string())
            .bind(name)
            .bind(scope.as_str())
            .bind(secret_hash)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenExists(name.to_owned()))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        sqlx::query(sql::TOKENS)
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(row::token)
            .collect()
    }

    async fn revoke_token(&self, name: &str) -> Result<TokenInfo, StoreError> {
        let mut conn = self.durable_writer().await?;
        let result = sqlx::query(sql::REVOKE_TOKEN)
            .bind(name)
            .bind(now_us())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx);
        self.restore(conn).await;
        result?
            .as_ref()
            .map(row::token)
            .transpose()?
            .ok_or_else(|| StoreError::TokenNotFound(name.to_owned()))
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(mut token) = sqlx::query(sql::TOKEN_BY_HASH)
            .bind(secret_hash)
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(row::token)
            .transpose()?
        else {
            return Ok(None);
        };
        let now = now_us();
        let stale_before = now.saturating_sub(micros(TokenInfo::LAST_USED_PRECISION));
        if token
            .last_used_at
            .is_none_or(|at| at.timestamp_micros() < stale_before)
        {
            // Not durable: losing the last use to a machine crash is harmless.
            match sqlx::query(sql::TOUCH_TOKEN)
                .bind(token.id.to_string())
                .bind(now)
                .bind(stale_before)
                .execute(&self.file.writer)
                .await
            {
                Ok(done) if done.rows_affected() > 0 => {
                    token.last_used_at = Some(row::time(now)?);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(token = %token.name, error = %e, "cannot record a token's use");
                }
            }
        }
        Ok(Some(token))
    }
}

/// This process's events.
struct SqliteEvents {
    receiver: broadcast::Receiver<StoreEvent>,
}

#[async_trait]
impl EventSource for SqliteEvents {
    async fn recv(&mut self) -> Result<StoreEvent, StoreError> {
        match self.receiver.recv().await {
            Ok(event) => Ok(event),
            // Events were dropped: the caller polls, then listens again
            // (the receiver goes on from the oldest event still held).
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(StoreError::Unavailable(
                format!("missed {missed} events while busy"),
            )),
            Err(broadcast::error::RecvError::Closed) => {
                Err(StoreError::Unavailable("the store was dropped".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails because the disk is full is reported as worth
    /// retrying, writes nothing, and the store goes on writing once there
    /// is room.
    #[tokio::test]
    async fn a_full_disk_is_a_transient_error_and_writes_resume() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let store = SqliteStore::open(dir.path().join("t.db"), &SqliteOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        // "The disk is full": the write connection may not grow the file.
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&store.file.writer)
            .await
            .expect("page count");
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&store.file.writer)
            .await
            .expect("limit the file");
        let big: Vec<NewTask> = (0..2000)
            .map(|i| NewTask::new("a", serde_json::json!({ "pad": "x".repeat(200), "i": i })))
            .collect();
        let full = store.enqueue(big).await;
        assert!(
            matches!(&full, Err(e) if e.is_transient()),
            "a full disk is worth retrying: {full:?}"
        );
        assert_eq!(
            store.stats(StatsKey::State).await.expect("stats"),
            Vec::new()
        );
        // There is room again.
        sqlx::query("PRAGMA max_page_count = 1073741823")
            .execute(&store.file.writer)
            .await
            .expect("lift the limit");
        let id = store
            .enqueue(vec![NewTask::new("a", serde_json::json!({}))])
            .await
            .expect("enqueue after the failure")[0]
            .id;
        let claim = Claim {
            owner: "w".into(),
            queues: vec!["default".into()],
            limit: 10,
            lease: Duration::from_secs(30),
            capped: false,
        };
        assert_eq!(store.claim(&claim).await.expect("claim").len(), 1);
        assert!(
            store
                .retry(id)
                .await
                .is_err_and(|e| matches!(e, StoreError::InvalidState { .. }))
        );
        assert_eq!(
            store
                .stats(StatsKey::State)
                .await
                .expect("stats")
                .iter()
                .map(|r| r.count)
                .sum::<i64>(),
            1
        );
    }
}
