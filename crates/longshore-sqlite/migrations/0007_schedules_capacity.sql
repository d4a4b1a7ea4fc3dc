-- Schedules, and the running-task caps of queues and of the cluster.
--
-- The same tables and columns as the PostgreSQL engine's, in SQLite's
-- types: times are INTEGER microseconds since the Unix epoch (UTC), JSON is
-- TEXT, booleans are INTEGER 0/1, task ids are hyphenated UUID text.

-- The schedule that created a task, so that a schedule's history can be
-- listed (`longshore tasks list --schedule NAME`), newest first.
ALTER TABLE longshore_tasks ADD COLUMN schedule_name TEXT;
CREATE INDEX longshore_tasks_schedule
    ON longshore_tasks (schedule_name, id) WHERE schedule_name IS NOT NULL;

-- At most this many of a queue's tasks run at once across the cluster.
ALTER TABLE longshore_queues
    ADD COLUMN max_running INTEGER CHECK (max_running IS NULL OR max_running > 0);

-- Settings of the whole cluster, by name (`max_running`: the cap on running
-- tasks across all nodes). A missing row is the default.
CREATE TABLE longshore_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL CHECK (json_valid(value)),
    modified_at INTEGER NOT NULL
) STRICT;

CREATE TABLE longshore_schedules (
    name            TEXT PRIMARY KEY,
    actor           TEXT NOT NULL,
    args            TEXT NOT NULL,
    queue           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    time_limit_ms   INTEGER,
    related_kind    TEXT,
    related_id      TEXT,
    cron            TEXT NOT NULL,
    time_zone       TEXT NOT NULL,
    overlap         TEXT NOT NULL CHECK (overlap IN ('queue', 'skip', 'replace')),
    paused          INTEGER NOT NULL DEFAULT 0,
    builtin         INTEGER NOT NULL DEFAULT 0,
    next_run_at     INTEGER,
    last_run_at     INTEGER,
    last_task_id    TEXT,
    run_requested   INTEGER NOT NULL DEFAULT 0,
    skipped_runs    INTEGER NOT NULL DEFAULT 0,
    last_skipped_at INTEGER,
    created_at      INTEGER NOT NULL,
    modified_at     INTEGER NOT NULL
) STRICT;

-- The maintenance leader's own jobs, shown and timed like any schedule.
-- They run inside the leader (no task is enqueued), so their actor, queue
-- and attempts are only labels. Cron with a leading seconds field. Due now
-- (in microseconds: julianday counts days from noon, 24 November 4714 BC).
INSERT INTO longshore_schedules
    (name, actor, args, queue, priority, max_attempts, cron, time_zone, overlap, builtin,
     next_run_at, created_at, modified_at)
SELECT s.name, s.name, '{}', 'default', 0, 1, s.cron, 'UTC', 'skip', 1, n.now, n.now, n.now
FROM (SELECT 'longshore.purge' AS name, '0 * * * * *' AS cron
      UNION ALL SELECT 'longshore.rescue', '* * * * * *'
      UNION ALL SELECT 'longshore.workers', '*/5 * * * * *') AS s,
     (SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AS now) AS n;
