//! Dispatch: where every claimed task starts, whoever claimed it (the
//! claimer, or the completer refilling the slots it just freed). Each task
//! takes one claim permit; its execution is tracked as in flight (for the
//! heartbeat, cancellation and the drain), run by the executor, and its
//! result handed to the completer with the permit, which frees only once
//! the result is recorded. With a prefetch (`WorkerConfig::prefetch`)
//! there are more claim permits than slots (with `auto`, handler times are
//! measured here for [`super::prefetch`]): a task then also waits for a
//! slot before its handler starts, and frees the slot when the handler is
//! done, so that the next one starts while this result is written.

use std::sync::Arc;
use std::time::Instant;

use longshore_core::{Completion, TaskRow};
use tokio::sync::OwnedSemaphorePermit;

use super::executor;
use super::shared::Shared;
use crate::context::{CancelReason, Execution};
use crate::metrics::TaskLabels;

/// Starts each of `tasks` in one of `slots` (as many as were claimed for);
/// slots left over stay with the caller.
pub(super) fn start(
    shared: &Arc<Shared>,
    tasks: Vec<TaskRow>,
    slots: &mut Vec<OwnedSemaphorePermit>,
) {
    for task in tasks {
        let Some(slot) = slots.pop() else {
            tracing::error!("the store returned more tasks than asked for");
            return;
        };
        spawn(shared, task, slot);
    }
}

/// Starts `task` in the slot held by `permit`.
fn spawn(shared: &Arc<Shared>, mut task: TaskRow, permit: OwnedSemaphorePermit) {
    let labels = TaskLabels::new(&task.actor, &task.queue);
    let execution = Execution::new(task.id, task.execution, labels);
    if let Ok(mut map) = shared.inflight.lock() {
        map.insert(task.id, execution.clone());
    }
    let shared = shared.clone();
    shared.executions.clone().spawn(async move {
        // A prefetched task waits here for a slot, under its lease.
        let started = match &shared.running {
            None => Some(None),
            Some(running) => tokio::select! {
                biased;
                () = execution.token.cancelled() => None,
                () = shared.unstarted.cancelled() => {
                    execution.cancel(CancelReason::Shutdown);
                    None
                }
                permit = running.clone().acquire_owned() => permit.ok().map(Some),
            },
        };
        let ran = started.is_some();
        let outcome = match started {
            Some(slot) => {
                // The handler owns the arguments; the rest of the row stays here.
                let args = std::mem::take(&mut task.args);
                let running = shared
                    .config
                    .metrics
                    .as_ref()
                    .map(|m| m.execution(&execution.labels));
                let began = Instant::now();
                let outcome = executor::execute(
                    &shared.registry,
                    &shared.config,
                    (&task).into(),
                    args,
                    &execution,
                )
                .await;
                if let Some(auto) = &shared.auto_prefetch {
                    auto.handler_took(began.elapsed());
                }
                drop(running);
                // The next prefetched task may start while this result is
                // written.
                drop(slot);
                outcome
            }
            None => executor::never_started(&shared.config, &execution),
        };
        match outcome {
            Some(outcome) => {
                let mut transition =
                    outcome.transition(task.attempt, task.max_attempts, &shared.config.retry);
                // A prefetched task that never reached a slot was not
                // attempted, whether a stop handed it back or an operator
                // cancelled it: its attempt is given back.
                transition.refund_attempt |= !ran;
                let completion = Completion {
                    id: task.id,
                    queue: task.queue.clone(),
                    execution: task.execution,
                    transition,
                    worst_level: execution.worst_level(),
                    logs: execution.take_logs(),
                };
                // The completer frees the claim's permit once the result is
                // recorded.
                if shared.completions.send((completion, permit)).await.is_err() {
                    tracing::error!(task = %task.id, "the completer has stopped; the task will be rescued when its lease expires");
                }
            }
            None => {
                // The lease is gone: whoever holds the task now records it.
                shared.forget(task.id, task.execution);
                drop(permit);
            }
        }
    });
}
