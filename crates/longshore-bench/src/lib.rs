//! Longshore's benchmark, `longshore bench`: throughput and latency, measured the way the peers
//! are measured, on a scratch database this command creates and drops: a
//! PostgreSQL database on the configured server, or a SQLite file in a
//! temporary directory when the configured engine is SQLite (the default).
//!
//! - A, bulk: insert N tasks in chunks of 1,000, then time one worker
//!   (concurrency 16) until all are recorded as succeeded.
//! - B, latency: an idle, listening worker; tasks enqueued one at a time at
//!   a fixed interval; enqueue-call-to-handler-start percentiles, and the
//!   enqueue and pickup parts of them (see `latency.rs`).
//! - C, steady state: one producer enqueues single tasks back to back for a
//!   while as the worker consumes; sustained rates and the final backlog.
//! - E, far backlog (not run by default): many tasks due next week; the
//!   cost of a claim that finds nothing due, which an idle worker pays on
//!   every poll.
//! - D, memory (not run by default): a worker over a large backlog; the
//!   process's peak resident memory.
//! - F, history (not run by default): the operator's reads — stats, the
//!   queue list, first pages of the task list — through the HTTP API over
//!   millions of finished and queued tasks (see `history.rs`).
//! - G, through an agent (not run by default): A and B again, each through
//!   one agent connected to a gateway in this process; run with A and B
//!   (`--workloads a,b,g`) to see the ratios (see `agents.rs`).
//! - H, idle agents (not run by default): many agents connected and idle;
//!   what they cost the database and the process (see `agents.rs`).
//! - P, through a Python agent (not run by default): A again, through one
//!   agent of the Python SDK in a process of its own (`--python` names the
//!   interpreter that has `longshore_agent` installed); run with a and g
//!   to see it beside the inline worker and the Rust agent.
//!
//! - M, many producers (not run by default): concurrent producers each
//!   enqueueing single tasks back to back, with the client's gathering
//!   off and then on; enqueues/s and call-to-answer percentiles (see
//!   `producers.rs`).
//!
//! - S, scale-out (not run by default): A's backlog drained by 1, 2 and 4
//!   `longshore worker` processes of this binary (`--processes`), and
//!   with `--agents` by `longshore agent` processes through a gateway in
//!   this process; aggregate tasks/s per count (see `scale.rs`).
//!
//! - K, concurrency curve (not run by default): A again at each of
//!   `--concurrencies`, one inline worker; tasks/s per concurrency.
//!
//! - U, a directory sync (not run by default): the scaling scenario of
//!   docs/operations.md, one `http` task per user against a stand-in
//!   directory in this process, drained by each of `--layouts` (see
//!   `scenario.rs`).
//!
//! - W, churn (not run by default, runs alone): A and B on a fresh table,
//!   then `--churn-tasks` through the queue with a purger deleting what
//!   succeeds, then A and B again; the ratios (see `churn.rs`).
//!
//! `--chart` draws K's and S's curves as SVG (see `chart.rs`).
//!
//! Handlers do nothing but record when they started.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use longshore::postgres::{PgOptions, PgStore};
use longshore::sqlite::{SqliteOptions, SqliteStore};
use longshore::{
    Actor, NewTask, Registry, Store, TaskContext, TaskError, Worker, WorkerConfig, WorkerHandle,
};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use longshore_server::database::{DATA_FILE, Database, redact};
use longshore_server::settings::Settings;

mod agents;
pub mod chart;
mod churn;
pub mod compare;
mod cpu;
mod history;
mod latency;
mod producers;
mod report;
mod scale;
mod scenario;

use crate::agents::{BenchGateway, RunningAgent};
use crate::history::Filler;
use crate::latency::latency;
pub use crate::report::Report;
use crate::report::{
    AgentReport, BulkReport, ConcurrencyReport, ConcurrencyRun, FarBacklogReport, MemoryReport,
    SteadyReport,
};
use crate::scale::Target;
pub use crate::scenario::Layout;

