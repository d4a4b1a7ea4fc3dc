//! The worker runtime: claims due tasks, runs them, records what happened.
//!
//! A running [`Worker`] is a handful of named loops that share one
//! [`Shared`] state, each with its own file:
//!
//! | loop | file | does |
//! |---|---|---|
//! | claimer | `claimer.rs` | claims up to the free slots' worth of due tasks and starts them |
//! | executor | `executor.rs` | runs one execution under its time limit and cancellation |
//! | completer | `completer.rs` | writes finished executions in batches, claiming replacements for their slots in the same statement |
//! | heartbeat | `heartbeat.rs` | renews leases, writes logs of running tasks, learns of cancellations |
//! | listener | `listener.rs` | wakes the claimer on NOTIFY, forwards cancellations |
//! | maintenance | `maintenance.rs` | on the maintenance leader: promotes due delayed tasks, runs the built-in schedules (rescue, purge, forget dead workers); on every node: reads the cluster's caps |
//! | scheduler | `scheduler.rs` | on the scheduler leader: fires due schedules |
//!
//! Stopping ([`WorkerHandle::shutdown`]) stops claiming, lets in-flight
//! executions finish for the drain timeout, cancels the rest and hands
//! their tasks straight back to the queue, flushes the completer, then ends
//! the remaining loops.

mod claimer;
mod completer;
mod config;
mod executor;
mod heartbeat;
mod listener;
mod maintenance;
mod scheduler;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use longshore_core::{Completion, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use config::{Retention, WorkerConfig, default_worker_id};

use crate::actor::Registry;
use crate::context::{CancelReason, Execution};
use crate::error::Error;

/// What every loop of one worker shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) config: WorkerConfig,
    /// Executions started and not yet recorded, by task id.
    pub(crate) inflight: Mutex<HashMap<Uuid, Arc<Execution>>>,
    /// Nudges the claimer: tasks may be due.
    pub(crate) wake: Notify,
    /// One permit per free execution slot.
    pub(crate) slots: Arc<Semaphore>,
    /// Running executions.
    pub(crate) executions: TaskTracker,
    /// True while new tasks may be claimed. The completer holds a read lock
    /// while it claims and starts refills; stopping takes the write lock to
    /// close it, so no refill can slip in after the drain has begun.
    pub(crate) claim_gate: tokio::sync::RwLock<bool>,
    /// The last claim came back full: more tasks are probably due, so the
    /// completer should claim replacements with its results. When it came
    /// back short, the queue is drained and refills would find nothing.
    pub(crate) backlog: AtomicBool,
    /// Into the completer, each result with the slot it occupies: the slot
    /// frees only once the result is recorded, so the database never shows
    /// more running tasks than the worker's concurrency.
    pub(crate) completions: mpsc::Sender<(Completion, OwnedSemaphorePermit)>,
    /// The cluster has running-task caps, as last read: claims then take
    /// the cluster-wide claim lock, and the completer leaves claiming to the
    /// claimer (whose claims take it).
    pub(crate) capped: AtomicBool,
}

