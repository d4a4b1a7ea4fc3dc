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
         time_limit_ms, lease_owner, lease_expires_at, unique_key, related_kind, related_id, \
         worst_level, last_error, cancel_requested, created_at, started_at, finished_at, \
         modified_at"
    };
}

/// Bulk insert of the JSON array `?1` at time `?2`. A task whose unique key
/// is held by an active task is skipped (`longshore_tasks_unique_key`).
/// (`WHERE true` tells the parser that `ON CONFLICT` is not a join's `ON`.)
pub(crate) const ENQUEUE: &str = "
INSERT INTO longshore_tasks
    (id, queue, actor, args, priority, state, run_at, max_attempts, time_limit_ms,
     unique_key, related_kind, related_id, created_at, modified_at)
SELECT t.value ->> 'id', t.value ->> 'queue', t.value ->> 'actor', t.value -> 'args',
       t.value ->> 'priority',
       CASE WHEN t.value ->> 'run_at' > ?2 THEN 'scheduled' ELSE 'queued' END,
       COALESCE(t.value ->> 'run_at', ?2), t.value ->> 'max_attempts',
       t.value ->> 'time_limit_ms', t.value ->> 'unique_key', t.value ->> 'related_kind',
       t.value ->> 'related_id', ?2, ?2
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
/// lease ending at `?4`, from `queues` queues bound as `?5`, `?6`, ….
///
/// Per queue that is not paused (`longshore_queues`), two index walks that
/// stop after `?2`: queued tasks in
/// (priority, run_at, id) order (`longshore_tasks_queued`) and scheduled
/// tasks that have become due, earliest first (`longshore_tasks_due`), so
/// that tasks not yet due are never walked; the most urgent of all those
/// are marked running. (An `IN` list of queues would make SQLite sort every
/// due task of those queues.) SQLite has one writer at a time, so the
/// statement needs no row locks.
pub(crate) fn claim(queues: usize) -> String {
    let per_queue: Vec<String> = (0..queues)
        .map(|i| {
            let q = i + 5;
            format!(
                "SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'queued' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?{q} AND paused)
                 ORDER BY priority, run_at, id LIMIT ?2)
    UNION ALL
    SELECT * FROM (SELECT id, priority, run_at FROM longshore_tasks
                 WHERE queue = ?{q} AND state = 'scheduled' AND run_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM longshore_queues WHERE name = ?{q} AND paused)
                 ORDER BY run_at LIMIT ?2)"
            )
        })
        .collect();
    format!(
        "WITH picked AS (
    SELECT id FROM ({})
    ORDER BY priority, run_at, id
    LIMIT ?2
)
UPDATE longshore_tasks
SET state = 'running', attempt = attempt + 1, lease_owner = ?3, lease_expires_at = ?4,
    started_at = ?1, modified_at = ?1, worst_level = NULL
WHERE id IN (SELECT id FROM picked)
RETURNING {}",
        per_queue.join("\n    UNION ALL\n    "),
        task_columns!()
    )
}

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

/// Tasks newest first with optional filters (`?1` a JSON array of states),
/// keyset-paginated on id.
pub(crate) const LIST: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks
WHERE (json_array_length(?1) = 0 OR state IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR actor = ?2)
  AND (?3 IS NULL OR queue = ?3)
  AND (?4 IS NULL OR id < ?4)
ORDER BY id DESC
LIMIT ?5"
);

/// States in their life order, as PostgreSQL's enum sorts them.
macro_rules! state_order {
    () => {
        "CASE state WHEN 'scheduled' THEN 0 WHEN 'queued' THEN 1 WHEN 'running' THEN 2 \
         WHEN 'succeeded' THEN 3 WHEN 'failed' THEN 4 ELSE 5 END"
    };
}

/// Counts by state.
pub(crate) const STATS_BY_STATE: &str = concat!(
    "SELECT state, state, count(*) FROM longshore_tasks GROUP BY state ORDER BY ",
    state_order!()
);
/// Counts by actor and state.
pub(crate) const STATS_BY_ACTOR: &str = concat!(
    "SELECT actor, state, count(*) FROM longshore_tasks GROUP BY actor, state ORDER BY actor, ",
    state_order!()
);
/// Counts by queue and state.
pub(crate) const STATS_BY_QUEUE: &str = concat!(
    "SELECT queue, state, count(*) FROM longshore_tasks GROUP BY queue, state ORDER BY queue, ",
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

/// Every queue's settings.
pub(crate) const QUEUE_SETTINGS: &str = "SELECT name, paused FROM longshore_queues ORDER BY name";

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
