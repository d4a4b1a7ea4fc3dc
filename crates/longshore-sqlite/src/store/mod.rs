//! [`SqliteStore`]: the connection, its options, and the engine's own calls
//! (migrations, ping, the event stream); each noun of the storage
//! interface is implemented in a file of its own, with its SQL beside it:
//!
//! | noun | file | statements |
//! |---|---|---|
//! | tasks | `tasks.rs` | `tasks/sql.rs` |
//! | task counts | `counts.rs` | `counts/sql.rs` |
//! | queues and caps | `queues.rs` | `queues/sql.rs` |
//! | worker nodes and roles | `cluster.rs` | `cluster/sql.rs` |
//! | schedules | `schedules.rs` | `schedules/sql.rs` |
//! | API tokens and dashboard sessions | `tokens.rs` | `tokens/sql.rs` |
//! | the audit trail | `audit.rs` | `audit/sql.rs` |
//! | agent pools and agent tokens | `agents.rs` | `agents/sql.rs` |

mod agents;
mod audit;
mod cluster;
mod counts;
mod operations;
mod queues;
mod schedules;
pub(crate) mod tasks;
mod tokens;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use longshore_core::schedule::{FireWrite, plan_fire};
use longshore_core::{
    AgentPresence, AuditEntry, AuditStore, CancelResult, Claim, ClusterSettings, ClusterStore,
    Completion, CountStore, Dialect, EnqueueResult, EventSource, Fire, FireKind, FireOutcome,
    Heartbeat, Leadership, LogEntry, MinuteRow, NewAuditEntry, NewTask, PutMode, QueueSettings,
    QueueStore, Schedule, ScheduleDef, ScheduleStore, Session, StatsKey, StatsRow, Store,
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

use crate::error::{from_sqlx, is_busy};
use crate::migrate::{self, latest_version};
use crate::row::{self, micros, now_us};

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
pub(crate) const EVENT_CAPACITY: usize = 1024;

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
pub(crate) struct File {
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
pub(crate) fn open_files() -> &'static tokio::sync::Mutex<HashMap<PathBuf, Weak<File>>> {
    static FILES: OnceLock<tokio::sync::Mutex<HashMap<PathBuf, Weak<File>>>> = OnceLock::new();
    FILES.get_or_init(tokio::sync::Mutex::default)
}

/// `path` spelled one way whatever way it was given (the file itself need
/// not exist yet; its directory must).
pub(crate) fn canonical(path: &Path) -> PathBuf {
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
        // arrive, and a wrong path fails here with SQLite's reason. Switching
        // to WAL takes the file's exclusive lock, and when several processes
        // open a new file at once SQLite answers "locked" at once rather
        // than wait (two connections each holding a shared lock and wanting
        // the exclusive one would otherwise deadlock): so a locked file is
        // tried again until the busy timeout has passed.
        let deadline = tokio::time::Instant::now() + options.busy_timeout;
        let mut pause = Duration::from_millis(5);
        let writer = loop {
            let attempt = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .connect_with(connect.clone())
                .await;
            match attempt {
                Err(e) if is_busy(&e) && tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => break other.map_err(unavailable)?,
            }
        };
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
}

/// Parses a `sqlite://PATH` or `sqlite:PATH` URL, with an error that says so.
pub fn parse_url(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    SqliteConnectOptions::from_str(url).map_err(|e| {
        StoreError::InvalidInput(format!("database URL is not a valid SQLite URL: {e}"))
    })
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidInput(format!("cannot encode parameters: {e}")))
}

pub(crate) fn opt_micros(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|at| at.timestamp_micros())
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

/// This process's events.
pub(crate) struct SqliteEvents {
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
            pool: None,
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
