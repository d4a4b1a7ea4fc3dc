-- API tokens. Only the SHA-256 of a token's secret is stored (hex), never
-- the secret itself; the API looks a presented token up by that hash.
-- Revoked tokens stay, so that their names are not reused and their
-- history can be read.

CREATE TABLE longshore_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    scope        text NOT NULL CHECK (scope IN ('read', 'admin')),
    secret_hash  text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
