//! Tasks as stored, as inserted, and as shown.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a task is in its life.
///
/// `Scheduled`, `Queued` and `Running` are the *active* states; the other
/// three are terminal. A unique key only blocks a duplicate while its task
/// is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Due later: delayed at enqueue, or waiting out a retry backoff.
    Scheduled,
    /// Due now, waiting for a free worker slot.
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished without a returned error (it may still have logged a warning or error).
    Succeeded,
    /// Out of attempts, failed fatally, or stopped by its time limit on the last attempt.
    Failed,
    /// Cancelled by an operator before it finished.
    Cancelled,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 6] = [
        TaskState::Scheduled,
        TaskState::Queued,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduled => "scheduled",
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// True for `succeeded`, `failed` and `cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator's read shows in place of a task's arguments that the
/// engine cannot decode: the task stays visible (to be fixed or deleted),
/// and says why it cannot run.
pub fn undecodable_args(reason: &str) -> serde_json::Value {
    serde_json::Value::String(format!("(these arguments cannot be decoded: {reason})"))
}

/// A state name that is not one of the six.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown task state `{0}`: expected one of scheduled, queued, running, succeeded, failed, cancelled"
)]
pub struct UnknownState(pub String);

impl FromStr for TaskState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Severity of a line in a task's log. The worst level of the current
/// execution shapes the [`Status`] people see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Progress and detail.
    Info = 0,
    /// Something an operator should look at; the task still counts as done.
    Warning = 1,
    /// Something went wrong; the task is finished without a retry.
    Error = 2,
}

impl LogLevel {
    /// The stored number.
    pub fn as_i16(self) -> i16 {
        self as i16
    }

    /// From the stored number; anything unknown reads as `Error` so that it is
    /// never hidden.
    pub fn from_i16(value: i16) -> LogLevel {
        match value {
            0 => LogLevel::Info,
            1 => LogLevel::Warning,
            _ => LogLevel::Error,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// What people see: derived from the state, the due time and the worst log
/// level of the current execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Due now, not yet picked up.
    WaitingToRun,
    /// Due at a later time (delayed, or waiting out a retry backoff).
    Scheduled,
    /// A worker is running it.
    Running,
    /// Finished cleanly.
    Successful,
    /// Finished, and its execution logged a warning.
    Warning,
    /// Failed, or finished while logging an error.
    Error,
    /// Cancelled.
    Cancelled,
}

impl Status {
    /// Every status, in the order a task's life reaches them.
    pub const ALL: [Status; 7] = [
        Status::Scheduled,
        Status::WaitingToRun,
        Status::Running,
        Status::Successful,
        Status::Warning,
        Status::Error,
        Status::Cancelled,
    ];

    /// The name used in filters and JSON, e.g. `waiting_to_run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::WaitingToRun => "waiting_to_run",
            Status::Scheduled => "scheduled",
            Status::Running => "running",
            Status::Successful => "successful",
            Status::Warning => "warning",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }

    /// The status of a task in `state`, due at `run_at`, whose current
    /// execution's worst log line is `worst` (if any), seen at `now`.
    pub fn derive(
        state: TaskState,
        run_at: DateTime<Utc>,
        worst: Option<LogLevel>,
        now: DateTime<Utc>,
    ) -> Status {
        match state {
            TaskState::Scheduled if run_at > now => Status::Scheduled,
            TaskState::Scheduled | TaskState::Queued => Status::WaitingToRun,
            TaskState::Running => Status::Running,
            TaskState::Succeeded => match worst {
                Some(LogLevel::Error) => Status::Error,
                Some(LogLevel::Warning) => Status::Warning,
                _ => Status::Successful,
            },
            TaskState::Failed => Status::Error,
            TaskState::Cancelled => Status::Cancelled,
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Status::WaitingToRun => "Waiting to run",
            Status::Scheduled => "Scheduled",
            Status::Running => "Running",
            Status::Successful => "Successful",
            Status::Warning => "Warning",
            Status::Error => "Error",
            Status::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A status name that is not one of the seven.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown task status `{0}`: expected one of scheduled, waiting_to_run, running, successful, warning, error, cancelled"
)]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    /// The name of [`Status::as_str`]; `-` may stand for `_`
    /// (`waiting-to-run`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.replace('-', "_");
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// The object a task works on, so that it can be shown beside that object.
/// A task without one is "standalone".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Related {
    /// The kind of object, e.g. `user` or `certificate`.
    pub kind: String,
    /// The object's id, as text.
    pub id: String,
}

/// A task to insert. Build one with [`NewTask::new`] and the `with_*`
/// methods, or through the typed API of the `longshore` crate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Chosen by the caller so that bulk inserts need no round trip for ids.
    pub id: Uuid,
    /// Queue name; workers serve a list of queues.
    pub queue: String,
    /// Name of the actor (handler) that runs it.
    pub actor: String,
    /// The JSON arguments handed to the actor.
    pub args: serde_json::Value,
    /// Lower runs first; 0 is the default.
    pub priority: i16,
    /// When it becomes due; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// How many executions it may have before it fails.
    pub max_attempts: i32,
    /// Per-task time limit in milliseconds; `None` uses the actor's or the
    /// worker's default.
    pub time_limit_ms: Option<i64>,
    /// While a task with this key is active, another with the same key is not
    /// inserted.
    pub unique_key: Option<String>,
    /// The object it works on.
    pub related: Option<Related>,
    /// The schedule that created it (`None`: enqueued directly).
    #[serde(default)]
    pub schedule: Option<String>,
    /// Labels an agent must offer to receive it, when its queue belongs to
    /// an agent pool (empty: any of the pool's agents). Inline workers
    /// ignore them.
    #[serde(default)]
    pub requires: Vec<String>,
}

