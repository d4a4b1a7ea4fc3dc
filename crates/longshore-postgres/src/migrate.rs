//! The engine's part of migrating (see [`longshore_core::migrate`]): its
//! migration files, the advisory lock that serialises nodes starting
//! together, and its ledger statements.

use async_trait::async_trait;
use longshore_core::StoreError;
use longshore_core::migrate::{self, Ledger, Migration};
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::from_sqlx;
use crate::exec::on;

/// This engine's files, in the one list of migrations.
const MIGRATIONS: &[Migration] = longshore_core::migrations!();

/// Key of the transaction-scoped advisory lock that serialises migrators
/// (the bytes of "longshor").
const LOCK_KEY: i64 = 0x6c6f_6e67_7368_6f72;

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    migrate::latest_version(MIGRATIONS)
}

/// Applies every migration not yet applied, in one transaction, holding an
/// advisory lock so that nodes starting together apply each exactly once.
/// Its statements are unnamed (see `exec.rs`): run rarely, they work
/// through a transaction pooler too.
pub(crate) async fn run(pool: &PgPool) -> Result<Vec<i32>, StoreError> {
    let mut conn = pool.acquire().await.map_err(from_sqlx)?;
    let mut tx = conn.begin().await.map_err(from_sqlx)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(on(&mut tx, false))
        .await
        .map_err(from_sqlx)?;
    let newly = migrate::apply(&mut PgLedger(&mut tx), MIGRATIONS).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(newly)
}

/// The ledger, on the transaction that holds the lock.
struct PgLedger<'c>(&'c mut PgConnection);

#[async_trait]
impl Ledger for PgLedger<'_> {
    async fn applied(&mut self) -> Result<Vec<i32>, StoreError> {
        // Under the lock, so checking first is race-free (and avoids the
        // notice that CREATE TABLE IF NOT EXISTS prints on every start).
        let ledger: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('longshore_migrations')::text")
                .fetch_one(on(&mut *self.0, false))
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
            .execute(on(&mut *self.0, false))
            .await
            .map_err(from_sqlx)?;
        }
        sqlx::query_scalar("SELECT version FROM longshore_migrations")
            .fetch_all(on(&mut *self.0, false))
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
        sqlx::query("INSERT INTO longshore_migrations (version, name) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(on(&mut *self.0, false))
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}
