//! Shared test harness: every test gets its own freshly migrated database
//! on the engine under test, dropped when the test ends (even by panic).
//!
//! One conformance suite, written once, runs against every engine: tests
//! written inside [`conformance!`] are generated once per engine (as
//! `postgres::<name>`, and later `sqlite::<name>`) and may use only the
//! engine-generic part of [`TestDb`]. The few tests that are about
//! PostgreSQL itself use [`TestDb::postgres`] and [`TestDb::pg`].
//!
//! The PostgreSQL server is `LONGSHORE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` makes sure
//! one is running.

#![allow(dead_code, unreachable_pub, unused_macros)]

/// Generates each test once per engine:
///
/// ```ignore
/// conformance! {
///     #[tokio::test]
///     async fn a_task_runs(db) { /* uses db: TestDb */ }
/// }
/// ```
///
/// expands to `mod postgres { use super::*; #[tokio::test] async fn
/// a_task_runs() { let db = TestDb::new(Engine::Postgres).await; ... } }`.
/// Helpers used by the tests live at file level and take `&TestDb`.
macro_rules! conformance {
    ($($tests:tt)*) => {
        conformance_for_engine! { postgres, Postgres, $($tests)* }
        conformance_for_engine! { sqlite, Sqlite, $($tests)* }
    };
}

/// One engine's module of [`conformance!`] tests.
macro_rules! conformance_for_engine {
    (
        $module:ident, $engine:ident,
        $(
            $(#[$($attr:tt)*])*
            async fn $name:ident($db:ident) $body:block
        )*
    ) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$($attr)*])*
                async fn $name() {
                    let $db = $crate::common::TestDb::new($crate::common::Engine::$engine).await;
                    $body
                }
            )*
        }
    };
}

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use longshore::postgres::{PgOptions, PgStore};
use longshore::sqlite::{SqliteOptions, SqliteStore};
use longshore::{
    Actor, NewTask, Registry, Store, TaskContext, TaskError, TaskRow, TaskState, Worker,
    WorkerConfig, WorkerHandle,
};
use longshore_testing::ScratchDb;
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};
use uuid::Uuid;

pub use longshore_testing::Engine;

/// A database of its own for one test, migrated, with a store on it.
/// The database is dropped when this value is (even by panic).
pub struct TestDb {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Raw access to the database, beside the store under test.
    observer: Observer,
    // Declared last: dropped after the pool handles above.
    backend: Backend,
}

/// What each engine needs besides the store under test.
enum Backend {
    Postgres(Pg),
    Sqlite(Lite),
}

/// The SQLite side of a [`TestDb`]: a file in a directory of its own.
pub struct Lite {
    /// The store under test, as its concrete type.
    pub store: SqliteStore,
    // Declared last: removed after the store's connections are dropped.
    dir: tempfile::TempDir,
}

impl Lite {
    async fn create() -> (Lite, SqlitePool) {
        let dir = longshore_testing::scratch_dir();
        let path = dir.path().join("longshore.db");
        let store = SqliteStore::open(&path, &SqliteOptions::default())
            .await
            .expect("open the test database");
        store.migrate().await.expect("migrate");
        let observer = longshore_testing::sqlite_pool(&path).await;
        (Lite { store, dir }, observer)
    }

    /// The database file.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("longshore.db")
    }
}

/// The PostgreSQL side of a [`TestDb`], for the tests that are about
/// PostgreSQL itself.
pub struct Pg {
    /// The store under test, as its concrete type.
    pub store: PgStore,
    /// A pool of its own with sqlx's default ping-on-checkout, so that it
    /// survives the connection cuts some tests make on purpose (the store
    /// under test does not ping).
    pub observer: PgPool,
    // Declared last: dropped after the store's and the observer's pools.
    scratch: ScratchDb,
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

impl TestDb {
    /// A fresh, migrated database on `engine`.
    pub async fn new(engine: Engine) -> TestDb {
        init_tracing();
        match engine {
            Engine::Postgres => {
                let pg = Pg::create().await;
                TestDb {
                    store: Arc::new(pg.store.clone()),
                    observer: Observer::Postgres(pg.observer.clone()),
                    backend: Backend::Postgres(pg),
                }
            }
            Engine::Sqlite => {
                let (lite, observer) = Lite::create().await;
                TestDb {
                    store: Arc::new(lite.store.clone()),
                    observer: Observer::Sqlite(observer),
                    backend: Backend::Sqlite(lite),
                }
            }
        }
    }

