//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

use longshore_core::TaskState;

/// The columns of a task, in the names `row::task` reads.
macro_rules! task_columns {
    () => {
        "id, queue, actor, args, priority, state, run_at, attempt, max_attempts, \
         time_limit_ms, lease_owner, lease_expires_at, unique_key, related_kind, related_id, \
         worst_level, last_error, cancel_requested, created_at, started_at, finished_at, \
         modified_at, schedule_name"
    };
}

/// Bulk insert of the JSON array `?1` at time `?2`. A task whose unique key
/// is held by an active task is skipped (`longshore_tasks_unique_key`).
/// (`WHERE true` tells the parser that `ON CONFLICT` is not a join's `ON`.)
pub(crate) const ENQUEUE: &str = "
INSERT INTO longshore_tasks
    (id, queue, actor, args, priority, state, run_at, max_attempts, time_limit_ms,
     unique_key, related_kind, related_id, schedule_name, created_at, modified_at)
SELECT t.value ->> 'id', t.value ->> 'queue', t.value ->> 'actor', t.value -> 'args',
       t.value ->> 'priority',
       CASE WHEN t.value ->> 'run_at' > ?2 THEN 'scheduled' ELSE 'queued' END,
       COALESCE(t.value ->> 'run_at', ?2), t.value ->> 'max_attempts',
       t.value ->> 'time_limit_ms', t.value ->> 'unique_key', t.value ->> 'related_kind',
       t.value ->> 'related_id', t.value ->> 'schedule_name', ?2, ?2
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
/// lease ending at `?4`, from `queues` queues bound as `?5`, `?6`, …, when
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
/// gives nothing, and nothing is claimed at all once the cluster has a cap
/// (primary-key probes, evaluated once each). The worker then simply claims
/// again.
pub(crate) fn claim(queues: usize) -> String {
    let per_queue: Vec<String> = (0..queues)
        .map(|i| {
            let q = i + 5;
            format!(
                "SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'queued' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                   WHERE name = ?{q} AND (paused OR max_running IS NOT NULL))
                 ORDER BY priority, run_at, id LIMIT ?2)
    UNION ALL
    SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'scheduled' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues
                                   WHERE name = ?{q} AND (paused OR max_running IS NOT NULL))
                 ORDER BY run_at LIMIT ?2)"
            )
        })
        .collect();
    format!(
        "WITH picked AS (
    SELECT id FROM ({})
    WHERE NOT EXISTS (SELECT 1 FROM longshore_settings WHERE name = 'max_running')
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
/// queue `i` bound as `?(5 + 2i)` with the most it may give as
/// `?(6 + 2i)`. The caller computes both limits from [`CLAIM_CAPS`] in the
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
            let q = 2 * i + 5;
            let l = q + 1;
            format!(
                "SELECT * FROM (
        SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                     WHERE queue = ?{q} AND state = 'queued' AND run_at <= ?1
                       AND NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?{q} AND paused)
                     ORDER BY priority, run_at, id LIMIT ?{l})
        UNION ALL
        SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                     WHERE queue = ?{q} AND state = 'scheduled' AND run_at <= ?1
                       AND NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?{q} AND paused)
                     ORDER BY run_at LIMIT ?{l})
        ORDER BY priority, run_at, id LIMIT ?{l})"
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

/// Whether a claim from the queues in the JSON array `?1` is capped: the
/// cluster or one of them has a running-task cap (primary-key probe of
/// `longshore_settings`; `longshore_queues` is a handful of rows).
pub(crate) const CLAIM_CAPPED: &str = "
SELECT EXISTS (SELECT 1 FROM longshore_settings WHERE name = 'max_running')
    OR EXISTS (SELECT 1 FROM longshore_queues
               WHERE max_running IS NOT NULL AND name IN (SELECT value FROM json_each(?1)))";

/// The running-task caps a claim from the queues in the JSON array `?1`
/// must respect, each with the tasks running under it now: one row per
/// open queue with a cap of its own (`queue` its name), and one for the
/// cluster's cap (`queue` NULL). Tasks are counted only where there is a
/// cap, through the running tasks' index (`longshore_tasks_lease`): no
/// row, no count.
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
WHERE s.name = 'max_running'";

