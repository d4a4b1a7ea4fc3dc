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
