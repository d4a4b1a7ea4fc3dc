//! A fresh PostgreSQL database per test, dropped when the test ends (even
//! by panic), so that tests run in parallel without seeing each other.
//!
//! The server is `LONGSHORE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` makes sure
//! one is running and sets the variable.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

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
