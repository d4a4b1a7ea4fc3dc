-- Runtime settings of queues, shared by every process: a paused queue's
-- tasks are not claimed until it is resumed. A queue without a row here has
-- the defaults (not paused). Times are INTEGER microseconds.

CREATE TABLE longshore_queues (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    modified_at INTEGER NOT NULL
) STRICT;
