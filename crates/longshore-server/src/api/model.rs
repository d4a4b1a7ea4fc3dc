//! The API's own view of tasks, logs and counts: what clients see, kept
//! apart from the storage types so that the contract changes only on
//! purpose. A task has the same fields as `longshore tasks show --json`
//! prints.

use chrono::{DateTime, Utc};
use longshore::core::TokenScope;
use longshore::{ExecutionLogs, LogEntry, LogLevel, Status, TaskRow, TaskState};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    Scheduled,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<TaskState> for State {
    fn from(state: TaskState) -> State {
        match state {
            TaskState::Scheduled => State::Scheduled,
            TaskState::Queued => State::Queued,
            TaskState::Running => State::Running,
            TaskState::Succeeded => State::Succeeded,
            TaskState::Failed => State::Failed,
            TaskState::Cancelled => State::Cancelled,
        }
    }
}

/// What people see, derived from the state, the due time and the worst
/// log level of the current execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskStatus {
    WaitingToRun,
    Scheduled,
    Running,
    Successful,
    Warning,
    Error,
    Cancelled,
}

impl From<Status> for TaskStatus {
    fn from(status: Status) -> TaskStatus {
        match status {
            Status::WaitingToRun => TaskStatus::WaitingToRun,
            Status::Scheduled => TaskStatus::Scheduled,
            Status::Running => TaskStatus::Running,
            Status::Successful => TaskStatus::Successful,
            Status::Warning => TaskStatus::Warning,
            Status::Error => TaskStatus::Error,
            Status::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Level {
    Info,
    Warning,
    Error,
}

impl From<LogLevel> for Level {
    fn from(level: LogLevel) -> Level {
        match level {
            LogLevel::Info => Level::Info,
            LogLevel::Warning => Level::Warning,
            LogLevel::Error => Level::Error,
        }
    }
}

/// The object a task works on.
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelatedObject {
    /// The kind of object, e.g. `user`.
    pub(crate) kind: String,
    /// Its id, as text.
    pub(crate) id: String,
}

/// A task.
#[derive(Serialize, ToSchema)]
pub(crate) struct Task {
    pub(crate) id: Uuid,
    pub(crate) queue: String,
    pub(crate) actor: String,
    /// The JSON arguments handed to the actor.
    #[schema(value_type = Object)]
    pub(crate) args: serde_json::Value,
    /// Lower runs first.
    pub(crate) priority: i16,
    pub(crate) state: State,
    pub(crate) status: TaskStatus,
    /// The status as shown to people, e.g. `Waiting to run`.
    pub(crate) status_label: String,
    /// When it is (or was) due.
    pub(crate) run_at: DateTime<Utc>,
    /// Executions that counted as attempts so far (an execution handed
    /// back by its worker does not count; an operator's retry starts the
    /// count again): the running one's attempt number while it runs.
    pub(crate) attempt: i32,
    /// Attempts allowed; it never changes by itself.
    pub(crate) max_attempts: i32,
    /// The number of the current (or last) execution, counted as an
    /// attempt or not: its logs are `current_execution`.
    pub(crate) execution: i32,
    pub(crate) time_limit_ms: Option<i64>,
    /// The worker holding its lease, while it runs.
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) unique_key: Option<String>,
    pub(crate) related: Option<RelatedObject>,
    /// The schedule that created it.
    pub(crate) schedule: Option<String>,
    /// Labels an agent must offer to receive it.
    pub(crate) requires: Vec<String>,
    /// The worst level the current execution logged.
    pub(crate) worst_level: Option<Level>,
    pub(crate) last_error: Option<String>,
    /// An operator asked for it to be cancelled while it ran.
    pub(crate) cancel_requested: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) modified_at: DateTime<Utc>,
}

impl Task {
    pub(crate) fn new(row: TaskRow, now: DateTime<Utc>) -> Task {
        let status = row.status_at(now);
        Task {
            id: row.id,
            queue: row.queue,
            actor: row.actor,
            args: row.args,
            priority: row.priority,
            state: row.state.into(),
            status: status.into(),
            status_label: status.label().to_owned(),
            run_at: row.run_at,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            execution: row.execution,
            time_limit_ms: row.time_limit_ms,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at,
            unique_key: row.unique_key,
            related: row.related.map(|r| RelatedObject {
                kind: r.kind,
                id: r.id,
            }),
            schedule: row.schedule,
            requires: row.requires,
            worst_level: row.worst_level.map(Level::from),
            last_error: row.last_error,
            cancel_requested: row.cancel_requested,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            modified_at: row.modified_at,
        }
    }
}

/// What a token may do: `read` looks at everything and changes nothing;
/// `admin` may also change things (and see the tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scope {
    Read,
    Admin,
}

