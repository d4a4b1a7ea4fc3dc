//! Agent tokens past their expiry are deleted: they open nothing any more
//! (the gateway checks the expiry itself), and the list stays short.
//! Built-in schedule `longshore.agent_tokens`, daily by default.

use chrono::Utc;

use super::Job;
use super::Node;

pub(super) async fn run(node: &Node) -> Job {
    match node.store.delete_expired_agent_tokens(Utc::now()).await {
        Ok(0) => Job::Done,
        Ok(n) => {
            tracing::info!(deleted = n, "deleted expired agent tokens");
            Job::Done
        }
        Err(e) => {
            tracing::warn!(error = %e, "deleting expired agent tokens failed");
            Job::Failed
        }
    }
}