/// Of the executions in the JSON array `?2` (completions, as [`COMPLETE`]
/// reads them), those the completion will finish, by queue: still running
/// under owner `?1` at the same attempt (primary key).
pub(crate) const FINISHING: &str = "
SELECT t.queue AS queue, count(*) AS finishing
FROM json_each(?2) AS c
JOIN longshore_tasks AS t ON t.id = c.value ->> 'id'
WHERE t.state = 'running' AND t.lease_owner = ?1 AND t.attempt = c.value ->> 'attempt'
GROUP BY t.queue";

/// Log lines from the JSON array `?1`, for tasks that still exist (an
/// operator may have deleted one).
pub(crate) const INSERT_LOGS: &str = "
INSERT INTO longshore_task_logs (task_id, attempt, at, level, message)
SELECT l.value ->> 'task_id', l.value ->> 'attempt', l.value ->> 'at', l.value ->> 'level',
       l.value ->> 'message'
FROM json_each(?1) AS l
WHERE EXISTS (SELECT 1 FROM longshore_tasks WHERE id = l.value ->> 'task_id')";

/// Heartbeat at time `?1`: renew until `?2` the leases of the executions
/// in the JSON array `?4` that `?3` still holds, fenced on
/// (id, attempt, owner, running); report cancellation requests.
pub(crate) const HEARTBEAT: &str = "
UPDATE longshore_tasks AS t
SET lease_expires_at = ?2
FROM (SELECT value ->> 'id' AS id, value ->> 'attempt' AS attempt FROM json_each(?4)) AS h
WHERE t.id = h.id AND t.attempt = h.attempt AND t.state = 'running' AND t.lease_owner = ?3
RETURNING id, cancel_requested";

/// Completion at time `?1` of the executions in the JSON array `?3`, each
/// fenced on (running, owner `?2`, attempt). A task an operator asked to
/// cancel is not retried, whatever the worker reported.
pub(crate) const COMPLETE: &str = "
UPDATE longshore_tasks AS t
SET state = CASE WHEN t.cancel_requested AND c.next IN ('scheduled', 'queued')
                 THEN 'cancelled' ELSE c.next END,
    run_at = CASE WHEN c.delay_us IS NULL THEN t.run_at ELSE ?1 + c.delay_us END,
    max_attempts = t.max_attempts + c.extend_attempts,
    last_error = COALESCE(c.error, t.last_error),
    worst_level = c.worst_level,
    lease_owner = NULL,
    lease_expires_at = NULL,
    finished_at = CASE WHEN c.next IN ('succeeded', 'failed', 'cancelled')
                         OR t.cancel_requested THEN ?1 END,
    modified_at = ?1
FROM (SELECT value ->> 'id' AS id, value ->> 'attempt' AS attempt, value ->> 'next' AS next,
             value ->> 'delay_us' AS delay_us, value ->> 'error' AS error,
             value ->> 'worst_level' AS worst_level,
             value ->> 'extend_attempts' AS extend_attempts
      FROM json_each(?3)) AS c
WHERE t.id = c.id AND t.state = 'running' AND t.lease_owner = ?2 AND t.attempt = c.attempt
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
RETURNING id, attempt, last_error, queue, state";

/// Release at time `?3` of claims `?1` never received (see
/// `Store::release_untracked`): every task it runs whose id is not in the
/// JSON array `?2`, back to the queue with one more allowed attempt.
/// A task an operator asked to cancel meanwhile is cancelled instead.
pub(crate) const RELEASE_UNTRACKED: &str = "
UPDATE longshore_tasks
SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
    max_attempts = max_attempts + 1, run_at = ?3,
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
SELECT task_id, attempt, at, level, message FROM longshore_task_logs
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

