-- The worker nodes that are alive: each one records itself at start and on
-- every heartbeat, and removes itself when it stops; rows of nodes that
-- died are removed once they have not been seen for a lease. Queues are a
-- JSON array, times INTEGER microseconds.

CREATE TABLE longshore_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    version      TEXT NOT NULL,
    queues       TEXT NOT NULL,
    concurrency  INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX longshore_workers_seen ON longshore_workers (last_seen_at);
