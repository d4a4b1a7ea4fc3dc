//! The heartbeat: renews the leases of running executions, writes their
//! log lines so that people can follow a long task, and learns which tasks
//! were lost or asked to cancel.
//!
//! If renewals keep failing for a whole lease, other workers may already
//! have rescued the tasks: this worker then stops its executions rather
//! than run them twice side by side for long.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
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
            last_renewed = Instant::now();
            continue;
        }
        let held: Vec<_> = executions.iter().map(|e| (e.task_id, e.attempt)).collect();
        let logs: Vec<_> = executions.iter().flat_map(|e| e.take_logs()).collect();
        match shared
            .store
            .heartbeat(&config.id, &held, config.lease, &logs)
            .await
        {
            Ok(beat) => {
                last_renewed = Instant::now();
                for id in &beat.lost {
                    if let Some(execution) = shared.inflight_get(id) {
                        tracing::warn!(task = %id, "lease lost; stopping the execution");
                        execution.cancel(CancelReason::LeaseLost);
                    }
                }
                for id in &beat.cancel_requested {
                    if let Some(execution) = shared.inflight_get(id) {
                        execution.cancel(CancelReason::Operator);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, running = held.len(), "lease renewal failed");
                restore(&shared, logs);
                if last_renewed.elapsed() >= config.lease {
                    tracing::error!(
                        "leases not renewed for a whole lease period; stopping this worker's executions"
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