/// What to run, and how big: the `longshore bench` flags, whose help
/// gives each default.
#[derive(Clone, Debug)]
pub struct Options {
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// A: tasks to insert and process.
    pub bulk_tasks: usize,
    /// Worker concurrency for every workload.
    pub concurrency: usize,
    /// Tasks each worker and agent claims ahead of its free slots.
    pub prefetch: longshore::Prefetch,
    /// B: tasks to enqueue one at a time.
    pub latency_tasks: usize,
    /// B: time between two enqueues.
    pub latency_interval: Duration,
    /// C: how long the producer runs.
    pub steady_duration: Duration,
    /// D and E: backlog size.
    pub backlog_tasks: usize,
    /// D: how long the worker runs over the backlog.
    pub backlog_duration: Duration,
    /// F: finished tasks in the history.
    pub history_finished: i64,
    /// F: queued tasks in the history.
    pub history_queued: i64,
    /// H: agents connected.
    pub idle_agents: usize,
    /// H: how long they are watched idle.
    pub idle_duration: Duration,
    /// S: the worker process counts to drain a backlog with.
    pub processes: Vec<usize>,
    /// S: the agent process counts to drain it with, through a gateway.
    pub agents: Vec<usize>,
    /// K: the concurrencies to run A at.
    pub concurrencies: Vec<usize>,
    /// U: users to sync, one task each.
    pub users: usize,
    /// U: how long the stand-in directory takes to answer.
    pub directory_latency: Duration,
    /// U: the worker layouts that drain the users.
    pub layouts: Vec<Layout>,
    /// W: tasks passed through the queue between the two measurements.
    pub churn_tasks: usize,
    /// M: concurrent producers.
    pub producers: usize,
    /// M: how long each of its two runs lasts.
    pub producers_duration: Duration,
    /// P: the Python interpreter with the `longshore_agent` package.
    pub python: String,
    /// Keep the scratch database (or SQLite file) afterwards.
    pub keep: bool,
}

/// A workload, by its letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Bulk: insert, then process.
    A,
    /// Latency: enqueue-to-start percentiles.
    B,
    /// Steady state: a producer and the worker together.
    C,
    /// Memory over a large backlog.
    D,
    /// Far backlog: the cost of a claim that finds nothing due.
    E,
    /// History: the operator's reads over millions of tasks.
    F,
    /// A and B through one agent.
    G,
    /// What idle agents cost.
    H,
    /// A through one Python agent.
    P,
    /// Many concurrent single-task producers, gathered and not.
    M,
    /// One backlog drained by more and more worker processes.
    S,
    /// A at more and more concurrency.
    K,
    /// A directory sync through the `http` actor, in several layouts.
    U,
    /// A and B before and after millions of tasks churned through.
    W,
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "a" => Ok(Workload::A),
            "b" => Ok(Workload::B),
            "c" => Ok(Workload::C),
            "d" => Ok(Workload::D),
            "e" => Ok(Workload::E),
            "f" => Ok(Workload::F),
            "g" => Ok(Workload::G),
            "h" => Ok(Workload::H),
            "p" => Ok(Workload::P),
            "m" => Ok(Workload::M),
            "s" => Ok(Workload::S),
            "k" => Ok(Workload::K),
            "u" => Ok(Workload::U),
            "w" => Ok(Workload::W),
            other => Err(format!(
                "unknown workload `{other}`: the workloads are a, b, c, d, e, f, g, h, k, m, p, s, u, w"
            )),
        }
    }
}

/// What a handler saw.
#[derive(Default)]
struct Probe {
    runs: AtomicU64,
    /// Start times by task id: only for workload B, so that the other
    /// workloads measure the worker and not this map.
    started: Option<Mutex<HashMap<Uuid, Instant>>>,
}

struct ProbeActor(Arc<Probe>);

