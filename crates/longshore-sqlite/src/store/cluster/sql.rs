//! The statements of [`super`].

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

/// A worker node says it is alive at time `?7` (`?4` its queues as JSON).
pub(crate) const WORKER_SEEN: &str = "
INSERT INTO longshore_workers
    (id, host, version, queues, concurrency, running, pool, labels, started_at, last_seen_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9, ?7, ?7)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, version = excluded.version, queues = excluded.queues,
    concurrency = excluded.concurrency, running = excluded.running, pool = excluded.pool,
    labels = excluded.labels, last_seen_at = excluded.last_seen_at
RETURNING drain_requested";

/// An operator asks node `?1` to drain.
pub(crate) const REQUEST_DRAIN: &str =
    "UPDATE longshore_workers SET drain_requested = 1 WHERE id = ?1 RETURNING id";

/// A worker node stopped.
pub(crate) const WORKER_STOPPED: &str = "DELETE FROM longshore_workers WHERE id = ?1";

/// The live worker nodes.
/// `running` is counted now from the tasks the node holds (through the
/// running tasks' partial index), not the figure of its last heartbeat.
pub(crate) const WORKERS: &str = "
SELECT w.id, w.host, w.version, w.queues, w.concurrency,
       COALESCE(r.running, 0) AS running, w.pool, w.labels, w.drain_requested,
       w.started_at, w.last_seen_at
FROM longshore_workers AS w
LEFT JOIN (
    SELECT lease_owner, count(*) AS running FROM longshore_tasks
    WHERE state = 'running' AND lease_expires_at IS NOT NULL
    GROUP BY lease_owner
) AS r ON r.lease_owner = w.id
ORDER BY w.id";

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
