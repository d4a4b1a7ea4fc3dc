//! Maintenance: promotes delayed tasks that became due (waking their
//! workers), forgets workers not seen for a lease, and rescues running
//! tasks whose lease expired.
//!
//! Both statements skip rows another node has locked, so every worker may
//! run them; each pass handles a bounded batch and repeats while batches
//! come back full.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Shared;

const BATCH: i64 = 1000;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared.config.maintenance_interval;
    loop {
        // Spread the nodes' passes so that they do not all run at once.
        let jitter = interval.mul_f64(fastrand::f64() * 0.2);
        tokio::select! {
            () = tokio::time::sleep(interval + jitter) => {}
            () = stop.cancelled() => return,
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
        // A worker not seen for a lease is dead: its tasks are rescued
        // below, and it leaves the list of live ones.
        match shared.store.forget_workers(shared.config.lease).await {
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
}
