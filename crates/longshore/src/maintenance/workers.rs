//! The worker registry: a worker node not seen for a lease is dead; it
//! leaves the list of live ones (`longshore workers list`), and rescue
//! takes its tasks. Built-in schedule `longshore.workers`, every five
//! seconds by default. Tested in `tests/workers.rs`.

use super::Job;
use super::Node;

pub(super) async fn run(node: &Node) -> Job {
    match node.store.forget_workers(node.config.lease).await {
        Ok(0) => Job::Done,
        Ok(n) => {
            tracing::info!(forgotten = n, "removed workers not seen for a lease");
            Job::Done
        }
        Err(e) => {
            tracing::warn!(error = %e, "removing workers not seen failed");
            Job::Failed
        }
    }
}
