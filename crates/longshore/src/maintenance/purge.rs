//! Purge: finished tasks past their retention (by state, see
//! [`Retention`](crate::Retention)) are deleted with their logs, and
//! expired dashboard sessions, old audit entries, finished bulk operations
//! and old throughput per minute with them, in
//! bounded batches, within a time budget per pass; what is left waits for
//! the next pass. Built-in schedule `longshore.purge`, every minute by
//! default. Tested in `tests/purge.rs`.

use longshore_core::TaskState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Node;
use super::{BATCH, Job};

/// Deletes finished tasks past their retention, state by state, in batches,
/// until none is left, or `budget` is reached or the worker stops.
pub(super) async fn run(node: &Node, budget: Instant, stop: &CancellationToken) -> Job {
    let retention = node.config.retention;
    for (state, keep) in [
        (TaskState::Succeeded, retention.succeeded),
        (TaskState::Failed, retention.failed),
        (TaskState::Cancelled, retention.cancelled),
    ] {
        let mut purged = 0;
        let mut job = Job::Done;
        loop {
            if Instant::now() >= budget || stop.is_cancelled() {
                job = Job::Unfinished;
                break;
            }
            match node.store.purge_finished(state, keep, BATCH).await {
                Ok(n) => {
                    purged += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, %state, "purging finished tasks failed");
                    job = Job::Failed;
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(%state, purged, retention = ?keep, "purged finished tasks past retention");
        }
        if job != Job::Done {
            return job;
        }
    }
    // Expired dashboard sessions, and audit entries past their retention,
    // go with the finished tasks.
    loop {
        match node.store.purge_sessions(BATCH).await {
            Ok(n) if (n as i64) < BATCH => break,
            Ok(_) if Instant::now() >= budget || stop.is_cancelled() => return Job::Unfinished,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "purging expired dashboard sessions failed");
                return Job::Failed;
            }
        }
    }
    loop {
        match node.store.purge_audit(retention.audit, BATCH).await {
            Ok(n) if (n as i64) < BATCH => break,
            Ok(_) if Instant::now() >= budget || stop.is_cancelled() => return Job::Unfinished,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "purging the audit trail failed");
                return Job::Failed;
            }
        }
    }
    // A minute's throughput is one row per queue, and operations are
    // started by hand: a pass that runs every minute deletes a few rows of
    // each, so no batches. Bulk operations go with the audit trail.
    if let Err(e) = node.store.purge_throughput(retention.throughput).await {
        tracing::warn!(error = %e, "purging the throughput per minute failed");
        return Job::Failed;
    }
    match node.store.purge_operations(retention.audit).await {
        Ok(_) => Job::Done,
        Err(e) => {
            tracing::warn!(error = %e, "purging finished bulk operations failed");
            Job::Failed
        }
    }
}
