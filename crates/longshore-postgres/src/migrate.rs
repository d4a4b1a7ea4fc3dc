//! Embedded, versioned migrations applied under a lock.
//!
//! Longshore keeps its own ledger (`longshore_migrations`) rather than
//! sqlx's `_sqlx_migrations`, so it never collides with an application's own
//! migrations in the same database.

use sqlx::{Connection, PgConnection, PgPool};

use longshore_core::StoreError;

use crate::error::from_sqlx;

/// A migration compiled into the binary.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tasks",
        sql: include_str!("../migrations/0001_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "claim_indexes",
        sql: include_str!("../migrations/0002_claim_indexes.sql"),
    },
    Migration {
        version: 3,
        name: "queues",
        sql: include_str!("../migrations/0003_queues.sql"),
    },
    Migration {
        version: 4,
        name: "workers",
        sql: include_str!("../migrations/0004_workers.sql"),
    },
    Migration {
        version: 5,
        name: "leases",
        sql: include_str!("../migrations/0005_leases.sql"),
    },
    Migration {
        version: 6,
        name: "finished_index",
        sql: include_str!("../migrations/0006_finished_index.sql"),
    },
    Migration {
        version: 7,
        name: "schedules_capacity",
        sql: include_str!("../migrations/0007_schedules_capacity.sql"),
    },
    Migration {
        version: 8,
        name: "tokens",
        sql: include_str!("../migrations/0008_tokens.sql"),
    },
    Migration {
        version: 9,
        name: "task_counts",
        sql: include_str!("../migrations/0009_task_counts.sql"),
    },
];

/// Key of the transaction-scoped advisory lock that serialises migrators
/// (the bytes of "longshor").
const LOCK_KEY: i64 = 0x6c6f_6e67_7368_6f72;

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every migration not yet applied, in one transaction, holding an
/// advisory lock so that nodes starting together apply each exactly once.
pub(crate) async fn run(pool: &PgPool) -> Result<Vec<i32>, StoreError> {
    let mut conn = pool.acquire().await.map_err(from_sqlx)?;
    let mut tx = conn.begin().await.map_err(from_sqlx)?;
    let newly = apply(&mut tx).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(newly)
}

async fn apply(tx: &mut PgConnection) -> Result<Vec<i32>, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    // Under the lock, so checking first is race-free (and avoids the notice
    // that CREATE TABLE IF NOT EXISTS prints on every start).
    let ledger: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('longshore_migrations')::text")
            .fetch_one(&mut *tx)
            .await
            .map_err(from_sqlx)?;
    if ledger.is_none() {
        sqlx::query(
            "CREATE TABLE longshore_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    let applied: Vec<i32> = sqlx::query_scalar("SELECT version FROM longshore_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    if let Some(newer) = applied
        .iter()
        .copied()
        .filter(|v| *v > latest_version())
        .max()
    {
        tracing::warn!(
            database = newer,
            binary = latest_version(),
            "the database schema is newer than this build; running it anyway"
        );
    }
    let pending: Vec<&Migration> = MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let mut newly = Vec::new();
    for migration in pending {
        sqlx::Executor::execute(&mut *tx, migration.sql)
            .await
            .map_err(|e| {
                StoreError::Migration(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        sqlx::query("INSERT INTO longshore_migrations (version, name) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        newly.push(migration.version);
    }
    Ok(newly)
}
