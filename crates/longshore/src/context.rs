//! What a handler gets: who it is running, a log, and a cancellation signal.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use longshore_core::{LogEntry, LogLevel};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics::TaskLabels;

/// Why an execution was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CancelReason {
    /// An operator cancelled the task.
    Operator = 1,
    /// It ran past its time limit.
    TimeLimit = 2,
    /// The worker is shutting down and its drain time is over.
    Shutdown = 3,
    /// The worker no longer holds the task's lease.
    LeaseLost = 4,
}

impl CancelReason {
    fn from_u8(value: u8) -> Option<CancelReason> {
        match value {
            1 => Some(CancelReason::Operator),
            2 => Some(CancelReason::TimeLimit),
            3 => Some(CancelReason::Shutdown),
            4 => Some(CancelReason::LeaseLost),
            _ => None,
        }
    }
}

/// `text` as PostgreSQL can store it: text columns refuse the NUL
/// character, which a lossily decoded binary body (or any handler) may
/// produce. One bad line must never block a worker's results.
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// State shared by one execution, its context and the worker.
#[derive(Debug)]
pub(crate) struct Execution {
    pub(crate) task_id: Uuid,
    /// The execution's number: its logs' group and its completion's fence.
    pub(crate) number: i32,
    /// Its actor and queue: the handler's context and the metrics share
    /// these strings.
    pub(crate) labels: TaskLabels,
    pub(crate) token: CancellationToken,
    reason: AtomicU8,
    worst: AtomicU8,
    logs: Mutex<Vec<LogEntry>>,
}

impl Execution {
    pub(crate) fn new(task_id: Uuid, number: i32, labels: TaskLabels) -> Arc<Execution> {
        Arc::new(Execution {
            task_id,
            number,
            labels,
            token: CancellationToken::new(),
            reason: AtomicU8::new(0),
            worst: AtomicU8::new(0),
            logs: Mutex::new(Vec::new()),
        })
    }

    /// Asks the handler to stop. The first reason given is the one kept.
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.token.cancel();
    }

    pub(crate) fn cancel_reason(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub(crate) fn log(&self, level: LogLevel, message: String) {
        let message = storable(message);
        // Stored as level + 1 so that 0 means "nothing logged yet".
        self.worst.fetch_max(level as u8 + 1, Ordering::AcqRel);
        let entry = LogEntry {
            task_id: self.task_id,
            execution: self.number,
            at: Utc::now(),
            level,
            message,
        };
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(entry);
        }
    }

    pub(crate) fn worst_level(&self) -> Option<LogLevel> {
        match self.worst.load(Ordering::Acquire) {
            0 => None,
            stored => Some(LogLevel::from_i16(i16::from(stored) - 1)),
        }
    }

    /// Takes the lines not yet written.
    pub(crate) fn take_logs(&self) -> Vec<LogEntry> {
        self.logs
            .lock()
            .map(|mut logs| std::mem::take(&mut *logs))
            .unwrap_or_default()
    }

    /// Puts back lines whose write failed, ahead of newer ones.
    pub(crate) fn restore_logs(&self, mut lines: Vec<LogEntry>) {
        if let Ok(mut logs) = self.logs.lock() {
            lines.append(&mut logs);
            *logs = lines;
        }
    }
}

/// Handed to every handler: the task's identity, a log that is stored with
/// the task (per execution), and a cancellation signal.
///
/// Logging a warning or an error does not make the execution fail: the task
/// finishes without a retry, and people see the status *Warning* or *Error*.
/// To have the task retried, return an error instead.
#[derive(Clone, Debug)]
pub struct TaskContext {
    pub(crate) execution: Arc<Execution>,
    pub(crate) queue: Arc<str>,
    pub(crate) actor: Arc<str>,
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
}

impl TaskContext {
    /// The task's id.
    pub fn task_id(&self) -> Uuid {
        self.execution.task_id
    }

    /// This attempt's number: 1 for the first. It reaches
    /// [`max_attempts`](Self::max_attempts) on the last one, after which a
    /// failure is final. An execution handed back by its worker (at
    /// shutdown) does not count as an attempt; one whose worker died does.
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    /// How many attempts the task may have.
    pub fn max_attempts(&self) -> i32 {
        self.max_attempts
    }

    /// This execution's number, counted or not: 1 for the first, never
    /// reused. The task's log groups lines by it.
    pub fn execution(&self) -> i32 {
        self.execution.number
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The actor running it.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Writes an informational line to the task's log.
    pub fn info(&self, message: impl Into<String>) {
        self.execution.log(LogLevel::Info, message.into());
    }

    /// Writes a warning: the task will show *Warning* when it finishes.
    pub fn warn(&self, message: impl Into<String>) {
        self.execution.log(LogLevel::Warning, message.into());
    }

    /// Reports an error without asking for a retry: the task will show
    /// *Error* when it finishes.
    pub fn error(&self, message: impl Into<String>) {
        self.execution.log(LogLevel::Error, message.into());
    }

    /// True once the execution was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.execution.token.is_cancelled()
    }

    /// Completes when the execution is asked to stop (cancelled by an
    /// operator, past its time limit, or the worker is shutting down).
    /// Handlers that wait on I/O should `select!` on it.
    pub async fn cancelled(&self) {
        self.execution.token.cancelled().await;
    }

    /// Why the execution was asked to stop, if it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.execution.cancel_reason()
    }
}
