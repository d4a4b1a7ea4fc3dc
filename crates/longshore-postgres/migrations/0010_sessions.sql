-- Dashboard sessions: a browser signed in with an API token. Only the hash
-- of the session's secret (the cookie) is stored, so the table holds no
-- usable credential; any node of the cluster accepts the cookie. A session
-- ends when it expires, when its holder signs out, or when its token is
-- revoked (the lookup joins the token) or deleted (cascade).
CREATE TABLE longshore_sessions (
    secret_hash text PRIMARY KEY,
    token_id    uuid NOT NULL REFERENCES longshore_tokens (id) ON DELETE CASCADE,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- The purge of expired sessions walks this.
CREATE INDEX longshore_sessions_expiry ON longshore_sessions (expires_at);
