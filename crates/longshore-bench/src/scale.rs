//! S, scale-out: one backlog drained by 1, 2, 4… worker processes on the
//! same database. Each process is `longshore worker` of this very binary
//! (its built-in `noop` actor), started against the scratch database with
//! the bench's `--concurrency` and `--prefetch`; aggregate tasks/s per
//! process count shows where adding processes stops paying.
//!
//! For each count: the backlog is written into a paused queue of its own,
//! the processes are started and waited for until each has announced
//! itself, and the clock starts when the queue is resumed. It stops when
//! the database counts every task succeeded.
//!
//! With `--agents`, the same backlog again for each agent count: a pool
//! of its own served by a gateway in the bench's process, and that many
//! `longshore agent` processes of `--concurrency` slots and `--prefetch`
//! connected to it (the gateway claims and records for them, as `serve`
//! does).
//!
//! The backlog, the worker processes ([`Fleet`]) and the drain serve
//! workload U (`scenario.rs`) too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use longshore::{NewTask, Store, TaskState};
use serde::Serialize;

use crate::agents::BenchGateway;
use crate::count;

/// How another process reaches the scratch database.
pub(crate) enum Target {
    /// Its URL.
    Postgres(String),
    /// Its file.
    Sqlite(PathBuf),
}

impl Target {
    /// The flag that names it (a URL wins over any in the environment).
    fn args(&self) -> Vec<String> {
        match self {
            Target::Postgres(url) => vec!["--database-url".into(), url.clone()],
            Target::Sqlite(file) => vec![
                "--database-url".into(),
                format!("sqlite://{}", file.display()),
            ],
        }
    }
}

/// Every process count's run.
#[derive(Serialize)]
pub(crate) struct ScaleReport {
    pub(crate) tasks: usize,
    pub(crate) runs: Vec<ScaleRun>,
    /// Every agent count's run (`processes` counts agents); empty
    /// without `--agents`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) agent_runs: Vec<ScaleRun>,
}

/// One process count.
#[derive(Serialize)]
pub(crate) struct ScaleRun {
    pub(crate) processes: usize,
    pub(crate) seconds: f64,
    pub(crate) process_per_sec: f64,
    /// This count's rate over the first count's.
    pub(crate) ratio: f64,
}

/// What each run is made of.
pub(crate) struct Plan<'a> {
    pub(crate) target: &'a Target,
    pub(crate) tasks: usize,
    pub(crate) concurrency: usize,
    pub(crate) prefetch: longshore::Prefetch,
    pub(crate) processes: &'a [usize],
    pub(crate) agents: &'a [usize],
}

pub(crate) async fn run(store: &Arc<dyn Store>, plan: &Plan<'_>) -> anyhow::Result<ScaleReport> {
    let mut runs: Vec<ScaleRun> = Vec::new();
    for &n in plan.processes {
        let queue = format!("bench_s{n}");
        tracing::info!(processes = n, tasks = plan.tasks, "S: writing the backlog");
        write_backlog(store, &queue, plan.tasks, |_| {
            NewTask::new("noop", serde_json::json!({}))
        })
        .await?;
        let fleet = Fleet::start(
            store,
            plan.target,
            &queue,
            n,
            plan.concurrency,
            plan.prefetch,
        )
        .await?;
        tracing::info!(processes = n, "S: draining");
        let seconds = drain(store, &queue, plan.tasks).await?.as_secs_f64();
        fleet.stop().await;
        runs.push(ScaleRun::new(&runs, n, plan.tasks, seconds));
    }
    let mut agent_runs: Vec<ScaleRun> = Vec::new();
    for &n in plan.agents {
        let queue = format!("bench_sa{n}");
        let gateway = BenchGateway::start(store, &queue, &[&queue]).await?;
        tracing::info!(
            agents = n,
            tasks = plan.tasks,
            "S: writing the agents' backlog"
        );
        write_backlog(store, &queue, plan.tasks, |_| {
            NewTask::new("noop", serde_json::json!({}))
        })
        .await?;
        let fleet =
            Fleet::agents(store, &gateway, &queue, n, plan.concurrency, plan.prefetch).await?;
        tracing::info!(agents = n, "S: draining through the agents");
        let seconds = drain(store, &queue, plan.tasks).await?.as_secs_f64();
        fleet.stop().await;
        gateway.stop().await?;
        agent_runs.push(ScaleRun::new(&agent_runs, n, plan.tasks, seconds));
    }
    Ok(ScaleReport {
        tasks: plan.tasks,
        runs,
        agent_runs,
    })
}

impl ScaleRun {
    /// `processes`' run of `tasks` in `seconds`, after the `earlier` runs
    /// of its kind.
    fn new(earlier: &[ScaleRun], processes: usize, tasks: usize, seconds: f64) -> ScaleRun {
        let process_per_sec = tasks as f64 / seconds;
        ScaleRun {
            processes,
            seconds,
            process_per_sec,
            ratio: earlier
                .first()
                .map_or(1.0, |first| process_per_sec / first.process_per_sec),
        }
    }
}

