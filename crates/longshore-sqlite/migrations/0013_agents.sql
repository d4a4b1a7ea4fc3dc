-- Agent pools and agent tokens: the PostgreSQL engine's tables in SQLite's
-- types (ids hyphenated UUID text, times INTEGER microseconds since the
-- Unix epoch, label lists JSON arrays). See that engine's 0013_agents.sql
-- for what they mean.

CREATE TABLE longshore_pools (
    name        TEXT PRIMARY KEY,
    labels      TEXT NOT NULL DEFAULT '[]',
    max_running INTEGER CHECK (max_running >= 0),
    created_at  INTEGER NOT NULL
) STRICT;

ALTER TABLE longshore_queues ADD COLUMN pool TEXT;

CREATE TABLE longshore_agent_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    pool        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
) STRICT;

-- Deletes expired agent tokens, daily, inside the maintenance leader (see
-- 0007 for how the built-in schedules are stored).
INSERT INTO longshore_schedules
    (name, actor, args, queue, priority, max_attempts, cron, time_zone, overlap, builtin,
     next_run_at, created_at, modified_at)
SELECT 'longshore.agent_tokens', 'longshore.agent_tokens', '{}', 'default', 0, 1, '0 0 3 * * *',
       'UTC', 'skip', 1, n.now, n.now, n.now
FROM (SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AS now) AS n;

-- The labels an agent must offer to receive a task, a JSON array (NULL:
-- none). Read by pool claims only; inline claims ignore it.
ALTER TABLE longshore_tasks ADD COLUMN requires TEXT;

-- An operator asked this node (an agent, through its gateway) to drain.
ALTER TABLE longshore_workers ADD COLUMN drain_requested INTEGER NOT NULL DEFAULT 0;
