//! Maintenance: promotes delayed tasks that became due (waking their
//! workers), forgets workers not seen for a lease, rescues running tasks
//! whose lease expired, and every purge interval deletes finished tasks
//! past their retention.
//!
//! One node of the cluster does it at a time: the holder of the
//! maintenance role ([`Leadership::MAINTENANCE`]), a lease every worker
//! tries to take or renew on each pass. When the holder dies, another
//! worker takes the role within one lease; when it stops, it resigns and
//! another takes it at its next pass; when its passes keep failing, it
//! stands down for a lease. Each pass handles bounded batches and repeats
//! while they come back full; a purge gets at most a third of a lease per
//! pass and goes on at the next.

use std::sync::Arc;

use longshore_core::{Leadership, TaskState};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;

const BATCH: i64 = 1000;

/// Passes in a row with a failed step after which the leader gives up its
/// role for a lease, so that a node whose connection is broken does not
/// keep the cluster's rescue to itself.
const FAILED_PASSES_TO_STAND_DOWN: u32 = 3;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let interval = config.maintenance_interval;
    let mut leading = false;
    let mut failed_passes = 0;
    let mut stand_down_until: Option<Instant> = None;
    // The first pass as leader purges; then every purge interval.
    let mut purge_due = Instant::now();
    loop {
        // Spread the nodes' passes so that they do not all run at once.
        let jitter = interval.mul_f64(fastrand::f64() * 0.2);
        tokio::select! {
            () = tokio::time::sleep(interval + jitter) => {}
            () = stop.cancelled() => break,
        }
        if stand_down_until.is_some_and(|until| Instant::now() < until) {
            continue;
        }
        let now_leading = match shared
            .store
            .try_lead(Leadership::MAINTENANCE, &config.id, config.lease)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take or renew the maintenance role");
                false
            }
        };
        if now_leading != leading {
            if now_leading {
                tracing::info!(worker = %config.id, "this worker now runs the cluster's maintenance");
            } else {
                tracing::info!(worker = %config.id, "another worker runs the cluster's maintenance now");
            }
            leading = now_leading;
        }
        if !leading {
            continue;
        }
        if pass(&shared).await {
            failed_passes = 0;
        } else {
            failed_passes += 1;
            if failed_passes >= FAILED_PASSES_TO_STAND_DOWN {
                tracing::warn!(
                    worker = %config.id,
                    "maintenance failed {failed_passes} passes in a row; leaving it to another worker for a lease"
                );
                resign(&shared).await;
                leading = false;
                failed_passes = 0;
                stand_down_until = Some(Instant::now() + config.lease);
                continue;
            }
        }
        if Instant::now() >= purge_due {
            // At most a third of a lease per pass, so that the role (renewed
            // for a lease at each pass) cannot lapse meanwhile and the next
            // pass's rescue is not held up; an unfinished purge goes on at
            // the next pass.
            let budget = Instant::now() + config.lease / 3;
            if purge(&shared, budget, &stop).await {
                purge_due = Instant::now() + config.purge_interval;
            }
        }
    }
    // Whether or not this node believes it leads (a renewal may have
    // committed after its reply was lost): resigning only acts if it does,
    // and lets another worker take over at its next pass, not after a lease.
    resign(&shared).await;
}

/// One pass of the leader's duties that must not wait: promote due tasks,
/// rescue expired leases, forget dead workers. True when every step worked.
async fn pass(shared: &Shared) -> bool {
    let mut ok = true;
    loop {
        match shared.store.promote_due(BATCH).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "promoting due tasks failed");
                ok = false;
                break;
            }
        }
    }
    loop {
        match shared.store.rescue_expired(BATCH).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::warn!(
                    rescued = n,
                    "returned tasks with expired leases to the queue"
                );
                if (n as i64) < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "rescuing expired leases failed");
                ok = false;
                break;
            }
        }
    }
    // A worker not seen for a lease is dead: its tasks were rescued above,
    // and it leaves the list of live ones.
    match shared.store.forget_workers(shared.config.lease).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(forgotten = n, "removed workers not seen for a lease"),
        Err(e) => {
            tracing::warn!(error = %e, "removing workers not seen failed");
            ok = false;
        }
    }
    ok
}

async fn resign(shared: &Shared) {
    if let Err(e) = shared
        .store
        .resign(Leadership::MAINTENANCE, &shared.config.id)
        .await
    {
        tracing::warn!(error = %e, "cannot resign the maintenance role; it passes on when its lease expires");
    }
}

/// Deletes finished tasks past their retention, state by state, in batches,
/// until none is left (true) or `budget` is reached or the worker stops
/// (false: the rest waits for the next pass).
async fn purge(shared: &Shared, budget: Instant, stop: &CancellationToken) -> bool {
    let retention = shared.config.retention;
    let mut finished = true;
    for (state, keep) in [
        (TaskState::Succeeded, retention.succeeded),
        (TaskState::Failed, retention.failed),
        (TaskState::Cancelled, retention.cancelled),
    ] {
        let mut purged = 0;
        loop {
            if Instant::now() >= budget || stop.is_cancelled() {
                finished = false;
                break;
            }
            match shared.store.purge_finished(state, keep, BATCH).await {
                Ok(n) => {
                    purged += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, %state, "purging finished tasks failed");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(%state, purged, retention = ?keep, "purged finished tasks past retention");
        }
        if !finished {
            break;
        }
    }
    finished
}
