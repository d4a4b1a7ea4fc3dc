//! Rescue: running tasks whose lease expired (their worker died or was
//! cut off) go back to the queue, or fail when their attempts are spent.
//! Built-in schedule `longshore.rescue`, every second by default.
//! Tested in `tests/recovery.rs`.

use super::Node;
use super::{BATCH, Job};

pub(super) async fn run(node: &Node) -> Job {
    loop {
        match node.store.rescue_expired(BATCH).await {
            Ok(0) => return Job::Done,
            Ok(n) => {
                tracing::warn!(
                    rescued = n,
                    "returned tasks with expired leases to the queue"
                );
                if let Some(metrics) = &node.config.metrics {
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
