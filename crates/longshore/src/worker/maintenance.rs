//! Maintenance: promotes delayed tasks that became due (waking their
//! workers), forgets workers not seen for a lease, rescues running tasks
//! whose lease expired, and every purge interval deletes finished tasks
//! past their retention.
//!
//! One node of the cluster does it at a time: the holder of the
//! maintenance role ([`Leadership::MAINTENANCE`]), a lease every worker
//! tries to take or renew on each pass. When the holder dies, another
//! worker takes the role within one lease; when it stops, it resigns and
//! another takes it at its next pass. Each pass handles bounded batches
//! and repeats while they come back full.

use std::sync::Arc;

use longshore_core::{Leadership, TaskState};
use tokio_util::sync::CancellationToken;

use super::Shared;

const BATCH: i64 = 1000;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let interval = config.maintenance_interval;
    let mut leading = false;
    // The first pass as leader purges; then every purge interval.
    let mut next_purge = tokio::time::Instant::now();
    loop {
        // Spread the nodes' passes so that they do not all run at once.
        let jitter = interval.mul_f64(fastrand::f64() * 0.2);
        tokio::select! {
            () = tokio::time::sleep(interval + jitter) => {}
            () = stop.cancelled() => break,
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
        loop {
            match shared.store.promote_due(BATCH).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "promoting due tasks failed");
                    break;
                }
            }
        }
        if tokio::time::Instant::now() >= next_purge {
            purge(&shared).await;
            next_purge = tokio::time::Instant::now() + config.purge_interval;
        }
        // A worker not seen for a lease is dead: its tasks are rescued
        // below, and it leaves the list of live ones.
        match shared.store.forget_workers(config.lease).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "removed workers not seen for a lease"),
            Err(e) => tracing::warn!(error = %e, "removing workers not seen failed"),
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
                    break;
                }
            }
        }
    }
    if leading {
        // Let another worker take over at its next pass, not after a lease.
        if let Err(e) = shared
            .store
            .resign(Leadership::MAINTENANCE, &config.id)
            .await
        {
            tracing::warn!(error = %e, "cannot resign the maintenance role; it passes on when its lease expires");
        }
    }
}

/// Deletes finished tasks past their retention, state by state, in batches
/// until none is left: it runs on the leader beside the workers' claims,
/// whatever the load, so it keeps up with any rate of finished tasks.
async fn purge(shared: &Shared) {
    let retention = shared.config.retention;
    for (state, keep) in [
        (TaskState::Succeeded, retention.succeeded),
        (TaskState::Failed, retention.failed),
        (TaskState::Cancelled, retention.cancelled),
    ] {
        let mut purged = 0;
        loop {
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
    }
}
