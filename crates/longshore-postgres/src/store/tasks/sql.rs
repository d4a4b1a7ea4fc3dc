//! The statements of [`super`], with the indexes each relies on.

//! Every statement the engine runs, reviewed like code. The indexes each
//! one relies on are named beside it; they are created in `migrations/`.

/// The columns of a task, in the order `row::task` reads them.
macro_rules! task_columns {
    () => {
        "t.id, t.queue, t.actor, t.args, t.priority, t.state::text AS state, t.run_at, \
         t.attempt, t.max_attempts, t.attempt + t.uncounted_executions AS execution, \
         t.time_limit_ms, t.lease_owner, t.lease_expires_at, \
         t.unique_key, t.related_kind, t.related_id, t.worst_level, t.last_error, \
         t.cancel_requested, t.created_at, t.started_at, t.finished_at, t.modified_at, \
         t.schedule_name, t.requires"
    };
}

/// Bulk insert from parallel arrays, one round trip for the whole batch
/// (`$13`: each task's required labels, comma-separated, or NULL).
/// A task whose unique key is held by an active task is skipped
/// (`longshore_tasks_unique_key`). Workers of each queue that got a due task
/// are notified once: PostgreSQL folds identical notifications of one
/// transaction into one and delivers them at commit, so a caller's
/// transaction wakes workers only if it commits.
pub(crate) const ENQUEUE: &str = "
WITH inserted AS (
    INSERT INTO longshore_tasks AS t
        (id, queue, actor, args, priority, state, run_at, max_attempts, time_limit_ms,
         unique_key, related_kind, related_id, schedule_name, requires)
    SELECT i.id, i.queue, i.actor, i.args, i.priority,
           CASE WHEN i.run_at > now() THEN 'scheduled' ELSE 'queued' END::longshore_task_state,
           COALESCE(i.run_at, now()), i.max_attempts, i.time_limit_ms,
           i.unique_key, i.related_kind, i.related_id, i.schedule_name,
           string_to_array(i.requires, ',')
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int2[], $6::timestamptz[],
                $7::int4[], $8::int8[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::text[])
         AS i(id, queue, actor, args, priority, run_at, max_attempts, time_limit_ms,
              unique_key, related_kind, related_id, schedule_name, requires)
    ON CONFLICT (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running')
        DO NOTHING
    RETURNING t.id, t.queue, t.state
)
SELECT i.id,
       (SELECT count(pg_notify('longshore_task_available', q.queue))
        FROM (SELECT DISTINCT queue FROM inserted WHERE state = 'queued') AS q) AS woken
FROM inserted AS i";

/// The active holders of unique keys, for reporting duplicates.
pub(crate) const UNIQUE_HOLDERS: &str = "
SELECT unique_key, id FROM longshore_tasks
WHERE unique_key = ANY($1) AND state IN ('scheduled', 'queued', 'running')";

/// The claim's body: per queue that is not paused (`longshore_queues`), lock up to `$limit` queued tasks (fewer
/// under the queue's running-task cap) in
/// urgency order (`longshore_tasks_queued`) and up to `$limit` scheduled
/// tasks that have become due, earliest first (`longshore_tasks_due`), with
/// SKIP LOCKED; of those, keep the most urgent; mark them running under
/// `$owner`'s lease. Two scans, so that tasks not yet due are never walked.
/// (When more than `$limit` scheduled tasks fall due at once, their
/// priority counts only among the earliest; the maintenance pass soon
/// makes them queued.) Used alone ([`CLAIM`]) and after a completion
/// ([`COMPLETE_AND_CLAIM`]).
///
/// Running-task caps: a queue's `max_running` bounds what is taken from it,
/// the cluster's (`longshore_settings`) and, for a pool's claim, the
/// pool's (`longshore_pools`, over the claim's queues, which are the
/// pool's) bound the whole claim, each minus what runs now (counted
/// through `longshore_tasks_lease`, whose rows are the running tasks, less
/// the ones the same statement finishes: `$finishing_in_queue`,
/// `$finishing` and `$finishing_in_pool`). The counts run only where a cap is set. They are
/// exact only if no other claim commits meanwhile: claimers that know of
/// caps serialise on an advisory lock first ([`CLAIM_LOCK`]).
macro_rules! claim_ctes {
    ($queues:literal, $limit:literal, $owner:literal, $lease:literal,
     $finishing_in_queue:literal, $finishing:literal, $finishing_in_pool:literal,
     $pool:literal, $labels:literal) => {
        concat!(
            "open_queues AS (
    SELECT u.name,
           CASE WHEN p.max_running IS NULL THEN ",
            $limit,
            "
                ELSE GREATEST(0, LEAST(",
            $limit,
            ", p.max_running - (
                    SELECT count(*) FROM longshore_tasks AS r
                    WHERE r.queue = u.name AND r.state = 'running') + ",
            $finishing_in_queue,
            ")) END AS room
    FROM unnest(",
            $queues,
            "::text[]) AS u(name)
    LEFT JOIN longshore_queues AS p ON p.name = u.name
    WHERE p.paused IS NOT TRUE AND p.pool IS NOT DISTINCT FROM ",
            $pool,
            "::text
),
cluster_room AS (
    SELECT LEAST(CASE WHEN s.cap IS NULL THEN ",
            $limit,
            "
                ELSE GREATEST(0, LEAST(",
            $limit,
            ", s.cap - (
                    SELECT count(*) FROM longshore_tasks WHERE state = 'running') + ",
            $finishing,
            ")) END,
                 CASE WHEN pc.cap IS NULL THEN ",
            $limit,
            "
                ELSE GREATEST(0, LEAST(",
            $limit,
            ", pc.cap - (
                    SELECT count(*) FROM longshore_tasks
                    WHERE queue IN (SELECT name FROM longshore_queues WHERE pool = ",
            $pool,
            "::text) AND state = 'running') + ",
            $finishing_in_pool,
            ")) END) AS room
    FROM (SELECT (SELECT (value #>> '{}')::bigint FROM longshore_settings
                  WHERE name = 'max_running') AS cap) AS s
    CROSS JOIN (SELECT (SELECT max_running FROM longshore_pools
                        WHERE name = ",
            $pool,
            "::text) AS cap) AS pc
),
picked AS (
    SELECT c.id
    FROM open_queues AS q
    CROSS JOIN LATERAL (
        -- A queue's room bounds its queued and due tasks together.
        SELECT b.id, b.priority, b.run_at
        FROM (
            SELECT * FROM (
                SELECT id, priority, run_at FROM longshore_tasks
                WHERE queue = q.name AND state = 'queued' AND run_at <= now()
                  AND (requires IS NULL OR ",
            $labels,
            "::text[] IS NULL OR requires <@ ",
            $labels,
            "::text[])
                ORDER BY priority, run_at, id
                LIMIT q.room
                FOR UPDATE SKIP LOCKED
            ) AS qd
            UNION ALL
            SELECT * FROM (
                SELECT id, priority, run_at FROM longshore_tasks
                WHERE queue = q.name AND state = 'scheduled' AND run_at <= now()
                  AND (requires IS NULL OR ",
            $labels,
            "::text[] IS NULL OR requires <@ ",
            $labels,
            "::text[])
                ORDER BY run_at
                LIMIT q.room
                FOR UPDATE SKIP LOCKED
            ) AS sd
        ) AS b
        ORDER BY b.priority, b.run_at, b.id
        LIMIT q.room
    ) AS c
    ORDER BY c.priority, c.run_at, c.id
    LIMIT (SELECT room FROM cluster_room)
),
claimed AS (
    UPDATE longshore_tasks AS t
    SET state = 'running', attempt = t.attempt + 1, lease_owner = ",
            $owner,
            ",
        lease_expires_at = now() + ",
            $lease,
            " * interval '1 millisecond',
        started_at = now(), modified_at = now(), worst_level = NULL
    FROM picked CROSS JOIN commit_mode
    WHERE t.id = picked.id
    RETURNING ",
            task_columns!(),
            "
)"
        )
    };
}

/// Claim: up to the free slots' worth of due tasks, in one statement.
///
/// `$5` is the commit mode (see [`COMMIT_MODE_FAST`]); `$6` the claiming
/// agent pool, NULL for an inline worker (a queue handed to a pool gives
/// tasks only to that pool's claims); `$7` the claiming agent's labels
/// (NULL for an inline worker): a task whose `requires` are not all among
/// them is stepped over.
pub(crate) const CLAIM: &str = concat!(
    "
WITH commit_mode AS (SELECT set_config('synchronous_commit', $5, true)),
",
    claim_ctes!("$1", "$2", "$3", "$4", "0", "0", "0", "$6", "$7"),
    "
SELECT * FROM claimed"
);

/// The labels required by up to `$2` due tasks of each queue of `$1` that
/// is not paused, through the claim's indexes (`longshore_tasks_queued`,
/// `longshore_tasks_due`); locks nothing.
pub(crate) const DUE_REQUIREMENTS: &str = "
SELECT COALESCE(d.requires, '{}') AS requires
FROM unnest($1::text[]) AS u(name)
LEFT JOIN longshore_queues AS p ON p.name = u.name
CROSS JOIN LATERAL (
    (SELECT requires FROM longshore_tasks
     WHERE queue = u.name AND state = 'queued' AND run_at <= now()
     ORDER BY priority, run_at, id LIMIT $2)
    UNION ALL
    (SELECT requires FROM longshore_tasks
     WHERE queue = u.name AND state = 'scheduled' AND run_at <= now()
     ORDER BY run_at LIMIT $2)
) AS d
WHERE p.paused IS NOT TRUE";

/// Heartbeat: renew the leases this worker still holds, fenced on
/// (id, execution, owner, running); report cancellation requests.
/// Writes the executions' pending log lines in the same statement.
///
/// The heartbeat never waits for a row lock. It runs beside this worker's
/// completions, on another connection and over the same tasks; had it
/// waited for the rows a completion holds while holding rows that
/// completion waits for, PostgreSQL would have broken the deadlock by
/// failing one of them (a second's stall first). A row locked at that
/// moment (`busy`: being finished, or an operator's cancel request being
/// written: the task is ending anyway) is reported held and renewed at
/// the next beat if it still runs; if it was in fact lost, the next beat
/// says so.
pub(crate) const HEARTBEAT: &str = "
WITH commit_mode AS (SELECT set_config('synchronous_commit', $5, true)),
logged AS (
    INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
    SELECT l.task_id, l.execution, l.at, l.level, l.message
    FROM unnest($6::uuid[], $7::int4[], $8::timestamptz[], $9::int2[], $10::text[])
         WITH ORDINALITY AS l(task_id, execution, at, level, message, n)
    WHERE EXISTS (SELECT 1 FROM longshore_tasks WHERE id = l.task_id)
    -- In the order they were logged: a hash join on the task would
    -- otherwise hand one task's lines over in reverse.
    ORDER BY l.n
),
held AS (
    SELECT t.id, h.execution
    FROM longshore_tasks AS t
    JOIN unnest($1::uuid[], $2::int4[]) AS h(id, execution) ON t.id = h.id
    WHERE t.attempt + t.uncounted_executions = h.execution
      AND t.state = 'running' AND t.lease_owner = $3
),
renewing AS (
    -- The fence again, on each row's newest version once it is locked.
    SELECT t.id
    FROM longshore_tasks AS t JOIN held AS h ON t.id = h.id
    WHERE t.attempt + t.uncounted_executions = h.execution
      AND t.state = 'running' AND t.lease_owner = $3
    FOR NO KEY UPDATE OF t SKIP LOCKED
),
renewed AS (
    UPDATE longshore_tasks AS t
    SET lease_expires_at = now() + $4 * interval '1 millisecond'
    FROM renewing CROSS JOIN commit_mode
    WHERE t.id = renewing.id
    RETURNING t.id, t.cancel_requested
)
SELECT id, cancel_requested FROM renewed
UNION ALL
SELECT id, false FROM held AS busy WHERE id NOT IN (SELECT id FROM renewing)";

/// Completion of many executions at once, each fenced on
/// (running, owner, execution), in one statement: the state change, the
/// executions' last log lines (kept even when the fence rejects the result:
/// they are what happened), and a wake-up for queues that got a task back at
/// once (a release; its execution does not count as an attempt). A task an
/// operator asked to cancel is not retried, whatever the worker reported.
macro_rules! complete_ctes {
    () => {
        "WITH commit_mode AS (SELECT set_config('synchronous_commit', $9, true)),
c AS (
    SELECT * FROM unnest($2::uuid[], $3::int4[], $4::longshore_task_state[], $5::int8[],
                         $6::text[], $7::int2[], $8::bool[])
         AS c(id, execution, next, delay_ms, error, worst_level, refund_attempt)
),
logged AS (
    -- Only for tasks that still exist: an operator may have deleted one.
    INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
    SELECT l.task_id, l.execution, l.at, l.level, l.message
    FROM unnest($10::uuid[], $11::int4[], $12::timestamptz[], $13::int2[], $14::text[])
         WITH ORDINALITY AS l(task_id, execution, at, level, message, n)
    WHERE EXISTS (SELECT 1 FROM longshore_tasks WHERE id = l.task_id)
    -- In the order they were logged: a hash join on the task would
    -- otherwise hand one task's lines over in reverse.
    ORDER BY l.n
),
updated AS (
    UPDATE longshore_tasks AS t
    SET state = CASE WHEN t.cancel_requested AND c.next IN ('scheduled', 'queued')
                     THEN 'cancelled' ELSE c.next END,
        run_at = CASE WHEN c.delay_ms IS NULL THEN t.run_at
                      ELSE now() + c.delay_ms * interval '1 millisecond' END,
        attempt = t.attempt - c.refund_attempt::int,
        uncounted_executions = t.uncounted_executions + c.refund_attempt::int,
        last_error = COALESCE(c.error, t.last_error),
        worst_level = c.worst_level,
        lease_owner = NULL,
        lease_expires_at = NULL,
        finished_at = CASE WHEN c.next IN ('succeeded', 'failed', 'cancelled')
                             OR t.cancel_requested THEN now() END,
        modified_at = now()
    FROM c CROSS JOIN commit_mode
    WHERE t.id = c.id AND t.state = 'running' AND t.lease_owner = $1
      AND t.attempt + t.uncounted_executions = c.execution
    RETURNING t.id, t.queue, t.state
),
woken AS (
    SELECT count(pg_notify('longshore_task_available', q.queue)) AS n
    FROM (SELECT DISTINCT queue FROM updated WHERE state = 'queued') AS q
)"
    };
}

pub(crate) const COMPLETE: &str = concat!(
    complete_ctes!(),
    "
SELECT u.id, (SELECT n FROM woken) AS woken FROM updated AS u"
);

/// [`COMPLETE`] and, in the same statement, a claim of up to `$16` tasks
/// from the queues `$15` under a lease of `$17` ms for pool `$18` with
/// labels `$19` (NULL: inline), as [`CLAIM`] does: the slots just freed go
/// straight to new tasks, one round trip instead of two. One row comes back
/// per claimed task (a single row of NULL task columns when none was), each
/// carrying the ids whose completion applied. The two updates touch
/// disjoint rows: completions update running tasks, the claim due ones.
pub(crate) const COMPLETE_AND_CLAIM: &str = concat!(
    complete_ctes!(),
    ",
",
    // The tasks this statement finishes still count as running in its
    // snapshot: their places are free for the refill.
    claim_ctes!(
        "$15",
        "$16",
        "$1",
        "$17",
        "(SELECT count(*) FROM updated AS f WHERE f.queue = u.name)",
        "(SELECT count(*) FROM updated)",
        "(SELECT count(*) FROM updated AS f WHERE f.queue = ANY($15::text[]))",
        "$18",
        "$19"
    ),
    "
SELECT d.applied, d.woken, cl.*
FROM (SELECT array(SELECT id FROM updated) AS applied, (SELECT n FROM woken) AS woken) AS d
LEFT JOIN claimed AS cl ON true"
);

/// Serialises the claims of nodes that know of running-task caps, taken in
/// the claim's transaction before the claim statement (whose snapshot must
/// then include every claim committed before it). The key is the bytes of
/// "lsclaim!". A holder cut off before its commit would stall every capped
/// claim of the cluster until its connection is found dead: the wait is
/// bounded (`lock_timeout`, a transient error the claimer retries) and so
/// is the holder's idle time in the transaction.
pub(crate) const CLAIM_LOCK: &str = "
SELECT pg_advisory_xact_lock(7814699095559859489)
FROM (SELECT set_config('lock_timeout', '5s', true),
             set_config('idle_in_transaction_session_timeout', '10s', true)) AS limits";

/// The commit mode of claims, heartbeats and completions: `off` lets them
/// return before the WAL is flushed. Safe for at-least-once delivery: a
/// crash can only undo a claim or completion, and the task then runs again
/// (after its lease expires); it is never lost. Enqueues always wait for
/// the flush. `PgOptions::durable_hot_path` chooses `on` instead.
pub(crate) const COMMIT_MODE_FAST: &str = "off";
/// See [`COMMIT_MODE_FAST`].
pub(crate) const COMMIT_MODE_DURABLE: &str = "on";

/// Rescue: running tasks whose lease expired (`longshore_tasks_lease`) go
/// back to the queue, or fail when their attempts are spent; each gets a log
/// line saying why.
pub(crate) const RESCUE: &str = "
WITH expired AS (
    SELECT id FROM longshore_tasks
    WHERE state = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), rescued AS (
    UPDATE longshore_tasks AS t
    SET state = CASE WHEN t.cancel_requested THEN 'cancelled'
                     WHEN t.attempt < t.max_attempts THEN 'queued'
                     ELSE 'failed' END::longshore_task_state,
        last_error = 'the lease of worker ' || COALESCE(t.lease_owner, '(unknown)')
                     || ' expired: the worker stopped or lost the database',
        worst_level = 2,
        lease_owner = NULL,
        lease_expires_at = NULL,
        run_at = now(),
        finished_at = CASE WHEN t.cancel_requested OR t.attempt >= t.max_attempts
                           THEN now() END,
        modified_at = now()
    FROM expired
    WHERE t.id = expired.id
    RETURNING t.id, t.attempt + t.uncounted_executions AS execution, t.last_error, t.queue,
              t.state
), logged AS (
    INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
    SELECT id, execution, now(), 2, last_error FROM rescued
)
SELECT count(*) AS rescued,
       (SELECT count(pg_notify('longshore_task_available', queue))
        FROM (SELECT DISTINCT queue FROM rescued WHERE state = 'queued') AS q) AS notified
FROM rescued";

/// Release of claims the worker never received (see
/// `Store::release_untracked`): back to the queue, the execution not
/// counted as an attempt, waking the queues' workers.
/// A task an operator asked to cancel meanwhile is cancelled instead.
pub(crate) const RELEASE_UNTRACKED: &str = "
WITH released AS (
    UPDATE longshore_tasks AS t
    SET state = CASE WHEN t.cancel_requested THEN 'cancelled'
                     ELSE 'queued' END::longshore_task_state,
        attempt = t.attempt - 1, uncounted_executions = t.uncounted_executions + 1,
        run_at = now(),
        finished_at = CASE WHEN t.cancel_requested THEN now() END,
        lease_owner = NULL, lease_expires_at = NULL, modified_at = now()
    WHERE t.lease_owner = $1 AND t.state = 'running' AND NOT (t.id = ANY($2::uuid[]))
    RETURNING t.queue, t.state
)
SELECT count(*) AS released,
       (SELECT count(pg_notify('longshore_task_available', queue))
        FROM (SELECT DISTINCT queue FROM released WHERE state = 'queued') AS q) AS notified
FROM released";

/// Promotion of delayed tasks that became due (`longshore_tasks_scheduled`),
/// waking the workers of their queues.
pub(crate) const PROMOTE: &str = "
WITH due AS (
    SELECT id FROM longshore_tasks
    WHERE state = 'scheduled' AND run_at <= now()
    ORDER BY run_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE longshore_tasks AS t SET state = 'queued', modified_at = now()
    FROM due WHERE t.id = due.id
    RETURNING t.queue
)
SELECT count(*) AS promoted,
       (SELECT count(pg_notify('longshore_task_available', queue))
        FROM (SELECT DISTINCT queue FROM promoted) AS q) AS notified
FROM promoted";

/// One task.
pub(crate) const TASK: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks AS t WHERE t.id = $1"
);

/// One task, locked for an operator's change.
pub(crate) const TASK_FOR_UPDATE: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks AS t WHERE t.id = $1 FOR UPDATE"
);

/// A task's log, every execution, oldest first.
pub(crate) const LOGS: &str = "
SELECT task_id, execution, at, level, message FROM longshore_task_logs
WHERE task_id = $1 ORDER BY id";

/// The status people see ([`Status::derive`](longshore_core::Status::derive))
/// of task `t`, by its name, on the database's clock.
macro_rules! task_status {
    () => {
        "CASE WHEN t.state = 'scheduled' AND t.run_at > now() THEN 'scheduled'
      WHEN t.state IN ('scheduled', 'queued') THEN 'waiting_to_run'
      WHEN t.state = 'running' THEN 'running'
      WHEN t.state = 'succeeded' AND coalesce(t.worst_level, 0) = 0 THEN 'successful'
      WHEN t.state = 'succeeded' AND t.worst_level = 1 THEN 'warning'
      WHEN t.state IN ('succeeded', 'failed') THEN 'error'
      ELSE 'cancelled' END"
    };
}

/// The filters of a task list, each applied only when given; every list
/// statement takes the same parameters:
///
/// | | | | |
/// |---|---|---|---|
/// | `$1` states (empty: all) | `$2` actor | `$3` queue | `$4` ids before |
/// | `$5` limit | `$6` statuses (empty: all) | `$7` leave out successful | `$8` standalone only |
/// | `$9` created at or after | `$10` created before | `$11` finished at or after | `$12` finished before |
/// | `$13` related kind | `$14` related id | `$15` schedule | |
///
/// Under `plan_cache_mode=force_generic_plan` none of these optional
/// conditions can drive an index: they are filters on whatever the plan
/// walks. Filters that have an index of their own get a statement of their
/// own that repeats the condition unconditionally (see below).
macro_rules! list_filters {
    () => {
        concat!(
            "(cardinality($1::text[]) = 0 OR t.state::text = ANY($1))
  AND (cardinality($6::text[]) = 0 OR (",
            task_status!(),
            ") = ANY($6))
  AND ($2::text IS NULL OR t.actor = $2)
  AND ($3::text IS NULL OR t.queue = $3)
  AND ($4::uuid IS NULL OR t.id < $4)
  AND (NOT $7::boolean OR t.state <> 'succeeded' OR coalesce(t.worst_level, 0) <> 0)
  AND (NOT $8::boolean OR t.related_kind IS NULL)
  AND ($9::timestamptz IS NULL OR t.created_at >= $9)
  AND ($10::timestamptz IS NULL OR t.created_at < $10)
  AND ($11::timestamptz IS NULL OR t.finished_at >= $11)
  AND ($12::timestamptz IS NULL OR t.finished_at < $12)
  AND ($13::text IS NULL OR t.related_kind = $13)
  AND ($14::text IS NULL OR t.related_id = $14)
  AND ($15::text IS NULL OR t.schedule_name = $15)"
        )
    };
}

/// A page of tasks newest first where `$condition` (ending in `AND `, or
/// empty) and the optional filters ([`list_filters!`]) hold,
/// keyset-paginated on id.
macro_rules! list_page {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            task_columns!(),
            " FROM longshore_tasks AS t\nWHERE ",
            $condition,
            list_filters!(),
            "\nORDER BY t.id DESC\nLIMIT $5"
        )
    };
}

/// Up to `$2` tasks newest first, before id `$1` when given: the list
/// without filters, which every first look at the tasks is. It walks the
/// primary key (`longshore_tasks_pkey`) backwards and stops after one
/// page, however long the history.
///
/// A statement of its own: the generic plan of [`LIST`] estimates that its
/// many optional filters leave almost no row, and prefers a full scan and
/// a sort to the walk of the key.
pub(crate) const LIST_RECENT: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks AS t
WHERE ($1::uuid IS NULL OR t.id < $1)
ORDER BY t.id DESC
LIMIT $2"
);

/// Makes the rest of the transaction plan each statement for its
/// parameters' values, for [`LIST`].
pub(crate) const PLAN_FOR_VALUES: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// Tasks newest first with optional filters (`list_filters!`),
/// keyset-paginated on id, when no filter with an index of its own is
/// given. It runs after [`PLAN_FOR_VALUES`], so that the planner sees the
/// filters given (and drops the others): a generic plan would guess every
/// optional filter away and scan the whole table. With the values known
/// it walks the primary key backwards when matches are common (a status,
/// an actor, a time range), or scans and sorts when they are rare.
pub(crate) const LIST: &str = list_page!("");

/// One page of the tasks that `$condition` selects, newest first, before
/// id `$1` when given, at most `$2`: the ids from the condition's own
/// index alone, then the page's rows by primary key. Written so that no
/// plan can do otherwise: a plain `WHERE state = … ORDER BY id` lets the
/// planner walk the primary key instead, expecting the state's tasks to be
/// spread evenly over it — a walk past a million newer queued tasks before
/// the first failed one, measured at 180 ms.
/// (`before` absent means below the greatest uuid: no task has it, as
/// the store makes version 7 ids; written so, unlike `$1 IS NULL OR id <
/// $1`, it bounds the index scan under a generic plan.)
macro_rules! list_page_where {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            task_columns!(),
            " FROM longshore_tasks AS t
WHERE t.id = ANY(ARRAY(
    SELECT id FROM longshore_tasks
    WHERE ",
            $condition,
            "
      AND id < coalesce($1, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)
    ORDER BY id DESC
    LIMIT $2))
ORDER BY t.id DESC"
        )
    };
}

/// What `tasks list --state S` asks with no other filter, for a finished
/// state `$3`: `longshore_tasks_finished_id` (state, id), walked backwards.
pub(crate) const LIST_FINISHED_IN_STATE: &str = list_page_where!(
    "state = $3::longshore_task_state AND state IN ('succeeded', 'failed', 'cancelled')"
);
/// A window of up to `$2` ids of the tasks in finished state `$3`, newest
/// first, before id `$1` when given: `longshore_tasks_finished_id` alone
/// (as [`LIST_FINISHED_IN_STATE`]). One actor's tasks in that state are
/// found window by window, [`LIST_IDS_OF_ACTOR`] keeping that actor's: a
/// single statement with the actor in it is planned as a walk of the
/// primary key instead, past every newer task of any state (126 ms over
/// the benchmark's million newer queued tasks).
pub(crate) const FINISHED_IDS_WINDOW: &str = "
SELECT id FROM longshore_tasks
WHERE state = $3::longshore_task_state AND state IN ('succeeded', 'failed', 'cancelled')
  AND id < coalesce($1, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)
ORDER BY id DESC
LIMIT $2";
/// The tasks among ids `$1` of actor `$2`, newest first, at most `$3`:
/// primary key.
pub(crate) const LIST_IDS_OF_ACTOR: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM longshore_tasks AS t
WHERE t.id = ANY($1) AND t.actor = $2
ORDER BY t.id DESC
LIMIT $3"
);
/// The same for running tasks: `longshore_tasks_lease`, whose entries are
/// exactly the running tasks (at most the cluster's slots), sorted.
pub(crate) const LIST_RUNNING: &str = list_page_where!("state = 'running'");
/// The same for scheduled tasks: one of that state's partial indexes,
/// sorted (the cost follows the number of scheduled tasks).
pub(crate) const LIST_SCHEDULED: &str = list_page_where!("state = 'scheduled'");

/// [`LIST`] of one schedule's tasks: `longshore_tasks_schedule`
/// (schedule_name, id), walked backwards. A statement of its own, as a
/// generic plan of an optional filter could not use the index.
pub(crate) const LIST_BY_SCHEDULE: &str = list_page!("t.schedule_name = $15 AND ");

/// [`LIST`] of the tasks of one related object: `longshore_tasks_related`
/// (related_kind, related_id), both columns bound; its few tasks are
/// sorted by id.
pub(crate) const LIST_BY_RELATED_OBJECT: &str =
    list_page!("t.related_kind = $13 AND t.related_id = $14 AND ");

/// [`LIST`] of the tasks of every object of one kind:
/// `longshore_tasks_related` on its first column; the matches are sorted
/// by id (that index does not hold it), which costs in proportion to the
/// tasks of that kind.
pub(crate) const LIST_BY_RELATED_KIND: &str = list_page!("t.related_kind = $13 AND ");

/// Retry of a finished task: due now, its attempts counted from zero again
/// (the ones used become uncounted executions, so execution numbers stay
/// unique).
pub(crate) const RETRY: &str = concat!(
    "UPDATE longshore_tasks AS t
SET state = 'queued', run_at = now(), attempt = 0,
    uncounted_executions = t.uncounted_executions + t.attempt,
    worst_level = NULL, cancel_requested = false, finished_at = NULL, modified_at = now()
WHERE t.id = $1
RETURNING ",
    task_columns!()
);

/// Cancel of a task that has not started.
pub(crate) const CANCEL_WAITING: &str = "
UPDATE longshore_tasks
SET state = 'cancelled', finished_at = now(), modified_at = now()
WHERE id = $1";

/// Cancel of a running task: flag it and tell its worker at commit.
pub(crate) const CANCEL_RUNNING: &str = "
UPDATE longshore_tasks SET cancel_requested = true, modified_at = now() WHERE id = $1";

/// Wakes the workers of one queue at commit.
pub(crate) const NOTIFY_AVAILABLE: &str = "SELECT pg_notify('longshore_task_available', $1)";

/// Tells whichever worker runs a task to cancel it.
pub(crate) const NOTIFY_CANCEL: &str = "SELECT pg_notify('longshore_cancel', $1)";

/// Channel of [`NOTIFY_AVAILABLE`] and of the enqueue, claim and rescue statements.
pub(crate) const CHANNEL_AVAILABLE: &str = "longshore_task_available";
/// Channel of [`NOTIFY_CANCEL`].
pub(crate) const CHANNEL_CANCEL: &str = "longshore_cancel";

/// Deletes up to `$3` tasks in state `$1` finished more than `$2` ms ago,
/// oldest first (`longshore_tasks_finished`); their logs go with them.
pub(crate) const PURGE_FINISHED: &str = "
DELETE FROM longshore_tasks WHERE id IN (
    SELECT id FROM longshore_tasks
    WHERE state = $1::longshore_task_state
      AND state IN ('succeeded', 'failed', 'cancelled')
      AND finished_at < now() - $2 * interval '1 millisecond'
    ORDER BY finished_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)";

/// Asks the workers of up to `$2` running tasks of queue `$1` not asked
/// yet to cancel them (running tasks through `longshore_tasks_lease`),
/// telling each worker at commit as [`NOTIFY_CANCEL`] does. Returns how
/// many were asked.
pub(crate) const CANCEL_RUNNING_IN_QUEUE: &str = "
WITH picked AS (
    SELECT id FROM longshore_tasks
    WHERE state = 'running' AND queue = $1 AND NOT cancel_requested
    ORDER BY lease_expires_at
    LIMIT $2
    -- Not SKIP LOCKED: a task a heartbeat or completion holds for a moment
    -- must not be passed over (it would escape the flush).
    FOR UPDATE
), asked AS (
    UPDATE longshore_tasks AS t SET cancel_requested = true, modified_at = now()
    FROM picked
    WHERE t.id = picked.id AND t.state = 'running'
    RETURNING t.id
)
SELECT count(pg_notify('longshore_cancel', id::text)) FROM asked";

/// Deletes the tasks of the ids in $1 that are not running (their logs go
/// with them). Primary key.
pub(crate) const DELETE_IDS: &str =
    "DELETE FROM longshore_tasks WHERE id = ANY($1) AND state <> 'running'";
