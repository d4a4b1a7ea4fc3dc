//! Durable background tasks for Rust applications.
//!
//! # Brief overview
//!
//! Longshore stores each task as a row in a database — an embedded SQLite
//! file ([`sqlite::SqliteStore`]) or PostgreSQL shared by many machines
//! ([`postgres::PgStore`]); workers claim due tasks in batches under short
//! leases, run them, retry failures with backoff, and record what each
//! execution logged. Both engines implement [`Store`] and behave the same.
//!
//! - Define work with [`Task`] (typed) or [`Actor`] (raw JSON) and register
//!   it in a [`Registry`].
//! - Enqueue with a [`Client`], in bulk with [`Client::enqueue_many`], or
//!   inside your own transaction with [`postgres::enqueue_task_in`].
//! - Run a [`Worker`] in-process and stop it with [`WorkerHandle::shutdown`];
//!   [`WorkerHandle::health`] answers readiness checks.
//! - Count what the process does with [`metrics::Metrics`] (Prometheus).
//! - Steer a cluster as the CLI and the API do, with [`ops`].
//!
//! Inside, a worker is a handful of loops (`src/worker/`: claimer →
//! dispatch → executor → completer, heartbeat, listener), and the
//! cluster's housekeeping is small leader-run services
//! (`src/maintenance/`: promote, counts, rescue, workers, purge,
//! scheduler). The engines are Cargo features, `postgres` and `sqlite`,
//! both on by default.
//!
//! ```no_run
//! use std::sync::Arc;
//! use longshore::{Client, Registry, Task, TaskContext, TaskError, Worker, WorkerConfig};
//! use longshore::postgres::{PgOptions, PgStore};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greet { name: String }
//!
//! impl Task for Greet {
//!     const ACTOR: &'static str = "greet";
//!     async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
//!         ctx.info(format!("hello, {}", self.name));
//!         Ok(())
//!     }
//! }
//!
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://localhost/app", &PgOptions::default()).await?;
//! let store: Arc<dyn longshore::Store> = Arc::new(store);
//! store.migrate().await?;
//!
//! Client::new(store.clone()).enqueue(Greet { name: "world".into() }).await?;
//!
//! let mut registry = Registry::new();
//! registry.register::<Greet>();
//! let worker = Worker::new(store, registry, WorkerConfig::default())?.start();
//! tokio::signal::ctrl_c().await?;
//! worker.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod actor;
mod caps;
mod client;
mod config;
mod context;
mod error;
mod maintenance;
pub mod metrics;
pub mod ops;
pub mod remote;
mod worker;

pub use actor::{Actor, Registry, Task};
pub use client::{Client, EnqueueOptions, new_task};
pub use config::{Prefetch, Retention, WorkerConfig, default_worker_id};
pub use context::{CancelReason, TaskContext};
pub use error::{Error, TaskError, with_causes};
pub use metrics::Metrics;
pub use worker::{Worker, WorkerHandle, WorkerHealth, WorkerState};

pub use longshore_core as core;
pub use longshore_core::{
    ClusterStore, CountStore, EnqueueResult, ExecutionLogs, LogEntry, LogLevel, NewTask, Overlap,
    QueueStore, Related, RetryPolicy, Schedule, ScheduleDef, ScheduleStore, Secrets, Session,
    Status, Store, StoreError, TaskRow, TaskState, TaskStore, TokenScope, TokenStore,
};

/// The README's examples, compiled as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(feature = "postgres")]
pub mod postgres;

/// The embedded SQLite engine (feature `sqlite`, on by default).
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use longshore_sqlite::{SqliteOptions, SqliteStore, latest_version, parse_url};
    pub use sqlx::sqlite::SqliteConnectOptions;
}
