//! The PostgreSQL engine (feature `postgres`, on by default), and enqueueing
//! inside the application's own transaction.
//!
//! A task enqueued in the transaction that writes the row it is about
//! exists only if that transaction commits: no email for a user whose
//! insert rolled back, no user without their welcome email.
//!
//! ```no_run
//! use longshore::postgres::{self, sqlx};
//! use longshore::{EnqueueOptions, Task, TaskContext, TaskError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { user_id: i64 }
//!
//! impl Task for Welcome {
//!     const ACTOR: &'static str = "welcome";
//!     async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
//!         ctx.info(format!("welcoming user {}", self.user_id));
//!         Ok(())
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect("postgres://localhost/app").await?;
//! let mut tx = pool.begin().await?;
//! let user_id: i64 = sqlx::query_scalar("INSERT INTO users (name) VALUES ($1) RETURNING id")
//!     .bind("Ada")
//!     .fetch_one(&mut *tx)
//!     .await?;
//! let queued = postgres::enqueue_task_in(&mut tx, &Welcome { user_id }, &EnqueueOptions::default()).await?;
//! tx.commit().await?;
//! println!("task {} waits for the workers", queued.id);
//! # Ok(()) }
//! ```

pub use longshore_postgres::{PgOptions, PgStore, enqueue_in, latest_version, parse_url};
/// The sqlx this engine is built on, so that an application's pool and
/// transactions are of the very types [`enqueue_task_in`] takes, without a
/// second sqlx in its dependencies.
pub use sqlx;
pub use sqlx::postgres::PgConnectOptions;

use longshore_core::EnqueueResult;

use crate::client::{EnqueueOptions, new_task};
use crate::{Error, Task};

/// Enqueues one typed task on `conn`, typically the application's open
/// transaction (`&mut tx`): the task exists, and workers are woken, only
/// when that transaction commits. Its options and defaults are those of
/// [`Client::enqueue_with`](crate::Client::enqueue_with); with a unique key
/// already held, the result says `inserted: false` and names the held task.
pub async fn enqueue_task_in<T: Task>(
    conn: &mut sqlx::PgConnection,
    task: &T,
    options: &EnqueueOptions,
) -> Result<EnqueueResult, Error> {
    let row = new_task(task, options)?;
    let mut results = enqueue_in(conn, vec![row]).await?;
    results
        .pop()
        .ok_or_else(|| Error::Worker("the store returned no result for an enqueue".into()))
}
