//! [`PgStore`]: the connection, its options, and the engine's own calls
//! (migrations, ping, the event stream); each noun of the storage
//! interface is implemented in a file of its own, with its SQL beside it:
//!
//! | noun | file | statements |
//! |---|---|---|
//! | tasks | `tasks.rs` | `tasks/sql.rs` |
//! | task counts | `counts.rs` | `counts/sql.rs` |
//! | queues and caps | `queues.rs` | `queues/sql.rs` |
//! | worker nodes and roles | `cluster.rs` | `cluster/sql.rs` |
//! | schedules | `schedules.rs` | `schedules/sql.rs` |
//! | API tokens and dashboard sessions | `tokens.rs` | `tokens/sql.rs` |
//! | the audit trail | `audit.rs` | `audit/sql.rs` |
//! | agent pools and agent tokens | `agents.rs` | `agents/sql.rs` |

mod agents;
mod audit;
mod cluster;
mod counts;
mod operations;
mod queues;
mod schedules;
pub(crate) mod tasks;
mod tokens;

use tasks::sql;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use longshore_core::schedule::{FireWrite, plan_fire};
use longshore_core::{
    AgentPresence, AuditEntry, AuditStore, CancelResult, Claim, ClusterSettings, ClusterStore,
    Completion, CountStore, Dialect, EnqueueResult, EventSource, Fire, FireKind, FireOutcome,
    Heartbeat, Leadership, LogEntry, MinuteRow, NewAuditEntry, NewTask, PutMode, QueueSettings,
    QueueStore, Schedule, ScheduleDef, ScheduleStore, Session, StatsKey, StatsRow, Store,
    StoreError, StoreEvent, TaskFilter, TaskRow, TaskSelection, TaskState, TaskStore, TokenInfo,
    TokenScope, TokenStore, WorkerInfo, WorkerPresence,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::error::from_sqlx;
use crate::exec::{Exec, on};
use crate::migrate::{self, latest_version};
use crate::row;

/// How to connect.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in the pool (default 10).
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the database
    /// unavailable (default 5 s).
    pub acquire_timeout: Duration,
    /// Stand behind a transaction pooler (PgBouncer in transaction mode):
    /// do not LISTEN (the pooler cannot hold one) but rely on polling, and
    /// prepare no named statements (see `exec.rs`).
    pub poll_only: bool,
    /// Make claims, heartbeats and completions wait for the WAL flush like
    /// enqueues do (default false: see the "Durability" section of
    /// docs/configuration.md; a database crash can then re-run, never lose,
    /// a task).
    pub durable_hot_path: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            poll_only: false,
            durable_hot_path: false,
        }
    }
}

/// The PostgreSQL engine. Cheap to clone: clones share one pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    poll_only: bool,
    commit_mode: &'static str,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`). Fails at once,
    /// with the reason, if the database cannot be reached.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        PgStore::connect_with(parse_url(url)?, options).await
    }

    /// Connects with sqlx's connection options.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: &PgOptions,
    ) -> Result<PgStore, StoreError> {
        // The hot-path statements take arrays and a limit; their best plan does
        // not depend on the values, so plan them once per connection instead
        // of on every execution.
        // Not in poll-only mode: that mode is for PgBouncer in transaction
        // pooling, which refuses startup parameters it does not know,
        // sqlx's `extra_float_digits` too (not needed: the server's default
        // since PostgreSQL 12 already prints floats exactly).
        let connect = if options.poll_only {
            connect.extra_float_digits(None)
        } else {
            connect.options([("plan_cache_mode", "force_generic_plan")])
        };
        // One direct connection first: a pool would retry until its timeout
        // and report only that it timed out, hiding the cause.
        let probe = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!("no answer within {:?}", options.acquire_timeout))
        })?
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            // sqlx pings every connection it hands out by default: one more
            // round trip per statement. Every caller here already treats a
            // broken connection as a transient error and retries.
            .test_before_acquire(false)
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| match from_sqlx(e) {
                StoreError::Database(inner) => StoreError::Unavailable(inner.to_string()),
                other => other,
            })?;
        Ok(PgStore {
            pool,
            poll_only: options.poll_only,
            commit_mode: commit_mode(options.durable_hot_path),
        })
    }

    /// Wraps an existing pool (an application's own).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            poll_only: false,
            commit_mode: commit_mode(false),
        }
    }

    /// Relies on polling only (no LISTEN).
    pub fn with_poll_only(mut self, poll_only: bool) -> PgStore {
        self.poll_only = poll_only;
        self
    }

    /// Runs a statement that claims. Under running-task caps, in a
    /// transaction holding the cluster-wide claim lock: one claim at a time,
    /// each seeing the others' commits, so two nodes cannot both fill the
    /// last place.
    async fn fetch_claiming(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        capped: bool,
    ) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
        if !capped {
            return query.fetch_all(self.db()).await.map_err(from_sqlx);
        }
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query(sql::CLAIM_LOCK)
            .execute(self.on(&mut tx))
            .await
            .map_err(from_sqlx)?;
        let rows = query.fetch_all(self.on(&mut tx)).await.map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(rows)
    }

    /// Where a statement on its own runs (see [`crate::exec`]).
    pub(crate) fn db(&self) -> Exec<'_> {
        Exec::Pool {
            pool: &self.pool,
            pooler: self.poll_only,
        }
    }

    /// A statement on `conn`, which the caller holds.
    pub(crate) fn on<'c>(&self, conn: &'c mut PgConnection) -> Exec<'c> {
        on(conn, self.named())
    }

    /// Whether statements are named and kept: not behind a transaction
    /// pooler, which poll-only mode stands for.
    pub(crate) fn named(&self) -> bool {
        !self.poll_only
    }

    /// The pool, for an application that wants to share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Parses a `postgres://` URL, with an error that says so.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    url.parse().map_err(|e| {
        StoreError::InvalidInput(format!("database URL is not a valid PostgreSQL URL: {e}"))
    })
}

