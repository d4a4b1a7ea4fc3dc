-- The audit trail: every change made through the API or the dashboard, who
-- made it (a token's name), what and on what, and how it ended. Ids are
-- UUIDv7 text, so they sort as the entries were recorded; times are
-- microseconds since the epoch.
CREATE TABLE longshore_audit (
    id     TEXT PRIMARY KEY,
    at     INTEGER NOT NULL,
    who    TEXT NOT NULL,
    via    TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL
) STRICT;

-- The purge of entries past their retention walks this.
CREATE INDEX longshore_audit_at ON longshore_audit (at);
