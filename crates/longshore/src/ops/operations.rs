//! Bulk operations in the background: a retry, cancel or deletion of many
//! tasks that outlives the request (or the browser) that started it. The
//! API's bulk deletion and the dashboard's bulk actions start one here; it
//! is recorded in the database ([`OperationStore`]) and runs on this
//! process's runtime, a batch at a time, writing its progress after each
//! batch and stopping between batches when an operator, on any node, asks
//! it to. What a batch did stays done. If the process stops mid-way the
//! operation is left `running` without progress and shows as stalled
//! ([`Operation::stalled`]); starting it again does what is left.
//!
//! [`OperationStore`]: longshore_core::OperationStore
//! [`Operation::stalled`]: longshore_core::Operation::stalled

use std::sync::Arc;

use longshore_core::{
    BulkAction, CancelResult, NewOperation, OperationState, Store, StoreError, TaskFilter, TaskRow,
    TaskSelection,
};
use uuid::Uuid;

use super::bulk;

/// Tasks read per page of a filter, and acted on per batch.
pub const PAGE: i64 = 500;

/// The tasks an operation takes.
#[derive(Clone, Debug)]
pub enum Job {
    /// Delete what a selection takes, [`bulk::BATCH`] per transaction (the
    /// API's `DELETE /api/v1/tasks`).
    Delete(TaskSelection),
    /// Act on every task a list filter shows, newest first, a page at a
    /// time (the dashboard's "everything matching the filter").
    Filtered(BulkAction, TaskFilter),
    /// Act on these tasks (the rows an operator ticked).
    Picked(BulkAction, Vec<Uuid>),
}

impl Job {
    /// What it does to each task.
    pub fn action(&self) -> BulkAction {
        match self {
            Job::Delete(_) => BulkAction::Delete,
            Job::Filtered(action, _) | Job::Picked(action, _) => *action,
        }
    }
}

/// Who starts an operation, and from where.
#[derive(Clone, Debug)]
pub struct Starter {
    /// The token's name.
    pub token: String,
    /// The node that runs it.
    pub node: String,
}

/// This process, as an operation names the node that runs it: the host
/// and the process id.
pub fn this_process() -> String {
    format!("{}-{}", crate::config::host_name(), std::process::id())
}

/// Records operation `job` (`target` says which tasks in words; `matched`
/// is the count shown before, if any) and starts it on this runtime;
/// returns its id at once.
pub async fn start(
    store: Arc<dyn Store>,
    job: Job,
    target: String,
    matched: Option<i64>,
    starter: &Starter,
) -> Result<Uuid, StoreError> {
    if let Job::Delete(selection) = &job {
        selection.check_deletable()?;
    }
    if let Job::Filtered(_, filter) = &job {
        filter.validate()?;
    }
    let id = Uuid::now_v7();
    store
        .create_operation(&NewOperation {
            id,
            action: job.action(),
            target,
            matched,
            started_by: starter.token.clone(),
            node: starter.node.clone(),
        })
        .await?;
    tokio::spawn(async move {
        let (state, error) = match run(store.as_ref(), id, job).await {
            Ok(true) => (OperationState::Finished, None),
            Ok(false) => (OperationState::Cancelled, None),
            Err(e) => (OperationState::Failed, Some(crate::with_causes(&e))),
        };
        match &error {
            None => tracing::info!(operation = %id, state = state.as_str(), "bulk operation ended"),
            Some(error) => tracing::warn!(operation = %id, %error, "bulk operation failed"),
        }
        if let Err(e) = store.finish_operation(id, state, error.as_deref()).await {
            tracing::warn!(operation = %id, error = %e, "could not record the end of a bulk operation");
        }
    });
    Ok(id)
}

/// Runs `job`; true when it went through everything, false when it was
/// asked to stop.
async fn run(store: &dyn Store, id: Uuid, job: Job) -> Result<bool, StoreError> {
    let mut seen = 0i64;
    let mut done = 0i64;
    // Records a batch; false when asked to stop.
    let mut batch = async |looked: i64, changed: u64| -> Result<bool, StoreError> {
        seen = seen.saturating_add(looked);
        done = done.saturating_add(i64::try_from(changed).unwrap_or(i64::MAX));
        Ok(!store.operation_progress(id, seen, done).await?)
    };
    match job {
        Job::Delete(selection) => loop {
            let deleted = store.delete_matching(&selection, bulk::BATCH).await?;
            let n = i64::try_from(deleted).unwrap_or(i64::MAX);
            if !batch(n, deleted).await? {
                return Ok(false);
            }
            if n < bulk::BATCH {
                return Ok(true);
            }
        },
        Job::Filtered(action, mut filter) => {
            filter.limit = PAGE;
            filter.before = None;
            loop {
                let tasks = store.list(&filter).await?;
                let Some(last) = tasks.last() else {
                    return Ok(true);
                };
                filter.before = Some(last.id);
                let changed = act(store, action, &tasks).await?;
                if !batch(i64::try_from(tasks.len()).unwrap_or(i64::MAX), changed).await? {
                    return Ok(false);
                }
            }
        }
        Job::Picked(action, ids) => {
            for chunk in ids.chunks(usize::try_from(PAGE).unwrap_or(usize::MAX)) {
                let mut tasks = Vec::with_capacity(chunk.len());
                for id in chunk {
                    tasks.extend(store.task(*id).await?);
                }
                let changed = act(store, action, &tasks).await?;
                if !batch(i64::try_from(chunk.len()).unwrap_or(i64::MAX), changed).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// Does `action` to those of `tasks` it applies to; returns how many it
/// changed. A task that moved on meanwhile (retried, finished, deleted by
/// someone else) is passed over.
async fn act(store: &dyn Store, action: BulkAction, tasks: &[TaskRow]) -> Result<u64, StoreError> {
    let passed_over = |e: &StoreError| {
        matches!(
            e,
            StoreError::NotFound(_)
                | StoreError::InvalidState { .. }
                | StoreError::UniqueConflict { .. }
        )
    };
    let mut changed = 0u64;
    match action {
        BulkAction::Delete => {
            let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
            changed = store.delete_tasks(&ids).await?;
        }
        BulkAction::Retry => {
            for task in tasks.iter().filter(|t| t.state.is_terminal()) {
                match store.retry(task.id).await {
                    Ok(_) => changed += 1,
                    Err(e) if passed_over(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        BulkAction::Cancel => {
            for task in tasks.iter().filter(|t| !t.state.is_terminal()) {
                match store.cancel(task.id).await {
                    Ok(CancelResult::Cancelled | CancelResult::Signalled) => changed += 1,
                    Err(e) if passed_over(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(changed)
}

/// How many tasks a list filter shows, counted a page at a time up to
/// `most`: `(n, true)` when exact, `(most, false)` when there are at least
/// that many. The dashboard shows it before a bulk action is confirmed.
pub async fn count(
    store: &dyn Store,
    filter: &TaskFilter,
    most: i64,
) -> Result<(i64, bool), StoreError> {
    let mut filter = filter.clone();
    filter.limit = 1000;
    filter.before = None;
    let mut n = 0i64;
    loop {
        let page = store.list(&filter).await?;
        n = n.saturating_add(i64::try_from(page.len()).unwrap_or(i64::MAX));
        if n >= most {
            return Ok((most, false));
        }
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(0) == filter.limit => {
                filter.before = Some(last.id);
            }
            _ => return Ok((n, true)),
        }
    }
}
