//! The worker runtime: claims due tasks, runs them, records what happened.
//!
//! A running [`Worker`] is a handful of named loops that share one state
//! (`shared.rs`), each with its own file:
//!
//! | loop | file | does |
//! |---|---|---|
//! | claimer | `claimer.rs` | claims up to the free slots' worth of due tasks |
//! | dispatch | `dispatch.rs` | starts every claimed task (the claimer's and the completer's refills) in a slot, tracked as in flight |
//! | executor | `executor.rs` | runs one execution under its time limit and cancellation |
//! | completer | `completer.rs` | writes finished executions in batches, claiming replacements for their slots in the same statement |
//! | heartbeat | `heartbeat.rs` | renews leases, writes logs of running tasks, learns of cancellations |
//! | listener | `listener.rs` | wakes the claimer on NOTIFY, forwards cancellations |
//! | (prefetch) | `prefetch.rs` | not a loop: with `prefetch: auto`, how many tasks the claimer and the completer claim ahead, from measured handler and round-trip times |
//! | maintenance | `../maintenance/` | on the maintenance leader: promotes due delayed tasks, runs the built-in schedules (rescue, purge, forget dead workers); on every node: reads the cluster's caps |
//! | scheduler | `../maintenance/scheduler.rs` | on the scheduler leader: fires due schedules |
//!
//! Stopping ([`WorkerHandle::shutdown`]) stops claiming, lets in-flight
//! executions finish for the drain timeout, cancels the rest and hands
//! their tasks straight back to the queue, flushes the completer, then ends
//! the remaining loops.

mod claimer;
mod completer;
mod dispatch;
pub(crate) mod executor;
mod heartbeat;
mod listener;
pub(crate) mod prefetch;
mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use longshore_core::{Completion, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Prefetch, WorkerConfig};

use crate::actor::Registry;
use crate::caps::Caps;
use crate::context::CancelReason;
use crate::error::Error;
use prefetch::AutoPrefetch;
use shared::Shared;

/// A worker, ready to start.
///
/// ```no_run
/// # async fn example(store: std::sync::Arc<dyn longshore::Store>) -> Result<(), longshore::Error> {
/// use longshore::{Registry, Worker, WorkerConfig};
/// let registry = Registry::new();
/// let handle = Worker::new(store, registry, WorkerConfig::default())?.start();
/// // ... until the process is asked to stop:
/// handle.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Registry,
    config: WorkerConfig,
}

impl Worker {
    /// A worker running `registry`'s actors from `store`; fails if `config`
    /// is invalid.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        config: WorkerConfig,
    ) -> Result<Worker, Error> {
        config.validate()?;
        for def in &config.schedules {
            def.validate()
                .map_err(|e| Error::Config(format!("schedule {}: {e}", def.name)))?;
            if !registry.contains(&def.actor) {
                return Err(Error::Config(format!(
                    "schedule {}: unknown actor `{}`: this worker's registry has {}",
                    def.name,
                    def.actor,
                    registry.names().join(", ")
                )));
            }
            longshore_core::schedule::check_builtin_edit(None, def)
                .map_err(|e| Error::Config(format!("schedule {}: {e}", def.name)))?;
        }
        Ok(Worker {
            store,
            registry,
            config,
        })
    }

    /// Starts the worker's loops on the current Tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let (tx, rx) = mpsc::channel(self.config.completer_batch.max(self.config.concurrency) * 2);
        let concurrency = self.config.concurrency;
        let (permits, auto_prefetch) = match self.config.prefetch {
            Prefetch::Tasks(n) => (concurrency + n, None),
            Prefetch::Auto => {
                let auto = AutoPrefetch::new(concurrency, self.config.metrics.as_ref());
                (auto.permits(), Some(auto))
            }
        };
        let shared = Arc::new(Shared {
            store: self.store,
            registry: Arc::new(self.registry),
            slots: Arc::new(Semaphore::new(permits)),
            running: (permits > concurrency).then(|| Arc::new(Semaphore::new(concurrency))),
            auto_prefetch,
            unstarted: CancellationToken::new(),
            config: self.config,
            inflight: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            executions: TaskTracker::new(),
            claim_gate: tokio::sync::RwLock::new(true),
            backlog: AtomicBool::new(false),
            completions: tx,
            caps: Arc::new(Caps::default()),
        });
        let shutdown = CancellationToken::new();
        let id = shared.config.id.clone();
        let health = WorkerHealth(Arc::new(AtomicU8::new(RUNNING)));
        let supervisor = tokio::spawn(supervise(shared, rx, shutdown.clone(), health.clone()));
        WorkerHandle {
            id,
            shutdown,
            supervisor,
            health,
        }
    }
}

