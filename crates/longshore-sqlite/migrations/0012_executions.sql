-- Attempts and executions apart (see longshore_core::lifecycle). `attempt`
-- counts the executions that count against `max_attempts`; the executions
-- that do not (handed back by their worker, or used before an operator's
-- retry) are counted here. A task's execution number, which its logs are
-- grouped by and its completions fenced on, is `attempt +
-- uncounted_executions`: for every existing task that is its old attempt
-- number, so no row is rewritten.
ALTER TABLE longshore_tasks
    ADD COLUMN uncounted_executions INTEGER NOT NULL DEFAULT 0;

ALTER TABLE longshore_task_logs RENAME COLUMN attempt TO execution;
