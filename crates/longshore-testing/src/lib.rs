//! What Longshore's test suites share, so that every behaviour runs on
//! both engines, each test on a database of its own.
//!
//! - [`Engine`] and [`on_both_engines!`]: one test function, run once per
//!   engine (as `postgres::NAME` and `sqlite::NAME`).
//! - [`ScratchDb`]: a fresh PostgreSQL database per test, dropped when the
//!   test ends (even by panic), so that tests run in parallel without
//!   seeing each other.
//! - [`scratch_dir`] and [`sqlite_pool`]: a directory of the test's own
//!   for a SQLite file, and a pool that looks at such a file beside the
//!   code under test.
//!
//! The PostgreSQL server is `LONGSHORE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` makes sure
//! one is running and sets the variable.

#![warn(missing_docs)]

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

/// The storage engines every behaviour runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL, a [`ScratchDb`] per test.
    Postgres,
    /// SQLite, a file in a [`scratch_dir`] per test.
    Sqlite,
}

/// Runs each named `async fn NAME(engine: Engine)` once per engine, as the
/// tokio tests `postgres::NAME` and `sqlite::NAME`:
///
/// ```ignore
/// async fn a_task_runs(engine: Engine) { /* … */ }
///
/// longshore_testing::on_both_engines!(a_task_runs);
/// ```
#[macro_export]
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::Engine::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::Engine::Sqlite).await;
                }
            )*
        }
    };
}

/// A directory of the test's own, removed when the value is dropped. Its
/// name starts `longshore-test-`, so that `scripts/test` can sweep up what
/// an interrupted run left behind.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("longshore-test-")
        .tempdir()
        .expect("create a scratch directory")
}

/// A small pool on an existing SQLite file (never creating it), to look at
/// the tables beside the code under test; it waits up to ten seconds for
/// the file's write lock.
pub async fn sqlite_pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The server's admin URL.
pub fn admin_url() -> String {
    std::env::var("LONGSHORE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn admin_options() -> PgConnectOptions {
    admin_url()
        .parse()
        .expect("LONGSHORE_TEST_DATABASE_URL is not a valid PostgreSQL URL")
}

/// A database that exists for as long as this value does.
pub struct ScratchDb {
    /// Its name.
    pub name: String,
    /// A URL that reaches it.
    pub url: String,
}

impl ScratchDb {
    /// Creates an empty database named `longshore_test_…`.
    pub async fn create() -> ScratchDb {
        let name = format!("longshore_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin_options())
            .await
            .expect("connect to the test PostgreSQL server (is it running? see scripts/test)");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = admin_options().database(&name).to_url_lossy().to_string();
        ScratchDb { name, url }
    }

    /// Connection options for it.
    pub fn options(&self) -> PgConnectOptions {
        admin_options().database(&self.name)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // `drop` cannot await, and the test's runtime may be blocked here:
        // a thread with its own runtime does the work. FORCE ends whatever
        // connections the test left open.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin_options()).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