impl From<Scope> for TokenScope {
    fn from(scope: Scope) -> TokenScope {
        match scope {
            Scope::Read => TokenScope::Read,
            Scope::Admin => TokenScope::Admin,
        }
    }
}

impl From<TokenScope> for Scope {
    fn from(scope: TokenScope) -> Scope {
        match scope {
            TokenScope::Read => Scope::Read,
            TokenScope::Admin => Scope::Admin,
        }
    }
}

/// One line of a task's log.
#[derive(Serialize, ToSchema)]
pub(crate) struct LogLine {
    pub(crate) at: DateTime<Utc>,
    pub(crate) level: Level,
    pub(crate) message: String,
}

/// One execution of a task and what it logged, oldest line first.
#[derive(Serialize, ToSchema)]
pub(crate) struct Execution {
    /// Its number (1 for the first; never reused).
    pub(crate) number: i32,
    pub(crate) logs: Vec<LogLine>,
}

/// A task's log split by execution: the current (or last) one, and the
/// earlier ones, newest first.
pub(crate) fn executions(current: i32, logs: Vec<LogEntry>) -> (Execution, Vec<Execution>) {
    let lines = |logs: Vec<LogEntry>| -> Vec<LogLine> {
        logs.into_iter()
            .map(|line| LogLine {
                at: line.at,
                level: line.level.into(),
                message: line.message,
            })
            .collect()
    };
    let split = ExecutionLogs::split(current, logs);
    let previous = split
        .previous
        .into_iter()
        .map(|(number, logs)| Execution {
            number,
            logs: lines(logs),
        })
        .collect();
    let current = Execution {
        number: current,
        logs: lines(split.current),
    };
    (current, previous)
}

/// Tasks in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct StateCounts {
    pub(crate) scheduled: i64,
    pub(crate) queued: i64,
    pub(crate) running: i64,
    pub(crate) succeeded: i64,
    pub(crate) failed: i64,
    pub(crate) cancelled: i64,
}

impl StateCounts {
    pub(crate) fn add(&mut self, state: TaskState, count: i64) {
        let slot = match state {
            TaskState::Scheduled => &mut self.scheduled,
            TaskState::Queued => &mut self.queued,
            TaskState::Running => &mut self.running,
            TaskState::Succeeded => &mut self.succeeded,
            TaskState::Failed => &mut self.failed,
            TaskState::Cancelled => &mut self.cancelled,
        };
        *slot = slot.saturating_add(count);
    }

    pub(crate) fn total(&self) -> i64 {
        [
            self.scheduled,
            self.queued,
            self.running,
            self.succeeded,
            self.failed,
            self.cancelled,
        ]
        .iter()
        .fold(0i64, |sum, n| sum.saturating_add(*n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_state() {
        let mut counts = StateCounts::default();
        counts.add(TaskState::Queued, 3);
        counts.add(TaskState::Failed, 2);
        counts.add(TaskState::Queued, 1);
        assert_eq!(counts.queued, 4);
        assert_eq!(counts.total(), 6);
    }
}
