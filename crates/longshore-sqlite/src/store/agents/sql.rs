//! The statements of [`super`].

/// The columns of an agent token, as `row::agent_token` reads them (never
/// its hash).
macro_rules! agent_token_columns {
    () => {
        "id, name, pool, created_at, expires_at, revoked_at"
    };
}

/// Makes pool `?1` with labels `?2` (a JSON array), cap `?3`, at `?4`; no
/// row when the name is taken.
pub(crate) const CREATE_POOL: &str = "
INSERT INTO longshore_pools (name, labels, max_running, created_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (name) DO NOTHING
RETURNING created_at";

/// Of the queues in the JSON array `?1`, those that belong to a pool other
/// than `?2`.
pub(crate) const QUEUES_TAKEN: &str = "
SELECT name, pool FROM longshore_queues
WHERE name IN (SELECT value FROM json_each(?1)) AND pool IS NOT NULL AND pool <> ?2
ORDER BY name";

/// Hands the queues in the JSON array `?1` to pool `?2` at `?3`.
pub(crate) const ASSIGN_QUEUES: &str = "
INSERT INTO longshore_queues (name, pool, modified_at)
SELECT value, ?2, ?3 FROM json_each(?1) WHERE true
ON CONFLICT (name) DO UPDATE SET pool = excluded.pool, modified_at = excluded.modified_at";

/// Every pool with its queues (a JSON array), by name.
pub(crate) const POOLS: &str = "
SELECT p.name, p.labels, p.max_running, p.created_at,
       (SELECT json_group_array(name)
        FROM (SELECT name FROM longshore_queues WHERE pool = p.name ORDER BY name)) AS queues
FROM longshore_pools AS p
ORDER BY p.name";

/// Gives pool `?1`'s queues back to inline workers; returns them.
pub(crate) const RELEASE_QUEUES: &str = "
UPDATE longshore_queues SET pool = NULL, modified_at = ?2 WHERE pool = ?1 RETURNING name";

/// Changes pool `?1`: labels `?2` (a JSON array) unless NULL, cap `?4`
/// when `?3`; no row when there is no such pool.
pub(crate) const UPDATE_POOL: &str = "
UPDATE longshore_pools
SET labels = COALESCE(?2, labels),
    max_running = CASE WHEN ?3 THEN ?4 ELSE max_running END
WHERE name = ?1
RETURNING name";

/// Gives the queues of pool `?1` not in the JSON array `?2` back to inline
/// workers at `?3`; returns them.
pub(crate) const RELEASE_OTHER_QUEUES: &str = "
UPDATE longshore_queues SET pool = NULL, modified_at = ?3
WHERE pool = ?1 AND name NOT IN (SELECT value FROM json_each(?2))
RETURNING name";

/// Deletes pool `?1`; no row when there is none.
pub(crate) const DELETE_POOL: &str = "DELETE FROM longshore_pools WHERE name = ?1 RETURNING name";

/// Whether pool `?1` exists.
pub(crate) const POOL_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM longshore_pools WHERE name = ?1)";

/// Stores agent token `?2` (id `?1`) for pool `?3` with hash `?4`, expiring
/// at `?5`, made at `?6`; no row when the name is taken.
pub(crate) const CREATE_AGENT_TOKEN: &str = concat!(
    "INSERT INTO longshore_agent_tokens (id, name, pool, secret_hash, expires_at, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (name) DO NOTHING
RETURNING ",
    agent_token_columns!()
);

/// Every agent token, by name.
pub(crate) const AGENT_TOKENS: &str = concat!(
    "SELECT ",
    agent_token_columns!(),
    " FROM longshore_agent_tokens ORDER BY name"
);

/// Revokes agent token `?1` at `?2`, keeping the first revocation's time.
pub(crate) const REVOKE_AGENT_TOKEN: &str = concat!(
    "UPDATE longshore_agent_tokens SET revoked_at = COALESCE(revoked_at, ?2)
WHERE name = ?1
RETURNING ",
    agent_token_columns!()
);

/// The agent token with hash `?1` (its unique index).
pub(crate) const AGENT_TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    agent_token_columns!(),
    " FROM longshore_agent_tokens WHERE secret_hash = ?1"
);

/// Deletes the agent tokens that expired before `?1`.
pub(crate) const DELETE_EXPIRED_AGENT_TOKENS: &str =
    "DELETE FROM longshore_agent_tokens WHERE expires_at < ?1";