#[async_trait]
impl Actor for ProbeActor {
    async fn run(&self, _args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let now = Instant::now();
        if let Some(Ok(mut started)) = self.0.started.as_ref().map(Mutex::lock) {
            started.insert(ctx.task_id(), now);
        }
        self.0.runs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the workloads `args` names on a scratch database of the engine
/// `settings` name, and reports what they measured.
pub async fn run(settings: &Settings, args: Options) -> anyhow::Result<Report> {
    if args.concurrency == 0 || args.bulk_tasks == 0 || args.latency_tasks == 0 {
        bail!("--concurrency, --bulk-tasks and --latency-tasks must be at least 1");
    }
    if args.workloads.contains(&Workload::H) && args.idle_agents == 0 {
        bail!("--idle-agents must be at least 1");
    }
    if args.workloads.contains(&Workload::M) && args.producers == 0 {
        bail!("--producers must be at least 1");
    }
    if args.workloads.contains(&Workload::S) && args.processes.iter().any(|&n| n == 0 || n > 64) {
        bail!("--processes takes counts from 1 to 64");
    }
    if args.agents.iter().any(|&n| n == 0 || n > 64) {
        bail!("--agents takes counts from 1 to 64");
    }
    if !args.agents.is_empty() && !args.workloads.contains(&Workload::S) {
        bail!("--agents belongs to workload s: give --workloads s");
    }
    if args.workloads.contains(&Workload::K)
        && (args.concurrencies.is_empty() || args.concurrencies.iter().any(|&n| n == 0 || n > 4096))
    {
        bail!("--concurrencies takes counts from 1 to 4096");
    }
    if args.workloads.contains(&Workload::U) && (args.users == 0 || args.layouts.is_empty()) {
        bail!("--users must be at least 1, and --layouts name at least one layout");
    }
    // F's history, and W's fresh table, must be all the scratch database
    // holds.
    for alone in [Workload::F, Workload::W] {
        if args.workloads.contains(&alone) && args.workloads.iter().any(|w| *w != alone) {
            let letter = format!("{alone:?}").to_ascii_lowercase();
            bail!("workload {letter} runs alone: give --workloads {letter}");
        }
    }
    let durable = settings.database.durable_hot_path;
    let report = match Database::from_settings(settings)? {
        Database::Postgres { url } => on_postgres(&url, &args, durable).await?,
        Database::Sqlite { .. } => on_sqlite(settings, &args).await?,
    };
    Ok(report)
}

/// The workloads on a scratch database of the PostgreSQL server at `url`.
async fn on_postgres(url: &str, args: &Options, durable: bool) -> anyhow::Result<Report> {
    let admin_options = longshore::postgres::parse_url(url)?;
    let name = format!("longshore_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&admin_options)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .context("creating the scratch database (the user needs CREATEDB)")?;
    tracing::info!(database = %name, "scratch database created");

    let most = args
        .concurrencies
        .iter()
        .fold(args.concurrency, |a, &b| a.max(b));
    let options = PgOptions {
        max_connections: (most as u32 / 2).max(8),
        durable_hot_path: durable,
        ..PgOptions::default()
    };
    let result = async {
        let store = PgStore::connect_with(admin_options.clone().database(&name), &options).await?;
        store.migrate().await?;
        let show = |q: &'static str| {
            let pool = store.pool().clone();
            async move {
                sqlx::query_scalar::<_, String>(q)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|_| "?".into())
            }
        };
        let report = Report {
            engine: "postgres",
            server: show("SHOW server_version").await,
            durability: format!(
                "fsync {}, synchronous_commit {}; claims and completions {}; autovacuum {}",
                show("SHOW fsync").await,
                show("SHOW synchronous_commit").await,
                if durable {
                    "wait for the WAL flush"
                } else {
                    "with synchronous_commit off"
                },
                show("SHOW autovacuum").await,
            ),
            durable_hot_path: durable,
            concurrency: args.concurrency,
            prefetch: args.prefetch,
            ..Report::default()
        };
        let filler = Filler::Postgres(store.pool().clone());
        let mut scratch = reqwest::Url::parse(url).context("reading the database URL")?;
        scratch.set_path(&name);
        let target = Target::Postgres(scratch.to_string());
        let report = run_workloads(Arc::new(store.clone()), args, report, &filler, &target).await;
        // Close before the scratch database is dropped under it.
        store.pool().close().await;
        report
    }
    .await;

    if args.keep {
        println!("scratch database kept: {name}");
    } else {
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .context("dropping the scratch database")?;
    }
    result
}

/// The workloads on a SQLite file in a fresh temporary directory.
async fn on_sqlite(settings: &Settings, args: &Options) -> anyhow::Result<Report> {
    let dir = tempfile::Builder::new()
        .prefix("longshore-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let path = dir.path().join(DATA_FILE);
    let durable = settings.database.durable_hot_path;
    let options = SqliteOptions {
        durable_hot_path: durable,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, &options).await?;
    store.migrate().await?;
    let report = Report {
        engine: "sqlite",
        server: format!("SQLite {}", sqlite_version(&store).await),
        durability: format!(
            "WAL; enqueues synchronous=FULL, claims and completions synchronous={}",
            if durable { "FULL" } else { "NORMAL" }
        ),
        durable_hot_path: durable,
        concurrency: args.concurrency,
        prefetch: args.prefetch,
        ..Report::default()
    };
    let filler = Filler::Sqlite(path.clone());
    let target = Target::Sqlite(path.clone());
    let report = run_workloads(Arc::new(store.clone()), args, report, &filler, &target).await;
    store.close().await;
    if args.keep {
        let kept = dir.keep();
        println!("scratch database kept: {}", kept.join(DATA_FILE).display());
    }
    report
}

async fn sqlite_version(store: &SqliteStore) -> String {
    sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
        .fetch_one(store.read_pool())
        .await
        .unwrap_or_else(|_| "?".into())
}

async fn run_workloads(
    store: Arc<dyn Store>,
    args: &Options,
    mut report: Report,
    filler: &Filler,
    target: &Target,
) -> anyhow::Result<Report> {
    if args.workloads.contains(&Workload::A) {
        report.a_bulk = Some(bulk(&store, args, Via::Inline).await?);
    }
    if args.workloads.contains(&Workload::W) {
        report.w_churn = Some(churn::run(&store, args).await?);
    }
    if args.workloads.contains(&Workload::K) {
        report.k_concurrency = Some(concurrency_curve(&store, args).await?);
    }
    if args.workloads.contains(&Workload::B) {
        report.b_latency = Some(latency(&store, args, Via::Inline).await?);
    }
    if args.workloads.contains(&Workload::C) {
        report.c_steady = Some(steady(&store, args).await?);
    }
    if args.workloads.contains(&Workload::D) {
        report.d_memory = Some(memory(&store, args).await?);
    }
    if args.workloads.contains(&Workload::E) {
        report.e_far_backlog = Some(far_backlog(&store, args).await?);
    }
    if args.workloads.contains(&Workload::F) {
        report.f_history =
            Some(history::run(&store, filler, args.history_finished, args.history_queued).await?);
    }
    if args.workloads.contains(&Workload::G) {
        let gateway = BenchGateway::start(&store, "bench_g", &["bench_ga", "bench_gb"]).await?;
        let a_bulk = bulk(&store, args, Via::Agent(&gateway)).await?;
        let b_latency = latency(&store, args, Via::Agent(&gateway)).await?;
        gateway.stop().await?;
        report.g_agent = Some(AgentReport { a_bulk, b_latency });
    }
    if args.workloads.contains(&Workload::H) {
        report.h_idle_agents =
            Some(agents::idle(&store, filler, args.idle_agents, args.idle_duration).await?);
    }
    if args.workloads.contains(&Workload::M) {
        report.m_producers =
            Some(producers::run(&store, args.producers, args.producers_duration).await?);
    }
    if args.workloads.contains(&Workload::S) {
        let plan = scale::Plan {
            target,
            tasks: args.bulk_tasks,
            concurrency: args.concurrency,
            prefetch: args.prefetch,
            processes: &args.processes,
            agents: &args.agents,
        };
        report.s_scale = Some(scale::run(&store, &plan).await?);
    }
    if args.workloads.contains(&Workload::U) {
        let plan = scenario::Plan {
            target,
            users: args.users,
            latency: args.directory_latency,
            layouts: &args.layouts,
            prefetch: args.prefetch,
        };
        report.u_directory_sync = Some(scenario::run(&store, &plan).await?);
    }
    if args.workloads.contains(&Workload::P) {
        let gateway = BenchGateway::start(&store, "bench_p", &["bench_pa"]).await?;
        let bulk = python_bulk(&store, args, &gateway).await;
        gateway.stop().await?;
        report.p_python_agent = Some(bulk?);
    }
    Ok(report)
}

/// What runs a workload's tasks.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// A worker in this process.
    Inline,
    /// One agent of this gateway's pool.
    Agent(&'a BenchGateway),
}

impl Via<'_> {
    /// The queue of workload `letter`: the agents' own ones are their pool's.
    fn queue(self, letter: char) -> String {
        match self {
            Via::Inline => format!("bench_{letter}"),
            Via::Agent(_) => format!("bench_g{letter}"),
        }
    }
}

/// A started worker or agent.
enum Consumer {
    Worker(WorkerHandle),
    Agent(RunningAgent),
}

impl Consumer {
    async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            Consumer::Worker(worker) => Ok(worker.shutdown().await?),
            Consumer::Agent(agent) => agent.shutdown().await,
        }
    }
}

