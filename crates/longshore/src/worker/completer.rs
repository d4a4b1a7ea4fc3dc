//! The completer: records finished executions many per statement.
//!
//! While one batch is being written, the next accumulates, so the batch
//! size follows the load by itself. Each result arrives with its worker
//! slot, which is freed only once the result is written. While the worker
//! is claiming, the same statement claims up to that many new tasks and the
//! slots pass straight to them (through [`super::dispatch`], as the
//! claimer's do): under load, one round trip per batch both
//! records results and fetches work. Slots left over go back to the
//! claimer. A batch whose write fails is kept and
//! written again: nothing finished is forgotten. Results whose fence did not
//! hold (the lease was lost) are discarded by the store and logged here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use longshore_core::{Claim, Completion};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::dispatch;
use super::shared::Shared;

/// How long a shutdown keeps retrying a batch while the database is away;
/// after that the tasks come back through lease expiry.
const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// At most this many yields to gather a batch before writing it.
const GATHER_ROUNDS: usize = 4;

pub(super) async fn run(
    shared: Arc<Shared>,
    mut incoming: mpsc::Receiver<(Completion, OwnedSemaphorePermit)>,
    stop: CancellationToken,
) {
    let max = shared.config.completer_batch;
    let mut batch = Batch::with_capacity(max);
    loop {
        if batch.is_empty() {
            tokio::select! {
                received = incoming.recv() => match received {
                    Some(item) => batch.push(item),
                    None => return,
                },
                () = stop.cancelled() => break,
            }
        }
        // Let executions that are finishing right now land in this batch
        // too: a wave of short tasks then costs one statement, not two.
        // Yield while yielding brings more (a few rounds at most, so a lone
        // result is not held back).
        for _ in 0..GATHER_ROUNDS {
            let before = batch.len();
            tokio::task::yield_now().await;
            while batch.len() < max {
                match incoming.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if batch.len() == before || batch.len() >= max {
                break;
            }
        }
        if !flush(&shared, &mut batch).await {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => break,
            }
        }
    }
    // Stopping: every execution has ended, so whatever is queued is final.
    incoming.close();
    while let Ok(item) = incoming.try_recv() {
        batch.push(item);
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_FLUSH_LIMIT;
    while !batch.is_empty() {
        if flush(&shared, &mut batch).await {
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(
                left = batch.len(),
                "could not record finished tasks before stopping; they will be rescued when their leases expire"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Results waiting to be written, with the slots they hold.
struct Batch {
    completions: Vec<Completion>,
    slots: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            completions: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, (completion, slot): (Completion, OwnedSemaphorePermit)) {
        self.completions.push(completion);
        self.slots.push(slot);
    }

    fn len(&self) -> usize {
        self.completions.len()
    }

    fn is_empty(&self) -> bool {
        self.completions.is_empty()
    }
}

/// Writes up to `completer_batch` results of `batch`, claiming as many new
/// tasks for their slots while claiming is open; on success removes them
/// from the batch, starts the new tasks, frees the slots left over, and
/// returns true.
async fn flush(shared: &Arc<Shared>, batch: &mut Batch) -> bool {
    let n = batch.len().min(shared.config.completer_batch);
    let owner = &shared.config.id;
    let completions = &batch.completions[..n];
    let gate = shared.claim_gate.read().await;
    // Under running-task caps the claimer claims alone: its claims take the
    // cluster-wide claim lock, which a statement that also completes would
    // hold while it writes results.
    // With `prefetch: auto`, the slots the prefetch no longer uses are not
    // refilled but parked.
    let limit = n - shared
        .auto_prefetch
        .as_ref()
        .map_or(0, |a| a.shortfall().min(n));
    let refill = *gate && shared.backlog.load(Ordering::Relaxed) && !shared.caps.any() && limit > 0;
    let began = Instant::now();
    let result = if refill {
        let refill = Claim {
            owner: owner.clone(),
            queues: shared.config.queues.clone(),
            limit,
            lease: shared.config.lease,
            capped: false,
            pool: None,
        };
        shared
            .store
            .complete_and_claim(owner, completions, &refill)
            .await
    } else {
        shared
            .store
            .complete(owner, completions)
            .await
            .map(|rejected| (rejected, Vec::new()))
    };
    match result {
        Ok((rejected, claimed)) => {
            if refill {
                // A short refill means the queue is drained.
                shared
                    .backlog
                    .store(claimed.len() == limit, Ordering::Relaxed);
            }
            for id in &rejected {
                tracing::warn!(
                    task = %id,
                    worker = %shared.config.id,
                    "result discarded: this worker no longer held the task's lease"
                );
            }
            for completion in batch.completions.drain(..n) {
                shared.recorded(&completion, !rejected.contains(&completion.id));
            }
            let mut slots: Vec<_> = batch.slots.drain(..n).collect();
            dispatch::start(shared, claimed, &mut slots);
            if let Some(auto) = &shared.auto_prefetch {
                auto.round_trip_took(began.elapsed());
                auto.park(&mut slots);
            }
            drop(gate);
            if shared.caps.any() {
                // Places under the caps came free: the claimer may have gone
                // to sleep on a claim the caps cut short.
                shared.wake.notify_one();
            }
            true
        }
        Err(e) => {
            drop(gate);
            if refill {
                // The claim half may have committed before the error.
                shared.release_untracked().await;
            }
            if e.is_transient() {
                tracing::warn!(error = %e, pending = batch.len(), "recording finished tasks failed; retrying");
                return false;
            }
            // Retrying the same batch would fail the same way, forever, and
            // hold every later result behind it: find the culprit.
            tracing::error!(error = %e, "recording finished tasks failed; writing them one at a time");
            isolate(shared, batch, n).await;
            true
        }
    }
}

/// Writes the first `n` results of `batch` one by one. A result that still
/// fails is written without its log lines; one that fails even so is given
/// up (its task comes back when its lease expires). Results that meet a
/// transient error go back into the batch.
async fn isolate(shared: &Shared, batch: &mut Batch, n: usize) {
    let owner = &shared.config.id;
    let completions: Vec<Completion> = batch.completions.drain(..n).collect();
    let slots: Vec<OwnedSemaphorePermit> = batch.slots.drain(..n).collect();
    for (mut completion, slot) in completions.into_iter().zip(slots) {
        let mut result = shared
            .store
            .complete(owner, std::slice::from_ref(&completion))
            .await;
        if matches!(&result, Err(e) if !e.is_transient()) && !completion.logs.is_empty() {
            tracing::error!(task = %completion.id, "dropping this execution's log lines to record its result");
            completion.logs.clear();
            result = shared
                .store
                .complete(owner, std::slice::from_ref(&completion))
                .await;
        }
        let applied = match result {
            Ok(rejected) if rejected.is_empty() => true,
            Ok(_) => {
                tracing::warn!(
                    task = %completion.id,
                    "result discarded: this worker no longer held the task's lease"
                );
                false
            }
            Err(e) if e.is_transient() => {
                batch.push((completion, slot));
                continue;
            }
            Err(e) => {
                tracing::error!(
                    task = %completion.id,
                    error = %e,
                    "cannot record this result; the task will run again when its lease expires"
                );
                false
            }
        };
        shared.recorded(&completion, applied);
    }
}
