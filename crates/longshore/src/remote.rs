//! Running tasks that were claimed elsewhere: what the agent SDK
//! (`longshore-agent`) builds on. A task handed over by a gateway runs
//! through the same executor as an inline worker's: the same [`Actor`]s
//! and [`TaskContext`], time limit, cancellation and panic handling, so a
//! handler moves between the two without a change.
//!
//! [`Actor`]: crate::Actor
//! [`TaskContext`]: crate::TaskContext

use std::sync::Arc;
use std::time::Duration;

use longshore_core::{LogEntry, LogLevel, Outcome};
use uuid::Uuid;

use crate::actor::Registry;
use crate::config::WorkerConfig;
use crate::context::{CancelReason, Execution};
use crate::metrics::TaskLabels;
use crate::worker::executor::{self, Job};

/// Text as every log line and error is stored: a NUL, which PostgreSQL's
/// text columns refuse, becomes U+FFFD. A gateway applies it to what its
/// agents send, as a worker does to what its handlers log.
pub use crate::context::storable;

/// How a gateway sizes an agent's claim-ahead from measurements, as a
/// worker with `prefetch: auto` sizes its own.
pub use crate::worker::prefetch::Pace;

/// A task to run, as a gateway hands it over.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// The task.
    pub task_id: Uuid,
    /// Its execution number (the fence).
    pub execution: i32,
    /// The actor to run.
    pub actor: String,
    /// The queue it came from.
    pub queue: String,
    /// Its arguments.
    pub args: serde_json::Value,
    /// This attempt's number.
    pub attempt: i32,
    /// How many attempts it may have.
    pub max_attempts: i32,
    /// Its time limit, as the server enforces it.
    pub time_limit: Option<Duration>,
}

/// One execution in progress: stop it, and read what it logged so far.
#[derive(Clone, Debug)]
pub struct Running {
    execution: Arc<Execution>,
}

impl Running {
    /// Asks the handler to stop.
    pub fn cancel(&self, reason: CancelReason) {
        self.execution.cancel(reason);
    }

    /// The lines logged since the last call.
    pub fn take_logs(&self) -> Vec<LogEntry> {
        self.execution.take_logs()
    }

    /// The worst level logged so far.
    pub fn worst_level(&self) -> Option<LogLevel> {
        self.execution.worst_level()
    }
}

/// Runs assignments with a registry and a worker's execution settings
/// (`default_time_limit`, `cancel_grace`, `secrets`, `id`).
#[derive(Clone)]
pub struct Runner {
    registry: Arc<Registry>,
    config: Arc<WorkerConfig>,
}

impl Runner {
    /// A runner of `registry`'s actors.
    pub fn new(registry: Registry, config: WorkerConfig) -> Runner {
        Runner {
            registry: Arc::new(registry),
            config: Arc::new(config),
        }
    }

    /// The names of the actors it runs.
    pub fn actors(&self) -> Vec<String> {
        self.registry
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Starts `assignment`: the handle to cancel it and read its log, and
    /// the run itself, which ends with its outcome (`None` when it was
    /// cancelled because its lease was lost: nothing is to be reported).
    pub fn start(
        &self,
        assignment: Assignment,
    ) -> (
        Running,
        impl Future<Output = Option<Outcome>> + Send + 'static,
    ) {
        let labels = TaskLabels::new(&assignment.actor, &assignment.queue);
        let execution = Execution::new(assignment.task_id, assignment.execution, labels);
        let running = Running {
            execution: execution.clone(),
        };
        let registry = self.registry.clone();
        let config = self.config.clone();
        let run = async move {
            let job = Job {
                actor: &assignment.actor,
                time_limit_ms: assignment
                    .time_limit
                    .and_then(|limit| i64::try_from(limit.as_millis()).ok()),
                attempt: assignment.attempt,
                max_attempts: assignment.max_attempts,
            };
            executor::execute(&registry, &config, job, assignment.args, &execution).await
        };
        (running, run)
    }
}
