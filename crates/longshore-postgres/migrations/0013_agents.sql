-- Agent pools and agent tokens.
--
-- A pool is a named group of agents (processes that run tasks through a
-- gateway, without database credentials). A queue handed to a pool
-- (`longshore_queues.pool`) is claimed only for that pool's agents; inline
-- workers skip it. The claim reads the column in the same primary-key probe
-- that reads `paused`, so this costs the hot path nothing.
--
-- Agent tokens open the gateway for one pool and nothing else: they live
-- apart from API tokens, so neither kind can stand in for the other. Only
-- the SHA-256 of a secret is stored. Revoked tokens stay (names are never
-- reused); expired ones are deleted by the `longshore.agent_tokens`
-- schedule.

CREATE TABLE longshore_pools (
    name        text PRIMARY KEY,
    labels      text[] NOT NULL DEFAULT '{}',
    max_running integer CHECK (max_running >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE longshore_queues ADD COLUMN pool text;

CREATE TABLE longshore_agent_tokens (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    pool        text NOT NULL,
    secret_hash text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- Deletes expired agent tokens, daily, inside the maintenance leader.
INSERT INTO longshore_schedules
    (name, actor, args, queue, priority, max_attempts, cron, time_zone, overlap, builtin, next_run_at)
VALUES
    ('longshore.agent_tokens', 'longshore.agent_tokens', '{}', 'default', 0, 1, '0 0 3 * * *', 'UTC', 'skip', true, now());

-- The labels an agent must offer to receive a task (NULL: none). Read by
-- pool claims only, inside the same index walks (a task an agent cannot
-- take is stepped over); inline claims ignore it.
ALTER TABLE longshore_tasks ADD COLUMN requires text[];

-- An operator asked this node (an agent, through its gateway) to drain:
-- finish what it runs, take nothing more. Read back by its heartbeat.
ALTER TABLE longshore_workers ADD COLUMN drain_requested boolean NOT NULL DEFAULT false;
