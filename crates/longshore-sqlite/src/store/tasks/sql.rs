//! The statements of [`super`], with the indexes each relies on.

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

/// The columns of a task, in the names `row::task` reads.
macro_rules! task_columns {
    () => {
        "id, queue, actor, args, priority, state, run_at, attempt, max_attempts, \
         attempt + uncounted_executions AS execution, time_limit_ms, lease_owner, lease_expires_at, unique_key, related_kind, related_id, \
         worst_level, last_error, cancel_requested, created_at, started_at, finished_at, \
         modified_at, schedule_name, requires"
    };
}

/// Bulk insert of the JSON array `?1` at time `?2`. A task whose unique key
/// is held by an active task is skipped (`longshore_tasks_unique_key`).
/// (`WHERE true` tells the parser that `ON CONFLICT` is not a join's `ON`.)
pub(crate) const ENQUEUE: &str = "
INSERT INTO longshore_tasks
    (id, queue, actor, args, priority, state, run_at, max_attempts, time_limit_ms,
     unique_key, related_kind, related_id, schedule_name, requires, created_at, modified_at)
SELECT t.value ->> 'id', t.value ->> 'queue', t.value ->> 'actor', t.value -> 'args',
       t.value ->> 'priority',
       CASE WHEN t.value ->> 'run_at' > ?2 THEN 'scheduled' ELSE 'queued' END,
       COALESCE(t.value ->> 'run_at', ?2), t.value ->> 'max_attempts',
       t.value ->> 'time_limit_ms', t.value ->> 'unique_key', t.value ->> 'related_kind',
       t.value ->> 'related_id', t.value ->> 'schedule_name', t.value -> 'requires', ?2, ?2
FROM json_each(?1) AS t
WHERE true
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running')
    DO NOTHING
RETURNING id, queue, state";

/// The active holders of the unique keys in the JSON array `?1`.
pub(crate) const UNIQUE_HOLDERS: &str = "
SELECT unique_key, id FROM longshore_tasks
WHERE unique_key IN (SELECT value FROM json_each(?1))
  AND state IN ('scheduled', 'queued', 'running')";

/// The claim of up to `?2` due tasks at time `?1` for owner `?3` under a
/// lease ending at `?4`, for the agent pool `?5` with labels `?6` (NULL:
/// an inline worker), from `queues` queues bound as `?7`, `?8`, …, when
/// none of them has a running-task cap and the cluster has none either
/// (see [`CLAIM_CAPS`]; [`claim_capped`] otherwise).
///
/// Per queue that is not paused (`longshore_queues`), two index walks that
/// stop after `?2`: queued tasks in
/// (priority, run_at, id) order (`longshore_tasks_queued`) and scheduled
/// tasks that have become due, earliest first (`longshore_tasks_due`), so
/// that tasks not yet due are never walked; the most urgent of all those
/// are marked running. (An `IN` list of queues would make SQLite sort every
/// due task of those queues.) SQLite has one writer at a time, so the
/// statement needs no row locks.
///
/// The caller may have found "no caps" outside the write transaction, so
/// the statement checks again, for nothing: a queue that has a cap by now
/// gives nothing, and nothing is claimed at all once the cluster or the
/// claiming pool has a cap (primary-key probes, evaluated once each). The worker then simply claims
/// again.
pub(crate) fn claim(queues: usize) -> String {
    let per_queue: Vec<String> = (0..queues)
        .map(|i| {
            let q = i + 7;
            format!(
                "SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'queued' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                   WHERE name = ?{q}
                                     AND (paused OR max_running IS NOT NULL OR pool IS NOT ?5))
                   AND {owned}
                 ORDER BY priority, run_at, id LIMIT ?2)
    UNION ALL
    SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'scheduled' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                   WHERE name = ?{q}
                                     AND (paused OR max_running IS NOT NULL OR pool IS NOT ?5))
                   AND {owned}
                 ORDER BY run_at LIMIT ?2)",
                owned = pool_owns(q)
            )
        })
        .collect();
    format!(
        "WITH picked AS (
    SELECT id FROM ({})
    WHERE NOT EXISTS (SELECT 1 FROM longshore_settings WHERE name = 'max_running')
      AND NOT EXISTS (SELECT 1 FROM longshore_pools WHERE name = ?5 AND max_running IS NOT NULL)
    ORDER BY priority, run_at, id
    LIMIT ?2
)
{}",
        per_queue.join("\n    UNION ALL\n    "),
        claim_update()
    )
}

