//! The statements of [`super`].

//! Every statement the engine runs. The indexes each one relies on are
//! named beside it; they are created in `migrations/`.
//!
//! Conventions: the caller passes "now" (`microseconds since the epoch`) as
//! a parameter, so one statement sees one instant and every process on the
//! machine shares the clock; many rows travel as one JSON array parameter
//! read with `json_each`, SQLite's counterpart of PostgreSQL's `unnest`.

/// The columns of a token, as `row::token` reads them (never its hash).
macro_rules! token_columns {
    () => {
        "id, name, scope, created_at, last_used_at, revoked_at"
    };
}

/// Stores token `?2` (id `?1`, scope `?3`, secret hash `?4`) at time `?5`;
/// no row when the name is taken.
pub(crate) const CREATE_TOKEN: &str = concat!(
    "INSERT INTO longshore_tokens (id, name, scope, secret_hash, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (name) DO NOTHING
RETURNING ",
    token_columns!()
);

/// Every token, by name.
pub(crate) const TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM longshore_tokens ORDER BY name"
);

/// Revokes token `?1` at time `?2`, keeping the first revocation's time;
/// no row when no token has the name.
pub(crate) const REVOKE_TOKEN: &str = concat!(
    "UPDATE longshore_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1
RETURNING ",
    token_columns!()
);

/// The token that is not revoked whose secret hashes to `?1` (the unique
/// index on `secret_hash`).
pub(crate) const TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM longshore_tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"
);

/// Records a use of token `?1` at time `?2` unless one was recorded after
/// `?3`.
pub(crate) const TOUCH_TOKEN: &str = "
UPDATE longshore_tokens SET last_used_at = ?2
WHERE id = ?1 AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at < ?3)";

/// Opens a session: secret hash `?1`, token `?2`, CSRF token `?3`, at time
/// `?4`, until `?5`.
pub(crate) const CREATE_SESSION: &str = "
INSERT INTO longshore_sessions (secret_hash, token_id, csrf, created_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5)";

/// The session whose secret hashes to `?1`, with its token, while it has
/// not expired at time `?2` and the token is not revoked.
pub(crate) const SESSION: &str = "
SELECT t.id, t.name, t.scope, t.created_at, t.last_used_at, t.revoked_at, s.csrf, s.expires_at
FROM longshore_sessions AS s JOIN longshore_tokens AS t ON t.id = s.token_id
WHERE s.secret_hash = ?1 AND s.expires_at > ?2 AND t.revoked_at IS NULL";

/// Ends the session whose secret hashes to `?1`.
pub(crate) const END_SESSION: &str = "DELETE FROM longshore_sessions WHERE secret_hash = ?1";

/// Deletes up to `?2` sessions expired at time `?1`
/// (`longshore_sessions_expiry`).
pub(crate) const PURGE_SESSIONS: &str = "
DELETE FROM longshore_sessions WHERE secret_hash IN (
    SELECT secret_hash FROM longshore_sessions WHERE expires_at <= ?1
    ORDER BY expires_at LIMIT ?2)";
