//! The embedded SQLite storage engine for Longshore.
//!
//! # Brief overview
//!
//! [`SqliteStore`] implements [`longshore_core::Store`] on one SQLite file,
//! for a single process (the `longshore serve` default) and the occasional
//! second one (a `longshore enqueue` from another terminal):
//!
//! - the file runs in WAL mode, so reads never wait for the writer;
//! - every write goes through one connection, so writers of this process
//!   queue in the pool instead of fighting over SQLite's file lock; other
//!   processes wait for that lock up to a busy timeout;
//! - transactions that write take the lock up front (`BEGIN IMMEDIATE`);
//! - many rows travel as one JSON array parameter, one statement for a whole
//!   batch, as the PostgreSQL engine does with arrays;
//! - where PostgreSQL has `NOTIFY`, this engine wakes the workers of its own
//!   process directly ([`Store::listen`](longshore_core::Store::listen)); workers poll for tasks that
//!   another process wrote.
//!
//! The store is laid out by noun, as the storage interface is: `store/tasks.rs`
//! with its statements in `store/tasks/sql.rs`, and so on for counts, queues,
//! cluster, schedules and tokens (see `store/mod.rs`); the schema and its
//! indexes are in `migrations/`.

#![warn(missing_docs)]

mod error;
mod migrate;
mod row;
mod store;

pub use migrate::latest_version;
pub use store::{SqliteOptions, SqliteStore, parse_url};
