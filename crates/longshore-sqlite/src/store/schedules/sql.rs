//! The statements of [`super`].

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

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
