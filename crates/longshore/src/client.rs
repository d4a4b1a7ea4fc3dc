//! Enqueueing tasks.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use longshore_core::{EnqueueResult, NewTask, Related, Store};

use crate::actor::Task;
use crate::error::Error;
use crate::metrics::Metrics;

/// How to enqueue one task. Unset fields use the task type's defaults.
#[derive(Clone, Debug, Default)]
pub struct EnqueueOptions {
    /// Queue (default: the task's `QUEUE`).
    pub queue: Option<String>,
    /// Lower runs first (default 0).
    pub priority: Option<i16>,
    /// Run no earlier than this.
    pub run_at: Option<DateTime<Utc>>,
    /// Run no earlier than this long from now (ignored when `run_at` is set).
    pub delay: Option<Duration>,
    /// Executions allowed (default: the task's `MAX_ATTEMPTS`).
    pub max_attempts: Option<i32>,
    /// Time limit of each execution (default: the actor's, then the worker's).
    pub time_limit: Option<Duration>,
    /// While an active task holds this key, this one is not inserted.
    pub unique_key: Option<String>,
    /// The object the task works on.
    pub related: Option<Related>,
}

impl EnqueueOptions {
    /// Applies these options to `task`.
    pub fn apply(&self, task: &mut NewTask) {
        if let Some(queue) = &self.queue {
            task.queue.clone_from(queue);
        }
        if let Some(priority) = self.priority {
            task.priority = priority;
        }
        task.run_at = self.run_at.or_else(|| {
            self.delay
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| Utc::now() + d)
        });
        if let Some(max) = self.max_attempts {
            task.max_attempts = max;
        }
        if let Some(limit) = self.time_limit {
            task.time_limit_ms = Some(i64::try_from(limit.as_millis()).unwrap_or(i64::MAX));
        }
        if self.unique_key.is_some() {
            task.unique_key.clone_from(&self.unique_key);
        }
        if self.related.is_some() {
            task.related.clone_from(&self.related);
        }
    }
}

/// Builds the row for a typed task, for [`Client::enqueue_many`] or for
/// enqueueing inside an application's own transaction
/// (`longshore::postgres::enqueue_in`).
pub fn new_task<T: Task>(task: &T, options: &EnqueueOptions) -> Result<NewTask, Error> {
    let args = serde_json::to_value(task).map_err(|source| Error::Serialize {
        actor: T::ACTOR.to_owned(),
        source,
    })?;
    let mut row = NewTask::new(T::ACTOR, args);
    row.queue = T::QUEUE.to_owned();
    row.max_attempts = T::MAX_ATTEMPTS;
    options.apply(&mut row);
    Ok(row)
}

/// Enqueues tasks into a store. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    metrics: Option<Metrics>,
}

impl Client {
    /// A client for `store`.
    pub fn new(store: Arc<dyn Store>) -> Client {
        Client {
            store,
            metrics: None,
        }
    }

    /// This client, counting the tasks it enqueues in `metrics`
    /// (`longshore_tasks_enqueued_total`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Client {
        self.metrics = Some(metrics);
        self
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Enqueues one task with its type's defaults.
    pub async fn enqueue<T: Task>(&self, task: T) -> Result<EnqueueResult, Error> {
        self.enqueue_with(task, &EnqueueOptions::default()).await
    }

    /// Enqueues one task with `options`.
    pub async fn enqueue_with<T: Task>(
        &self,
        task: T,
        options: &EnqueueOptions,
    ) -> Result<EnqueueResult, Error> {
        let row = new_task(&task, options)?;
        let mut results = self.enqueue_many(vec![row]).await?;
        results
            .pop()
            .ok_or_else(|| Error::Worker("the store returned no result for an enqueue".into()))
    }

    /// Enqueues many tasks in one round trip.
    pub async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<EnqueueResult>, Error> {
        let tally = self.metrics.as_ref().map(|m| m.enqueue_tally(&tasks));
        let results = self.store.enqueue(tasks).await?;
        if let Some(tally) = tally {
            tally.record(&results);
        }
        Ok(results)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("engine", &self.store.engine())
            .finish()
    }
}
