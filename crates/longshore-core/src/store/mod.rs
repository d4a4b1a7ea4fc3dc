//! The storage interface every engine implements, split by noun: each
//! file holds one noun's trait and the types its methods take and give.
//!
//! | noun | trait | file |
//! |---|---|---|
//! | tasks: enqueue, claim, heartbeat, complete, rescue, list, retry, cancel, delete, purge | [`TaskStore`] | `tasks.rs` |
//! | task counts | [`CountStore`] | `counts.rs` |
//! | queues and running-task caps | [`QueueStore`] | `queues.rs` |
//! | worker nodes and cluster roles | [`ClusterStore`] | `cluster.rs` |
//! | cron schedules | [`ScheduleStore`] | `schedules.rs` |
//! | API tokens and dashboard sessions | [`TokenStore`] | `tokens.rs` |
//! | the audit trail of changes | [`AuditStore`] | `audit.rs` |
//! | agent pools and agent tokens | [`AgentStore`] | `agents.rs` |
//! | bulk operations in the background | [`OperationStore`] | `operations.rs` |
//!
//! [`Store`] is all of them, with the engine's own calls (migrations, a
//! ping, the event stream). The worker runtime and every operator command
//! talk to storage only through it. An engine may be faster than another,
//! never different: the shared conformance tests in the `longshore` crate
//! are the specification.

mod agents;
mod audit;
mod cluster;
mod counts;
mod operations;
mod queues;
mod schedules;
mod selection;
mod tasks;
mod tokens;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;

pub use agents::AgentStore;
pub use audit::{AuditEntry, AuditStore, NewAuditEntry};
pub use cluster::{AgentPresence, ClusterStore, Leadership, WorkerInfo, WorkerPresence};
pub use counts::{CountStore, MinuteRow, StatsKey, StatsRow, counted_none};
pub use operations::{BulkAction, NewOperation, Operation, OperationState, OperationStore};
pub use queues::{ClusterSettings, QueueSettings, QueueStore};
pub use schedules::ScheduleStore;
pub use selection::{Dialect, SelectionSql};
pub use tasks::{
    CancelResult, Claim, Completion, EnqueueResult, Heartbeat, PoolClaim, TaskFilter,
    TaskSelection, TaskStore, check_purgeable,
};
pub use tokens::{Session, TokenStore};

/// Every storage trait, to call a store's methods on an engine's own type
/// (`PgStore`, `SqliteStore`): `use longshore_core::store::prelude::*;`.
/// A `dyn Store` needs no import.
pub mod prelude {
    pub use super::{
        AgentStore, AuditStore, ClusterStore, CountStore, OperationStore, QueueStore,
        ScheduleStore, Store, TaskStore, TokenStore,
    };
}

/// A change another process made that a worker wants to hear about at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// Tasks became due on this queue.
    TaskAvailable {
        /// The queue.
        queue: String,
    },
    /// An operator asked for this running task to be cancelled.
    CancelRequested {
        /// The task.
        id: Uuid,
    },
}

/// A stream of [`StoreEvent`]s on a dedicated connection.
#[async_trait]
pub trait EventSource: Send {
    /// The next event. An error means the connection broke: the caller falls
    /// back to polling and may call again to reconnect.
    async fn recv(&mut self) -> Result<StoreEvent, StoreError>;
}

/// The storage interface: every noun's calls, and the engine's own.
#[async_trait]
pub trait Store:
    TaskStore
    + CountStore
    + QueueStore
    + ClusterStore
    + ScheduleStore
    + TokenStore
    + AuditStore
    + AgentStore
    + OperationStore
    + Send
    + Sync
    + 'static
{
    /// The engine's name, e.g. `postgres`.
    fn engine(&self) -> &'static str;

    /// Applies pending migrations and returns the versions it applied;
    /// safe when several nodes run it at once.
    async fn migrate(&self) -> Result<Vec<i32>, StoreError>;

    /// The newest schema version this build knows.
    fn schema_version(&self) -> i32;

    /// One trivial round trip: is the database answering, with a schema
    /// (its migration ledger at least)?
    async fn ping(&self) -> Result<(), StoreError>;

    /// A dedicated event stream, or `None` when the engine or its
    /// configuration (poll-only) has none.
    async fn listen(&self) -> Result<Option<Box<dyn EventSource>>, StoreError>;
}
