-- Cluster-wide roles held by one node at a time under a lease that it
-- renews (the leader that runs maintenance, and later the scheduler). A
-- role whose lease expired may be taken by any node.

CREATE TABLE longshore_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
