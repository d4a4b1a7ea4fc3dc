//! Enqueueing tasks.
//!
//! [`Client::enqueue`] gathers concurrent callers into shared inserts
//! (see [`gather`]); [`Client::enqueue_many`] writes one caller's batch
//! as one all-or-nothing insert.

mod gather;

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

/// Enqueues tasks into a store. Cheap to clone; clones share their
/// gathering of concurrent enqueues.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    metrics: Option<Metrics>,
    /// `None`: every single-task enqueue is its own statement.
    gatherer: Option<Arc<gather::Gatherer>>,
}

impl Client {
    /// A client for `store`, gathering concurrent single-task enqueues
    /// into shared inserts (see [`Client::gathering`]).
    pub fn new(store: Arc<dyn Store>) -> Client {
        Client {
            gatherer: Some(Arc::new(gather::Gatherer::new(store.clone(), None))),
            store,
            metrics: None,
        }
    }

    /// This client with gathering on (the default) or off.
    ///
    /// On, concurrent calls of [`Client::enqueue`], [`Client::enqueue_with`]
    /// and [`Client::enqueue_task`] share one insert and one commit: under
    /// many concurrent producers (a web server enqueueing one task per
    /// request) each commit carries many tasks. Every caller is still
    /// answered only once its task is stored, a lone caller waits for
    /// nothing, and one caller's refused task fails no other. Off, each
    /// call is its own statement: only worth it to measure the difference.
    pub fn gathering(mut self, on: bool) -> Client {
        self.gatherer = on.then(|| {
            Arc::new(gather::Gatherer::new(
                self.store.clone(),
                self.metrics.clone(),
            ))
        });
        self
    }

    /// This client, counting the tasks it enqueues in `metrics`
    /// (`longshore_tasks_enqueued_total`) and the size of each gathered
    /// insert (`longshore_enqueue_gathered_tasks`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Client {
        self.metrics = Some(metrics);
        let on = self.gatherer.is_some();
        self.gathering(on)
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
        self.enqueue_task(new_task(&task, options)?).await
    }

    /// Enqueues one prepared row (see [`new_task`]), gathered with other
    /// callers' like [`Client::enqueue`].
    pub async fn enqueue_task(&self, task: NewTask) -> Result<EnqueueResult, Error> {
        let Some(gatherer) = &self.gatherer else {
            let mut results = self.enqueue_many(vec![task]).await?;
            return match (results.pop(), results.is_empty()) {
                (Some(result), true) => Ok(result),
                _ => Err(Error::Worker(
                    "the store did not answer one result for one task".into(),
                )),
            };
        };
        let tally = self
            .metrics
            .as_ref()
            .map(|m| m.enqueue_tally(std::slice::from_ref(&task)));
        let result = gatherer.enqueue(task).await?;
        if let Some(tally) = tally {
            tally.record(std::slice::from_ref(&result));
        }
        Ok(result)
    }

    /// Enqueues many tasks in one round trip and one commit: all of them,
    /// or (on an error) none. Not gathered with other callers'.
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
