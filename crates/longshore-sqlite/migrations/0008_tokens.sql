-- API tokens. Only the SHA-256 of a token's secret is stored (hex), never
-- the secret itself; the API looks a presented token up by that hash.
-- Revoked tokens stay, so that their names are not reused and their
-- history can be read.
--
-- The same table as the PostgreSQL engine's, in SQLite's types: ids are
-- hyphenated UUID text, times INTEGER microseconds since the Unix epoch.

CREATE TABLE longshore_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
