//! Whether the cluster has running-task caps that concern this node, as
//! last read: every node reads it at each maintenance pass, leader or not.
//! Claims read the caps themselves anyway; what hangs on this view is only
//! how a worker claims (under the cluster-wide claim lock, and without
//! refills from the completer).

use std::sync::atomic::{AtomicBool, Ordering};

use longshore_core::Store;

use crate::config::WorkerConfig;

/// This node's view of the caps.
#[derive(Debug, Default)]
pub(crate) struct Caps {
    capped: AtomicBool,
}

impl Caps {
    /// Whether a cap concerned this node at the last reading.
    pub(crate) fn any(&self) -> bool {
        self.capped.load(Ordering::Relaxed)
    }

    /// Reads whether the cluster has running-task caps. On failure the
    /// last answer stands (every claim reads the caps themselves anyway;
    /// only the claim lock depends on this).
    pub(crate) async fn refresh(&self, store: &dyn Store, config: &WorkerConfig) {
        let read = async {
            let global = store.cluster_settings().await?.max_running.is_some();
            let queues = store.queue_settings().await?;
            // Only caps on the queues this worker claims from concern it.
            Ok::<_, longshore_core::StoreError>(
                global
                    || queues
                        .iter()
                        .any(|q| q.max_running.is_some() && config.queues.contains(&q.name)),
            )
        };
        match tokio::time::timeout(config.heartbeat, read).await {
            Ok(Ok(capped)) => {
                let was = self.capped.swap(capped, Ordering::Relaxed);
                if was != capped {
                    tracing::info!(capped, "the cluster's running-task caps changed");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the cluster's running-task caps"),
            Err(_) => tracing::warn!("reading the cluster's running-task caps timed out"),
        }
    }
}
