//! Operator operations: what the command line, the HTTP API and the
//! dashboard do to a store beyond a single [`Store`] call, written once so
//! that every surface checks the same things and says the same words.
//!
//! - [`schedules`]: create and edit cron schedules, every field checked
//!   before anything is written; run one by hand; refuse to delete a
//!   built-in one.
//! - [`runtime_settings`]: the caps on running tasks that every node
//!   follows (`max_running`, `queues.NAME.max_running`).
//! - [`tokens`]: create an API token (only its hash is stored).
//! - [`bulk`]: delete tasks by filter and flush a queue, a bounded batch
//!   per transaction.
//! - [`filters`]: the task-list filters as people type them.
//!
//! A refusal names what was wrong ([`OpError::Invalid`]) in the words of
//! the surface that asked ([`Wording`]): flags for the command line,
//! fields for the API.
//!
//! [`Store`]: crate::Store

pub mod agents;
pub mod bulk;
pub mod filters;
pub mod operations;
pub mod runtime_settings;
pub mod schedules;
pub mod tokens;

use longshore_core::StoreError;
use longshore_core::token::NoRandomness;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// What was asked is not valid; the message says why, for people.
    /// Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The store refused (a missing schedule, a name taken…) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first step was written, a later one failed: `done` says what
    /// state that leaves, `source` why.
    #[error("{done}")]
    Partial {
        /// What was written and what to do about the rest.
        done: String,
        /// Why the rest failed.
        #[source]
        source: StoreError,
    },
    /// No random bytes for a token secret.
    #[error(transparent)]
    NoRandomness(#[from] NoRandomness),
}

impl OpError {
    /// A store error, with an invalid input's message alone (not prefixed
    /// by `invalid input:`): the surfaces say what was wrong with what
    /// was typed.
    pub fn plain(error: StoreError) -> OpError {
        match error {
            StoreError::InvalidInput(message) => OpError::Invalid(message),
            other => OpError::Store(other),
        }
    }
}

/// Whose words a refusal is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wording {
    /// The command line's: flags such as `--any-actor`.
    Cli,
    /// The HTTP API's: fields such as `"any_actor": true`.
    Api,
}

impl Wording {
    /// How to ask for an actor this node cannot check.
    pub fn any_actor(self) -> &'static str {
        match self {
            Wording::Cli => "pass --any-actor for an actor your own workers register",
            Wording::Api => "set \"any_actor\": true for an actor your own workers register",
        }
    }
}

/// The actors a node knows, and the check each makes of a task's
/// arguments before the task is written (so that a bad enqueue is refused
/// rather than failed later by a worker).
pub trait ActorCatalog: Send + Sync {
    /// Checks `args` for `actor`. An actor the catalog does not know is
    /// refused with a message starting `unknown actor`.
    fn check(&self, actor: &str, args: &serde_json::Value) -> Result<(), String>;
}

/// Checks `args` for `actor` against `catalog`, or, with `any_actor`, only
/// that the name is not empty (an actor the user's own workers register,
/// which this node cannot check). An unknown actor's refusal says how to
/// ask for it anyway, in `wording`.
pub fn check_actor(
    catalog: &dyn ActorCatalog,
    actor: &str,
    args: &serde_json::Value,
    any_actor: bool,
    wording: Wording,
) -> Result<(), OpError> {
    if any_actor {
        if actor.trim().is_empty() {
            return Err(OpError::Invalid("the actor name is empty".into()));
        }
        return Ok(());
    }
    // A secret's reference stands where a string goes; its value is known
    // only to the worker that runs the task.
    let args = longshore_core::secret::with_placeholders(args, "secret");
    catalog.check(actor, &args).map_err(|e| {
        if e.starts_with("unknown actor") {
            OpError::Invalid(format!("{e} ({})", wording.any_actor()))
        } else {
            OpError::Invalid(e)
        }
    })
}
