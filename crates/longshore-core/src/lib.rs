//! Longshore's shared vocabulary.
//!
//! # Brief overview
//!
//! Everything in Longshore speaks in the types defined here, and this crate
//! does no I/O of its own:
//!
//! - [`task`]: a stored task ([`TaskRow`]), a task to insert ([`NewTask`]),
//!   its [`TaskState`] and the [`Status`] people see.
//! - [`lifecycle`]: what a finished execution turns into ([`Outcome`] →
//!   [`Transition`]); the state machine, tested as plain data.
//! - [`retry`]: the backoff between attempts ([`RetryPolicy`]).
//! - [`schedule`]: cron schedules ([`ScheduleDef`], [`Schedule`]) and
//!   when they come due ([`CronSpec`]).
//! - [`store`]: the storage interface ([`Store`]) every engine implements,
//!   split by noun ([`TaskStore`], [`CountStore`], [`QueueStore`],
//!   [`ClusterStore`], [`ScheduleStore`], [`TokenStore`]).
//! - [`error`]: the one error type of storage ([`StoreError`]).
//! - [`migrate`]: the one migrator; an engine brings its lock, its ledger
//!   statements and its files.
//! - [`secret`]: secrets that tasks name in their arguments
//!   (`{"$secret": "name"}`) and workers fill in as they run ([`Secrets`]).
//! - [`token`]: API tokens ([`TokenInfo`], [`TokenScope`]) and how their
//!   secrets are made and stored ([`TokenSecret`]).
//!
//! Engines (`longshore-postgres`, `longshore-sqlite`) implement [`Store`];
//! the worker runtime and the operator operations (`longshore`) drive it.
//! Start reading at [`store`], then [`task`] and [`lifecycle`].

#![warn(missing_docs)]

pub mod error;
pub mod lifecycle;
pub mod migrate;
pub mod pool;
pub mod retry;
pub mod schedule;
pub mod secret;
pub mod store;
pub mod task;
pub mod token;

pub use error::StoreError;
pub use lifecycle::{Outcome, Transition};
pub use pool::{AgentTokenInfo, NewPool, Pool, PoolChange};
pub use retry::RetryPolicy;
pub use schedule::{
    CronSpec, Fire, FireKind, FireOutcome, Overlap, PutMode, Schedule, ScheduleDef,
};
pub use secret::Secrets;
pub use store::{
    AgentPresence, AgentStore, AuditEntry, AuditStore, BulkAction, CancelResult, Claim,
    ClusterSettings, ClusterStore, Completion, CountStore, Dialect, EnqueueResult, EventSource,
    Heartbeat, Leadership, MinuteRow, NewAuditEntry, NewOperation, Operation, OperationState,
    OperationStore, PoolClaim, QueueSettings, QueueStore, ScheduleStore, SelectionSql, Session,
    StatsKey, StatsRow, Store, StoreEvent, TaskFilter, TaskSelection, TaskStore, TokenStore,
    WorkerInfo, WorkerPresence,
};
pub use task::{ExecutionLogs, LogEntry, LogLevel, NewTask, Related, Status, TaskRow, TaskState};
pub use token::{TokenInfo, TokenScope, TokenSecret};
