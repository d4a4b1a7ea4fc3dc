//! From sqlx's errors to the storage interface's kinds.

use longshore_core::StoreError;

/// Maps a sqlx error onto [`StoreError`]'s kinds.
pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // undefined_table, undefined_object (the state type), undefined_function
            Some("42P01" | "42704" | "42883") => StoreError::Migration(format!(
                "the Longshore schema is missing or out of date ({}): run `longshore migrate`",
                db.message()
            )),
            Some("23505") if db.constraint() == Some("longshore_tasks_unique_key") => {
                StoreError::UniqueConflict {
                    key: db.message().to_owned(),
                }
            }
            // character_not_in_repertoire, untranslatable_character: text or
            // JSON holding a NUL character (\u0000), which PostgreSQL cannot
            // store. The caller's input, not a database failure.
            Some("22021" | "22P05") => StoreError::InvalidInput(format!(
                "{} (PostgreSQL cannot store the NUL character \\u0000 in text or JSON)",
                db.message()
            )),
            // datetime_field_overflow, numeric_value_out_of_range,
            // interval_field_overflow, program_limit_exceeded (an index entry
            // too large): the request asked for something out of range.
            // Input checks refuse these first; this keeps any that slip
            // through a client error.
            Some("22008" | "22003" | "22015" | "54000") => {
                StoreError::InvalidInput(db.message().to_owned())
            }
            // lock_not_available: a bounded wait for a lock ran out.
            Some("55P03") => StoreError::Unavailable(db.message().to_owned()),
            // admin_shutdown, crash_shutdown, cannot_connect_now: the server is going away.
            Some("57P01" | "57P02" | "57P03") => StoreError::Unavailable(db.message().to_owned()),
            Some(code) if code.starts_with("08") => {
                StoreError::Unavailable(db.message().to_owned())
            }
            _ => StoreError::Database(Box::new(error)),
        },
        _ => StoreError::Database(Box::new(error)),
    }
}