/// The actors of every workload: `bench`, which records into `probe`
/// (a probe that records nothing when `None`).
fn probe_registry(probe: Option<Arc<Probe>>) -> Registry {
    let mut registry = Registry::new();
    registry.register_actor("bench", ProbeActor(probe.unwrap_or_default()));
    registry
}

/// Starts what runs `queue`'s tasks: a worker, or an agent of the
/// gateway's pool (which serves `queue`).
fn start_consumer(
    store: &Arc<dyn Store>,
    queue: &str,
    args: &Options,
    record_starts: bool,
    via: Via<'_>,
) -> anyhow::Result<(Consumer, Arc<Probe>)> {
    let probe = Arc::new(Probe {
        runs: AtomicU64::new(0),
        started: record_starts.then(|| Mutex::new(HashMap::new())),
    });
    let registry = probe_registry(Some(probe.clone()));
    let consumer = match via {
        Via::Inline => {
            let config = WorkerConfig {
                queues: vec![queue.to_owned()],
                concurrency: args.concurrency,
                prefetch: args.prefetch,
                ..WorkerConfig::default()
            };
            Consumer::Worker(Worker::new(store.clone(), registry, config)?.start())
        }
        Via::Agent(gateway) => Consumer::Agent(gateway.agent(
            &format!("bench-{queue}"),
            args.concurrency,
            args.prefetch,
            registry,
        )),
    };
    Ok((consumer, probe))
}