/// The claim under running-task caps: up to `?2` due tasks in all at time
/// `?1` for owner `?3` under a lease ending at `?4`, from `queues` queues,
/// queue `i` bound as `?(7 + 2i)` with the most it may give as
/// `?(8 + 2i)`, for the agent pool `?5` with labels `?6` (NULL: an inline
/// worker). The caller computes both limits from [`CLAIM_CAPS`] in the
/// same write transaction.
///
/// The same index walks as [`claim`] (`longshore_tasks_queued`,
/// `longshore_tasks_due`), each stopping after the queue's limit; the
/// queue's most urgent tasks among both (at most twice its limit, sorted)
/// then give at most its limit, and the most urgent of all those at most
/// `?2`.
pub(crate) fn claim_capped(queues: usize) -> String {
    let per_queue: Vec<String> = (0..queues)
        .map(|i| {
            let q = 2 * i + 7;
            let l = q + 1;
            format!(
                "SELECT * FROM (
        SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                     WHERE queue = ?{q} AND state = 'queued' AND run_at <= ?1
                       AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                       WHERE name = ?{q} AND (paused OR pool IS NOT ?5))
                       AND {owned}
                     ORDER BY priority, run_at, id LIMIT ?{l})
        UNION ALL
        SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                     WHERE queue = ?{q} AND state = 'scheduled' AND run_at <= ?1
                       AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                       WHERE name = ?{q} AND (paused OR pool IS NOT ?5))
                       AND {owned}
                     ORDER BY run_at LIMIT ?{l})
        ORDER BY priority, run_at, id LIMIT ?{l})",
                owned = pool_owns(q)
            )
        })
        .collect();
    format!(
        "WITH picked AS (
    SELECT id FROM ({})
    ORDER BY priority, run_at, id
    LIMIT ?2
)
{}",
        per_queue.join("\n    UNION ALL\n    "),
        claim_update()
    )
}

/// For a pool's claim (`?5` not NULL), the queue bound as `?{q}` must be
/// handed to that pool: a queue without a settings row belongs to inline
/// workers. An inline claim skips the probe.
///
/// For a pool's claim, a task is taken only if the agent's labels (the
/// JSON array `?6`) hold every label it requires.
fn pool_owns(q: usize) -> String {
    format!(
        "(?5 IS NULL OR (EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?{q} AND pool = ?5)
                        AND (requires IS NULL OR NOT EXISTS (
                            SELECT 1 FROM json_each(requires) AS r
                            WHERE r.value NOT IN (SELECT value FROM json_each(?6))))))"
    )
}

/// What both claims do to the tasks they picked.
fn claim_update() -> String {
    format!(
        "UPDATE longshore_tasks
SET state = 'running', attempt = attempt + 1, lease_owner = ?3, lease_expires_at = ?4,
    started_at = ?1, modified_at = ?1, worst_level = NULL
WHERE id IN (SELECT id FROM picked)
RETURNING {}",
        task_columns!()
    )
}

/// The labels (a JSON array, NULL for none) required by up to `?3` due
/// tasks at time `?2` of queue `?1` unless it is paused, through the
/// claim's indexes (`longshore_tasks_queued`, `longshore_tasks_due`).
pub(crate) const DUE_REQUIREMENTS: &str = "
SELECT requires FROM (SELECT requires FROM longshore_tasks
                      WHERE queue = ?1 AND state = 'queued' AND run_at <= ?2
                      ORDER BY priority, run_at, id LIMIT ?3)