pub(crate) fn commit_mode(durable: bool) -> &'static str {
    if durable {
        sql::COMMIT_MODE_DURABLE
    } else {
        sql::COMMIT_MODE_FAST
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let applied = migrate::run(&self.pool).await?;
        self.warn_about_the_server().await;
        Ok(applied)
    }

    fn schema_version(&self) -> i32 {
        latest_version()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM longshore_migrations LIMIT 1")
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn listen(&self) -> Result<Option<Box<dyn EventSource>>, StoreError> {
        if self.poll_only {
            return Ok(None);
        }
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(from_sqlx)?;
        listener
            .listen_all([sql::CHANNEL_AVAILABLE, sql::CHANNEL_CANCEL])
            .await
            .map_err(from_sqlx)?;
        Ok(Some(Box::new(PgEvents { listener })))
    }
}

impl PgStore {
    /// Says, once per migration (each node's start), what in the server's
    /// settings will hurt the task table. Today: autovacuum turned off.
    /// Every claimed, finished and purged task leaves dead rows behind,
    /// and without vacuum they pile up until claims crawl. (The bench's
    /// churn workload, one machine, 1,000,000 tasks through: about
    /// 1,300–1,450 tasks/s in its later minutes, against 4,400/s averaged
    /// over 5,000,000 with autovacuum on; afterwards A ran at 0.73 of its
    /// rate on the fresh table.) Asked in the simple protocol, which a pooler in
    /// transaction mode takes; a server that does not answer is not
    /// warned about.
    async fn warn_about_the_server(&self) {
        let setting = sqlx::raw_sql("SHOW autovacuum")
            .fetch_one(&self.pool)
            .await
            .ok()
            .and_then(|row| sqlx::Row::try_get::<String, _>(&row, 0).ok());
        if setting.as_deref() == Some("off") {
            tracing::warn!(
                "autovacuum is off on this PostgreSQL server: dead rows of finished and purged \
                 tasks pile up and claims slow down; turn it on (autovacuum = on), or VACUUM \
                 longshore_tasks often (see docs/operations.md, Troubleshooting)"
            );
        }
    }
}

/// LISTEN on a dedicated connection.
pub(crate) struct PgEvents {
    listener: PgListener,
}

#[async_trait]
impl EventSource for PgEvents {
    async fn recv(&mut self) -> Result<StoreEvent, StoreError> {
        loop {
            // `try_recv` returns `None` when the connection was lost;
            // notifications sent meanwhile are gone, so the caller must poll.
            let notification = self
                .listener
                .try_recv()
                .await
                .map_err(from_sqlx)?
                .ok_or_else(|| StoreError::Unavailable("the LISTEN connection was lost".into()))?;
            match notification.channel() {
                sql::CHANNEL_AVAILABLE => {
                    return Ok(StoreEvent::TaskAvailable {
                        queue: notification.payload().to_owned(),
                    });
                }
                sql::CHANNEL_CANCEL => {
                    if let Ok(id) = notification.payload().parse() {
                        return Ok(StoreEvent::CancelRequested { id });
                    }
                }
                _ => {}
            }
        }
    }
}
pub use tasks::enqueue_in;