    /// A fresh PostgreSQL database, for the tests that are about
    /// PostgreSQL itself.
    pub async fn postgres() -> TestDb {
        TestDb::new(Engine::Postgres).await
    }

    /// Which engine this database runs on.
    pub fn engine(&self) -> Engine {
        match &self.backend {
            Backend::Postgres(_) => Engine::Postgres,
            Backend::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// The PostgreSQL side; panics on any other engine. Only for the tests
    /// outside `conformance!`.
    pub fn pg(&self) -> &Pg {
        match &self.backend {
            Backend::Postgres(pg) => pg,
            Backend::Sqlite(_) => panic!("a PostgreSQL-only test ran on {:?}", self.engine()),
        }
    }

    /// The store under test.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Raw access to this database beside the store under test; cheap to
    /// clone, e.g. into spawned tasks.
    pub fn observer(&self) -> Observer {
        self.observer.clone()
    }

    /// A second, independent store on this test's database: what another
    /// node (or process) would have. For PostgreSQL a pool of its own.
    pub async fn other_store(&self) -> Arc<dyn Store> {
        match &self.backend {
            Backend::Postgres(pg) => Arc::new(
                PgStore::connect_with(pg.scratch.options(), &PgOptions::default())
                    .await
                    .expect("connect a second pool"),
            ),
            // Another store on the same file: in this process it shares the
            // file's event channel, as a second process would not.
            Backend::Sqlite(lite) => Arc::new(
                SqliteStore::open(lite.path(), &SqliteOptions::default())
                    .await
                    .expect("open a second store"),
            ),
        }
    }

    /// The store under test in poll-only mode: it never listens for
    /// events and learns of work by polling alone.
    pub async fn poll_only_store(&self) -> Arc<dyn Store> {
        match &self.backend {
            Backend::Postgres(pg) => Arc::new(pg.store.clone().with_poll_only(true)),
            Backend::Sqlite(lite) => Arc::new(lite.store.clone().with_poll_only(true)),
        }
    }

    /// How many event listeners on this database are active (for
    /// PostgreSQL: backends that are LISTENing).
    pub async fn listeners(&self) -> i64 {
        match &self.backend {
            Backend::Postgres(pg) => pg.listening_backends().await,
            Backend::Sqlite(lite) => i64::try_from(lite.store.listeners()).unwrap_or(i64::MAX),
        }
    }

    pub async fn task(&self, id: Uuid) -> TaskRow {
        self.store
            .task(id)
            .await
            .expect("read task")
            .expect("task exists")
    }

    /// Inserts `tasks` through the store; returns their ids.
    pub async fn enqueue(&self, tasks: Vec<NewTask>) -> Vec<Uuid> {
        self.store
            .enqueue(tasks)
            .await
            .expect("enqueue")
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    /// Inserts one task; returns its id.
    pub async fn enqueue_one(&self, task: NewTask) -> Uuid {
        self.enqueue(vec![task]).await[0]
    }

    /// A worker on this database with quick test timings.
    pub fn worker(&self, registry: Registry, config: WorkerConfig) -> WorkerHandle {
        start_worker(self.store(), registry, config)
    }

    /// How many tasks are in `state` (read by the observer).
    pub async fn count(&self, state: TaskState) -> i64 {
        self.observer.count(state).await
    }

    /// How many tasks there are (read by the observer).
    pub async fn total(&self) -> i64 {
        self.observer.total().await
    }

    /// How many tasks are in `running` state.
    pub async fn running(&self) -> i64 {
        self.count(TaskState::Running).await
    }

    /// See [`Observer::state_counts`].
    pub async fn state_counts(&self) -> HashMap<TaskState, i64> {
        self.observer.state_counts().await
    }

    /// See [`Observer::ids`].
    pub async fn ids(&self) -> Vec<Uuid> {
        self.observer.ids().await
    }

    /// See [`Observer::attempts`].
    pub async fn attempts(&self) -> Vec<(Uuid, i32)> {
        self.observer.attempts().await
    }

    /// See [`Observer::running_owners`].
    pub async fn running_owners(&self) -> Vec<(Uuid, Option<String>)> {
        self.observer.running_owners().await
    }

    /// See [`Observer::delete_task`].
    pub async fn delete_task(&self, id: Uuid) {
        self.observer.delete_task(id).await;
    }

    /// See [`Observer::backdate_finished`].
    pub async fn backdate_finished(&self, id: Uuid, finished_at: DateTime<Utc>) {
        self.observer.backdate_finished(id, finished_at).await;
    }

    /// See [`Observer::backdate_created`].
    pub async fn backdate_created(&self, id: Uuid, created_at: DateTime<Utc>) {
        self.observer.backdate_created(id, created_at).await;
    }

    /// See [`Observer::set_lease`].
    pub async fn set_lease(&self, id: Uuid, owner: &str, expires_at: DateTime<Utc>) {
        self.observer.set_lease(id, owner, expires_at).await;
    }

    /// See [`Observer::groups`].
    pub async fn groups(&self) -> std::collections::BTreeMap<(String, String, TaskState), i64> {
        self.observer.groups().await
    }
}

/// Raw access to a test's database that bypasses the store under test
/// (and keeps working while the store's own connections are being cut).
/// Table and column names are the same on every engine.
#[derive(Clone)]
pub enum Observer {
    /// A pool of its own with sqlx's default ping-on-checkout.
    Postgres(PgPool),
    /// A pool of its own on the file (ids are TEXT, times INTEGER µs).
    Sqlite(SqlitePool),
}

impl Observer {
    /// Runs `statement` (the same text on every engine) as is.
    pub async fn execute(&self, statement: &str) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::raw_sql(statement)
                    .execute(pool)
                    .await
                    .expect(statement);
            }
            Observer::Sqlite(pool) => {
                sqlx::raw_sql(statement)
                    .execute(pool)
                    .await
                    .expect(statement);
            }
        }
    }

