-- Purge of finished tasks past their retention walks each terminal state's
-- tasks oldest first.

CREATE INDEX longshore_tasks_finished
    ON longshore_tasks (state, finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
