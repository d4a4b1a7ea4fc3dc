//! Shared test harness: every test gets its own freshly migrated
//! PostgreSQL database, dropped when the test ends (even by panic).
//!
//! The server is `LONGSHORE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` makes sure
//! one is running.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longshore::postgres::{PgOptions, PgStore};
use longshore::{
    Actor, NewTask, Registry, Store, TaskContext, TaskError, TaskRow, TaskState, Worker,
    WorkerConfig, WorkerHandle,
};
use longshore_testing::ScratchDb;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// A database of its own for one test, migrated, with a store on it.
/// The database is dropped when this value is (even by panic).
pub struct TestDb {
    pub store: PgStore,
    /// What tests read the database through: a pool of its own with sqlx's
    /// default ping-on-checkout, so that it survives the connection cuts
    /// some tests make on purpose (the store under test does not ping).
    pub observer: PgPool,
    // Declared last: dropped after the store's pool handle.
    pub scratch: ScratchDb,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let scratch = ScratchDb::create().await;
        let store = PgStore::connect_with(scratch.options(), &PgOptions::default())
            .await
            .expect("connect to test database");
        store.migrate_verbose().await.expect("migrate");
        let observer = PgPool::connect_with(scratch.options())
            .await
            .expect("connect the observer pool");
        TestDb {
            store,
            observer,
            scratch,
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    pub async fn task(&self, id: Uuid) -> TaskRow {
        self.store
            .task(id)
            .await
            .expect("read task")
            .expect("task exists")
    }

    pub async fn count(&self, state: TaskState) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM longshore_tasks WHERE state::text = $1")
            .bind(state.as_str())
            .fetch_one(&self.observer)
            .await
            .expect("count")
    }

    pub async fn total(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM longshore_tasks")
            .fetch_one(&self.observer)
            .await
            .expect("count")
    }

    /// A worker on this database with quick test timings.
    pub fn worker(&self, registry: Registry, config: WorkerConfig) -> WorkerHandle {
        Worker::new(self.store(), registry, config)
            .expect("valid worker config")
            .start()
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

impl TestDb {
    /// A second, independent connection pool on this test's database: what
    /// another node of the cluster would have.
    pub async fn other_store(&self) -> PgStore {
        PgStore::connect_with(self.scratch.options(), &PgOptions::default())
            .await
            .expect("connect a second pool")
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

    /// The process ids of the backends [`TestDb::listening_backends`] counts.
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

    /// How many tasks are in `running` state.
    pub async fn running(&self) -> i64 {
        self.count(TaskState::Running).await
    }
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
