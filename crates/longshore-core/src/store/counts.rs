//! Task counts by queue, actor and state, kept by the database as tasks
//! change, so that reading them never counts the tasks.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::store::TaskFilter;
use crate::task::TaskState;

/// How to group [`CountStore::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsKey {
    /// By state only.
    State,
    /// By actor and state.
    Actor,
    /// By queue and state.
    Queue,
}

/// One group of [`CountStore::stats`] (or of [`CountStore::queue_depths`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRow {
    /// The actor or queue (the state's name when grouping by state; the
    /// queue in [`CountStore::queue_depths`]).
    pub key: String,
    /// The state counted.
    pub state: TaskState,
    /// How many tasks.
    pub count: i64,
}

/// What every queue together did in one minute, as the maintenance
/// leader counted it ([`CountStore::fold_counts`]): the dashboard's charts
/// of the day, for operators without Prometheus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    /// The minute's start (UTC).
    pub minute: DateTime<Utc>,
    /// Tasks enqueued (inserted) in it.
    pub enqueued: i64,
    /// Tasks that succeeded in it.
    pub succeeded: i64,
    /// Tasks that failed for good in it (a failure that will be retried is
    /// not counted).
    pub failed: i64,
    /// Tasks waiting (scheduled or queued) at the minute's last count;
    /// `None` when nothing was counted in it (the backlog was as before).
    pub waiting: Option<i64>,
}

/// Task counts.
#[async_trait]
pub trait CountStore: Send + Sync {
    /// Task counts grouped by `key` and state; groups with none are left
    /// out. Exact, and read from counts that the database keeps as tasks
    /// change (a few rows per queue, actor and state), never by counting
    /// the tasks: the cost does not grow with the history.
    async fn stats(&self, key: StatsKey) -> Result<Vec<StatsRow>, StoreError>;

    /// How many active tasks each queue has, by state (`scheduled`,
    /// `queued`, `running`; [`StatsRow::key`] is the queue), from the same
    /// counts as [`CountStore::stats`]. Queues and states with none are left
    /// out. Metrics read it at scrape time.
    async fn queue_depths(&self) -> Result<Vec<StatsRow>, StoreError>;

    /// Folds the count changes that task writes appended since the last
    /// fold into the counts' totals, and returns how many groups (queue,
    /// actor, state) of totals it changed (0: nothing to fold, or changes
    /// that cancelled out). Counts are exact either way; folding keeps
    /// reading them cheap. The maintenance leader calls it every pass. Engines that
    /// update the totals in place (SQLite) have nothing to fold.
    ///
    /// Each fold also adds what it saw to the current minute's throughput
    /// ([`CountStore::throughput`]), from the same changes: tasks
    /// inserted, succeeded and failed, by queue, and each queue's backlog.
    /// Nothing is written for it on the hot path.
    async fn fold_counts(&self) -> Result<u64, StoreError>;

    /// Throughput and backlog per minute since `since`, all queues summed,
    /// oldest first; minutes without a row had nothing counted. Reads at
    /// most one row per queue per minute.
    async fn throughput(&self, since: DateTime<Utc>) -> Result<Vec<MinuteRow>, StoreError>;

    /// Deletes the throughput of minutes that started more than
    /// `older_than` ago; returns how many rows (minute and queue) went.
    async fn purge_throughput(&self, older_than: Duration) -> Result<u64, StoreError>;

    /// Rebuilds the task counts from a count of the tasks table, holding
    /// off task writes meanwhile (reads go on), and returns how many
    /// groups (queue, actor, state) it counted. A repair, never needed in
    /// normal running: the counts drift only if task rows were changed
    /// with the database's triggers disabled (a restore or a replica apply
    /// with triggers off). Its cost follows the table's size.
    async fn recount(&self) -> Result<u64, StoreError>;
}

/// True when the counts say that no task of `filter`'s actor (or, without
/// one, of its queue) is in any of its states: the list is then empty,
/// whatever else it asks. Engines ask before they walk an index for such a
/// filter: finding none of one actor's tasks in a state would otherwise read
/// every task of that state. False when the filter names no state, or
/// neither an actor nor a queue.
pub async fn counted_none(
    counts: &(impl CountStore + ?Sized),
    filter: &TaskFilter,
) -> Result<bool, StoreError> {
    if filter.states.is_empty() {
        return Ok(false);
    }
    let (key, name) = match (&filter.actor, &filter.queue) {
        (Some(actor), _) => (StatsKey::Actor, actor),
        (None, Some(queue)) => (StatsKey::Queue, queue),
        (None, None) => return Ok(false),
    };
    Ok(!counts
        .stats(key)
        .await?
        .iter()
        .any(|row| &row.key == name && filter.states.contains(&row.state) && row.count > 0))
}
