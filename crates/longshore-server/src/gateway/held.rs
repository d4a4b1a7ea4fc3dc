//! What an agent's session holds for one task while its agent runs it:
//! the lease's facts, the log lines not yet written, and the completion
//! they become when the result (or a hand-back) is recorded.

use std::time::Duration;

use chrono::Utc;
use longshore::core::{Completion, Outcome};
use longshore::{LogEntry, LogLevel};
use tokio::time::Instant;
use uuid::Uuid;

/// The most log lines one execution may hold in memory before they are
/// written; lines past it are counted and dropped, with a note.
pub(super) const MAX_BUFFERED_LINES: usize = 10_000;
/// The longest log line kept (longer ones are cut).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// A task this session holds.
pub(super) struct Held {
    pub(super) queue: String,
    pub(super) execution: i32,
    pub(super) attempt: i32,
    pub(super) max_attempts: i32,
    /// When the agent said its handler began: if the agent vanishes after,
    /// the execution counts as an attempt. Until then a task assigned
    /// ahead waits in the agent's queue.
    pub(super) started_at: Option<Instant>,
    /// When the time limit is reached (the agent is told to stop) and
    /// when the gateway takes the task back from an agent that did not
    /// (counted from the assignment, then again from `Started`).
    pub(super) limit_at: Instant,
    pub(super) limit: Duration,
    pub(super) cancel_sent: bool,
    pub(super) logs: Vec<LogEntry>,
    pub(super) dropped_lines: usize,
    pub(super) worst: Option<LogLevel>,
}

pub(super) fn completion(
    id: Uuid,
    mut held: Held,
    outcome: Outcome,
    retry: &longshore::RetryPolicy,
) -> Completion {
    let note = match &outcome {
        Outcome::Failed { error, .. } => Some((LogLevel::Error, format!("failed: {error}"))),
        Outcome::Released => Some((
            LogLevel::Warning,
            "handed back before its handler ran; the task was returned to the queue".to_owned(),
        )),
        _ => None,
    };
    if held.dropped_lines > 0 {
        held.logs.push(LogEntry {
            task_id: id,
            execution: held.execution,
            at: Utc::now(),
            level: LogLevel::Warning,
            message: format!(
                "{} log lines were dropped: at most {MAX_BUFFERED_LINES} are kept between writes",
                held.dropped_lines
            ),
        });
    }
    if let Some((level, message)) = note {
        held.worst = held.worst.max(Some(level));
        held.logs.push(LogEntry {
            task_id: id,
            execution: held.execution,
            at: Utc::now(),
            level,
            message,
        });
    }
    Completion {
        id,
        queue: held.queue,
        execution: held.execution,
        transition: outcome.transition(held.attempt, held.max_attempts, retry),
        worst_level: held.worst,
        logs: held.logs,
    }
}

/// `text` from an agent as the database can store it: at most
/// [`MAX_LINE_BYTES`], and no NUL (as a worker's own lines).
pub(super) fn storable(mut text: String) -> String {
    if text.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [cut]");
    }
    longshore::remote::storable(text)
}