/// Retry at time `?2` of a finished task: due now, with a fresh set of
/// attempts after the ones already used (execution numbers stay unique).
pub(crate) const RETRY: &str = concat!(
    "UPDATE longshore_tasks
SET state = 'queued', run_at = ?2, max_attempts = attempt + max_attempts,
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

/// Pauses (`?2` = 1) or resumes a queue at time `?3`.
pub(crate) const SET_QUEUE_PAUSED: &str = "
INSERT INTO longshore_queues (name, paused, modified_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, modified_at = excluded.modified_at";

/// Caps queue `?1`'s running tasks at `?2` (NULL: no cap) at time `?3`,
/// keeping its pause.
pub(crate) const SET_QUEUE_LIMIT: &str = "
INSERT INTO longshore_queues (name, paused, max_running, modified_at) VALUES (?1, 0, ?2, ?3)
ON CONFLICT (name) DO UPDATE
SET max_running = excluded.max_running, modified_at = excluded.modified_at";

/// Every queue's settings.
pub(crate) const QUEUE_SETTINGS: &str =
    "SELECT name, paused, max_running FROM longshore_queues ORDER BY name";

/// The cluster's running-task cap (its JSON value), if it has one.
pub(crate) const MAX_RUNNING: &str =
    "SELECT value FROM longshore_settings WHERE name = 'max_running'";

/// Caps the cluster's running tasks at `?1` (a JSON number) at time `?2`.
pub(crate) const SET_MAX_RUNNING: &str = "
INSERT INTO longshore_settings (name, value, modified_at) VALUES ('max_running', ?1, ?2)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, modified_at = excluded.modified_at";

/// Lifts the cluster's running-task cap.
pub(crate) const DELETE_MAX_RUNNING: &str =
    "DELETE FROM longshore_settings WHERE name = 'max_running'";

/// A worker node says it is alive at time `?7` (`?4` its queues as JSON).
pub(crate) const WORKER_SEEN: &str = "
INSERT INTO longshore_workers
    (id, host, version, queues, concurrency, running, started_at, last_seen_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, version = excluded.version, queues = excluded.queues,
    concurrency = excluded.concurrency, running = excluded.running,
    last_seen_at = excluded.last_seen_at";

/// A worker node stopped.
pub(crate) const WORKER_STOPPED: &str = "DELETE FROM longshore_workers WHERE id = ?1";

/// The live worker nodes.
pub(crate) const WORKERS: &str = "
SELECT id, host, version, queues, concurrency, running, started_at, last_seen_at
FROM longshore_workers ORDER BY id";

/// Worker nodes last seen before time `?1` (`longshore_workers_seen`).
pub(crate) const FORGET_WORKERS: &str = "DELETE FROM longshore_workers WHERE last_seen_at < ?1";

/// Takes or renews role `?1` for `?2` at time `?3` until `?4`: the row
/// comes back only when `?2` holds the role afterwards.
pub(crate) const TRY_LEAD: &str = "
INSERT INTO longshore_leases (name, holder, acquired_at, expires_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN longshore_leases.holder = excluded.holder
                       THEN longshore_leases.acquired_at ELSE excluded.acquired_at END,
    expires_at = excluded.expires_at
WHERE longshore_leases.holder = excluded.holder OR longshore_leases.expires_at < ?3
RETURNING holder";

/// Gives up role `?1` if `?2` holds it.
pub(crate) const RESIGN: &str = "DELETE FROM longshore_leases WHERE name = ?1 AND holder = ?2";

/// The roles held at time `?1` under an unexpired lease.
pub(crate) const LEADERS: &str = "
SELECT name, holder, acquired_at, expires_at FROM longshore_leases
WHERE expires_at >= ?1 ORDER BY name";

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

/// What the statements of a bulk selection (`TaskSelection`) are built
/// from: its states, written into the statement, and which of its optional
/// filters it has. Each state gets a subquery of its own with the state's
/// partial index condition as literal text, which is how SQLite knows it
/// may use that index (a bound state would hide it); only the filters given
/// are written, so that a queue can bound an index range. The parameters
/// follow one another in the order actor, queue, cutoff (microseconds: the
/// caller's now minus the age), from the number the caller starts at.
pub(crate) struct Selection<'a> {
    pub(crate) states: &'a [TaskState],
    pub(crate) actor: bool,
    pub(crate) queue: bool,
    pub(crate) older_than: bool,
}

impl Selection<'_> {
    /// The conditions on one state's tasks, parameters numbered from
    /// `first`, and the order of the index that walks them:
    ///
    /// - `scheduled`: `longshore_tasks_due` (queue, run_at) with a queue,
    ///   `longshore_tasks_scheduled` (run_at) without;
    /// - `queued`: `longshore_tasks_queued` (queue, priority, run_at, id),
    ///   a range of it with a queue, all of it without;
    /// - `running` (counted only): `longshore_tasks_lease`;
    /// - finished states: `longshore_tasks_finished` (state, finished_at),
    ///   a range of it when an age is given.
    ///
    /// The actor (no index of its own) is checked on the rows each index
    /// yields. A finished task's age counts from `finished_at`, a waiting
    /// one's from `created_at`, a running one's from `started_at`.
    fn arm(&self, state: TaskState, first: usize) -> (String, &'static str) {
        let mut conditions = vec![format!("state = '{}'", state.as_str())];
        if state.is_terminal() {
            // Word for word the index's condition, for SQLite to use it.
            conditions.push("state IN ('succeeded', 'failed', 'cancelled')".to_owned());
        }
        let mut n = first;
        if self.actor {
            conditions.push(format!("actor = ?{n}"));
            n += 1;
        }
        if self.queue {
            conditions.push(format!("queue = ?{n}"));
            n += 1;
        }
        if self.older_than {
            let since = match state {
                TaskState::Scheduled | TaskState::Queued => "created_at",
                TaskState::Running => "started_at",
                _ => "finished_at",
            };
            conditions.push(format!("{since} < ?{n}"));
        }
        let order = match state {
            TaskState::Scheduled => "run_at",
            TaskState::Queued => "queue, priority, run_at, id",
            TaskState::Running => "lease_expires_at",
            _ => "finished_at",
        };
        (conditions.join(" AND "), order)
    }

    /// The selection's tasks counted by state, one row per state (zero
    /// included), each count through its state's index (see
    /// [`Selection::arm`]). Filters from `?1`.
    pub(crate) fn count(&self) -> String {
        self.states
            .iter()
            .map(|state| {
                let (conditions, _) = self.arm(*state, 1);
                format!(
                    "SELECT '{}' AS state, count(*) AS n FROM longshore_tasks WHERE {conditions}",
                    state.as_str()
                )
            })
            .collect::<Vec<_>>()
            .join("\nUNION ALL\n")
    }

    /// Deletes up to `?1` of the selection's tasks, state by state in the
    /// order given, each state's walked in its index's order (see
    /// [`Selection::arm`]); their logs go with them (`ON DELETE CASCADE`,
    /// `longshore_task_logs_task`). Filters from `?2`.
    pub(crate) fn delete(&self) -> String {
        let arms: Vec<String> = self
            .states
            .iter()
            .map(|state| {
                let (conditions, order) = self.arm(*state, 2);
                format!(
                    "SELECT id FROM (SELECT id FROM longshore_tasks WHERE {conditions}
                      ORDER BY {order} LIMIT ?1)"
                )
            })
            .collect();
        format!(
            "DELETE FROM longshore_tasks WHERE id IN (
    {}
    LIMIT ?1
)",
            arms.join("\n    UNION ALL\n    ")
        )
    }
}

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

