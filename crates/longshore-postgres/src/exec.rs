//! Where the engine's statements run, and how: the one place that knows
//! whether a transaction pooler (PgBouncer in transaction mode) stands
//! between the engine and PostgreSQL.
//!
//! sqlx prepares every statement with a parameter. By default it names the
//! statement and keeps it on the connection, to skip the parse the next
//! time. Behind a transaction pooler that breaks twice: the pooler hands
//! each transaction whichever server connection is free, so a name that one
//! client prepared is missing on the next server, or already taken there by
//! another client (`prepared statement "sqlx_s_1" already exists`); and
//! sqlx parses a statement and runs it in two exchanges, each ending in a
//! Sync, after which the pooler may already have given the server away.
//!
//! So, behind a pooler ([`Exec::Pool`] with `pooler`, [`Exec::Conn`]
//! without `named`), every statement is unnamed, and a statement on its own
//! runs inside a transaction of its own: within a transaction the pooler
//! keeps one server, and the unnamed statement lives until the next parse.
//! That costs two more round trips per lone statement; without a pooler
//! nothing changes.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgConnection, PgPool, Postgres};

/// Where one statement runs.
#[derive(Debug)]
pub(crate) enum Exec<'c> {
    /// On a connection from the pool, on its own.
    Pool {
        pool: &'c PgPool,
        /// A transaction pooler stands between us and the server.
        pooler: bool,
    },
    /// On a connection the caller holds (usually inside its transaction).
    Conn {
        conn: &'c mut PgConnection,
        /// Name and keep the statement (false behind a transaction pooler).
        named: bool,
    },
}

/// A statement that is parsed unnamed, whatever it asked for.
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(&self) -> &'q str {
        self.0.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        self.0.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, sqlx::error::BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}

impl<'c> Executor<'c> for Exec<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self {
            Exec::Pool {
                pool,
                pooler: false,
            } => pool.fetch_many(query),
            Exec::Pool { pool, pooler: true } => stream::once(async move {
                let mut tx = pool.begin().await?;
                let steps: Vec<_> = (&mut *tx).fetch_many(Unnamed(query)).try_collect().await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(steps)
            })
            .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
            .try_flatten()
            .boxed(),
            Exec::Conn { conn, named: true } => conn.fetch_many(query),
            Exec::Conn { conn, named: false } => conn.fetch_many(Unnamed(query)),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self {
            Exec::Pool {
                pool,
                pooler: false,
            } => pool.fetch_optional(query),
            Exec::Pool { pool, pooler: true } => Box::pin(async move {
                let mut tx = pool.begin().await?;
                let row = (&mut *tx).fetch_optional(Unnamed(query)).await?;
                tx.commit().await?;
                Ok(row)
            }),
            Exec::Conn { conn, named: true } => conn.fetch_optional(query),
            Exec::Conn { conn, named: false } => conn.fetch_optional(Unnamed(query)),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Exec::Pool { pool, .. } => pool.prepare_with(sql, parameters),
            Exec::Conn { conn, .. } => conn.prepare_with(sql, parameters),
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Exec::Pool { pool, .. } => pool.describe(sql),
            Exec::Conn { conn, .. } => conn.describe(sql),
        }
    }
}

/// A statement on `conn`, named and kept or not.
pub(crate) fn on(conn: &mut PgConnection, named: bool) -> Exec<'_> {
    Exec::Conn { conn, named }
}
