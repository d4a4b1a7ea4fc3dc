//! The statements of [`super`].

//! Every statement the engine runs, reviewed like code. The indexes each
//! one relies on are named beside it; they are created in `migrations/`.

/// A worker node says it is alive.
pub(crate) const WORKER_SEEN: &str = "
INSERT INTO longshore_workers
    (id, host, version, queues, concurrency, running, pool, labels, started_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now())
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, version = excluded.version, queues = excluded.queues,
    concurrency = excluded.concurrency, running = excluded.running, pool = excluded.pool,
    labels = excluded.labels, last_seen_at = now()
RETURNING drain_requested";

/// Many nodes say they are alive, in one statement: `$1` a JSON array of
/// presences (arrays of text become `text[]`). The ids of those asked to
/// drain come back.
pub(crate) const WORKERS_SEEN: &str = "
INSERT INTO longshore_workers AS w
    (id, host, version, queues, concurrency, running, pool, labels, started_at, last_seen_at)
SELECT p.id, p.host, p.version, p.queues, p.concurrency, p.running, p.pool, p.labels, now(), now()
FROM jsonb_to_recordset($1::jsonb)
     AS p(id text, host text, version text, queues text[], concurrency int4, running int4,
          pool text, labels text[])
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, version = excluded.version, queues = excluded.queues,
    concurrency = excluded.concurrency, running = excluded.running, pool = excluded.pool,
    labels = excluded.labels, last_seen_at = now()
RETURNING w.id, w.drain_requested";

/// An operator asks node `$1` to drain.
pub(crate) const REQUEST_DRAIN: &str =
    "UPDATE longshore_workers SET drain_requested = true WHERE id = $1 RETURNING id";

/// A worker node stopped.
pub(crate) const WORKER_STOPPED: &str = "DELETE FROM longshore_workers WHERE id = $1";

/// The live worker nodes.
/// `running` is counted now from the tasks the node holds (through the
/// running tasks' partial index), not the figure of its last heartbeat.
pub(crate) const WORKERS: &str = "
SELECT w.id, w.host, w.version, w.queues, w.concurrency,
       COALESCE(r.running, 0)::int4 AS running, w.pool, w.labels, w.drain_requested,
       w.started_at, w.last_seen_at
FROM longshore_workers AS w
LEFT JOIN (
    SELECT lease_owner, count(*) AS running FROM longshore_tasks
    WHERE state = 'running' AND lease_expires_at IS NOT NULL
    GROUP BY lease_owner
) AS r ON r.lease_owner = w.id
ORDER BY w.id";

/// Worker nodes not seen for `$1` ms (`longshore_workers_seen`).
pub(crate) const FORGET_WORKERS: &str = "
DELETE FROM longshore_workers WHERE last_seen_at < now() - $1 * interval '1 millisecond'";

/// Takes or renews role `$1` for `$2` for `$3` ms: the row comes back only
/// when `$2` holds the role afterwards.
pub(crate) const TRY_LEAD: &str = "
INSERT INTO longshore_leases AS l (name, holder, acquired_at, expires_at)
VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END,
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < now()
RETURNING l.holder";

/// Gives up role `$1` if `$2` holds it.
pub(crate) const RESIGN: &str = "DELETE FROM longshore_leases WHERE name = $1 AND holder = $2";

/// The roles held under an unexpired lease.
pub(crate) const LEADERS: &str = "
SELECT name, holder, acquired_at, expires_at FROM longshore_leases
WHERE expires_at >= now() ORDER BY name";
