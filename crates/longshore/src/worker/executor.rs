//! One execution: run the handler under its time limit and cancellation,
//! and turn what happened into an [`Outcome`] (which [`super::dispatch`]
//! hands to the completer).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use longshore_core::{LogLevel, Outcome, TaskRow};

use crate::actor::Registry;
use crate::config::WorkerConfig;
use crate::context::{CancelReason, Execution, TaskContext, storable};
use crate::error::TaskError;

/// What the executor needs of a task besides its arguments.
pub(crate) struct Job<'a> {
    pub(crate) actor: &'a str,
    pub(crate) time_limit_ms: Option<i64>,
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
}

impl<'a> From<&'a TaskRow> for Job<'a> {
    fn from(task: &'a TaskRow) -> Job<'a> {
        Job {
            actor: &task.actor,
            time_limit_ms: task.time_limit_ms,
            attempt: task.attempt,
            max_attempts: task.max_attempts,
        }
    }
}

/// Runs the handler. `None` means the result must not be recorded (the
/// worker lost the lease).
pub(crate) async fn execute(
    registry: &Registry,
    config: &WorkerConfig,
    task: Job<'_>,
    mut args: serde_json::Value,
    execution: &Arc<Execution>,
) -> Option<Outcome> {
    let Some(actor) = registry.get(task.actor).cloned() else {
        // Retryable: during a rolling deploy another worker may know it.
        return Some(Outcome::Failed {
            error: format!(
                "no actor named `{}` is registered on worker {}",
                task.actor, config.id
            ),
            fatal: false,
        });
    };
    if let Err(error) = config.secrets.resolve(&mut args) {
        // Retryable, as above: another worker may know the secret.
        execution.log(LogLevel::Error, format!("failed: {error}"));
        return Some(Outcome::Failed {
            error,
            fatal: false,
        });
    }
    let limit = task
        .time_limit_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
        .or_else(|| actor.time_limit())
        .unwrap_or(config.default_time_limit);
    let ctx = TaskContext {
        execution: execution.clone(),
        queue: execution.labels.queue.clone(),
        actor: execution.labels.actor.clone(),
        attempt: task.attempt,
        max_attempts: task.max_attempts,
    };
    // Its own Tokio task, so that a panic is caught and the handler can be
    // aborted if it ignores cancellation.
    let mut handle = tokio::spawn(async move { actor.run(args, ctx).await });

    let finished = tokio::select! {
        result = &mut handle => Some(result),
        () = tokio::time::sleep(limit) => {
            execution.cancel(CancelReason::TimeLimit);
            None
        }
        () = execution.token.cancelled() => None,
    };
    let result = match finished {
        Some(result) => result,
        None => match tokio::time::timeout(config.cancel_grace, &mut handle).await {
            Ok(result) => result,
            Err(_) => {
                handle.abort();
                handle.await
            }
        },
    };

    let reason = execution.cancel_reason();
    if reason == Some(CancelReason::LeaseLost) {
        return None;
    }
    let failure = match result {
        Ok(Ok(())) => return Some(Outcome::Succeeded),
        Ok(Err(error)) => error,
        Err(join) if join.is_panic() => TaskError::retry(format!(
            "handler panicked: {}",
            panic_message(join.into_panic())
        )),
        Err(_) => TaskError::retry("handler aborted"),
    };
    // Each execution's log says how it ended, so that earlier executions
    // explain themselves next to the current one.
    Some(match reason {
        None => {
            let fatal = !failure.is_retryable();
            execution.log(
                LogLevel::Error,
                format!(
                    "{}: {}",
                    if fatal {
                        "failed (not retried)"
                    } else {
                        "failed"
                    },
                    failure.message()
                ),
            );
            Outcome::Failed {
                error: storable(failure.message().to_owned()),
                fatal,
            }
        }
        Some(CancelReason::TimeLimit) => {
            let error = format!("time limit of {} exceeded", humanize(limit));
            execution.log(LogLevel::Error, error.clone());
            Outcome::Failed {
                error,
                fatal: false,
            }
        }
        Some(CancelReason::Operator) => {
            execution.log(LogLevel::Info, "cancelled by an operator".to_owned());
            Outcome::Cancelled
        }
        Some(CancelReason::Shutdown | CancelReason::LeaseLost) => {
            execution.log(
                LogLevel::Warning,
                format!(
                    "interrupted: worker {} shut down; the task was returned to the queue",
                    config.id
                ),
            );
            Outcome::Released
        }
    })
}

/// What a prefetched task that never started comes to, by why it was
/// stopped while it waited for a slot. `None`: the lease is gone.
pub(crate) fn never_started(config: &WorkerConfig, execution: &Execution) -> Option<Outcome> {
    match execution.cancel_reason() {
        Some(CancelReason::LeaseLost) => None,
        Some(CancelReason::Operator) => {
            execution.log(
                LogLevel::Info,
                "cancelled by an operator before it started".to_owned(),
            );
            Some(Outcome::Cancelled)
        }
        // A shutdown (the only other way it stops waiting): it goes back
        // with its attempt refunded, as an interrupted one does.
        _ => {
            execution.log(
                LogLevel::Info,
                format!(
                    "not started: worker {} shut down with it prefetched; the task was returned to the queue",
                    config.id
                ),
            );
            Some(Outcome::Released)
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".to_owned()
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
