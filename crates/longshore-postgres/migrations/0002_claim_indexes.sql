-- Claims read queued tasks by urgency and due scheduled tasks by time, each
-- through an index of its own, so that a claim never walks the tasks that
-- are not due yet (one index over both states did, on every empty claim).

DROP INDEX longshore_tasks_claim;

CREATE INDEX longshore_tasks_queued
    ON longshore_tasks (queue, priority, run_at, id)
    WHERE state = 'queued';

CREATE INDEX longshore_tasks_due
    ON longshore_tasks (queue, run_at)
    WHERE state = 'scheduled';
