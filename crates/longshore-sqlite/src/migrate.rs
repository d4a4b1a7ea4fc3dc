//! The engine's part of migrating (see [`longshore_core::migrate`]): its
//! migration files, and its ledger statements under SQLite's write lock:
//! `BEGIN IMMEDIATE` takes the database's single write lock before the
//! ledger is read, so processes starting together apply each migration
//! once.

use async_trait::async_trait;
use longshore_core::StoreError;
use longshore_core::migrate::{self, Ledger, Migration};
use sqlx::{SqliteConnection, SqlitePool};

use crate::error::from_sqlx;

/// This engine's files, in the one list of migrations.
const MIGRATIONS: &[Migration] = longshore_core::migrations!();

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    migrate::latest_version(MIGRATIONS)
}

/// Applies every migration not yet applied, in one transaction that holds
/// the database's write lock; returns the versions it applied.
pub(crate) async fn run(writer: &SqlitePool) -> Result<Vec<i32>, StoreError> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let newly = migrate::apply(&mut SqliteLedger(&mut tx), MIGRATIONS).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(newly)
}

/// The ledger, on the transaction that holds the write lock.
struct SqliteLedger<'c>(&'c mut SqliteConnection);

#[async_trait]
impl Ledger for SqliteLedger<'_> {
    async fn applied(&mut self) -> Result<Vec<i32>, StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS longshore_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at INTEGER NOT NULL
             ) STRICT",
        )
        .execute(&mut *self.0)
        .await
        .map_err(from_sqlx)?;
        sqlx::query_scalar("SELECT version FROM longshore_migrations")
            .fetch_all(&mut *self.0)
            .await
            .map_err(from_sqlx)
    }

    async fn run(&mut self, sql: &'static str) -> Result<(), String> {
        sqlx::Executor::execute(&mut *self.0, sql)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn record(&mut self, migration: &Migration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO longshore_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::row::now_us())
        .execute(&mut *self.0)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }
}
