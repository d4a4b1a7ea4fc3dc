//! The statements of [`super`], with the indexes each relies on.

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

/// States in their life order, as PostgreSQL's enum sorts them.
macro_rules! state_order {
    () => {
        "CASE state WHEN 'scheduled' THEN 0 WHEN 'queued' THEN 1 WHEN 'running' THEN 2 \
         WHEN 'succeeded' THEN 3 WHEN 'failed' THEN 4 ELSE 5 END"
    };
}

/// Counts by state, from the counts the triggers keep (migration 9).
pub(crate) const STATS_BY_STATE: &str = concat!(
    "SELECT state, state, sum(n) FROM longshore_task_counts GROUP BY state HAVING sum(n) <> 0 \
     ORDER BY ",
    state_order!()
);
/// Counts by actor and state.
pub(crate) const STATS_BY_ACTOR: &str = concat!(
    "SELECT actor, state, sum(n) FROM longshore_task_counts GROUP BY actor, state \
     HAVING sum(n) <> 0 ORDER BY actor, ",
    state_order!()
);
/// Counts by queue and state.
pub(crate) const STATS_BY_QUEUE: &str = concat!(
    "SELECT queue, state, sum(n) FROM longshore_task_counts GROUP BY queue, state \
     HAVING sum(n) <> 0 ORDER BY queue, ",
    state_order!()
);

/// Active tasks by queue and state, for the metrics' depth gauges and
/// `queues list`, from the same counts (never the tasks table).
pub(crate) const QUEUE_DEPTHS: &str = concat!(
    "SELECT queue, state, sum(n) FROM longshore_task_counts \
     WHERE state IN ('scheduled', 'queued', 'running') GROUP BY queue, state \
     HAVING sum(n) <> 0 ORDER BY queue, ",
    state_order!()
);

/// Each queue's totals that only grow (migration 15) and its backlog, from
/// the counts.
pub(crate) const QUEUE_TOTALS: &str = "
SELECT queue, sum(inserted) AS inserted,
       sum(CASE WHEN state = 'succeeded' THEN entered ELSE 0 END) AS succeeded,
       sum(CASE WHEN state = 'failed' THEN entered ELSE 0 END) AS failed,
       sum(CASE WHEN state IN ('scheduled', 'queued') THEN n ELSE 0 END) AS waiting
FROM longshore_task_counts GROUP BY queue";
/// The totals of the last fold.
pub(crate) const SEEN: &str =
    "SELECT queue, inserted, succeeded, failed, waiting FROM longshore_throughput_seen";
/// Keeps one queue's totals as seen.
pub(crate) const SEE: &str = "
INSERT INTO longshore_throughput_seen (queue, inserted, succeeded, failed, waiting)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (queue) DO UPDATE SET inserted = excluded.inserted, succeeded = excluded.succeeded,
    failed = excluded.failed, waiting = excluded.waiting";
/// Adds to one queue's minute: ?1 minute, ?2 queue, ?3 enqueued,
/// ?4 succeeded, ?5 failed, ?6 waiting.
pub(crate) const ADD_TO_MINUTE: &str = "
INSERT INTO longshore_throughput (minute, queue, enqueued, succeeded, failed, waiting)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (minute, queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued,
    succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,
    waiting = excluded.waiting";
/// Throughput per minute from ?1, all queues summed. Primary key range.
pub(crate) const THROUGHPUT: &str = "
SELECT minute, sum(enqueued), sum(succeeded), sum(failed), sum(waiting)
FROM longshore_throughput WHERE minute >= ?1 GROUP BY minute ORDER BY minute";
/// Minutes that started before ?1.
pub(crate) const PURGE_THROUGHPUT: &str = "DELETE FROM longshore_throughput WHERE minute < ?1";
