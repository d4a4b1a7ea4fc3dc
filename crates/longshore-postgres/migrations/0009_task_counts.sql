-- Task counts by queue, actor and state, kept by triggers, so that stats
-- read a few small rows instead of counting a table of millions.
--
-- Writers never update a shared counter row (every claim and completion
-- would queue up behind it): each statement that changes tasks appends its
-- net changes, grouped, to longshore_task_count_changes. The maintenance
-- leader folds those rows into longshore_task_counts every pass. A count is
-- the sum of both tables, read in one statement (one snapshot), so it is
-- exact whether or not the latest changes have been folded.

CREATE TABLE longshore_task_counts (
    queue text NOT NULL,
    actor text NOT NULL,
    state longshore_task_state NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, actor, state)
);

-- Append-only between folds; read whole and emptied whole, so no index.
-- Vacuumed after a thousand dead rows rather than a fifth of the table, so
-- that the rows a fold removed do not pile up in front of readers.
CREATE TABLE longshore_task_count_changes (
    queue text NOT NULL,
    actor text NOT NULL,
    state longshore_task_state NOT NULL,
    n     bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

CREATE FUNCTION longshore_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO longshore_task_count_changes (queue, actor, state, n)
    SELECT queue, actor, state, count(*) FROM longshore_new_rows GROUP BY queue, actor, state;
    RETURN NULL;
END
$$;

CREATE FUNCTION longshore_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO longshore_task_count_changes (queue, actor, state, n)
    SELECT queue, actor, state, -count(*) FROM longshore_old_rows GROUP BY queue, actor, state;
    RETURN NULL;
END
$$;

-- Updates that leave queue, actor and state alone (heartbeats, logs,
-- cancel requests) net to nothing and append nothing.
CREATE FUNCTION longshore_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO longshore_task_count_changes (queue, actor, state, n)
    SELECT queue, actor, state, sum(n) FROM (
        SELECT queue, actor, state, -count(*) AS n FROM longshore_old_rows
        GROUP BY queue, actor, state
        UNION ALL
        SELECT queue, actor, state, count(*) FROM longshore_new_rows
        GROUP BY queue, actor, state
    ) AS changed
    GROUP BY queue, actor, state
    HAVING sum(n) <> 0;
    RETURN NULL;
END
$$;

-- Changes first: that waits for a fold in progress (which holds change
-- rows), so the totals deleted next include what it added.
CREATE FUNCTION longshore_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM longshore_task_count_changes;
    DELETE FROM longshore_task_counts;
    RETURN NULL;
END
$$;

-- Creating the triggers locks out writers until this migration commits,
-- so the first count below is exact.
CREATE TRIGGER longshore_tasks_count_insert AFTER INSERT ON longshore_tasks
    REFERENCING NEW TABLE AS longshore_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION longshore_count_inserted();
CREATE TRIGGER longshore_tasks_count_delete AFTER DELETE ON longshore_tasks
    REFERENCING OLD TABLE AS longshore_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION longshore_count_deleted();
CREATE TRIGGER longshore_tasks_count_update AFTER UPDATE ON longshore_tasks
    REFERENCING OLD TABLE AS longshore_old_rows NEW TABLE AS longshore_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION longshore_count_updated();
CREATE TRIGGER longshore_tasks_count_truncate AFTER TRUNCATE ON longshore_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION longshore_count_truncated();

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