WHERE NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?1 AND paused)
UNION ALL
SELECT requires FROM (SELECT requires FROM longshore_tasks
                      WHERE queue = ?1 AND state = 'scheduled' AND run_at <= ?2
                      ORDER BY run_at LIMIT ?3)
WHERE NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?1 AND paused)";

/// Whether a claim from the queues in the JSON array `?1` for pool `?2`
/// (NULL: inline) is capped: the cluster, one of the queues or the pool has
/// a running-task cap (primary-key probes of `longshore_settings` and
/// `longshore_pools`; `longshore_queues` is a handful of rows).
pub(crate) const CLAIM_CAPPED: &str = "
SELECT EXISTS (SELECT 1 FROM longshore_settings WHERE name = 'max_running')
    OR EXISTS (SELECT 1 FROM longshore_queues
               WHERE max_running IS NOT NULL AND name IN (SELECT value FROM json_each(?1)))
    OR EXISTS (SELECT 1 FROM longshore_pools WHERE name = ?2 AND max_running IS NOT NULL)";

/// The running-task caps a claim from the queues in the JSON array `?1`
/// for pool `?2` (NULL: inline) must respect, each with the tasks running
/// under it now: one row per open queue with a cap of its own (`queue` its
/// name), one for the cluster's cap and one for the pool's (over the
/// claim's queues, which are the pool's), both bounding the whole claim
/// (`queue` NULL). Tasks are counted only where there is a cap, through
/// the running tasks' index (`longshore_tasks_lease`): no row, no count.
pub(crate) const CLAIM_CAPS: &str = "
SELECT q.name AS queue, q.max_running AS max_running,
       (SELECT count(*) FROM longshore_tasks AS t
        WHERE t.queue = q.name AND t.state = 'running') AS running
FROM longshore_queues AS q
WHERE q.max_running IS NOT NULL AND NOT q.paused
  AND q.name IN (SELECT value FROM json_each(?1))
UNION ALL
SELECT NULL, s.value ->> '$',
       (SELECT count(*) FROM longshore_tasks WHERE state = 'running')
FROM longshore_settings AS s
WHERE s.name = 'max_running'
UNION ALL
SELECT NULL, p.max_running,
       (SELECT count(*) FROM longshore_tasks
        WHERE state = 'running' AND queue IN (SELECT name FROM longshore_queues WHERE pool = ?2))
FROM longshore_pools AS p
WHERE p.name = ?2 AND p.max_running IS NOT NULL";

/// Of the executions in the JSON array `?2` (completions, as [`COMPLETE`]
/// reads them), those the completion will finish, by queue: still running
/// under owner `?1` at the same execution (primary key).
pub(crate) const FINISHING: &str = "
SELECT t.queue AS queue, count(*) AS finishing
FROM json_each(?2) AS c
JOIN longshore_tasks AS t ON t.id = c.value ->> 'id'
WHERE t.state = 'running' AND t.lease_owner = ?1
  AND t.attempt + t.uncounted_executions = c.value ->> 'execution'
GROUP BY t.queue";

/// Log lines from the JSON array `?1`, for tasks that still exist (an
/// operator may have deleted one).
pub(crate) const INSERT_LOGS: &str = "
INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
SELECT l.value ->> 'task_id', l.value ->> 'execution', l.value ->> 'at', l.value ->> 'level',
       l.value ->> 'message'
FROM json_each(?1) AS l
WHERE EXISTS (SELECT 1 FROM longshore_tasks WHERE id = l.value ->> 'task_id')";

/// Heartbeat at time `?1`: renew until `?2` the leases of the executions
/// in the JSON array `?4` that `?3` still holds, fenced on
/// (id, execution, owner, running); report cancellation requests.
pub(crate) const HEARTBEAT: &str = "
UPDATE longshore_tasks AS t
SET lease_expires_at = ?2
FROM (SELECT value ->> 'id' AS id, value ->> 'execution' AS execution FROM json_each(?4)) AS h
WHERE t.id = h.id AND t.attempt + t.uncounted_executions = h.execution
  AND t.state = 'running' AND t.lease_owner = ?3
RETURNING id, cancel_requested";

