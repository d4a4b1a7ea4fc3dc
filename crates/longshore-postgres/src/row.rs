//! Reading rows into the core types.

use longshore_core::{
    LogEntry, LogLevel, Overlap, Related, Schedule, ScheduleDef, StatsRow, StoreError, TaskRow,
    TaskState, TokenInfo,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::from_sqlx;

/// A row selected with `task_columns!()`.
pub(crate) fn task(row: &PgRow) -> Result<TaskRow, StoreError> {
    let args = row.try_get("args").map_err(from_sqlx)?;
    task_with(row, args)
}

/// [`task`] for an operator's reads: a task whose arguments cannot be
/// decoded is shown with a note in their place, not refused.
pub(crate) fn shown_task(row: &PgRow) -> Result<TaskRow, StoreError> {
    let args = row
        .try_get("args")
        .unwrap_or_else(|e| longshore_core::task::undecodable_args(&e.to_string()));
    task_with(row, args)
}

fn task_with(row: &PgRow, args: serde_json::Value) -> Result<TaskRow, StoreError> {
    let get_state = |row: &PgRow| -> Result<TaskState, StoreError> {
        let name: String = row.try_get("state").map_err(from_sqlx)?;
        TaskState::from_stored(&name)
    };
    let related_kind: Option<String> = row.try_get("related_kind").map_err(from_sqlx)?;
    let related_id: Option<String> = row.try_get("related_id").map_err(from_sqlx)?;
    let worst: Option<i16> = row.try_get("worst_level").map_err(from_sqlx)?;
    Ok(TaskRow {
        id: row.try_get("id").map_err(from_sqlx)?,
        queue: row.try_get("queue").map_err(from_sqlx)?,
        actor: row.try_get("actor").map_err(from_sqlx)?,
        args,
        priority: row.try_get("priority").map_err(from_sqlx)?,
        state: get_state(row)?,
        run_at: row.try_get("run_at").map_err(from_sqlx)?,
        attempt: row.try_get("attempt").map_err(from_sqlx)?,
        max_attempts: row.try_get("max_attempts").map_err(from_sqlx)?,
        execution: row.try_get("execution").map_err(from_sqlx)?,
        time_limit_ms: row.try_get("time_limit_ms").map_err(from_sqlx)?,
        lease_owner: row.try_get("lease_owner").map_err(from_sqlx)?,
        lease_expires_at: row.try_get("lease_expires_at").map_err(from_sqlx)?,
        unique_key: row.try_get("unique_key").map_err(from_sqlx)?,
        related: related_kind
            .zip(related_id)
            .map(|(kind, id)| Related { kind, id }),
        worst_level: worst.map(LogLevel::from_i16),
        last_error: row.try_get("last_error").map_err(from_sqlx)?,
        cancel_requested: row.try_get("cancel_requested").map_err(from_sqlx)?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        started_at: row.try_get("started_at").map_err(from_sqlx)?,
        finished_at: row.try_get("finished_at").map_err(from_sqlx)?,
        modified_at: row.try_get("modified_at").map_err(from_sqlx)?,
        schedule: row.try_get("schedule_name").map_err(from_sqlx)?,
        requires: row
            .try_get::<Option<Vec<String>>, _>("requires")
            .map_err(from_sqlx)?
            .unwrap_or_default(),
    })
}

/// A row selected with `schedule_columns!()`.
pub(crate) fn schedule(row: &PgRow) -> Result<Schedule, StoreError> {
    let related_kind: Option<String> = row.try_get("related_kind").map_err(from_sqlx)?;
    let related_id: Option<String> = row.try_get("related_id").map_err(from_sqlx)?;
    let overlap: String = row.try_get("overlap").map_err(from_sqlx)?;
    Ok(Schedule {
        def: ScheduleDef {
            name: row.try_get("name").map_err(from_sqlx)?,
            actor: row.try_get("actor").map_err(from_sqlx)?,
            args: row.try_get("args").map_err(from_sqlx)?,
            queue: row.try_get("queue").map_err(from_sqlx)?,
            priority: row.try_get("priority").map_err(from_sqlx)?,
            max_attempts: row.try_get("max_attempts").map_err(from_sqlx)?,
            time_limit_ms: row.try_get("time_limit_ms").map_err(from_sqlx)?,
            related: related_kind
                .zip(related_id)
                .map(|(kind, id)| Related { kind, id }),
            cron: row.try_get("cron").map_err(from_sqlx)?,
            time_zone: row.try_get("time_zone").map_err(from_sqlx)?,
            overlap: overlap
                .parse::<Overlap>()
                .map_err(|e| StoreError::Database(e.into()))?,
        },
        paused: row.try_get("paused").map_err(from_sqlx)?,
        builtin: row.try_get("builtin").map_err(from_sqlx)?,
        next_run_at: row.try_get("next_run_at").map_err(from_sqlx)?,
        last_run_at: row.try_get("last_run_at").map_err(from_sqlx)?,
        last_task_id: row.try_get("last_task_id").map_err(from_sqlx)?,
        run_requested: row.try_get("run_requested").map_err(from_sqlx)?,
        skipped_runs: row.try_get("skipped_runs").map_err(from_sqlx)?,
        last_skipped_at: row.try_get("last_skipped_at").map_err(from_sqlx)?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        modified_at: row.try_get("modified_at").map_err(from_sqlx)?,
    })
}

/// A row of `sql::LOGS`.
pub(crate) fn log(row: &PgRow) -> Result<LogEntry, StoreError> {
    let level: i16 = row.try_get("level").map_err(from_sqlx)?;
    Ok(LogEntry {
        task_id: row.try_get("task_id").map_err(from_sqlx)?,
        execution: row.try_get("execution").map_err(from_sqlx)?,
        at: row.try_get("at").map_err(from_sqlx)?,
        level: LogLevel::from_i16(level),
        message: row.try_get("message").map_err(from_sqlx)?,
    })
}

/// A row selected with `token_columns!()`.
pub(crate) fn token(row: &PgRow) -> Result<TokenInfo, StoreError> {
    let scope: String = row.try_get("scope").map_err(from_sqlx)?;
    Ok(TokenInfo {
        id: row.try_get("id").map_err(from_sqlx)?,
        name: row.try_get("name").map_err(from_sqlx)?,
        scope: scope
            .parse()
            .map_err(|e: longshore_core::token::UnknownScope| StoreError::Database(Box::new(e)))?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        last_used_at: row.try_get("last_used_at").map_err(from_sqlx)?,
        revoked_at: row.try_get("revoked_at").map_err(from_sqlx)?,
    })
}

/// An agent token row (without its hash).
pub(crate) fn agent_token(row: &PgRow) -> Result<longshore_core::AgentTokenInfo, StoreError> {
    Ok(longshore_core::AgentTokenInfo {
        id: row.try_get("id").map_err(from_sqlx)?,
        name: row.try_get("name").map_err(from_sqlx)?,
        pool: row.try_get("pool").map_err(from_sqlx)?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        expires_at: row.try_get("expires_at").map_err(from_sqlx)?,
        revoked_at: row.try_get("revoked_at").map_err(from_sqlx)?,
    })
}

/// A row of (key, state name, count), as the stats and depth statements return.
pub(crate) fn stats(row: &PgRow) -> Result<StatsRow, StoreError> {
    let state: String = row.try_get(1).map_err(from_sqlx)?;
    Ok(StatsRow {
        key: row.try_get(0).map_err(from_sqlx)?,
        state: TaskState::from_stored(&state)?,
        count: row.try_get(2).map_err(from_sqlx)?,
    })
}
