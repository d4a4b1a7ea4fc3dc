//! Reading rows into the core types.

use chrono::{DateTime, Utc};
use longshore_core::{
    LogEntry, LogLevel, Overlap, Related, Schedule, ScheduleDef, StatsRow, StoreError, TaskRow,
    TaskState, TokenInfo,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::error::from_sqlx;

/// A value the schema guarantees but the file did not hold: someone wrote
/// the table by hand.
fn corrupt(what: String) -> StoreError {
    StoreError::Database(what.into())
}

pub(crate) fn uuid(text: &str) -> Result<Uuid, StoreError> {
    text.parse()
        .map_err(|e| corrupt(format!("stored task id `{text}` is not a UUID: {e}")))
}

pub(crate) fn time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("stored time {micros} µs is out of range")))
}

pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    micros.map(time).transpose()
}

pub(crate) fn state(name: &str) -> Result<TaskState, StoreError> {
    TaskState::from_stored(name)
}

fn level(n: i64) -> LogLevel {
    LogLevel::from_i16(i16::try_from(n).unwrap_or(i16::MAX))
}

/// The fence of a task row (id, queue, execution), read alone: what is left
/// to fail a task whose other columns cannot be decoded.
pub(crate) fn fence(row: &SqliteRow) -> Result<(Uuid, String, i32), StoreError> {
    let id: String = row.try_get("id").map_err(from_sqlx)?;
    let id = id
        .parse()
        .map_err(|e| corrupt(format!("stored task id `{id}` is not a UUID: {e}")))?;
    Ok((
        id,
        row.try_get("queue").map_err(from_sqlx)?,
        row.try_get("execution").map_err(from_sqlx)?,
    ))
}

/// A row selected with `task_columns!()`.
pub(crate) fn task(row: &SqliteRow) -> Result<TaskRow, StoreError> {
    let args: String = row.try_get("args").map_err(from_sqlx)?;
    let args = serde_json::from_str(&args)
        .map_err(|e| corrupt(format!("stored task args are not JSON: {e}")))?;
    task_with(row, args)
}

/// [`task`] for an operator's reads: a task whose arguments cannot be
/// decoded is shown with a note in their place, not refused.
pub(crate) fn shown_task(row: &SqliteRow) -> Result<TaskRow, StoreError> {
    let args = row
        .try_get::<String, _>("args")
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| format!("stored task args are not JSON: {e}"))
        })
        .unwrap_or_else(|reason| longshore_core::task::undecodable_args(&reason));
    task_with(row, args)
}

fn task_with(row: &SqliteRow, args: serde_json::Value) -> Result<TaskRow, StoreError> {
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(from_sqlx);
    let get_opt_i64 = |name: &str| row.try_get::<Option<i64>, _>(name).map_err(from_sqlx);
    let get_str = |name: &str| row.try_get::<String, _>(name).map_err(from_sqlx);
    let get_opt_str = |name: &str| row.try_get::<Option<String>, _>(name).map_err(from_sqlx);
    let related_kind = get_opt_str("related_kind")?;
    let related_id = get_opt_str("related_id")?;
    Ok(TaskRow {
        id: uuid(&get_str("id")?)?,
        queue: get_str("queue")?,
        actor: get_str("actor")?,
        args,
        priority: i16::try_from(get_i64("priority")?)
            .map_err(|e| corrupt(format!("stored priority out of range: {e}")))?,
        state: state(&get_str("state")?)?,
        run_at: time(get_i64("run_at")?)?,
        attempt: i32::try_from(get_i64("attempt")?)
            .map_err(|e| corrupt(format!("stored attempt out of range: {e}")))?,
        max_attempts: i32::try_from(get_i64("max_attempts")?)
            .map_err(|e| corrupt(format!("stored max_attempts out of range: {e}")))?,
        execution: i32::try_from(get_i64("execution")?)
            .map_err(|e| corrupt(format!("stored execution out of range: {e}")))?,
        time_limit_ms: get_opt_i64("time_limit_ms")?,
        lease_owner: get_opt_str("lease_owner")?,
        lease_expires_at: opt_time(get_opt_i64("lease_expires_at")?)?,
        unique_key: get_opt_str("unique_key")?,
        related: related_kind
            .zip(related_id)
            .map(|(kind, id)| Related { kind, id }),
        schedule: get_opt_str("schedule_name")?,
        requires: match get_opt_str("requires")? {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("stored required labels are not a JSON list: {e}")))?,
        },
        worst_level: get_opt_i64("worst_level")?.map(level),
        last_error: get_opt_str("last_error")?,
        cancel_requested: get_i64("cancel_requested")? != 0,
        created_at: time(get_i64("created_at")?)?,
        started_at: opt_time(get_opt_i64("started_at")?)?,
        finished_at: opt_time(get_opt_i64("finished_at")?)?,
        modified_at: time(get_i64("modified_at")?)?,
    })
}