fn task(queue: &str) -> NewTask {
    let mut task = NewTask::new("bench", serde_json::json!({}));
    task.queue = queue.to_owned();
    task
}

async fn insert_bulk(store: &Arc<dyn Store>, queue: &str, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut remaining = n;
    while remaining > 0 {
        let chunk = remaining.min(1000);
        store
            .enqueue((0..chunk).map(|_| task(queue)).collect())
            .await?;
        remaining -= chunk;
    }
    Ok(start.elapsed())
}

/// Tasks of `queue` whose state satisfies `which`.
async fn count(
    store: &Arc<dyn Store>,
    queue: &str,
    which: impl Fn(longshore::TaskState) -> bool,
) -> anyhow::Result<i64> {
    let rows = store.stats(longshore::core::StatsKey::Queue).await?;
    Ok(rows
        .iter()
        .filter(|r| r.key == queue && which(r.state))
        .map(|r| r.count)
        .sum())
}

async fn bulk(store: &Arc<dyn Store>, args: &Options, via: Via<'_>) -> anyhow::Result<BulkReport> {
    bulk_on(store, &via.queue('a'), args, via).await
}

/// K: A on a queue of its own at each of `--concurrencies`.
async fn concurrency_curve(
    store: &Arc<dyn Store>,
    args: &Options,
) -> anyhow::Result<ConcurrencyReport> {
    let mut runs = Vec::new();
    for &concurrency in &args.concurrencies {
        let at = Options {
            concurrency,
            ..args.clone()
        };
        let queue = format!("bench_k{concurrency}");
        let bulk = bulk_on(store, &queue, &at, Via::Inline).await?;
        runs.push(ConcurrencyRun {
            concurrency,
            seconds: bulk.process_seconds,
            process_per_sec: bulk.process_per_sec,
        });
    }
    Ok(ConcurrencyReport {
        tasks: args.bulk_tasks,
        runs,
    })
}

/// A's insert and processing on `queue`, with `args`' worker settings.
async fn bulk_on(
    store: &Arc<dyn Store>,
    queue: &str,
    args: &Options,
    via: Via<'_>,
) -> anyhow::Result<BulkReport> {
    let n = args.bulk_tasks;
    tracing::info!(tasks = n, queue, "A: inserting");
    let insert = insert_bulk(store, queue, n).await?;
    tracing::info!(tasks = n, queue, "A: processing");
    let span = cpu::Span::start(store.engine() == "postgres");
    let start = Instant::now();
    let inline = matches!(via, Via::Inline);
    let (worker, probe) = start_consumer(store, queue, args, false, via)?;
    // Watch the handler count first (cheap), then confirm in the database.
    while probe.runs.load(Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if start.elapsed() > Duration::from_secs(600) {
            bail!("A: not done after 10 minutes");
        }
    }
    while count(store, queue, |s| s == longshore::TaskState::Succeeded).await? < n as i64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let process = start.elapsed();
    let spent = span.spent(process.as_secs_f64());
    worker.shutdown().await?;
    Ok(BulkReport {
        cpu: inline.then_some(spent),
        ..BulkReport::new(n, insert, process)
    })
}