/// Controls a started worker.
pub struct WorkerHandle {
    id: String,
    shutdown: CancellationToken,
    supervisor: JoinHandle<Result<(), Error>>,
    health: WorkerHealth,
}

impl WorkerHandle {
    /// The worker's id (its lease owner name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What tells, for as long as anyone asks, whether this worker still
    /// runs: for readiness checks.
    pub fn health(&self) -> WorkerHealth {
        self.health.clone()
    }

    /// Asks the worker to stop, without waiting.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Stops gracefully and waits until every loop has ended.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.stopped().await
    }

    /// Waits until the worker has stopped (after [`WorkerHandle::stop`]).
    pub async fn stopped(self) -> Result<(), Error> {
        match self.supervisor.await {
            Ok(result) => result,
            Err(e) => Err(Error::Worker(format!(
                "the worker's supervisor failed: {e}"
            ))),
        }
    }
}

/// What a started worker is doing, as [`WorkerHealth::state`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Claiming and running tasks.
    Running,
    /// Asked to stop: claims nothing new, lets its executions finish.
    Stopping,
    /// Stopped: every loop has ended (or its supervisor failed).
    Stopped,
    /// One of its loops, named here, ended while it should have been
    /// running (it panicked): the worker no longer works as it should
    /// (without its claimer it claims nothing, for one). Restart it.
    Failed(&'static str),
}

/// Whether a started worker runs, for readiness checks (from
/// [`WorkerHandle::health`]). Cheap to clone; it outlives the handle.
#[derive(Clone, Debug)]
pub struct WorkerHealth(Arc<AtomicU8>);

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const STOPPED: u8 = 2;
/// `FAILED + i`: loop `LOOPS[i]` ended while running.
const FAILED: u8 = 3;
const LOOPS: [&str; 6] = [
    "claimer",
    "completer",
    "heartbeat",
    "listener",
    "maintenance",
    "scheduler",
];

impl WorkerHealth {
    /// What the worker is doing now.
    pub fn state(&self) -> WorkerState {
        match self.0.load(Ordering::Acquire) {
            RUNNING => WorkerState::Running,
            STOPPING => WorkerState::Stopping,
            STOPPED => WorkerState::Stopped,
            n => WorkerState::Failed(
                LOOPS
                    .get(usize::from(n - FAILED))
                    .copied()
                    .unwrap_or("unknown"),
            ),
        }
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }
}

/// Marks the worker stopped when the supervisor ends, however it ends.
struct StoppedOnDrop(WorkerHealth);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.set(STOPPED);
    }
}

/// Runs loop `LOOPS[index]`; if it ends (returns or panics) while the
/// worker is running, marks the worker failed.
async fn watched(health: WorkerHealth, index: u8, run: impl Future<Output = ()>) {
    struct Guard(WorkerHealth, u8);
    impl Drop for Guard {
        fn drop(&mut self) {
            let failed = FAILED + self.1;
            if (self.0)
                .0
                .compare_exchange(RUNNING, failed, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                tracing::error!(
                    "the worker's {} loop ended while the worker was running; it no longer works as it should: restart it",
                    LOOPS.get(usize::from(self.1)).copied().unwrap_or("unknown")
                );
            }
        }
    }
    let _guard = Guard(health, index);
    run.await;
}

