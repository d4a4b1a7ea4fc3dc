-- Dashboard sessions: a browser signed in with an API token. Only the hash
-- of the session's secret (the cookie) is stored, so the table holds no
-- usable credential. A session ends when it expires, when its holder signs
-- out, or when its token is revoked (the lookup joins the token) or deleted
-- (cascade). Times are microseconds since the epoch.
CREATE TABLE longshore_sessions (
    secret_hash TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES longshore_tokens (id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

-- The purge of expired sessions walks this.
CREATE INDEX longshore_sessions_expiry ON longshore_sessions (expires_at);
