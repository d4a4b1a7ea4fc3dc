//! Embedded, versioned migrations, applied under SQLite's write lock.
//!
//! The same ledger as the PostgreSQL engine's (`longshore_migrations`).
//! `BEGIN IMMEDIATE` takes the database's single write lock before the
//! ledger is read, so processes starting together apply each migration once.

use sqlx::SqlitePool;

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

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every migration not yet applied, in one transaction; returns
/// the versions it applied.
pub(crate) async fn run(writer: &SqlitePool) -> Result<Vec<i32>, StoreError> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS longshore_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
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
    let mut newly = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::Executor::execute(&mut *tx, migration.sql)
            .await
            .map_err(|e| {
                StoreError::Migration(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        sqlx::query(
            "INSERT INTO longshore_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::now_us())
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        newly.push(migration.version);
    }
    tx.commit().await.map_err(from_sqlx)?;
    Ok(newly)
}