/// Completion at time `?1` of the executions in the JSON array `?3`, each
/// fenced on (running, owner `?2`, execution). A released task's execution
/// does not count as an attempt. A task an operator asked to cancel is not
/// retried, whatever the worker reported.
pub(crate) const COMPLETE: &str = "
UPDATE longshore_tasks AS t
SET state = CASE WHEN t.cancel_requested AND c.next IN ('scheduled', 'queued')
                 THEN 'cancelled' ELSE c.next END,
    run_at = CASE WHEN c.delay_us IS NULL THEN t.run_at ELSE ?1 + c.delay_us END,
    attempt = t.attempt - c.refund_attempt,
    uncounted_executions = t.uncounted_executions + c.refund_attempt,
    last_error = COALESCE(c.error, t.last_error),
    worst_level = c.worst_level,
    lease_owner = NULL,
    lease_expires_at = NULL,
    finished_at = CASE WHEN c.next IN ('succeeded', 'failed', 'cancelled')
                         OR t.cancel_requested THEN ?1 END,
    modified_at = ?1
FROM (SELECT value ->> 'id' AS id, value ->> 'execution' AS execution, value ->> 'next' AS next,
             value ->> 'delay_us' AS delay_us, value ->> 'error' AS error,
             value ->> 'worst_level' AS worst_level,
             value ->> 'refund_attempt' AS refund_attempt
      FROM json_each(?3)) AS c
WHERE t.id = c.id AND t.state = 'running' AND t.lease_owner = ?2
  AND t.attempt + t.uncounted_executions = c.execution
RETURNING id, queue, state";

/// Rescue at time `?1` of up to `?2` running tasks whose lease expired
/// (`longshore_tasks_lease`): back to the queue, or failed when their
/// attempts are spent. The caller writes the log line each one gets.
pub(crate) const RESCUE: &str = "
UPDATE longshore_tasks
SET state = CASE WHEN cancel_requested THEN 'cancelled'
                 WHEN attempt < max_attempts THEN 'queued'
                 ELSE 'failed' END,
    last_error = 'the lease of worker ' || COALESCE(lease_owner, '(unknown)')
                 || ' expired: the worker stopped or lost the database',
    worst_level = 2,
    lease_owner = NULL,
    lease_expires_at = NULL,
    run_at = ?1,
    finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN ?1 END,
    modified_at = ?1
WHERE id IN (SELECT id FROM longshore_tasks
             WHERE state = 'running' AND lease_expires_at < ?1
             ORDER BY lease_expires_at
             LIMIT ?2)
RETURNING id, attempt + uncounted_executions AS execution, last_error, queue, state";

/// Release at time `?3` of claims `?1` never received (see
/// `Store::release_untracked`): every task it runs whose id is not in the
/// JSON array `?2`, back to the queue, the execution not counted as an
/// attempt.
/// A task an operator asked to cancel meanwhile is cancelled instead.
pub(crate) const RELEASE_UNTRACKED: &str = "
UPDATE longshore_tasks
SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
    attempt = attempt - 1, uncounted_executions = uncounted_executions + 1, run_at = ?3,
    finished_at = CASE WHEN cancel_requested THEN ?3 END,
    lease_owner = NULL, lease_expires_at = NULL, modified_at = ?3
WHERE lease_owner = ?1 AND state = 'running'
  AND id NOT IN (SELECT value FROM json_each(?2))
RETURNING id, queue, state";

/// Promotion at time `?1` of up to `?2` delayed tasks that became due
/// (`longshore_tasks_scheduled`).
pub(crate) const PROMOTE: &str = "
UPDATE longshore_tasks SET state = 'queued', modified_at = ?1
WHERE id IN (SELECT id FROM longshore_tasks
             WHERE state = 'scheduled' AND run_at <= ?1
             ORDER BY run_at
             LIMIT ?2)
RETURNING queue";

/// One task.
pub(crate) const TASK: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks WHERE id = ?1"
);

/// What an operator's change needs to know of a task (not its arguments).
pub(crate) const TASK_STATE: &str =
    "SELECT state, queue, unique_key FROM longshore_tasks WHERE id = ?1";