/// Pauses `queue` and writes `tasks` tasks into it, the `i`th made by
/// `task(i)`, 1,000 per insert: a backlog for a [`Fleet`] to [`drain`].
pub(crate) async fn write_backlog(
    store: &Arc<dyn Store>,
    queue: &str,
    tasks: usize,
    task: impl Fn(usize) -> NewTask,
) -> anyhow::Result<()> {
    store.set_queue_paused(queue, true).await?;
    let mut written = 0;
    while written < tasks {
        let chunk = (tasks - written).min(1000);
        let rows = (written..written + chunk)
            .map(|i| NewTask {
                queue: queue.to_owned(),
                ..task(i)
            })
            .collect();
        store.enqueue(rows).await?;
        written += chunk;
    }
    Ok(())
}

/// `longshore worker` (or `longshore agent`) processes of this binary
/// serving one queue.
pub(crate) struct Fleet {
    workers: Vec<tokio::process::Child>,
}

impl Fleet {
    /// Starts `n` workers of `concurrency` slots on `queue` (built-in
    /// actors, the given prefetch) and waits until each has announced
    /// itself.
    pub(crate) async fn start(
        store: &Arc<dyn Store>,
        target: &Target,
        queue: &str,
        n: usize,
        concurrency: usize,
        prefetch: longshore::Prefetch,
    ) -> anyhow::Result<Fleet> {
        let program = std::env::current_exe().context("finding this program to start workers")?;
        let ids: Vec<String> = (0..n).map(|i| format!("{queue}-{i}")).collect();
        let mut workers = Vec::new();
        for id in &ids {
            workers.push(
                spawn_quiet(
                    tokio::process::Command::new(&program)
                        .arg("worker")
                        .args(target.args())
                        .args(["--queues", queue, "--worker-id", id])
                        .args(["--concurrency", &concurrency.to_string()])
                        .env("LONGSHORE_WORKER__PREFETCH", prefetch.to_string())
                        // A resumed queue is seen within a poll: keep it short.
                        .env("LONGSHORE_WORKER__IDLE_MIN", "5ms")
                        .env("LONGSHORE_WORKER__IDLE_MAX", "20ms"),
                )
                .with_context(|| format!("starting {} worker", program.display()))?,
            );
        }
        wait_until(
            Duration::from_secs(60),
            "the workers to announce themselves",
            || async {
                let seen = store.workers().await?;
                Ok(ids
                    .iter()
                    .all(|id| seen.iter().any(|w| &w.presence.id == id)))
            },
        )
        .await?;
        Ok(Fleet { workers })
    }

    /// Starts `n` `longshore agent` processes of `concurrency` slots on
    /// `gateway`'s pool (built-in actors) and waits until each shows among
    /// the cluster's connected agents.
    pub(crate) async fn agents(
        store: &Arc<dyn Store>,
        gateway: &BenchGateway,
        queue: &str,
        n: usize,
        concurrency: usize,
        prefetch: longshore::Prefetch,
    ) -> anyhow::Result<Fleet> {
        let program = std::env::current_exe().context("finding this program to start agents")?;
        let ids: Vec<String> = (0..n).map(|i| format!("{queue}-agent-{i}")).collect();
        let mut workers = Vec::new();
        for id in &ids {
            workers.push(
                spawn_quiet(&mut gateway.agent_process(&program, id, concurrency, prefetch))
                    .with_context(|| format!("starting {} agent", program.display()))?,
            );
        }
        wait_until(Duration::from_secs(60), "the agents to connect", || async {
            let seen = longshore::ops::agents::connected(store.as_ref()).await?;
            Ok(ids.iter().all(|id| seen.iter().any(|a| &a.id == id)))
        })
        .await?;
        Ok(Fleet { workers })
    }

    /// The CPU time the workers have used so far, in seconds (0 where
    /// `/proc` does not tell).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.workers
            .iter()
            .filter_map(tokio::process::Child::id)
            .filter_map(crate::cpu::process_seconds)
            .sum()
    }

    /// Kills the workers: called once their queue is drained, so nothing
    /// of theirs is left to hand back.
    pub(crate) async fn stop(self) {
        for mut worker in self.workers {
            let _ = worker.kill().await;
        }
    }
}

/// Starts `command` with no input and its output thrown away, killed if
/// it is still running when dropped.
fn spawn_quiet(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// Resumes `queue` and waits until the database counts all its `total`
/// tasks succeeded; the time that took.
pub(crate) async fn drain(
    store: &Arc<dyn Store>,
    queue: &str,
    total: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    store.set_queue_paused(queue, false).await?;
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    wait_until(
        Duration::from_secs(1800),
        "the backlog to be drained",
        || async { Ok(count(store, queue, |s| s == TaskState::Succeeded).await? >= total) },
    )
    .await?;
    Ok(start.elapsed())
}

/// Checks `done` every 20 ms until it holds, for at most `limit`.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while !done().await? {
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
