-- Schedules, and the running-task caps of queues and of the cluster.

-- The schedule that created a task, so that a schedule's history can be
-- listed (`longshore tasks list --schedule NAME`).
ALTER TABLE longshore_tasks ADD COLUMN schedule_name text;
CREATE INDEX longshore_tasks_schedule
    ON longshore_tasks (schedule_name, id) WHERE schedule_name IS NOT NULL;

-- At most this many of a queue's tasks run at once across the cluster.
ALTER TABLE longshore_queues
    ADD COLUMN max_running integer CHECK (max_running IS NULL OR max_running > 0);

-- Settings of the whole cluster, by name (`max_running`: the cap on running
-- tasks across all nodes). A missing row is the default.
CREATE TABLE longshore_settings (
    name        text PRIMARY KEY,
    value       jsonb NOT NULL,
    modified_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE longshore_schedules (
    name            text PRIMARY KEY,
    actor           text NOT NULL,
    args            jsonb NOT NULL,
    queue           text NOT NULL,
    priority        smallint NOT NULL,
    max_attempts    integer NOT NULL,
    time_limit_ms   bigint,
    related_kind    text,
    related_id      text,
    cron            text NOT NULL,
    time_zone       text NOT NULL,
    overlap         text NOT NULL CHECK (overlap IN ('queue', 'skip', 'replace')),
    paused          boolean NOT NULL DEFAULT false,
    builtin         boolean NOT NULL DEFAULT false,
    next_run_at     timestamptz,
    last_run_at     timestamptz,
    last_task_id    uuid,
    run_requested   boolean NOT NULL DEFAULT false,
    skipped_runs    bigint NOT NULL DEFAULT 0,
    last_skipped_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now()
);

-- The maintenance leader's own jobs, shown and timed like any schedule.
-- They run inside the leader (no task is enqueued), so their actor, queue
-- and attempts are only labels. Cron with a leading seconds field.
INSERT INTO longshore_schedules
    (name, actor, args, queue, priority, max_attempts, cron, time_zone, overlap, builtin, next_run_at)
VALUES
    ('longshore.purge', 'longshore.purge', '{}', 'default', 0, 1, '0 * * * * *', 'UTC', 'skip', true, now()),
    ('longshore.rescue', 'longshore.rescue', '{}', 'default', 0, 1, '* * * * * *', 'UTC', 'skip', true, now()),
    ('longshore.workers', 'longshore.workers', '{}', 'default', 0, 1, '*/5 * * * * *', 'UTC', 'skip', true, now());