async fn supervise(
    shared: Arc<Shared>,
    completions: mpsc::Receiver<(Completion, OwnedSemaphorePermit)>,
    shutdown: CancellationToken,
    health: WorkerHealth,
) -> Result<(), Error> {
    let _stopped = StoppedOnDrop(health.clone());
    let _slots = shared
        .config
        .metrics
        .as_ref()
        .map(|m| m.slots(shared.config.concurrency));
    // With `auto`, the prefetch counts itself as it moves.
    let _prefetch = match (&shared.config.metrics, shared.config.prefetch) {
        (Some(metrics), Prefetch::Tasks(n)) => Some(metrics.prefetch(n)),
        _ => None,
    };
    let stop_claiming = CancellationToken::new();
    let stop_completer = CancellationToken::new();
    let stop_background = CancellationToken::new();
    tracing::info!(
        worker = %shared.config.id,
        queues = ?shared.config.queues,
        concurrency = shared.config.concurrency,
        engine = shared.store.engine(),
        "worker started"
    );
    shared.announce().await;
    shared
        .caps
        .refresh(shared.store.as_ref(), &shared.config)
        .await;
    // What the leader-run services need of this node.
    let node = Arc::new(crate::maintenance::Node {
        store: shared.store.clone(),
        config: shared.config.clone(),
        caps: shared.caps.clone(),
    });

    let claimer = tokio::spawn(watched(
        health.clone(),
        0,
        claimer::run(shared.clone(), stop_claiming.clone()),
    ));
    let completer = tokio::spawn(watched(
        health.clone(),
        1,
        completer::run(shared.clone(), completions, stop_completer.clone()),
    ));
    let background = [
        tokio::spawn(watched(
            health.clone(),
            2,
            heartbeat::run(shared.clone(), stop_background.clone()),
        )),
        tokio::spawn(watched(
            health.clone(),
            3,
            listener::run(shared.clone(), stop_background.clone()),
        )),
        tokio::spawn(watched(
            health.clone(),
            4,
            crate::maintenance::run(node.clone(), stop_background.clone()),
        )),
        tokio::spawn(watched(
            health.clone(),
            5,
            crate::maintenance::scheduler::run(node, stop_background.clone()),
        )),
    ];

    shutdown.cancelled().await;
    health.set(STOPPING);
    tracing::info!(worker = %shared.config.id, "stopping: no new claims");
    stop_claiming.cancel();
    let mut failures = Vec::new();
    if let Err(e) = claimer.await {
        failures.push(format!("claimer: {e}"));
    }

    *shared.claim_gate.write().await = false;
    // Nothing is claimed from here on: prefetched tasks that have not
    // started go back to the queue now, not after the drain.
    shared.unstarted.cancel();
    shared.executions.close();
    let drain = shared.config.drain_timeout;
    if tokio::time::timeout(drain, shared.executions.wait())
        .await
        .is_err()
    {
        let left = shared.executions.len();
        tracing::warn!(
            worker = %shared.config.id,
            left,
            "drain timeout passed: cancelling in-flight tasks and returning them to the queue"
        );
        shared.cancel_all(CancelReason::Shutdown);
        shared.executions.wait().await;
    }

    stop_completer.cancel();
    if let Err(e) = completer.await {
        failures.push(format!("completer: {e}"));
    }
    stop_background.cancel();
    for task in background {
        if let Err(e) = task.await {
            failures.push(format!("background loop: {e}"));
        }
    }
    if let Err(e) = shared.store.worker_stopped(&shared.config.id).await {
        tracing::warn!(error = %e, "cannot remove this worker from the live ones; it goes once unseen for a lease");
    }
    tracing::info!(worker = %shared.config.id, "worker stopped");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Worker(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loop_that_ends_while_running_fails_the_worker_and_a_stop_does_not() {
        let health = WorkerHealth(Arc::new(AtomicU8::new(RUNNING)));
        assert_eq!(health.state(), WorkerState::Running);
        let panicked = tokio::spawn(watched(health.clone(), 0, async { panic!("a bug") })).await;
        assert!(panicked.is_err_and(|e| e.is_panic()));
        assert_eq!(health.state(), WorkerState::Failed("claimer"));
        // The first failure is the one told; a later one does not replace it.
        tokio::spawn(watched(health.clone(), 5, async {}))
            .await
            .unwrap();
        assert_eq!(health.state(), WorkerState::Failed("claimer"));

        let health = WorkerHealth(Arc::new(AtomicU8::new(RUNNING)));
        health.set(STOPPING);
        tokio::spawn(watched(health.clone(), 1, async {}))
            .await
            .unwrap();
        assert_eq!(health.state(), WorkerState::Stopping);
        drop(StoppedOnDrop(health.clone()));
        assert_eq!(health.state(), WorkerState::Stopped);
    }
}
