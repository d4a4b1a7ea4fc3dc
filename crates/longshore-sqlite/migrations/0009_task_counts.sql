-- Task counts by queue, actor and state, kept by triggers, so that stats
-- read a few small rows instead of counting a table of millions. SQLite has
-- one writer at a time, so the triggers update the counts in place: no row
-- here is ever contended.

CREATE TABLE longshore_task_counts (
    queue TEXT NOT NULL,
    actor TEXT NOT NULL,
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, actor, state)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER longshore_tasks_count_insert AFTER INSERT ON longshore_tasks
BEGIN
    INSERT INTO longshore_task_counts (queue, actor, state, n)
    VALUES (new.queue, new.actor, new.state, 1)
    ON CONFLICT (queue, actor, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER longshore_tasks_count_delete AFTER DELETE ON longshore_tasks
BEGIN
    UPDATE longshore_task_counts SET n = n - 1
    WHERE queue = old.queue AND actor = old.actor AND state = old.state;
END;

-- Only updates that move a task between groups; heartbeats, logs and
-- cancel requests do not fire it.
CREATE TRIGGER longshore_tasks_count_update AFTER UPDATE OF queue, actor, state ON longshore_tasks
WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue OR old.actor IS NOT new.actor
BEGIN
    UPDATE longshore_task_counts SET n = n - 1
    WHERE queue = old.queue AND actor = old.actor AND state = old.state;
    INSERT INTO longshore_task_counts (queue, actor, state, n)
    VALUES (new.queue, new.actor, new.state, 1)
    ON CONFLICT (queue, actor, state) DO UPDATE SET n = n + 1;
END;

INSERT INTO longshore_task_counts (queue, actor, state, n)
SELECT queue, actor, state, count(*) FROM longshore_tasks GROUP BY queue, actor, state;

-- The first page of the finished tasks in one state, newest first
-- (`tasks list --state failed`): the state's range of this index, walked
-- backwards. Without it, failed tasks behind a million newer queued ones
-- are found by walking past all of those. Only finished tasks have
-- entries, so claims never write to it (the running and scheduled states
-- have partial indexes of their own).
CREATE INDEX longshore_tasks_finished_id ON longshore_tasks (state, id)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