impl Shared {
    /// Tells the cluster this worker is alive (`longshore workers list`).
    /// A failure only delays that; the next heartbeat tries again.
    pub(crate) async fn announce(&self) {
        let config = &self.config;
        let presence = longshore_core::WorkerPresence {
            id: config.id.clone(),
            host: config::host_name(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            queues: config.queues.clone(),
            concurrency: i32::try_from(config.concurrency).unwrap_or(i32::MAX),
            running: i32::try_from(self.inflight_snapshot().len()).unwrap_or(i32::MAX),
        };
        let seen = tokio::time::timeout(config.heartbeat, self.store.worker_seen(&presence)).await;
        match seen {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record this worker as alive"),
            Err(_) => tracing::warn!("recording this worker as alive timed out"),
        }
    }

    /// Reads whether the cluster has running-task caps. On failure the
    /// last answer stands (every claim reads the caps themselves anyway;
    /// only the claim lock depends on this).
    pub(crate) async fn refresh_caps(&self) {
        let store = &self.store;
        let read = async {
            let global = store.cluster_settings().await?.max_running.is_some();
            let queues = store.queue_settings().await?;
            // Only caps on the queues this worker claims from concern it.
            Ok::<_, longshore_core::StoreError>(
                global
                    || queues
                        .iter()
                        .any(|q| q.max_running.is_some() && self.config.queues.contains(&q.name)),
            )
        };
        match tokio::time::timeout(self.config.heartbeat, read).await {
            Ok(Ok(capped)) => {
                let was = self.capped.swap(capped, Ordering::Relaxed);
                if was != capped {
                    tracing::info!(capped, "the cluster's running-task caps changed");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the cluster's running-task caps"),
            Err(_) => tracing::warn!("reading the cluster's running-task caps timed out"),
        }
    }

    pub(crate) fn inflight_snapshot(&self) -> Vec<Arc<Execution>> {
        self.inflight
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn inflight_get(&self, id: &Uuid) -> Option<Arc<Execution>> {
        self.inflight
            .lock()
            .ok()
            .and_then(|map| map.get(id).cloned())
    }

    /// Forgets an execution once its result is recorded (only that attempt:
    /// the same task may already be running again).
    pub(crate) fn forget(&self, id: Uuid, attempt: i32) {
        if let Ok(mut map) = self.inflight.lock()
            && map.get(&id).is_some_and(|e| e.attempt == attempt)
        {
            map.remove(&id);
        }
    }

    /// After a claim whose outcome is unknown (an error that may have come
    /// after the commit), returns to the queue whatever this worker owns but
    /// does not track. Holds the claim gate's write lock, so no claim of
    /// this worker is between its commit and the start of its tasks.
    pub(crate) async fn release_untracked(&self) {
        let _gate = self.claim_gate.write().await;
        let tracked: Vec<Uuid> = self
            .inflight
            .lock()
            .map(|map| map.keys().copied().collect())
            .unwrap_or_default();
        match self
            .store
            .release_untracked(&self.config.id, &tracked)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                released = n,
                "returned claimed tasks whose claim reply was lost to the queue"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "could not check for lost claims; any will return when their leases expire"
            ),
        }
    }

    fn cancel_all(&self, reason: CancelReason) {
        for execution in self.inflight_snapshot() {
            execution.cancel(reason);
        }
    }
}

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
        let shared = Arc::new(Shared {
            store: self.store,
            registry: Arc::new(self.registry),
            slots: Arc::new(Semaphore::new(self.config.concurrency)),
            config: self.config,
            inflight: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            executions: TaskTracker::new(),
            claim_gate: tokio::sync::RwLock::new(true),
            backlog: AtomicBool::new(false),
            completions: tx,
            capped: AtomicBool::new(false),
        });
        let shutdown = CancellationToken::new();
        let id = shared.config.id.clone();
        let supervisor = tokio::spawn(supervise(shared, rx, shutdown.clone()));
        WorkerHandle {
            id,
            shutdown,
            supervisor,
        }
    }
}

/// Controls a started worker.
pub struct WorkerHandle {
    id: String,
    shutdown: CancellationToken,
    supervisor: JoinHandle<Result<(), Error>>,
}

impl WorkerHandle {
    /// The worker's id (its lease owner name).
    pub fn id(&self) -> &str {
        &self.id
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

async fn supervise(
    shared: Arc<Shared>,
    completions: mpsc::Receiver<(Completion, OwnedSemaphorePermit)>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
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
    shared.refresh_caps().await;

    let claimer = tokio::spawn(claimer::run(shared.clone(), stop_claiming.clone()));
    let completer = tokio::spawn(completer::run(
        shared.clone(),
        completions,
        stop_completer.clone(),
    ));
    let background = [
        tokio::spawn(heartbeat::run(shared.clone(), stop_background.clone())),
        tokio::spawn(listener::run(shared.clone(), stop_background.clone())),
        tokio::spawn(maintenance::run(shared.clone(), stop_background.clone())),
        tokio::spawn(scheduler::run(shared.clone(), stop_background.clone())),
    ];

    shutdown.cancelled().await;
    tracing::info!(worker = %shared.config.id, "stopping: no new claims");
    stop_claiming.cancel();
    let mut failures = Vec::new();
    if let Err(e) = claimer.await {
        failures.push(format!("claimer: {e}"));
    }

    *shared.claim_gate.write().await = false;
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
