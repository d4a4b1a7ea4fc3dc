//! Bulk operations: a retry, cancel or deletion of many tasks that runs
//! on a server node in the background, after the request that started it
//! has been answered. Its record, here, is what any node shows while it
//! runs (progress), and how an operator on any node stops it: the node that
//! runs it reads the cancel request between batches. Finished operations
//! are purged with the audit trail (`retention.audit`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;

/// What an operation does to each task it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BulkAction {
    /// Retry finished tasks.
    Retry,
    /// Cancel waiting tasks, and ask running ones to stop.
    Cancel,
    /// Delete tasks that are not running.
    Delete,
}

impl BulkAction {
    /// Every action.
    pub const ALL: [BulkAction; 3] = [BulkAction::Retry, BulkAction::Cancel, BulkAction::Delete];

    /// Its name: `retry`, `cancel`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Retry => "retry",
            BulkAction::Cancel => "cancel",
            BulkAction::Delete => "delete",
        }
    }

    /// The action named `name`.
    pub fn parse(name: &str) -> Option<BulkAction> {
        BulkAction::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Where an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationState {
    /// Its node is working through the tasks.
    Running,
    /// It went through every task it matched.
    Finished,
    /// Stopped at an operator's request; what it did stays done.
    Cancelled,
    /// Stopped by an error (in [`Operation::error`]).
    Failed,
}

impl OperationState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Running => "running",
            OperationState::Finished => "finished",
            OperationState::Cancelled => "cancelled",
            OperationState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<OperationState> {
        [
            OperationState::Running,
            OperationState::Finished,
            OperationState::Cancelled,
            OperationState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// An operation to record as it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOperation {
    /// UUIDv7.
    pub id: Uuid,
    /// What it does.
    pub action: BulkAction,
    /// Which tasks, in words (the filter as the operator gave it).
    pub target: String,
    /// How many tasks matched when it started, if they were counted.
    pub matched: Option<i64>,
    /// The token's name that started it.
    pub started_by: String,
    /// The node that runs it.
    pub node: String,
}

/// A recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// As it started.
    pub new: NewOperation,
    /// Where it is.
    pub state: OperationState,
    /// Tasks it looked at so far.
    pub seen: i64,
    /// Tasks it changed so far (the others were in a state the action does
    /// not apply to, or changed meanwhile).
    pub done: i64,
    /// An operator asked it to stop.
    pub cancel_requested: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Its last progress.
    pub modified_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Operation {
    /// How long a running operation may go without progress before it is
    /// shown as stalled (its node stopped mid-way): many batches' time.
    pub const STALLED_AFTER: Duration = Duration::from_secs(60);

    /// True when it runs on no node any more: still `running` but without
    /// progress for [`Operation::STALLED_AFTER`].
    pub fn stalled(&self, now: DateTime<Utc>) -> bool {
        self.state == OperationState::Running
            && (now - self.modified_at).to_std().unwrap_or_default() > Self::STALLED_AFTER
    }
}

/// Bulk operations.
#[async_trait]
pub trait OperationStore: Send + Sync {
    /// Records an operation, `running`.
    async fn create_operation(&self, operation: &NewOperation) -> Result<(), StoreError>;

    /// Operation `id`.
    async fn operation(&self, id: Uuid) -> Result<Option<Operation>, StoreError>;

    /// The newest `limit` operations, newest first.
    async fn operations(&self, limit: i64) -> Result<Vec<Operation>, StoreError>;

    /// Records a running operation's progress; answers whether an operator
    /// asked it to stop.
    async fn operation_progress(&self, id: Uuid, seen: i64, done: i64) -> Result<bool, StoreError>;

    /// Ends a running operation in `state`, with `error` when it failed.
    async fn finish_operation(
        &self,
        id: Uuid,
        state: OperationState,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Asks running operation `id` to stop; false when it is not running
    /// (or does not exist).
    async fn cancel_operation(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Deletes operations that ended more than `older_than` ago; returns
    /// how many.
    async fn purge_operations(&self, older_than: Duration) -> Result<u64, StoreError>;
}
