-- Tasks and their logs.

CREATE TYPE longshore_task_state AS ENUM (
    'scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'
);

CREATE TABLE longshore_tasks (
    id               uuid PRIMARY KEY,
    queue            text NOT NULL,
    actor            text NOT NULL,
    args             jsonb NOT NULL,
    priority         smallint NOT NULL DEFAULT 0,
    state            longshore_task_state NOT NULL,
    run_at           timestamptz NOT NULL,
    -- The number of the current (or last) execution; 0 before the first.
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    time_limit_ms    bigint CHECK (time_limit_ms > 0),
    lease_owner      text,
    lease_expires_at timestamptz,
    unique_key       text,
    related_kind     text,
    related_id       text,
    -- Worst log level of the current execution: 0 info, 1 warning, 2 error.
    worst_level      smallint,
    last_error       text,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    modified_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((related_kind IS NULL) = (related_id IS NULL))
);

-- The claim reads one queue's due tasks in (priority, run_at, id) order and
-- stops after the free slots' worth: this index serves it without a sort.
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
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES longshore_tasks (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL,
    level   smallint NOT NULL,
    message text NOT NULL
);

CREATE INDEX longshore_task_logs_task ON longshore_task_logs (task_id, id);
