-- Cluster-wide roles held by one node at a time under a lease that it
-- renews (the leader that runs maintenance, and later the scheduler). A
-- role whose lease expired may be taken by any node. Times are INTEGER
-- microseconds.

CREATE TABLE longshore_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
