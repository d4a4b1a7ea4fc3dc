-- Runtime settings of queues, shared by every node: a paused queue's tasks
-- are not claimed until it is resumed. A queue without a row here has the
-- defaults (not paused).

CREATE TABLE longshore_queues (
    name        text PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false,
    modified_at timestamptz NOT NULL DEFAULT now()
);
