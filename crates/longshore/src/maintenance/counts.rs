//! Counts: folds the task count changes appended since the last pass into
//! their totals, so that reading the counts (stats, queue depths, the
//! queue gauge) stays cheap; one fold takes every change committed before
//! it. Every pass.

use super::Job;
use super::Node;

pub(super) async fn run(node: &Node) -> Job {
    match node.store.fold_counts().await {
        Ok(_) => Job::Done,
        Err(e) => {
            tracing::warn!(error = %e, "folding the task counts failed");
            Job::Failed
        }
    }
}
