//! The statements of [`super`].

//! Every statement the engine runs, reviewed like code. The indexes each
//! one relies on are named beside it; they are created in `migrations/`.

/// The columns of a schedule, in the order `row::schedule` reads them.
macro_rules! schedule_columns {
    () => {
        "name, actor, args, queue, priority, max_attempts, time_limit_ms, related_kind, \
         related_id, cron, time_zone, overlap, paused, builtin, next_run_at, last_run_at, \
         last_task_id, run_requested, skipped_runs, last_skipped_at, created_at, modified_at"
    };
}

/// The definition columns and parameters of [`CREATE_SCHEDULE`] and [`PUT_SCHEDULE`].
macro_rules! schedule_insert {
    () => {
        "INSERT INTO longshore_schedules AS s
    (name, actor, args, queue, priority, max_attempts, time_limit_ms, related_kind, related_id,
     cron, time_zone, overlap, next_run_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    };
}

/// Creates a schedule; no row comes back when the name is taken.
pub(crate) const CREATE_SCHEDULE: &str = concat!(
    schedule_insert!(),
    "
ON CONFLICT (name) DO NOTHING
RETURNING ",
    schedule_columns!()
);

/// Creates or redefines a schedule. Its state (pause, runs) stays; its next
/// run changes only with its timing.
pub(crate) const PUT_SCHEDULE: &str = concat!(
    schedule_insert!(),
    "
ON CONFLICT (name) DO UPDATE
SET actor = excluded.actor, args = excluded.args, queue = excluded.queue,
    priority = excluded.priority, max_attempts = excluded.max_attempts,
    time_limit_ms = excluded.time_limit_ms, related_kind = excluded.related_kind,
    related_id = excluded.related_id, cron = excluded.cron, time_zone = excluded.time_zone,
    overlap = excluded.overlap,
    next_run_at = CASE WHEN s.cron <> excluded.cron OR s.time_zone <> excluded.time_zone
                       THEN excluded.next_run_at ELSE s.next_run_at END,
    modified_at = now()
RETURNING ",
    schedule_columns!()
);

/// One schedule.
pub(crate) const SCHEDULE: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules WHERE name = $1"
);

/// One schedule, locked for a change or a run.
pub(crate) const SCHEDULE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules WHERE name = $1 FOR UPDATE"
);

/// Every schedule.
pub(crate) const SCHEDULES: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules ORDER BY name"
);

/// Pauses, or resumes and makes due at once (resuming a schedule that is not
/// paused changes nothing).
pub(crate) const SET_SCHEDULE_PAUSED: &str = concat!(
    "UPDATE longshore_schedules
SET paused = $2, next_run_at = CASE WHEN $2 OR NOT paused THEN next_run_at ELSE now() END,
    modified_at = now()
WHERE name = $1
RETURNING ",
    schedule_columns!()
);

/// Deletes a schedule.
pub(crate) const DELETE_SCHEDULE: &str = "DELETE FROM longshore_schedules WHERE name = $1";

/// Schedules with a run to fire (the table is small: a scan).
pub(crate) const DUE_SCHEDULES: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM longshore_schedules
WHERE NOT builtin AND ((NOT paused AND next_run_at <= now()) OR run_requested)
ORDER BY next_run_at NULLS LAST, name
LIMIT $1"
);

/// The state of a schedule's previous run, locked (it may be cancelled).
pub(crate) const TASK_STATE_FOR_UPDATE: &str =
    "SELECT state::text FROM longshore_tasks WHERE id = $1 FOR UPDATE";

/// Records a run: `$2` the task (NULL for a built-in job), `$3` whether it
/// was the cron run (which moves the next run to `$4`).
pub(crate) const SCHEDULE_RAN: &str = "
UPDATE longshore_schedules
SET last_run_at = now(), last_task_id = COALESCE($2, last_task_id), run_requested = false,
    next_run_at = CASE WHEN $3 THEN $4 ELSE next_run_at END, modified_at = now()
WHERE name = $1";

/// Records a run dropped by the `skip` policy: `$2` whether it was the cron
/// run (which moves the next run to `$3`), `$4` whether it was a pending
/// run by hand (whose request is dropped).
pub(crate) const SCHEDULE_SKIPPED: &str = "
UPDATE longshore_schedules
SET skipped_runs = skipped_runs + 1, last_skipped_at = now(),
    next_run_at = CASE WHEN $2 THEN $3 ELSE next_run_at END,
    run_requested = run_requested AND NOT $4,
    modified_at = now()
WHERE name = $1";

/// A run by hand that must wait for the previous run.
pub(crate) const SCHEDULE_REQUEST_RUN: &str =
    "UPDATE longshore_schedules SET run_requested = true, modified_at = now() WHERE name = $1";