impl NewTask {
    /// The default queue's name.
    pub const DEFAULT_QUEUE: &'static str = "default";
    /// The default number of attempts.
    pub const DEFAULT_MAX_ATTEMPTS: i32 = 20;
    /// The deepest nesting of arrays and objects a task's arguments may
    /// have: stored arguments must be readable back (serde_json, like most
    /// JSON readers, refuses documents nested deeper than 128).
    pub const MAX_ARGS_DEPTH: usize = 64;
    /// The largest arguments a task may carry, as serialised JSON (1 MiB).
    /// Bigger payloads belong in the application's own storage, with the
    /// task carrying a reference.
    pub const MAX_ARGS_BYTES: usize = 1024 * 1024;
    /// The most attempts a task may be given.
    pub const MAX_ATTEMPTS: i32 = 10_000;
    /// The longest queue, actor or related-object name, in bytes (they are
    /// indexed, and index entries have a size limit).
    pub const MAX_NAME_BYTES: usize = 255;
    /// The longest unique key, in bytes.
    pub const MAX_UNIQUE_KEY_BYTES: usize = 1024;

    /// A task for `actor` with `args`, on the default queue, due now.
    pub fn new(actor: impl Into<String>, args: serde_json::Value) -> NewTask {
        NewTask {
            id: Uuid::now_v7(),
            queue: NewTask::DEFAULT_QUEUE.to_owned(),
            actor: actor.into(),
            args,
            priority: 0,
            run_at: None,
            max_attempts: NewTask::DEFAULT_MAX_ATTEMPTS,
            time_limit_ms: None,
            unique_key: None,
            related: None,
            schedule: None,
            requires: Vec::new(),
        }
    }

    /// The state it is stored in when inserted at `now`.
    pub fn initial_state(&self, now: DateTime<Utc>) -> TaskState {
        match self.run_at {
            Some(at) if at > now => TaskState::Scheduled,
            _ => TaskState::Queued,
        }
    }