    /// A recount of the tasks by (queue, actor, state), read from the
    /// tasks table itself (what the store's stats must agree with).
    pub async fn groups(&self) -> std::collections::BTreeMap<(String, String, TaskState), i64> {
        let rows: Vec<(String, String, String, i64)> = match self {
            Observer::Postgres(pool) => sqlx::query_as(
                "SELECT queue, actor, state::text, count(*) FROM longshore_tasks GROUP BY 1, 2, 3",
            )
            .fetch_all(pool)
            .await
            .expect("recount"),
            Observer::Sqlite(pool) => sqlx::query_as(
                "SELECT queue, actor, state, count(*) FROM longshore_tasks GROUP BY 1, 2, 3",
            )
            .fetch_all(pool)
            .await
            .expect("recount"),
        };
        rows.into_iter()
            .map(|(queue, actor, state, n)| {
                ((queue, actor, state.parse().expect("a known state")), n)
            })
            .collect()
    }

    /// How many tasks are in `state`.
    pub async fn count(&self, state: TaskState) -> i64 {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM longshore_tasks WHERE state::text = $1")
                    .bind(state.as_str())
                    .fetch_one(pool)
                    .await
                    .expect("count")
            }
            Observer::Sqlite(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM longshore_tasks WHERE state = ?1")
                    .bind(state.as_str())
                    .fetch_one(pool)
                    .await
                    .expect("count")
            }
        }
    }

    /// How many tasks there are.
    pub async fn total(&self) -> i64 {
        match self {
            Observer::Postgres(pool) => sqlx::query_scalar("SELECT count(*) FROM longshore_tasks")
                .fetch_one(pool)
                .await
                .expect("count"),
            Observer::Sqlite(pool) => sqlx::query_scalar("SELECT count(*) FROM longshore_tasks")
                .fetch_one(pool)
                .await
                .expect("count"),
        }
    }

    /// How many tasks are in each state, read in one statement (one
    /// consistent snapshot); states without tasks are absent.
    pub async fn state_counts(&self) -> HashMap<TaskState, i64> {
        let rows: Vec<(String, i64)> = match self {
            Observer::Postgres(pool) => {
                sqlx::query_as("SELECT state::text, count(*) FROM longshore_tasks GROUP BY state")
                    .fetch_all(pool)
                    .await
                    .expect("count by state")
            }
            Observer::Sqlite(pool) => {
                sqlx::query_as("SELECT state, count(*) FROM longshore_tasks GROUP BY state")
                    .fetch_all(pool)
                    .await
                    .expect("count by state")
            }
        };
        rows.into_iter()
            .map(|(state, n)| (state.parse().expect("a known state"), n))
            .collect()
    }

    /// The id of every task.
    pub async fn ids(&self) -> Vec<Uuid> {
        match self {
            Observer::Postgres(pool) => sqlx::query_scalar("SELECT id FROM longshore_tasks")
                .fetch_all(pool)
                .await
                .expect("read ids"),
            Observer::Sqlite(pool) => {
                let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM longshore_tasks")
                    .fetch_all(pool)
                    .await
                    .expect("read ids");
                ids.iter().map(|id| id.parse().expect("a UUID")).collect()
            }
        }
    }

    /// The id and attempt of every task.
    pub async fn attempts(&self) -> Vec<(Uuid, i32)> {
        match self {
            Observer::Postgres(pool) => sqlx::query_as("SELECT id, attempt FROM longshore_tasks")
                .fetch_all(pool)
                .await
                .expect("read attempts"),
            Observer::Sqlite(pool) => {
                let rows: Vec<(String, i32)> =
                    sqlx::query_as("SELECT id, attempt FROM longshore_tasks")
                        .fetch_all(pool)
                        .await
                        .expect("read attempts");
                rows.into_iter()
                    .map(|(id, attempt)| (id.parse().expect("a UUID"), attempt))
                    .collect()
            }
        }
    }

    /// The id and lease owner of every task in `running` state.
    pub async fn running_owners(&self) -> Vec<(Uuid, Option<String>)> {
        match self {
            Observer::Postgres(pool) => sqlx::query_as(
                "SELECT id, lease_owner FROM longshore_tasks WHERE state = 'running'",
            )
            .fetch_all(pool)
            .await
            .expect("read running tasks"),
            Observer::Sqlite(pool) => {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT id, lease_owner FROM longshore_tasks WHERE state = 'running'",
                )
                .fetch_all(pool)
                .await
                .expect("read running tasks");
                rows.into_iter()
                    .map(|(id, owner)| (id.parse().expect("a UUID"), owner))
                    .collect()
            }
        }
    }

    /// Deletes task `id` by hand, behind the store's back.
    pub async fn delete_task(&self, id: Uuid) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query("DELETE FROM longshore_tasks WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .expect("delete task");
            }
            Observer::Sqlite(pool) => {
                sqlx::query("DELETE FROM longshore_tasks WHERE id = ?1")
                    .bind(id.to_string())
                    .execute(pool)
                    .await
                    .expect("delete task");
            }
        }
    }

    /// Makes finished task `id` look finished at `finished_at`, behind the
    /// store's back.
    pub async fn backdate_finished(&self, id: Uuid, finished_at: DateTime<Utc>) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query("UPDATE longshore_tasks SET finished_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(finished_at)
                    .execute(pool)
                    .await
                    .expect("backdate");
            }
            Observer::Sqlite(pool) => {
                sqlx::query("UPDATE longshore_tasks SET finished_at = ?2 WHERE id = ?1")
                    .bind(id.to_string())
                    .bind(finished_at.timestamp_micros())
                    .execute(pool)
                    .await
                    .expect("backdate");
            }
        }
    }

    /// Makes task `id` look created at `created_at`, behind the store's
    /// back.
    pub async fn backdate_created(&self, id: Uuid, created_at: DateTime<Utc>) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query("UPDATE longshore_tasks SET created_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(created_at)
                    .execute(pool)
                    .await
                    .expect("backdate");
            }
            Observer::Sqlite(pool) => {
                sqlx::query("UPDATE longshore_tasks SET created_at = ?2 WHERE id = ?1")
                    .bind(id.to_string())
                    .bind(created_at.timestamp_micros())
                    .execute(pool)
                    .await
                    .expect("backdate");
            }
        }
    }

    /// Hands task `id`'s lease to `owner` until `expires_at`, behind the
    /// store's back (as after a rescue and a new claim by another worker).
    pub async fn set_lease(&self, id: Uuid, owner: &str, expires_at: DateTime<Utc>) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query(
                    "UPDATE longshore_tasks SET lease_owner = $2, lease_expires_at = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(owner)
                .bind(expires_at)
                .execute(pool)
                .await
                .expect("set lease");
            }
            Observer::Sqlite(pool) => {
                sqlx::query(
                    "UPDATE longshore_tasks SET lease_owner = ?2, lease_expires_at = ?3
                     WHERE id = ?1",
                )
                .bind(id.to_string())
                .bind(owner)
                .bind(expires_at.timestamp_micros())
                .execute(pool)
                .await
                .expect("set lease");
            }
        }
    }
}

