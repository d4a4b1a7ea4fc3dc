//! One migrator for every engine: the ledger of applied versions
//! (`longshore_migrations`, Longshore's own, so that it never collides
//! with an application's migrations in the same database), which
//! migrations are pending, and applying them in order, each recorded as it
//! goes.
//!
//! An engine supplies only what is its own: the lock that serialises nodes
//! starting together (taken before the ledger is read, held until the last
//! migration is recorded), its dialect's ledger statements, and its
//! migration files. It opens one transaction holding the lock, hands
//! [`apply`] a [`Ledger`] on it, and commits.

use async_trait::async_trait;

use crate::error::StoreError;

/// A migration compiled into the binary.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its version; applied in ascending order.
    pub version: i32,
    /// A name for people and for the ledger.
    pub name: &'static str,
    /// Its statements.
    pub sql: &'static str,
}

/// Every engine's migrations, by version and name: one list for both
/// engines, each expanding it in its own `src/migrate.rs`, which embeds the
/// file of the same name from the engine's own `migrations/` folder
/// (`include_str!` resolves the path from where the macro is used). A new
/// migration is a line here and a file in each engine — and, first, the
/// upgrade fixtures of the version it upgrades: `scripts/upgrade-fixture.sh`
/// run with the binary built before the change (see
/// `crates/longshore-cli/tests/upgrades.rs`).
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::migrations![
            1 "tasks" "0001_tasks.sql",
            2 "claim_indexes" "0002_claim_indexes.sql",
            3 "queues" "0003_queues.sql",
            4 "workers" "0004_workers.sql",
            5 "leases" "0005_leases.sql",
            6 "finished_index" "0006_finished_index.sql",
            7 "schedules_capacity" "0007_schedules_capacity.sql",
            8 "tokens" "0008_tokens.sql",
            9 "task_counts" "0009_task_counts.sql",
            10 "sessions" "0010_sessions.sql",
            11 "audit" "0011_audit.sql",
            12 "executions" "0012_executions.sql",
            13 "agents" "0013_agents.sql",
            14 "agent_presence" "0014_agent_presence.sql",
            15 "throughput_operations" "0015_throughput_operations.sql",
        ]
    };
    ($($version:literal $name:literal $file:literal),* $(,)?) => {
        &[$(
            $crate::migrate::Migration {
                version: $version,
                name: $name,
                sql: include_str!(concat!("../migrations/", $file)),
            }
        ),*]
    };
}

/// The newest version of `migrations` (0 when there are none).
pub fn latest_version(migrations: &[Migration]) -> i32 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// An engine's ledger, inside the transaction that holds its lock.
#[async_trait]
pub trait Ledger: Send {
    /// The versions recorded as applied; creates the ledger when it does
    /// not exist yet.
    async fn applied(&mut self) -> Result<Vec<i32>, StoreError>;

    /// Runs one migration's statements; the error's text for people.
    async fn run(&mut self, sql: &'static str) -> Result<(), String>;

    /// Records `migration` as applied.
    async fn record(&mut self, migration: &Migration) -> Result<(), StoreError>;
}

/// Applies every one of `migrations` that `ledger` does not record, in
/// version order, and returns the versions it applied. A database whose
/// schema is newer than `migrations` is used anyway, with a warning (an
/// older binary during a rolling upgrade).
pub async fn apply(
    ledger: &mut dyn Ledger,
    migrations: &[Migration],
) -> Result<Vec<i32>, StoreError> {
    let applied = ledger.applied().await?;
    let latest = latest_version(migrations);
    if let Some(newer) = applied.iter().copied().filter(|v| *v > latest).max() {
        tracing::warn!(
            database = newer,
            binary = latest,
            "the database schema is newer than this build; running it anyway"
        );
    }
    let mut pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    pending.sort_by_key(|m| m.version);
    let mut newly = Vec::new();
    for migration in pending {
        ledger.run(migration.sql).await.map_err(|e| {
            StoreError::Migration(format!(
                "migration {} ({}) failed: {e}",
                migration.version, migration.name
            ))
        })?;
        ledger.record(migration).await?;
        newly.push(migration.version);
    }
    Ok(newly)
}
