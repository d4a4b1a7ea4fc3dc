-- The audit trail: every change made through the API or the dashboard, who
-- made it (a token's name), what and on what, and how it ended. Ids are
-- UUIDv7, so they sort as the entries were recorded.
CREATE TABLE longshore_audit (
    id     uuid PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    who    text NOT NULL,
    via    text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    status integer NOT NULL
);

-- The purge of entries past their retention walks this.
CREATE INDEX longshore_audit_at ON longshore_audit (at);