impl Pg {
    async fn create() -> Pg {
        let scratch = ScratchDb::create().await;
        let store = PgStore::connect_with(scratch.options(), &PgOptions::default())
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate");
        let observer = PgPool::connect_with(scratch.options())
            .await
            .expect("connect the observer pool");
        Pg {
            store,
            observer,
            scratch,
        }
    }

    /// Backends of this database (other than the caller's) that are
    /// listening for notifications, judged by their last statement.
    pub async fn listening_backends(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&self.observer)
        .await
        .expect("read pg_stat_activity")
    }

    /// The process ids of the backends [`Pg::listening_backends`] counts.
    pub async fn listening_pids(&self) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&self.observer)
        .await
        .expect("read pg_stat_activity")
    }

    /// Ends every other backend of this database, from a connection of its
    /// own; returns how many were ended.
    pub async fn terminate_other_backends(&self) -> i64 {
        let mut conn = PgConnection::connect_with(&self.scratch.options())
            .await
            .expect("connect to terminate backends");
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("terminate backends");
        let _ = conn.close().await;
        ended
    }
}

/// Worker settings with short timings so that tests finish quickly.
pub fn quick_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        lease: Duration::from_secs(2),
        heartbeat: Duration::from_millis(300),
        idle_min: Duration::from_millis(20),
        idle_max: Duration::from_millis(200),
        drain_timeout: Duration::from_secs(5),
        cancel_grace: Duration::from_secs(1),
        maintenance_interval: Duration::from_millis(200),
        retry: longshore::RetryPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        ..WorkerConfig::default()
    }
}

