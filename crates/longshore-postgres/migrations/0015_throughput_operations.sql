-- Throughput per queue per minute: tasks enqueued, succeeded and failed,
-- and the backlog (scheduled and queued tasks) at the minute's last count,
-- which the dashboard's overview draws for the last 24 hours.
--
-- Nothing is written for it on the hot path: the maintenance leader's fold
-- of longshore_task_count_changes (migration 9) already reads every change
-- once; it adds them up here in the same statement. A completion appends a
-- positive change of `succeeded` or `failed`; an insert says so in the new
-- column `inserted`, since a positive `queued` change may also be a retry or
-- a claim handed back. Rows older than `retention.throughput` are purged.

CREATE TABLE longshore_throughput (
    minute    timestamptz NOT NULL,
    queue     text NOT NULL,
    enqueued  bigint NOT NULL DEFAULT 0,
    succeeded bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    waiting   bigint,
    PRIMARY KEY (minute, queue)
);

ALTER TABLE longshore_task_count_changes ADD COLUMN inserted bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION longshore_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO longshore_task_count_changes (queue, actor, state, n, inserted)
    SELECT queue, actor, state, count(*), count(*) FROM longshore_new_rows
    GROUP BY queue, actor, state;
    RETURN NULL;
END
$$;

-- Bulk operations (a retry, cancel or deletion of many tasks) that a server
-- node runs in the background after answering the request: their progress,
-- for any node to show, and an operator's request to stop, which the
-- running node reads between batches. Listed newest first (ids are
-- UUIDv7); purged with the audit trail once finished.
CREATE TABLE longshore_operations (
    id               uuid PRIMARY KEY,
    action           text NOT NULL,
    target           text NOT NULL,
    matched          bigint,
    started_by       text NOT NULL,
    node             text NOT NULL,
    state            text NOT NULL DEFAULT 'running',
    seen             bigint NOT NULL DEFAULT 0,
    done             bigint NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    modified_at      timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
