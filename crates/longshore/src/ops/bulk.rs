//! Deleting many tasks at once, a bounded batch per transaction: what
//! `longshore tasks delete`, `longshore queues flush` and their API routes
//! share. Nothing here holds more than a count in memory, however many
//! tasks go.

use longshore_core::{QueueSettings, Store, StoreError, TaskSelection, TaskState};

/// Tasks deleted per transaction: big enough to go fast, small enough that
/// no transaction holds locks (or, on SQLite, the file) for long.
pub const BATCH: i64 = 5_000;

/// Deletes every task `selection` takes, [`BATCH`] per transaction, until
/// a batch comes back short (anything left then was enqueued meanwhile, or
/// held by a claim at that moment). `progress` gets the running total after
/// each batch that deleted something. Returns the total.
pub async fn delete(
    store: &dyn Store,
    selection: &TaskSelection,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    selection.check_deletable()?;
    let mut total = 0u64;
    loop {
        let deleted = store.delete_matching(selection, BATCH).await?;
        total = total.saturating_add(deleted);
        if deleted > 0 {
            progress(total);
        }
        if deleted < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            return Ok(total);
        }
    }
}

/// The states a flush deletes: the waiting ones.
pub const WAITING: [TaskState; 2] = [TaskState::Scheduled, TaskState::Queued];

/// The waiting tasks of `queue`, which a flush deletes.
pub fn waiting_in(queue: &str) -> TaskSelection {
    TaskSelection {
        states: WAITING.to_vec(),
        queue: Some(queue.to_owned()),
        ..TaskSelection::default()
    }
}

/// What a flush counts in a dry run: the queue's waiting and running tasks.
pub fn flushed_by(queue: &str) -> TaskSelection {
    TaskSelection {
        states: vec![TaskState::Scheduled, TaskState::Queued, TaskState::Running],
        queue: Some(queue.to_owned()),
        ..TaskSelection::default()
    }
}

/// What a flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Waiting (scheduled and queued) tasks deleted.
    pub deleted: u64,
    /// Running tasks whose workers were asked to cancel them.
    pub signalled: u64,
}

/// Flushes `queue`: asks its running tasks to cancel (so that none of them
/// is retried into the queue meanwhile: a task asked to cancel ends
/// cancelled), deletes its waiting tasks in batches (`progress` as for
/// [`delete`]), then asks again, for tasks claimed while it deleted.
pub async fn flush(
    store: &dyn Store,
    queue: &str,
    progress: impl FnMut(u64),
) -> Result<Flushed, StoreError> {
    QueueSettings::check_name(queue)?;
    let mut signalled = cancel_running(store, queue).await?;
    let deleted = delete(store, &waiting_in(queue), progress).await?;
    signalled = signalled.saturating_add(cancel_running(store, queue).await?);
    Ok(Flushed { deleted, signalled })
}

/// Asks every running task of `queue` not asked yet to cancel, a batch at
/// a time; returns how many were asked.
async fn cancel_running(store: &dyn Store, queue: &str) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let asked = store.cancel_running_in_queue(queue, BATCH).await?;
        if asked == 0 {
            return Ok(total);
        }
        total = total.saturating_add(asked);
    }
}

/// `counts` (as [`TaskStore::count_matching`](crate::TaskStore::count_matching) gives them) for each of
/// `states`, zero where none matched.
pub fn per_state(states: &[TaskState], counts: &[(TaskState, i64)]) -> Vec<(TaskState, i64)> {
    states
        .iter()
        .map(|state| {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            (*state, n)
        })
        .collect()
}