/// A row of `sql::LOGS`.
pub(crate) fn log(row: &SqliteRow) -> Result<LogEntry, StoreError> {
    let task_id: String = row.try_get("task_id").map_err(from_sqlx)?;
    let execution: i64 = row.try_get("execution").map_err(from_sqlx)?;
    Ok(LogEntry {
        task_id: uuid(&task_id)?,
        execution: i32::try_from(execution)
            .map_err(|e| corrupt(format!("stored execution out of range: {e}")))?,
        at: time(row.try_get("at").map_err(from_sqlx)?)?,
        level: level(row.try_get("level").map_err(from_sqlx)?),
        message: row.try_get("message").map_err(from_sqlx)?,
    })
}

/// A row selected with `schedule_columns!()`.
pub(crate) fn schedule(row: &SqliteRow) -> Result<Schedule, StoreError> {
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(from_sqlx);
    let get_opt_i64 = |name: &str| row.try_get::<Option<i64>, _>(name).map_err(from_sqlx);
    let get_str = |name: &str| row.try_get::<String, _>(name).map_err(from_sqlx);
    let get_opt_str = |name: &str| row.try_get::<Option<String>, _>(name).map_err(from_sqlx);
    let name = get_str("name")?;
    let args = get_str("args")?;
    let related_kind = get_opt_str("related_kind")?;
    let related_id = get_opt_str("related_id")?;
    let overlap: Overlap = get_str("overlap")?
        .parse()
        .map_err(|e| corrupt(format!("schedule {name}: stored {e}")))?;
    Ok(Schedule {
        def: ScheduleDef {
            actor: get_str("actor")?,
            args: serde_json::from_str(&args)
                .map_err(|e| corrupt(format!("schedule {name}: stored args are not JSON: {e}")))?,
            queue: get_str("queue")?,
            priority: i16::try_from(get_i64("priority")?).map_err(|e| {
                corrupt(format!(
                    "schedule {name}: stored priority out of range: {e}"
                ))
            })?,
            max_attempts: i32::try_from(get_i64("max_attempts")?).map_err(|e| {
                corrupt(format!(
                    "schedule {name}: stored max_attempts out of range: {e}"
                ))
            })?,
            time_limit_ms: get_opt_i64("time_limit_ms")?,
            related: related_kind
                .zip(related_id)
                .map(|(kind, id)| Related { kind, id }),
            cron: get_str("cron")?,
            time_zone: get_str("time_zone")?,
            overlap,
            name,
        },
        paused: get_i64("paused")? != 0,
        builtin: get_i64("builtin")? != 0,
        next_run_at: opt_time(get_opt_i64("next_run_at")?)?,
        last_run_at: opt_time(get_opt_i64("last_run_at")?)?,
        last_task_id: get_opt_str("last_task_id")?
            .as_deref()
            .map(uuid)
            .transpose()?,
        run_requested: get_i64("run_requested")? != 0,
        skipped_runs: get_i64("skipped_runs")?,
        last_skipped_at: opt_time(get_opt_i64("last_skipped_at")?)?,
        created_at: time(get_i64("created_at")?)?,
        modified_at: time(get_i64("modified_at")?)?,
    })
}

/// A row selected with `token_columns!()`.
pub(crate) fn token(row: &SqliteRow) -> Result<TokenInfo, StoreError> {
    let id: String = row.try_get("id").map_err(from_sqlx)?;
    let scope: String = row.try_get("scope").map_err(from_sqlx)?;
    Ok(TokenInfo {
        id: id
            .parse()
            .map_err(|e| corrupt(format!("stored token id `{id}` is not a UUID: {e}")))?,
        name: row.try_get("name").map_err(from_sqlx)?,
        scope: scope
            .parse()
            .map_err(|e: longshore_core::token::UnknownScope| corrupt(e.to_string()))?,
        created_at: time(row.try_get("created_at").map_err(from_sqlx)?)?,
        last_used_at: opt_time(row.try_get("last_used_at").map_err(from_sqlx)?)?,
        revoked_at: opt_time(row.try_get("revoked_at").map_err(from_sqlx)?)?,
    })
}

/// An agent token row (without its hash).
pub(crate) fn agent_token(row: &SqliteRow) -> Result<longshore_core::AgentTokenInfo, StoreError> {
    let id: String = row.try_get("id").map_err(from_sqlx)?;
    Ok(longshore_core::AgentTokenInfo {
        id: id
            .parse()
            .map_err(|e| corrupt(format!("stored agent token id `{id}` is not a UUID: {e}")))?,
        name: row.try_get("name").map_err(from_sqlx)?,
        pool: row.try_get("pool").map_err(from_sqlx)?,
        created_at: time(row.try_get("created_at").map_err(from_sqlx)?)?,
        expires_at: opt_time(row.try_get("expires_at").map_err(from_sqlx)?)?,
        revoked_at: opt_time(row.try_get("revoked_at").map_err(from_sqlx)?)?,
    })
}

/// A row of (key, state name, count), as the stats and depth statements return.
pub(crate) fn stats(row: &SqliteRow) -> Result<StatsRow, StoreError> {
    let name: String = row.try_get(1).map_err(from_sqlx)?;
    Ok(StatsRow {
        key: row.try_get(0).map_err(from_sqlx)?,
        state: state(&name)?,
        count: row.try_get(2).map_err(from_sqlx)?,
    })
}

/// Microseconds since the Unix epoch: how the schema stores time.
pub(crate) fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// A duration in the schema's unit (microseconds), saturating.
pub(crate) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