    /// Checks what the database would otherwise reject less clearly.
    pub fn validate(&self) -> Result<(), String> {
        if self.actor.trim().is_empty() {
            return Err("actor name is empty".into());
        }
        if self.queue.trim().is_empty() {
            return Err("queue name is empty".into());
        }
        crate::pool::check_labels(&self.requires).map_err(|e| match e {
            crate::StoreError::InvalidInput(message) => format!("requires: {message}"),
            other => other.to_string(),
        })?;
        if !(1..=NewTask::MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(format!(
                "max attempts must be between 1 and {}, got {}",
                NewTask::MAX_ATTEMPTS,
                self.max_attempts
            ));
        }
        for (what, text, limit) in [
            (
                "actor name",
                Some(self.actor.as_str()),
                NewTask::MAX_NAME_BYTES,
            ),
            (
                "queue name",
                Some(self.queue.as_str()),
                NewTask::MAX_NAME_BYTES,
            ),
            (
                "related object kind",
                self.related.as_ref().map(|r| r.kind.as_str()),
                NewTask::MAX_NAME_BYTES,
            ),
            (
                "related object id",
                self.related.as_ref().map(|r| r.id.as_str()),
                NewTask::MAX_NAME_BYTES,
            ),
            (
                "unique key",
                self.unique_key.as_deref(),
                NewTask::MAX_UNIQUE_KEY_BYTES,
            ),
            (
                "schedule name",
                self.schedule.as_deref(),
                NewTask::MAX_NAME_BYTES,
            ),
        ] {
            if let Some(text) = text {
                if text.len() > limit {
                    return Err(format!(
                        "{what} is {} bytes; the limit is {limit}",
                        text.len()
                    ));
                }
                check_printable(what, text)?;
            }
        }
        if let Some(at) = self.run_at
            && !(1970..=9999).contains(&chrono::Datelike::year(&at))
        {
            return Err(format!(
                "run_at {at} is out of range: it must fall between the years 1970 and 9999"
            ));
        }
        if let Some(ms) = self.time_limit_ms
            && ms < 1
        {
            return Err(format!("time limit must be positive, got {ms} ms"));
        }
        if matches!(&self.unique_key, Some(key) if key.is_empty()) {
            return Err("unique key is empty".into());
        }
        if holds_nul(&self.args) {
            return Err(
                "arguments hold a NUL character (\\u0000), which PostgreSQL cannot store; send the bytes another way (base64, say)"
                    .into(),
            );
        }
        crate::secret::check_references(&self.args)?;
        let depth = json_depth(&self.args);
        if depth > NewTask::MAX_ARGS_DEPTH {
            return Err(format!(
                "arguments nest {depth} levels deep; the limit is {} (JSON readers refuse deeper documents)",
                NewTask::MAX_ARGS_DEPTH
            ));
        }
        let size = serde_json::to_string(&self.args).map_or(0, |json| json.len());
        if size > NewTask::MAX_ARGS_BYTES {
            return Err(format!(
                "arguments are {size} bytes of JSON; the limit is {} bytes (store large data elsewhere and pass a reference)",
                NewTask::MAX_ARGS_BYTES
            ));
        }
        Ok(())
    }
}

/// Refuses a name or key holding a control character (a newline, ESC,
/// NUL…): it would print as fake rows or run escape sequences in an
/// operator's terminal, and PostgreSQL refuses NUL where SQLite would keep
/// it. `what` names the field in the error.
pub fn check_printable(what: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} holds the control character {}; names are printable text",
            c.escape_unicode()
        )),
        None => Ok(()),
    }
}