/// The columns of a schedule, in the names `row::schedule` reads.
macro_rules! schedule_columns {
    () => {
        "name, actor, args, queue, priority, max_attempts, time_limit_ms, related_kind, \
         related_id, cron, time_zone, overlap, paused, builtin, next_run_at, last_run_at, \
         last_task_id, run_requested, skipped_runs, last_skipped_at, created_at, modified_at"
    };
}

/// One schedule (primary key).
pub(crate) const SCHEDULE: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules WHERE name = ?1"
);

/// Every schedule, by name (primary key).
pub(crate) const SCHEDULES: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules ORDER BY name"
);

/// A new schedule: its definition in `?1` (name) to `?12` (overlap), due at
/// `?13`, at time `?14`.
pub(crate) const INSERT_SCHEDULE: &str = concat!(
    "INSERT INTO longshore_schedules
    (name, actor, args, queue, priority, max_attempts, time_limit_ms, related_kind, related_id,
     cron, time_zone, overlap, next_run_at, created_at, modified_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)
RETURNING ",
    schedule_columns!()
);

/// A schedule's new definition, bound as for [`INSERT_SCHEDULE`]: due at
/// `?13` only when its timing (cron expression `?10`, time zone `?11`)
/// changed. Its pause and its runs' record stay.
pub(crate) const UPDATE_SCHEDULE: &str = concat!(
    "UPDATE longshore_schedules
SET actor = ?2, args = ?3, queue = ?4, priority = ?5, max_attempts = ?6, time_limit_ms = ?7,
    related_kind = ?8, related_id = ?9, cron = ?10, time_zone = ?11, overlap = ?12,
    next_run_at = CASE WHEN cron IS NOT ?10 OR time_zone IS NOT ?11 THEN ?13
                       ELSE next_run_at END,
    modified_at = ?14
WHERE name = ?1
RETURNING ",
    schedule_columns!()
);

