//! The cluster: live worker nodes and the roles one node holds at a time.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// What a worker node says of itself at start and on every heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPresence {
    /// Its id, the lease owner of its tasks.
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// The version of Longshore it runs.
    pub version: String,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Its slots.
    pub concurrency: i32,
    /// Tasks it runs now. A worker reports its own figure at each
    /// heartbeat; [`ClusterStore::workers`] counts it afresh from the
    /// tasks the node holds, so that a list never lags the truth.
    pub running: i32,
    /// What it is as an agent, when it is one (its gateway records it);
    /// `None` for a worker node.
    pub agent: Option<AgentPresence>,
}

/// What a connected agent is, beside what every node says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPresence {
    /// The pool it serves.
    pub pool: String,
    /// The labels it offers.
    pub labels: Vec<String>,
}

/// A live worker node, as [`ClusterStore::workers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// What it last said of itself.
    pub presence: WorkerPresence,
    /// When it first said so.
    pub started_at: DateTime<Utc>,
    /// When it last said so.
    pub last_seen_at: DateTime<Utc>,
    /// An operator asked it to drain ([`ClusterStore::request_drain`]).
    pub drain_requested: bool,
}

/// Who holds a cluster-wide role (see [`ClusterStore::try_lead`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The role, e.g. [`Leadership::MAINTENANCE`].
    pub name: String,
    /// The node holding it.
    pub holder: String,
    /// Since when this holder has held it.
    pub acquired_at: DateTime<Utc>,
    /// When its lease runs out unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl Leadership {
    /// The role of the node that runs the cluster's maintenance (promotion
    /// of due tasks, rescue of expired leases, forgetting dead workers).
    pub const MAINTENANCE: &'static str = "maintenance";
    /// The role of the node that fires due schedules.
    pub const SCHEDULER: &'static str = "scheduler";
}

/// Worker nodes and cluster-wide roles.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Records that a worker node (or an agent, through its gateway) is
    /// alive, with what it says of itself (the first call also records
    /// when it started). Returns whether an operator asked it to drain
    /// ([`ClusterStore::request_drain`]).
    async fn worker_seen(&self, worker: &WorkerPresence) -> Result<bool, StoreError>;

    /// [`ClusterStore::worker_seen`] for many nodes in one statement (a
    /// gateway records all its agents at once, so that idle agents cost
    /// the database one write per heartbeat, not one each). Returns the
    /// ids of those an operator asked to drain.
    async fn workers_seen(&self, workers: &[WorkerPresence]) -> Result<Vec<String>, StoreError>;

    /// Asks the live node `id` to drain: finish what it runs and take
    /// nothing more. It learns of it at its next heartbeat. False when no
    /// live node has that id.
    async fn request_drain(&self, id: &str) -> Result<bool, StoreError>;

    /// Removes a worker node that stopped.
    async fn worker_stopped(&self, id: &str) -> Result<(), StoreError>;

    /// The worker nodes that are alive, by id.
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError>;

    /// Removes the worker nodes not seen for `unseen_for` (they died
    /// without saying so); returns how many.
    async fn forget_workers(&self, unseen_for: Duration) -> Result<u64, StoreError>;

    /// Takes or renews the cluster-wide role `name` for `holder` for `ttl`:
    /// true when `holder` holds it now (it did and renewed it, nobody held
    /// it, or the last holder's lease expired), false when another node
    /// holds an unexpired lease on it.
    async fn try_lead(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives up role `name` if `holder` holds it, so that another node may
    /// take it at once.
    async fn resign(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Who holds each role with an unexpired lease, by role.
    async fn leaders(&self) -> Result<Vec<Leadership>, StoreError>;
}
