//! The one error type of storage, which every layer above passes on or
//! matches.

use uuid::Uuid;

use crate::task::{TaskState, UnknownState};

/// What went wrong in storage. Callers match on the kind; the message names
/// what was wrong and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No task has this id.
    #[error("no task with id {0}")]
    NotFound(Uuid),
    /// The task exists but is in a state the action does not apply to.
    #[error("{}", invalid_state(*id, *state, action))]
    InvalidState {
        /// The task.
        id: Uuid,
        /// Its current state.
        state: TaskState,
        /// What was asked, e.g. `retry`.
        action: &'static str,
    },
    /// No schedule has this name.
    #[error("no schedule named `{0}`")]
    ScheduleNotFound(String),
    /// A schedule of this name exists already.
    #[error("a schedule named `{0}` exists already")]
    ScheduleExists(String),
    /// No API token has this name.
    #[error("no API token named `{0}`")]
    TokenNotFound(String),
    /// An API token of this name exists already (perhaps revoked: names
    /// are never reused, so that logs naming a token stay unambiguous).
    #[error(
        "an API token named `{0}` exists already (names of revoked tokens are kept too): choose another name"
    )]
    TokenExists(String),
    /// No agent pool has this name.
    #[error("no pool named `{0}`")]
    PoolNotFound(String),
    /// A pool of this name exists already.
    #[error("a pool named `{0}` exists already")]
    PoolExists(String),
    /// No agent with this id is connected.
    #[error("no connected agent has id `{0}` (see `longshore agents list`)")]
    AgentNotFound(String),
    /// No agent token has this name.
    #[error("no agent token named `{0}`")]
    AgentTokenNotFound(String),
    /// An agent token of this name exists already (revoked ones keep
    /// their names too).
    #[error(
        "an agent token named `{0}` exists already (names of revoked tokens are kept too): choose another name"
    )]
    AgentTokenExists(String),
    /// Another active task holds the unique key.
    #[error("an active task already holds unique key `{key}`")]
    UniqueConflict {
        /// The key.
        key: String,
    },
    /// The request itself is malformed; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database could not be reached, or the connection broke.
    /// Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema is missing or older than this build expects.
    #[error("migration error: {0}")]
    Migration(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// True when the same call may succeed later (connection problems).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl TaskState {
    /// A state as an engine reads it back from its table: a name it does
    /// not know is a fault of the database, not of the caller's input.
    pub fn from_stored(name: &str) -> Result<TaskState, StoreError> {
        name.parse()
            .map_err(|e: UnknownState| StoreError::Database(Box::new(e)))
    }
}

/// [`StoreError::InvalidState`] in words a person would use: what the task
/// is doing, and what the action needs.
fn invalid_state(id: Uuid, state: TaskState, action: &str) -> String {
    let now = match state {
        TaskState::Scheduled => "is scheduled to run later",
        TaskState::Queued => "is waiting to run",
        TaskState::Running => "is running",
        TaskState::Succeeded => "has already succeeded",
        TaskState::Failed => "has already failed",
        TaskState::Cancelled => "is already cancelled",
    };
    let needs = match action {
        "retry" => " (only a finished task can be retried)",
        "cancel" => " (only a task that has not finished can be cancelled)",
        _ => "",
    };
    format!("task {id} {now}, so you cannot {action} it{needs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_action_reads_as_a_person_would_say_it() {
        let id = Uuid::nil();
        let cancel = StoreError::InvalidState {
            id,
            state: TaskState::Failed,
            action: "cancel",
        };
        assert_eq!(
            cancel.to_string(),
            format!(
                "task {id} has already failed, so you cannot cancel it (only a task that has not finished can be cancelled)"
            )
        );
    }
}
