//! Rescue: running tasks whose lease expired (their worker died or was
//! cut off) go back to the queue, or fail when their attempts are spent.
//! Built-in schedule `longshore.rescue`, every second by default.
//! Tested in `tests/recovery.rs`.

use super::{BATCH, Job};
use crate::worker::Shared;

pub(super) async fn run(shared: &Shared) -> Job {
    loop {
        match shared.store.rescue_expired(BATCH).await {
            Ok(0) => return Job::Done,
            Ok(n) => {
                tracing::warn!(
                    rescued = n,
                    "returned tasks with expired leases to the queue"
                );
                if let Some(metrics) = &shared.config.metrics {
                    metrics.rescued(n);
                }
                if (n as i64) < BATCH {
                    return Job::Done;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "rescuing expired leases failed");
                return Job::Failed;
            }
        }
    }
}
