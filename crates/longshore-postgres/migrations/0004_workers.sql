-- The worker nodes that are alive: each one records itself at start and on
-- every heartbeat, and removes itself when it stops; rows of nodes that
-- died are removed once they have not been seen for a lease.

CREATE TABLE longshore_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    version      text NOT NULL,
    queues       text[] NOT NULL,
    concurrency  integer NOT NULL,
    running      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

CREATE INDEX longshore_workers_seen ON longshore_workers (last_seen_at);
