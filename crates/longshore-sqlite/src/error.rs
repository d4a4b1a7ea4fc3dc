//! From sqlx's errors to the storage interface's kinds.

use longshore_core::StoreError;

/// SQLite's primary result codes that mean "another connection holds the
/// lock": worth retrying. Extended codes carry the primary one in their low
/// byte (e.g. `SQLITE_BUSY_SNAPSHOT` = 517).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
/// The disk failed or is full: nothing was written, and the same write may
/// succeed once the disk has room.
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;

/// Whether `error` says another connection holds the file's lock.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

/// Maps a sqlx error onto [`StoreError`]'s kinds.
pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .unwrap_or_default();
            let message = db.message();
            if matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED) {
                StoreError::Unavailable(format!(
                    "the database file is locked by another connection: {message}"
                ))
            } else if matches!(code & 0xff, SQLITE_IOERR | SQLITE_FULL) {
                StoreError::Unavailable(format!("the database file cannot be written: {message}"))
            } else if message.starts_with("no such table") || message.starts_with("no such column")
            {
                StoreError::Migration(format!(
                    "the Longshore schema is missing or out of date ({message}): run `longshore migrate`"
                ))
            } else if message.contains("longshore_tasks.unique_key") {
                StoreError::UniqueConflict {
                    key: message.to_owned(),
                }
            } else {
                StoreError::Database(Box::new(error))
            }
        }
        _ => StoreError::Database(Box::new(error)),
    }
}