/// A task's log, every execution, oldest first.
pub(crate) const LOGS: &str = "
SELECT task_id, execution, at, level, message FROM longshore_task_logs
WHERE task_id = ?1 ORDER BY id";

/// The status people see ([`Status::derive`](longshore_core::Status::derive))
/// of a task, by its name, at `?16`.
macro_rules! task_status {
    () => {
        "CASE WHEN state = 'scheduled' AND run_at > ?16 THEN 'scheduled'
      WHEN state IN ('scheduled', 'queued') THEN 'waiting_to_run'
      WHEN state = 'running' THEN 'running'
      WHEN state = 'succeeded' AND coalesce(worst_level, 0) = 0 THEN 'successful'
      WHEN state = 'succeeded' AND worst_level = 1 THEN 'warning'
      WHEN state IN ('succeeded', 'failed') THEN 'error'
      ELSE 'cancelled' END"
    };
}

/// The filters of a task list, each applied only when given (not NULL,
/// not an empty array, true); every list statement takes the same
/// parameters: states in the JSON array `?1` (empty: all), actor `?2`,
/// queue `?3`, ids before `?4`, limit `?5`, statuses in the JSON array
/// `?6` (empty: all), leave out successful tasks `?7`, standalone only
/// `?8`, created at or after `?9` and before `?10`, finished at or after
/// `?11` and before `?12` (microseconds), related kind `?13` and id `?14`,
/// schedule `?15`, now `?16`.
///
/// SQLite cannot use an index for an `?n IS NULL OR …` condition either:
/// filters that have an index get a statement of their own (below).
macro_rules! list_filters {
    () => {
        concat!(
            "(json_array_length(?1) = 0 OR state IN (SELECT value FROM json_each(?1)))
  AND (json_array_length(?6) = 0 OR (",
            task_status!(),
            ") IN (SELECT value FROM json_each(?6)))
  AND (?2 IS NULL OR actor = ?2)
  AND (?3 IS NULL OR queue = ?3)
  AND (?4 IS NULL OR id < ?4)
  AND (NOT ?7 OR state <> 'succeeded' OR coalesce(worst_level, 0) <> 0)
  AND (NOT ?8 OR related_kind IS NULL)
  AND (?9 IS NULL OR created_at >= ?9)
  AND (?10 IS NULL OR created_at < ?10)
  AND (?11 IS NULL OR finished_at >= ?11)
  AND (?12 IS NULL OR finished_at < ?12)
  AND (?13 IS NULL OR related_kind = ?13)
  AND (?14 IS NULL OR related_id = ?14)
  AND (?15 IS NULL OR schedule_name = ?15)"
        )
    };
}

/// A page of tasks newest first from `$from`, where `$condition` (ending
/// in `AND `, or empty) and the optional filters ([`list_filters!`]) hold,
/// keyset-paginated on id.
macro_rules! list_page {
    ($from:literal, $condition:literal) => {
        concat!(
            "SELECT ",
            task_columns!(),
            " FROM ",
            $from,
            "\nWHERE ",
            $condition,
            list_filters!(),
            "\nORDER BY id DESC\nLIMIT ?5"
        )
    };
}

/// Up to `?5` tasks newest first with optional filters (`list_filters!`),
/// keyset-paginated on id: the primary key, walked backwards from `?4`
/// until a page of matches is found.
pub(crate) const LIST: &str = list_page!("longshore_tasks", "");

/// [`LIST`] of the tasks in one finished state `?17`, newest first:
/// `longshore_tasks_finished_id` (state, id), backwards (its WHERE clause
/// repeated word for word), so that failed tasks behind a million newer
/// queued ones are not found by walking past all of those.
pub(crate) const LIST_FINISHED_IN_STATE: &str = list_page!(
    "longshore_tasks",
    "state = ?17 AND state IN ('succeeded', 'failed', 'cancelled') AND "
);

/// [`LIST`] of the running tasks: `longshore_tasks_lease`, whose entries
/// are exactly the running tasks (at most the cluster's slots), sorted.
pub(crate) const LIST_RUNNING: &str = list_page!(
    "longshore_tasks INDEXED BY longshore_tasks_lease",
    "state = 'running' AND "
);

/// [`LIST`] of the scheduled tasks: `longshore_tasks_scheduled`, sorted
/// (the cost follows the number of scheduled tasks).
pub(crate) const LIST_SCHEDULED: &str = list_page!(
    "longshore_tasks INDEXED BY longshore_tasks_scheduled",
    "state = 'scheduled' AND "
);

/// [`LIST`] of the tasks schedule `?15` created, newest first
/// (`longshore_tasks_schedule`, backwards).
pub(crate) const LIST_BY_SCHEDULE: &str = list_page!("longshore_tasks", "schedule_name = ?15 AND ");

/// [`LIST`] of the tasks of one related object, kind `?13` and id `?14`
/// (`longshore_tasks_related`, both columns; its few tasks sorted by id).
pub(crate) const LIST_BY_RELATED_OBJECT: &str = list_page!(
    "longshore_tasks",
    "related_kind = ?13 AND related_id = ?14 AND "
);

/// [`LIST`] of the tasks of every object of kind `?13`
/// (`longshore_tasks_related` on its first column, or the primary key
/// backwards, as SQLite's planner judges).
pub(crate) const LIST_BY_RELATED_KIND: &str =
    list_page!("longshore_tasks", "related_kind = ?13 AND ");

/// Retry at time `?2` of a finished task: due now, its attempts counted
/// from zero again (the ones used become uncounted executions, so
/// execution numbers stay unique).
pub(crate) const RETRY: &str = concat!(
    "UPDATE longshore_tasks
SET state = 'queued', run_at = ?2, attempt = 0,
    uncounted_executions = uncounted_executions + attempt,
    worst_level = NULL, cancel_requested = 0, finished_at = NULL, modified_at = ?2
WHERE id = ?1
RETURNING ",
    task_columns!()
);

/// Cancel at time `?2` of a task that has not started.
pub(crate) const CANCEL_WAITING: &str = "
UPDATE longshore_tasks SET state = 'cancelled', finished_at = ?2, modified_at = ?2
WHERE id = ?1";

/// Cancel at time `?2` of a running task: its worker learns of it from its
/// next heartbeat (or at once when it runs in this process).
pub(crate) const CANCEL_RUNNING: &str = "
UPDATE longshore_tasks SET cancel_requested = 1, modified_at = ?2 WHERE id = ?1";

/// Deletes up to `?3` tasks in state `?1` finished before time `?2`,
/// oldest first (`longshore_tasks_finished`); their logs go with them.
pub(crate) const PURGE_FINISHED: &str = "
DELETE FROM longshore_tasks WHERE id IN (
    SELECT id FROM longshore_tasks
    WHERE state = ?1 AND finished_at < ?2
      -- Word for word the index's condition, for SQLite to use it.
      AND state IN ('succeeded', 'failed', 'cancelled')
    ORDER BY finished_at
    LIMIT ?3
)";

/// Asks at time `?3` the workers of up to `?2` running tasks of queue `?1`
/// not asked yet to cancel them (running tasks through
/// `longshore_tasks_lease`); returns their ids. Workers learn of it from
/// their next heartbeat, or at once in this process.
pub(crate) const CANCEL_RUNNING_IN_QUEUE: &str = "
UPDATE longshore_tasks SET cancel_requested = 1, modified_at = ?3
WHERE id IN (SELECT id FROM longshore_tasks
             WHERE state = 'running' AND queue = ?1 AND NOT cancel_requested
             ORDER BY lease_expires_at
             LIMIT ?2)
RETURNING id";

/// Deletes the tasks of the ids in the JSON array ?1 that are not running
/// (their logs go with them). Primary key.
pub(crate) const DELETE_IDS: &str = "DELETE FROM longshore_tasks
WHERE id IN (SELECT value FROM json_each(?1)) AND state <> 'running'";
