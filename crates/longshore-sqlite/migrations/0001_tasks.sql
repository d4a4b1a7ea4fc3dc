-- Tasks and their logs, for the embedded SQLite engine.
--
-- The same tables and columns as the PostgreSQL engine's, in SQLite's
-- types: ids are UUIDv7 in their hyphenated lower-case text form (so text
-- order is creation order and the file reads well in the sqlite3 shell),
-- times are INTEGER microseconds since the Unix epoch (UTC), JSON is TEXT.

CREATE TABLE longshore_tasks (
    id               TEXT PRIMARY KEY,
    queue            TEXT NOT NULL,
    actor            TEXT NOT NULL,
    args             TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL CHECK (state IN
                         ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    run_at           INTEGER NOT NULL,
    -- The number of the current (or last) execution; 0 before the first.
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    time_limit_ms    INTEGER CHECK (time_limit_ms > 0),
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    unique_key       TEXT,
    related_kind     TEXT,
    related_id       TEXT,
    -- Worst log level of the current execution: 0 info, 1 warning, 2 error.
    worst_level      INTEGER,
    last_error       TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    modified_at      INTEGER NOT NULL,
    CHECK ((related_kind IS NULL) = (related_id IS NULL))
) STRICT;

-- The claim walks one queue's due tasks in (priority, run_at, id) order and
-- stops after the free slots' worth. Queries must repeat the WHERE clause
-- word for word for SQLite to use a partial index.
CREATE INDEX longshore_tasks_claim
    ON longshore_tasks (queue, priority, run_at, id)
    WHERE state IN ('scheduled', 'queued');

-- Promotion of delayed tasks that became due.
CREATE INDEX longshore_tasks_scheduled
    ON longshore_tasks (run_at)
    WHERE state = 'scheduled';

-- Rescue of running tasks whose lease expired.
CREATE INDEX longshore_tasks_lease
    ON longshore_tasks (lease_expires_at)
    WHERE state = 'running';

-- A unique key is held only while its task is active.
CREATE UNIQUE INDEX longshore_tasks_unique_key
    ON longshore_tasks (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');

-- Tasks shown beside the object they work on.
CREATE INDEX longshore_tasks_related
    ON longshore_tasks (related_kind, related_id)
    WHERE related_kind IS NOT NULL;

CREATE TABLE longshore_task_logs (
    id      INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES longshore_tasks (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   INTEGER NOT NULL,
    message TEXT NOT NULL
) STRICT;

CREATE INDEX longshore_task_logs_task ON longshore_task_logs (task_id, id);
