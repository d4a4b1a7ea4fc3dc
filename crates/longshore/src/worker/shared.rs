//! What every loop of one worker shares: the store, the registry and the
//! configuration; the slots and the executions in flight; the gate that
//! closes claiming at shutdown; and the channel into the completer.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use longshore_core::{Completion, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::actor::Registry;
use crate::caps::Caps;
use crate::config::WorkerConfig;
use crate::context::{CancelReason, Execution};

/// What every loop of one worker shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) config: WorkerConfig,
    /// Executions started and not yet recorded, by task id.
    pub(crate) inflight: Mutex<HashMap<Uuid, Arc<Execution>>>,
    /// Nudges the claimer: tasks may be due.
    pub(crate) wake: Notify,
    /// One permit per task this worker may hold claimed: its slots and its
    /// prefetch (with `prefetch: auto`, its largest). A permit is held from the claim until the result is
    /// recorded.
    pub(crate) slots: Arc<Semaphore>,
    /// With a prefetch, one permit per slot: a claimed task waits for one
    /// before its handler starts, and gives it back once the handler is
    /// done, while its result is written. `None` without a prefetch: every
    /// claimed task has a slot already.
    pub(crate) running: Option<Arc<Semaphore>>,
    /// With `prefetch: auto`, how many of `slots`' permits beyond the
    /// slots are in use now; the rest are parked there.
    pub(crate) auto_prefetch: Option<super::prefetch::AutoPrefetch>,
    /// Cancelled once claiming has closed at a stop: prefetched tasks not
    /// yet started are handed back instead of started.
    pub(crate) unstarted: tokio_util::sync::CancellationToken,
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
    /// Whether the cluster has running-task caps, as last read: claims then
    /// take the cluster-wide claim lock, and the completer leaves claiming
    /// to the claimer (whose claims take it).
    pub(crate) caps: Arc<Caps>,
}

impl Shared {
    /// Tells the cluster this worker is alive (`longshore workers list`).
    /// A failure only delays that; the next heartbeat tries again.
    pub(crate) async fn announce(&self) {
        let config = &self.config;
        let presence = longshore_core::WorkerPresence {
            id: config.id.clone(),
            host: crate::config::host_name(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            queues: config.queues.clone(),
            concurrency: i32::try_from(config.concurrency).unwrap_or(i32::MAX),
            running: i32::try_from(self.inflight_snapshot().len()).unwrap_or(i32::MAX),
            agent: None,
        };
        let seen = tokio::time::timeout(config.heartbeat, self.store.worker_seen(&presence)).await;
        match seen {
            // Remote drain is for agents (their gateway honours it); a
            // worker node drains on SIGTERM.
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record this worker as alive"),
            Err(_) => tracing::warn!("recording this worker as alive timed out"),
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

    /// Forgets an execution once its result is recorded (only that execution:
    /// the same task may already be running again); returns it.
    pub(crate) fn forget(&self, id: Uuid, number: i32) -> Option<Arc<Execution>> {
        let mut map = self.inflight.lock().ok()?;
        if map.get(&id).is_some_and(|e| e.number == number) {
            map.remove(&id)
        } else {
            None
        }
    }

    /// Forgets an execution whose result the store has answered, and
    /// counts its outcome when the store `applied` it (its fence held).
    pub(crate) fn recorded(&self, completion: &Completion, applied: bool) {
        let execution = self.forget(completion.id, completion.execution);
        if applied
            && let Some(metrics) = &self.config.metrics
            && let Some(execution) = execution
        {
            metrics.recorded(&execution.labels, completion.transition.state);
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

    pub(super) fn cancel_all(&self, reason: CancelReason) {
        for execution in self.inflight_snapshot() {
            execution.cancel(reason);
        }
    }
}
