//! Queues and capacity: pause and resume, running-task caps per queue
//! and across the cluster.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::task::NewTask;

/// A queue's runtime settings, shared by every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// The queue.
    pub name: String,
    /// No node claims its tasks while it is paused.
    pub paused: bool,
    /// At most this many of its tasks run at once across the cluster
    /// (`None`: no limit of its own).
    pub max_running: Option<i32>,
}

/// Settings that hold for the whole cluster, stored in the database and
/// changeable while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSettings {
    /// At most this many tasks run at once across all nodes (`None`: no cap).
    pub max_running: Option<i32>,
}

impl ClusterSettings {
    /// Refuses a cap no task could run under.
    pub fn check_cap(cap: Option<i32>) -> Result<(), StoreError> {
        match cap {
            Some(n) if n < 1 => Err(StoreError::InvalidInput(format!(
                "a running-task cap must be at least 1 (or none), got {n}"
            ))),
            _ => Ok(()),
        }
    }
}

impl QueueSettings {
    /// Refuses a name no task could carry.
    pub fn check_name(queue: &str) -> Result<(), StoreError> {
        if queue.trim().is_empty() {
            return Err(StoreError::InvalidInput("queue name is empty".into()));
        }
        if queue.len() > NewTask::MAX_NAME_BYTES {
            return Err(StoreError::InvalidInput(format!(
                "queue name is {} bytes; the limit is {}",
                queue.len(),
                NewTask::MAX_NAME_BYTES
            )));
        }
        crate::task::check_printable("queue name", queue).map_err(StoreError::InvalidInput)?;
        Ok(())
    }
}

/// Queues and the caps on running tasks.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Pauses (`true`) or resumes a queue for every node. A paused queue's
    /// tasks stay where they are: claims started after this returns do not
    /// take them; tasks already running finish. Resuming wakes the queue's
    /// workers.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError>;

    /// The queues that have settings of their own, by name.
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>, StoreError>;

    /// Caps a queue's running tasks across the cluster (`None` lifts it).
    async fn set_queue_limit(
        &self,
        queue: &str,
        max_running: Option<i32>,
    ) -> Result<(), StoreError>;

    /// The cluster-wide settings.
    async fn cluster_settings(&self) -> Result<ClusterSettings, StoreError>;

    /// Caps the running tasks of the whole cluster (`None` lifts it).
    async fn set_max_running(&self, max_running: Option<i32>) -> Result<(), StoreError>;
}
