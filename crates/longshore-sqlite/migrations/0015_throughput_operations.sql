-- Throughput per queue per minute: tasks enqueued, succeeded and failed,
-- and the backlog (scheduled and queued tasks) at the minute's last count,
-- which the dashboard's overview draws for the last 24 hours. Rows older
-- than `retention.throughput` are purged.
--
-- SQLite keeps the counts in place (migration 9): there is no log of
-- changes to add up. Instead each count row also keeps two totals that
-- only grow: tasks ever inserted into its group, and tasks that ever
-- entered it. The maintenance leader's fold reads them per queue, adds
-- what grew since its last fold (kept in longshore_throughput_seen) to the
-- current minute, and keeps the new totals. The triggers write the same
-- row as before, so the hot path writes nothing more.

CREATE TABLE longshore_throughput (
    minute    INTEGER NOT NULL,
    queue     TEXT NOT NULL,
    enqueued  INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    waiting   INTEGER,
    PRIMARY KEY (minute, queue)
) STRICT, WITHOUT ROWID;

CREATE TABLE longshore_throughput_seen (
    queue     TEXT PRIMARY KEY,
    inserted  INTEGER NOT NULL,
    succeeded INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    waiting   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE longshore_task_counts ADD COLUMN inserted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE longshore_task_counts ADD COLUMN entered INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER longshore_tasks_count_insert;
CREATE TRIGGER longshore_tasks_count_insert AFTER INSERT ON longshore_tasks
BEGIN
    INSERT INTO longshore_task_counts (queue, actor, state, n, inserted, entered)
    VALUES (new.queue, new.actor, new.state, 1, 1, 1)
    ON CONFLICT (queue, actor, state) DO UPDATE
    SET n = n + 1, inserted = inserted + 1, entered = entered + 1;
END;

DROP TRIGGER longshore_tasks_count_update;
CREATE TRIGGER longshore_tasks_count_update AFTER UPDATE OF queue, actor, state ON longshore_tasks
WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue OR old.actor IS NOT new.actor
BEGIN
    UPDATE longshore_task_counts SET n = n - 1
    WHERE queue = old.queue AND actor = old.actor AND state = old.state;
    INSERT INTO longshore_task_counts (queue, actor, state, n, entered)
    VALUES (new.queue, new.actor, new.state, 1, 1)
    ON CONFLICT (queue, actor, state) DO UPDATE SET n = n + 1, entered = entered + 1;
END;

-- Bulk operations (a retry, cancel or deletion of many tasks) that a server
-- node runs in the background after answering the request: their progress,
-- for any node to show, and an operator's request to stop, which the
-- running node reads between batches. Listed newest first (ids are
-- UUIDv7); purged with the audit trail once finished.
CREATE TABLE longshore_operations (
    id               TEXT PRIMARY KEY,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    matched          INTEGER,
    started_by       TEXT NOT NULL,
    node             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'running',
    seen             INTEGER NOT NULL DEFAULT 0,
    done             INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    modified_at      INTEGER NOT NULL,
    finished_at      INTEGER
) STRICT;