/// Whether a string or key anywhere in `value` holds NUL, without
/// recursion.
fn holds_nul(value: &serde_json::Value) -> bool {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            serde_json::Value::String(s) if s.contains('\0') => return true,
            serde_json::Value::Array(items) => pending.extend(items),
            serde_json::Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                pending.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// How deeply `value` nests (a scalar is 0, `[1]` is 1), without
/// recursion, so that any depth can be measured.
fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        match value {
            serde_json::Value::Array(items) => pending.extend(items.iter().map(|v| (v, depth + 1))),
            serde_json::Value::Object(map) => pending.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    /// UUIDv7, so ids sort by creation time.
    pub id: Uuid,
    /// Queue name.
    pub queue: String,
    /// Actor name.
    pub actor: String,
    /// JSON arguments.
    pub args: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// Where it is in its life.
    pub state: TaskState,
    /// When it is (or was) due.
    pub run_at: DateTime<Utc>,
    /// Executions that counted against `max_attempts` so far; the running
    /// execution's attempt number while running (see
    /// [`crate::lifecycle`]).
    pub attempt: i32,
    /// Attempts allowed. It never changes by itself.
    pub max_attempts: i32,
    /// Executions started so far, counted or not; the running execution's
    /// number while running. Logs are grouped by it.
    pub execution: i32,
    /// Per-task time limit, if set.
    pub time_limit_ms: Option<i64>,
    /// The worker holding the lease, while running.
    pub lease_owner: Option<String>,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Unique key, if any.
    pub unique_key: Option<String>,
    /// The object it works on, if any.
    pub related: Option<Related>,
    /// The schedule that created it, if any.
    pub schedule: Option<String>,
    /// Labels an agent must offer to receive it (see [`NewTask::requires`]).
    #[serde(default)]
    pub requires: Vec<String>,
    /// Worst log level of the current execution.
    pub worst_level: Option<LogLevel>,
    /// The last error a handler returned, if any.
    pub last_error: Option<String>,
    /// An operator asked for it to be cancelled while it ran.
    pub cancel_requested: bool,
    /// Inserted at.
    pub created_at: DateTime<Utc>,
    /// The current (or last) execution started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Reached a terminal state at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last changed at.
    pub modified_at: DateTime<Utc>,
}

impl TaskRow {
    /// The order claims hand tasks out in: lower priority first, then the
    /// earlier due, then the older.
    pub fn urgency(&self) -> (i16, DateTime<Utc>, Uuid) {
        (self.priority, self.run_at, self.id)
    }

    /// The status people see, at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        Status::derive(self.state, self.run_at, self.worst_level, now)
    }

    /// The status people see, now.
    pub fn status(&self) -> Status {
        self.status_at(Utc::now())
    }

    /// Its attempts as people read them: `2 of 3`, and the execution's
    /// number beside when some executions did not count (`2 of 3,
    /// execution 4`).
    pub fn attempts_label(&self) -> String {
        if self.execution == self.attempt {
            format!("{} of {}", self.attempt, self.max_attempts)
        } else {
            format!(
                "{} of {}, execution {}",
                self.attempt, self.max_attempts, self.execution
            )
        }
    }
}

/// One line of a task's log, belonging to one execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The task.
    pub task_id: Uuid,
    /// The execution that wrote it (1 for the first).
    pub execution: i32,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// A task's log split by execution, as people read it: the current (or
/// last) execution's lines, then each earlier execution's, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionLogs {
    /// The current execution's lines, oldest first.
    pub current: Vec<LogEntry>,
    /// Each earlier execution's number and lines, newest execution first.
    pub previous: Vec<(i32, Vec<LogEntry>)>,
}

