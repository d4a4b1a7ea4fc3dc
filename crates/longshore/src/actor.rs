//! Handlers: typed [`Task`]s, raw JSON [`Actor`]s, and the [`Registry`] a
//! worker runs them from.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::TaskContext;
use crate::error::TaskError;

/// A kind of background work: a serde payload with a stable actor name and
/// an async handler.
///
/// ```
/// use longshore::{Task, TaskContext, TaskError};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail {
///     to: String,
/// }
///
/// impl Task for SendEmail {
///     const ACTOR: &'static str = "send_email";
///
///     async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
///         ctx.info(format!("sending to {}", self.to));
///         Ok(())
///     }
/// }
/// ```
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// The actor name stored with every task. Keep it stable: renaming it
    /// strands the tasks already enqueued.
    const ACTOR: &'static str;

    /// The queue its tasks go to unless the enqueue says otherwise.
    const QUEUE: &'static str = longshore_core::NewTask::DEFAULT_QUEUE;

    /// How many executions a task may have unless the enqueue says otherwise.
    const MAX_ATTEMPTS: i32 = longshore_core::NewTask::DEFAULT_MAX_ATTEMPTS;

    /// The actor's time limit; `None` uses the worker's default. A limit
    /// given at enqueue wins over both.
    const TIME_LIMIT: Option<Duration> = None;

    /// Runs one execution.
    fn run(self, ctx: TaskContext) -> impl Future<Output = Result<(), TaskError>> + Send;
}

/// A handler that takes its arguments as raw JSON; built-in actors and
/// handlers registered at run time use it. Every [`Task`] is adapted to one.
#[async_trait]
pub trait Actor: Send + Sync + 'static {
    /// Runs one execution.
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError>;

    /// The actor's time limit, if it has its own.
    fn time_limit(&self) -> Option<Duration> {
        None
    }
}

struct TypedActor<T>(std::marker::PhantomData<fn() -> T>);

#[async_trait]
impl<T: Task> Actor for TypedActor<T> {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let task: T = serde_json::from_value(args).map_err(|e| {
            TaskError::fatal(format!("arguments do not match actor `{}`: {e}", T::ACTOR))
        })?;
        task.run(ctx).await
    }

    fn time_limit(&self) -> Option<Duration> {
        T::TIME_LIMIT
    }
}

/// The actors a worker can run, by name.
#[derive(Clone, Default)]
pub struct Registry {
    actors: HashMap<String, Arc<dyn Actor>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a typed task under `T::ACTOR`.
    pub fn register<T: Task>(&mut self) -> &mut Registry {
        self.actors.insert(
            T::ACTOR.to_owned(),
            Arc::new(TypedActor::<T>(std::marker::PhantomData)),
        );
        self
    }

    /// Registers a raw JSON actor under `name`.
    pub fn register_actor(&mut self, name: impl Into<String>, actor: impl Actor) -> &mut Registry {
        self.actors.insert(name.into(), Arc::new(actor));
        self
    }

    /// The actor named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Actor>> {
        self.actors.get(name)
    }

    /// True if `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.actors.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.actors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("actors", &self.names())
            .finish()
    }
}
