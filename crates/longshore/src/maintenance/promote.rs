//! Promotion: scheduled tasks whose due time has come are marked queued,
//! a bounded batch at a time. Claims do not depend on it (they take due
//! scheduled tasks anyway); it keeps the stored state truthful for
//! operators and wakes the queues' workers. Every pass.

use super::Node;
use super::{BATCH, Job};

pub(super) async fn run(node: &Node) -> Job {
    loop {
        match node.store.promote_due(BATCH).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => return Job::Done,
            Err(e) => {
                tracing::warn!(error = %e, "promoting due tasks failed");
                return Job::Failed;
            }
        }
    }
}
