//! The PostgreSQL storage engine for Longshore.
//!
//! # Brief overview
//!
//! [`PgStore`] implements [`longshore_core::Store`] on a PostgreSQL database
//! that many worker nodes share:
//!
//! - claims lock up to the free slots' worth of due tasks with
//!   `FOR UPDATE SKIP LOCKED` in one statement;
//! - completions, heartbeats and log lines are written many rows per
//!   statement, from array parameters;
//! - an enqueue raises one `NOTIFY` per queue per transaction, which
//!   PostgreSQL delivers at commit; workers `LISTEN` on a dedicated
//!   connection ([`Store::listen`](longshore_core::Store::listen)) and poll as a safety net;
//! - [`enqueue_in`] inserts tasks inside the caller's own transaction, so a
//!   task exists only if that transaction commits.
//!
//! The store is laid out by noun, as the storage interface is: `store/tasks.rs`
//! with its statements in `store/tasks/sql.rs`, and so on for counts, queues,
//! cluster, schedules and tokens (see `store/mod.rs`); the schema and its
//! indexes are in `migrations/`.

#![warn(missing_docs)]

mod error;
mod exec;
mod migrate;
mod row;
mod store;

pub use migrate::latest_version;
pub use store::{PgOptions, PgStore, enqueue_in, parse_url};