/// Pauses (`?2` = 1) or resumes schedule `?1` at time `?3`; resuming a
/// paused schedule makes it due at once (resuming one that is not paused
/// changes nothing).
pub(crate) const SET_SCHEDULE_PAUSED: &str = concat!(
    "UPDATE longshore_schedules
SET paused = ?2, next_run_at = CASE WHEN ?2 OR NOT paused THEN next_run_at ELSE ?3 END,
    modified_at = ?3
WHERE name = ?1
RETURNING ",
    schedule_columns!()
);

/// Whether schedule `?1` is built in (no row: no such schedule).
pub(crate) const SCHEDULE_BUILTIN: &str = "SELECT builtin FROM longshore_schedules WHERE name = ?1";

/// Deletes schedule `?1`.
pub(crate) const DELETE_SCHEDULE: &str = "DELETE FROM longshore_schedules WHERE name = ?1";

/// Up to `?2` schedules, not built in, with a run to fire at time `?1`: due
/// and not paused, or run by hand. Soonest due first, those never due last.
/// (A scan: there are few schedules.)
pub(crate) const DUE_SCHEDULES: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules
WHERE NOT builtin AND ((NOT paused AND next_run_at <= ?1) OR run_requested)
ORDER BY next_run_at NULLS LAST, name
LIMIT ?2"
);

/// Records a run of schedule `?1` at time `?2`: `?3` its task (NULL for a
/// built-in job its caller ran itself), `?4` whether it was the cron run
/// (which moves the next run to `?5`). A pending run by hand is served.
pub(crate) const SCHEDULE_RAN: &str = "
UPDATE longshore_schedules
SET last_run_at = ?2, last_task_id = COALESCE(?3, last_task_id), run_requested = 0,
    next_run_at = CASE WHEN ?4 THEN ?5 ELSE next_run_at END, modified_at = ?2
WHERE name = ?1";

/// Records a run of schedule `?1` dropped by the `skip` policy at time
/// `?2`: `?3` whether it was the cron run (which moves the next run to
/// `?4`), `?5` whether it was a pending run by hand (whose request is
/// dropped).
pub(crate) const SCHEDULE_SKIPPED: &str = "
UPDATE longshore_schedules
SET skipped_runs = skipped_runs + 1, last_skipped_at = ?2,
    next_run_at = CASE WHEN ?3 THEN ?4 ELSE next_run_at END,
    run_requested = run_requested AND NOT ?5,
    modified_at = ?2
WHERE name = ?1";

/// A run by hand of schedule `?1`, asked for at time `?2`, that must wait
/// (for the previous run, or for the leader that runs a built-in job).
pub(crate) const SCHEDULE_REQUEST_RUN: &str =
    "UPDATE longshore_schedules SET run_requested = 1, modified_at = ?2 WHERE name = ?1";

/// The columns of a token, as `row::token` reads them (never its hash).
macro_rules! token_columns {
    () => {
        "id, name, scope, created_at, last_used_at, revoked_at"
    };
}

/// Stores token `?2` (id `?1`, scope `?3`, secret hash `?4`) at time `?5`;
/// no row when the name is taken.
pub(crate) const CREATE_TOKEN: &str = concat!(
    "INSERT INTO longshore_tokens (id, name, scope, secret_hash, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (name) DO NOTHING
RETURNING ",
    token_columns!()
);

/// Every token, by name.
pub(crate) const TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM longshore_tokens ORDER BY name"
);

/// Revokes token `?1` at time `?2`, keeping the first revocation's time;
/// no row when no token has the name.
pub(crate) const REVOKE_TOKEN: &str = concat!(
    "UPDATE longshore_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1
RETURNING ",
    token_columns!()
);

/// The token that is not revoked whose secret hashes to `?1` (the unique
/// index on `secret_hash`).
pub(crate) const TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM longshore_tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"
);

/// Records a use of token `?1` at time `?2` unless one was recorded after
/// `?3`.
pub(crate) const TOUCH_TOKEN: &str = "
UPDATE longshore_tokens SET last_used_at = ?2
WHERE id = ?1 AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at < ?3)";