impl ExecutionLogs {
    /// Splits `logs` (any order of executions, each execution's lines
    /// oldest first) around execution number `current`.
    pub fn split(current: i32, logs: Vec<LogEntry>) -> ExecutionLogs {
        let mut by_number: std::collections::BTreeMap<i32, Vec<LogEntry>> =
            std::collections::BTreeMap::new();
        for line in logs {
            by_number.entry(line.execution).or_default().push(line);
        }
        ExecutionLogs {
            current: by_number.remove(&current).unwrap_or_default(),
            previous: by_number.into_iter().rev().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn logs_split_into_the_current_execution_and_earlier_ones() {
        let line = |execution, message: &str| LogEntry {
            task_id: Uuid::nil(),
            execution,
            at: Utc::now(),
            level: LogLevel::Info,
            message: message.to_owned(),
        };
        let logs = ExecutionLogs::split(
            3,
            vec![line(1, "a"), line(2, "b"), line(3, "c"), line(3, "d")],
        );
        let messages = |lines: &[LogEntry]| -> Vec<String> {
            lines.iter().map(|l| l.message.clone()).collect()
        };
        assert_eq!(messages(&logs.current), ["c", "d"]);
        let previous: Vec<(i32, Vec<String>)> = logs
            .previous
            .iter()
            .map(|(n, lines)| (*n, messages(lines)))
            .collect();
        assert_eq!(
            previous,
            [(2, vec!["b".to_owned()]), (1, vec!["a".to_owned()])]
        );
        assert_eq!(
            ExecutionLogs::split(0, Vec::new()),
            ExecutionLogs::default()
        );
    }

    #[test]
    fn nesting_depth_is_measured_and_limited() {
        assert_eq!(super::json_depth(&serde_json::json!(1)), 0);
        assert_eq!(
            super::json_depth(&serde_json::json!({"a": [1, {"b": []}]})),
            3
        );
        let mut deep = serde_json::json!(null);
        for _ in 0..NewTask::MAX_ARGS_DEPTH {
            deep = serde_json::json!({ "x": deep });
        }
        assert!(NewTask::new("a", deep.clone()).validate().is_ok());
        let deeper = NewTask::new("a", serde_json::json!([deep])).validate();
        assert!(deeper.is_err_and(|e| e.contains("nest")));
    }

    #[test]
    fn status_names_round_trip_and_match_serde() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().ok(), Some(status));
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::Value::String(status.as_str().to_owned()))
            );
        }
        assert_eq!(
            "waiting-to-run".parse::<Status>().ok(),
            Some(Status::WaitingToRun)
        );
        assert!("ok".parse::<Status>().is_err());
    }

    #[test]
    fn state_names_round_trip() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().ok(), Some(state));
        }
        assert!("done".parse::<TaskState>().is_err());
    }

    #[test]
    fn status_distinguishes_due_from_later() {
        let now = Utc::now();
        let later = now + Duration::seconds(5);
        let earlier = now - Duration::seconds(5);
        assert_eq!(
            Status::derive(TaskState::Scheduled, later, None, now),
            Status::Scheduled
        );
        assert_eq!(
            Status::derive(TaskState::Scheduled, earlier, None, now),
            Status::WaitingToRun
        );
        assert_eq!(
            Status::derive(TaskState::Queued, earlier, None, now),
            Status::WaitingToRun
        );
    }

    #[test]
    fn status_of_a_success_follows_its_worst_log_line() {
        let now = Utc::now();
        let s = |worst| Status::derive(TaskState::Succeeded, now, worst, now);
        assert_eq!(s(None), Status::Successful);
        assert_eq!(s(Some(LogLevel::Info)), Status::Successful);
        assert_eq!(s(Some(LogLevel::Warning)), Status::Warning);
        assert_eq!(s(Some(LogLevel::Error)), Status::Error);
        assert_eq!(
            Status::derive(TaskState::Failed, now, None, now),
            Status::Error
        );
        assert_eq!(
            Status::derive(TaskState::Cancelled, now, Some(LogLevel::Error), now),
            Status::Cancelled
        );
    }

    #[test]
    fn a_delayed_task_starts_scheduled() {
        let now = Utc::now();
        let mut task = NewTask::new("noop", serde_json::json!({}));
        assert_eq!(task.initial_state(now), TaskState::Queued);
        task.run_at = Some(now + Duration::seconds(30));
        assert_eq!(task.initial_state(now), TaskState::Scheduled);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut task = NewTask::new("noop", serde_json::json!({}));
        assert!(task.validate().is_ok());
        task.max_attempts = 0;
        assert!(task.validate().unwrap_err().contains("max attempts"));
        let mut task = NewTask::new(" ", serde_json::json!({}));
        assert!(task.validate().unwrap_err().contains("actor"));
        task.actor = "x".into();
        task.unique_key = Some(String::new());
        assert!(task.validate().unwrap_err().contains("unique key"));
    }

    #[test]
    fn arguments_over_the_limit_are_refused() {
        let just_fits = "x".repeat(NewTask::MAX_ARGS_BYTES - 2); // plus two quotes
        let task = NewTask::new("noop", serde_json::json!(just_fits));
        assert!(task.validate().is_ok());
        let too_big = "x".repeat(NewTask::MAX_ARGS_BYTES);
        let task = NewTask::new("noop", serde_json::json!(too_big));
        let err = task.validate().unwrap_err();
        assert!(err.contains("the limit is 1048576 bytes"), "{err}");
    }
}
