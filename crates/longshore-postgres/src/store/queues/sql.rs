//! The statements of [`super`].

//! Every statement the engine runs, reviewed like code. The indexes each
//! one relies on are named beside it; they are created in `migrations/`.

/// Pauses or resumes a queue; a resume wakes the queue's workers at commit.
pub(crate) const SET_QUEUE_PAUSED: &str = "
WITH changed AS (
    INSERT INTO longshore_queues AS q (name, paused) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, modified_at = now()
    RETURNING q.name, q.paused
)
SELECT count(*) AS changed,
       (SELECT count(pg_notify('longshore_task_available', name))
        FROM changed WHERE NOT paused) AS woken
FROM changed";

/// Every queue's settings.
pub(crate) const QUEUE_SETTINGS: &str =
    "SELECT name, paused, max_running FROM longshore_queues ORDER BY name";

/// Sets or lifts a queue's running-task cap; wakes its workers at commit
/// (a higher cap may let waiting tasks run).
pub(crate) const SET_QUEUE_LIMIT: &str = "
WITH changed AS (
    INSERT INTO longshore_queues AS q (name, max_running) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running, modified_at = now()
    RETURNING q.name
)
SELECT count(pg_notify('longshore_task_available', name)) FROM changed";

/// The cluster-wide running-task cap, if set.
pub(crate) const MAX_RUNNING: &str =
    "SELECT (value #>> '{}')::int4 FROM longshore_settings WHERE name = 'max_running'";

/// Sets the cluster-wide running-task cap.
pub(crate) const SET_MAX_RUNNING: &str = "
INSERT INTO longshore_settings (name, value) VALUES ('max_running', to_jsonb($1::int4))
ON CONFLICT (name) DO UPDATE SET value = excluded.value, modified_at = now()";

/// Lifts the cluster-wide running-task cap.
pub(crate) const LIFT_MAX_RUNNING: &str =
    "DELETE FROM longshore_settings WHERE name = 'max_running'";