/// [`quick_config`] with polling every 30 s and a 60 s listen timeout:
/// polling cannot explain anything such a worker does within seconds, so a
/// quick pick-up shows that it was woken.
pub fn slow_poll_config() -> WorkerConfig {
    WorkerConfig {
        idle_min: Duration::from_secs(30),
        idle_max: Duration::from_secs(30),
        listen_timeout: Duration::from_secs(60),
        ..quick_config()
    }
}

/// Waits until `check` returns `Some`, polling; panics with `what` after
/// `deadline`. Tests wait on conditions, never on fixed sleeps.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until task `id` is in `state`.
pub async fn wait_state(db: &TestDb, id: Uuid, state: TaskState) -> TaskRow {
    wait_for(
        &format!("task {id} to be {state}"),
        Duration::from_secs(20),
        || async {
            let task = db.task(id).await;
            (task.state == state).then_some(task)
        },
    )
    .await
}

/// Waits until `n` tasks are in `state`.
pub async fn wait_count(db: &TestDb, state: TaskState, n: i64, deadline: Duration) {
    wait_for(&format!("{n} tasks to be {state}"), deadline, || async {
        (db.count(state).await == n).then_some(())
    })
    .await;
}

/// A worker on any store (e.g. a pool of its own).
pub fn start_worker(
    store: Arc<dyn Store>,
    registry: Registry,
    config: WorkerConfig,
) -> WorkerHandle {
    Worker::new(store, registry, config)
        .expect("valid worker config")
        .start()
}

/// `n` tasks for `actor` with empty arguments.
pub fn tasks(actor: &str, n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new(actor, serde_json::json!({ "n": i })))
        .collect()
}

/// A task for `actor` with empty arguments.
pub fn task(actor: &str) -> NewTask {
    NewTask::new(actor, serde_json::json!({}))
}

/// How many times each task's handler was entered.
#[derive(Clone, Debug, Default)]
pub struct Runs(Arc<Mutex<HashMap<Uuid, usize>>>);

impl Runs {
    pub fn new() -> Runs {
        Runs::default()
    }

    /// Records one execution of `id`; returns how many there have been.
    pub fn record(&self, id: Uuid) -> usize {
        let mut map = self.0.lock().expect("runs lock");
        let n = map.entry(id).or_insert(0);
        *n += 1;
        *n
    }

    pub fn of(&self, id: Uuid) -> usize {
        self.0
            .lock()
            .expect("runs lock")
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> HashMap<Uuid, usize> {
        self.0.lock().expect("runs lock").clone()
    }

    pub fn total(&self) -> usize {
        self.0.lock().expect("runs lock").values().sum()
    }
}

/// An actor made of a closure, so that a test's handler can share state
/// with the test.
pub struct FnActor<F>(pub F);

#[async_trait::async_trait]
impl<F, Fut> Actor for FnActor<F>
where
    F: Fn(serde_json::Value, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
{
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        (self.0)(args, ctx).await
    }
}

/// A registry with one actor, `name`, that records its executions in
/// `runs` and succeeds.
pub fn counting_registry(name: &str, runs: &Runs) -> Registry {
    let runs = runs.clone();
    let mut registry = Registry::new();
    registry.register_actor(
        name,
        FnActor(move |_args, ctx: TaskContext| {
            runs.record(ctx.task_id());
            async { Ok(()) }
        }),
    );
    registry
}

/// A registry with one closure actor.
pub fn registry_with<F, Fut>(name: &str, f: F) -> Registry
where
    F: Fn(serde_json::Value, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
{
    let mut registry = Registry::new();
    registry.register_actor(name, FnActor(f));
    registry
}
