//! The statements of [`super`].

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

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
