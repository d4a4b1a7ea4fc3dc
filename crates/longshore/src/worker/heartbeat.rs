//! The heartbeat: tells the cluster this worker is alive, renews the leases
//! of running executions, writes their log lines so that people can follow
//! a long task, and learns which tasks were lost or asked to cancel.
//!
//! If renewals keep failing, this worker stops its executions before their
//! leases can expire, so that they never run side by side with the
//! rescued copies on another worker.

use std::collections::HashMap;
use std::sync::Arc;

use longshore_core::StoreError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::context::CancelReason;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let mut last_renewed = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(config.heartbeat) => {}
            () = stop.cancelled() => return,
        }
        let executions = shared.inflight_snapshot();
        if executions.is_empty() {
            shared.announce().await;
            last_renewed = Instant::now();
            continue;
        }
        let held: Vec<_> = executions.iter().map(|e| (e.task_id, e.number)).collect();
        let logs: Vec<_> = executions.iter().flat_map(|e| e.take_logs()).collect();
        // A renewal gets one heartbeat interval: a call that hangs (a
        // partitioned network) is given up early enough to stop the
        // executions before their leases expire.
        let renewal = async {
            tokio::time::timeout(
                config.heartbeat,
                shared
                    .store
                    .heartbeat(&config.id, &held, config.lease, &logs),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "lease renewal timed out".to_owned(),
                ))
            })
        };
        // Side by side: saying this worker is alive must never delay the
        // renewal of its leases.
        let ((), renewal) = tokio::join!(shared.announce(), renewal);
        match renewal {
            Ok(beat) => {
                last_renewed = Instant::now();
                // Act only on executions of this snapshot that are still in
                // flight: one recorded meanwhile looks "lost" but is done,
                // and the same task may already run again as a newer execution.
                for execution in &executions {
                    let current = shared
                        .inflight_get(&execution.task_id)
                        .is_some_and(|e| Arc::ptr_eq(&e, execution));
                    if !current {
                        continue;
                    }
                    if beat.lost.contains(&execution.task_id) {
                        tracing::warn!(task = %execution.task_id, execution = execution.number, "lease lost; stopping the execution");
                        execution.cancel(CancelReason::LeaseLost);
                    } else if beat.cancel_requested.contains(&execution.task_id) {
                        execution.cancel(CancelReason::Operator);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, running = held.len(), "lease renewal failed");
                restore(&shared, logs);
                // Stop before the leases can expire, not after: once they
                // have, another worker may already be running these tasks.
                if last_renewed.elapsed() + config.heartbeat >= config.lease {
                    tracing::error!(
                        "leases could not be renewed and are about to expire; stopping this worker's executions"
                    );
                    for execution in executions {
                        execution.cancel(CancelReason::LeaseLost);
                    }
                }
            }
        }
    }
}

/// Gives log lines back to their executions after a failed write.
fn restore(shared: &Shared, logs: Vec<longshore_core::LogEntry>) {
    let mut by_task: HashMap<_, Vec<_>> = HashMap::new();
    for line in logs {
        by_task.entry(line.task_id).or_default().push(line);
    }
    for (id, lines) in by_task {
        if let Some(execution) = shared.inflight_get(&id) {
            execution.restore_logs(lines);
        }
    }
}