/// P: A through one Python agent, a process of its own, timed from its
/// start (interpreter and connection included, as G's agent's are) until
/// the database holds every task succeeded.
async fn python_bulk(
    store: &Arc<dyn Store>,
    args: &Options,
    gateway: &BenchGateway,
) -> anyhow::Result<BulkReport> {
    let queue = "bench_pa";
    let n = args.bulk_tasks;
    tracing::info!(tasks = n, queue, python = %args.python, "P: inserting");
    let insert = insert_bulk(store, queue, n).await?;
    tracing::info!(tasks = n, queue, "P: processing through a Python agent");
    let start = Instant::now();
    let mut agent = gateway.python_agent(&args.python, args.concurrency, args.prefetch)?;
    loop {
        if count(store, queue, |s| s == longshore::TaskState::Succeeded).await? >= n as i64 {
            break;
        }
        if let Some(status) = agent.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = agent.stderr.take() {
                use tokio::io::AsyncReadExt;
                pipe.read_to_string(&mut stderr).await.ok();
            }
            bail!("P: the Python agent exited ({status}) before the tasks were done: {stderr}");
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("P: not done after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let process = start.elapsed();
    // Everything is recorded: nothing is left for it to hand back.
    agent.kill().await.ok();
    Ok(BulkReport::new(n, insert, process))
}

async fn steady(store: &Arc<dyn Store>, args: &Options) -> anyhow::Result<SteadyReport> {
    let queue = "bench_c";
    let (worker, probe) = start_consumer(store, queue, args, false, Via::Inline)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tracing::info!(seconds = args.steady_duration.as_secs_f64(), "C: producing");
    let start = Instant::now();
    let mut enqueued = 0u64;
    while start.elapsed() < args.steady_duration {
        store.enqueue(vec![task(queue)]).await?;
        enqueued += 1;
    }
    let elapsed = start.elapsed();
    let completed = probe.runs.load(Ordering::Relaxed);
    let final_backlog = count(store, queue, |s| !s.is_terminal()).await?;
    worker.shutdown().await?;
    Ok(SteadyReport {
        seconds: elapsed.as_secs_f64(),
        enqueued,
        enqueue_per_sec: enqueued as f64 / elapsed.as_secs_f64(),
        completed,
        completed_per_sec: completed as f64 / elapsed.as_secs_f64(),
        final_backlog,
    })
}

async fn memory(store: &Arc<dyn Store>, args: &Options) -> anyhow::Result<MemoryReport> {
    let queue = "bench_d";
    tracing::info!(tasks = args.backlog_tasks, "D: inserting the backlog");
    insert_bulk(store, queue, args.backlog_tasks).await?;
    let rss_before = rss_mib("VmRSS");
    tracing::info!("D: working over the backlog");
    let (worker, probe) = start_consumer(store, queue, args, false, Via::Inline)?;
    tokio::time::sleep(args.backlog_duration).await;
    let processed = probe.runs.load(Ordering::Relaxed);
    worker.shutdown().await?;
    Ok(MemoryReport {
        backlog: args.backlog_tasks,
        seconds: args.backlog_duration.as_secs_f64(),
        processed,
        rss_before_mib: rss_before,
        peak_rss_mib: rss_mib("VmHWM"),
    })
}

async fn far_backlog(store: &Arc<dyn Store>, args: &Options) -> anyhow::Result<FarBacklogReport> {
    let queue = "bench_e";
    let n = args.backlog_tasks;
    tracing::info!(tasks = n, "E: inserting tasks due in a week");
    let due = chrono::Utc::now() + chrono::Duration::days(7);
    let mut remaining = n;
    while remaining > 0 {
        let chunk = remaining.min(1000);
        store
            .enqueue(
                (0..chunk)
                    .map(|_| {
                        let mut t = task(queue);
                        t.run_at = Some(due);
                        t
                    })
                    .collect(),
            )
            .await?;
        remaining -= chunk;
    }
    let claim = longshore::core::Claim {
        owner: "bench-e".into(),
        queues: vec![queue.to_owned()],
        limit: args.concurrency,
        lease: Duration::from_secs(30),
        capped: false,
        pool: None,
    };
    let claims = 200;
    let start = Instant::now();
    for _ in 0..claims {
        let claimed = store.claim(&claim).await?;
        if !claimed.is_empty() {
            bail!("E: a claim took a task that is not due");
        }
    }
    Ok(FarBacklogReport {
        not_due: n,
        claims,
        mean_empty_claim_ms: start.elapsed().as_secs_f64() * 1000.0 / claims as f64,
    })
}

/// A memory figure of this process from /proc, in MiB (0 where unavailable).
fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)
                    .and_then(|rest| rest.trim_start_matches(':').trim().strip_suffix("kB"))
                    .and_then(|kb| kb.trim().parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
