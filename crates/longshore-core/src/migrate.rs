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
