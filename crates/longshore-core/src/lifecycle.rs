//! The state machine: what an execution's outcome does to its task.
//!
//! A worker reports an [`Outcome`]; [`Outcome::transition`] decides the
//! task's next state. Storage engines apply the resulting [`Transition`]
//! fenced on (state = running, lease owner, execution), so a worker that
//! lost its lease cannot overwrite the task's new life.
//!
//! # Attempts and executions
//!
//! Every claim starts a new *execution*, numbered from 1 and never reused:
//! logs are grouped by it and completions are fenced on it. An *attempt* is
//! an execution that counts against `max_attempts`, which never changes by
//! itself. Every execution counts unless it was handed back by its worker
//! ([`Outcome::Released`], or a claim whose reply never reached the
//! worker): those give their attempt back. An execution whose worker died
//! counts (a task that kills its worker must not run forever), and an
//! operator's retry starts the count again from zero.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry::RetryPolicy;
use crate::task::TaskState;

/// How one execution of a task ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The handler returned `Ok`.
    Succeeded,
    /// The handler returned an error, panicked, or ran past its time limit.
    /// `fatal` failures are not retried.
    Failed {
        /// What went wrong, for the task's record.
        error: String,
        /// Fail now, whatever attempts remain.
        fatal: bool,
    },
    /// An operator cancelled it while it ran and the handler stopped.
    Cancelled,
    /// The worker shut down before the handler finished: the task goes back
    /// to the queue at once, and this execution does not count as an
    /// attempt (it keeps its own execution number, so its logs stay apart
    /// from the next one's).
    Released,
}

/// The change an outcome makes to its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The next state.
    pub state: TaskState,
    /// For `scheduled` and `queued`: due this long after the change is
    /// applied (measured on the database's clock).
    pub delay: Option<Duration>,
    /// The error to record, if any.
    pub error: Option<String>,
    /// The execution does not count as an attempt: the task gets its
    /// attempt back ([`Outcome::Released`]; and a worker sets it for a
    /// prefetched task an operator cancelled before it started).
    pub refund_attempt: bool,
}

impl Outcome {
    /// The transition of a task whose attempt number `attempt` (of
    /// `max_attempts`) ended with this outcome.
    pub fn transition(&self, attempt: i32, max_attempts: i32, policy: &RetryPolicy) -> Transition {
        let done = |state| Transition {
            state,
            delay: None,
            error: None,
            refund_attempt: false,
        };
        match self {
            Outcome::Succeeded => done(TaskState::Succeeded),
            Outcome::Cancelled => done(TaskState::Cancelled),
            Outcome::Failed { error, fatal } => {
                if *fatal || attempt >= max_attempts {
                    Transition {
                        error: Some(error.clone()),
                        ..done(TaskState::Failed)
                    }
                } else {
                    Transition {
                        state: TaskState::Scheduled,
                        delay: Some(policy.delay(attempt)),
                        error: Some(error.clone()),
                        refund_attempt: false,
                    }
                }
            }
            Outcome::Released => Transition {
                state: TaskState::Queued,
                delay: Some(Duration::ZERO),
                error: None,
                refund_attempt: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(fatal: bool) -> Outcome {
        Outcome::Failed {
            error: "boom".into(),
            fatal,
        }
    }

    #[test]
    fn every_outcome_at_every_attempt_leaves_running() {
        let policy = RetryPolicy::default();
        let outcomes = [
            Outcome::Succeeded,
            failed(false),
            failed(true),
            Outcome::Cancelled,
            Outcome::Released,
        ];
        for max in 1..=5 {
            for attempt in 1..=max {
                for outcome in &outcomes {
                    let t = outcome.transition(attempt, max, &policy);
                    assert_ne!(t.state, TaskState::Running);
                    // Exactly the retries and releases stay active, each with a due time.
                    assert_eq!(t.state.is_terminal(), t.delay.is_none());
                    assert_eq!(t.refund_attempt, *outcome == Outcome::Released);
                }
            }
        }
    }

    #[test]
    fn a_failure_is_retried_until_attempts_are_spent() {
        let policy = RetryPolicy::default();
        let t = failed(false).transition(1, 3, &policy);
        assert_eq!(t.state, TaskState::Scheduled);
        assert!(t.delay.is_some_and(|d| d >= policy.base));
        assert_eq!(t.error.as_deref(), Some("boom"));
        let t = failed(false).transition(3, 3, &policy);
        assert_eq!(t.state, TaskState::Failed);
    }

    #[test]
    fn a_fatal_failure_is_not_retried() {
        let t = failed(true).transition(1, 10, &RetryPolicy::default());
        assert_eq!(t.state, TaskState::Failed);
    }

    #[test]
    fn a_released_task_is_due_at_once() {
        let t = Outcome::Released.transition(3, 3, &RetryPolicy::default());
        assert_eq!(t.state, TaskState::Queued);
        assert_eq!(t.delay, Some(Duration::ZERO));
        assert!(t.refund_attempt);
    }
}
