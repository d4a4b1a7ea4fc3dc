//! The statements of [`super`]. The table is small (operations are
//! started by hand, and purged): the primary key serves every statement.

/// Records a new operation, running.
pub(crate) const CREATE: &str = "
INSERT INTO longshore_operations (id, action, target, matched, started_by, node)
VALUES ($1, $2, $3, $4, $5, $6)";
/// The columns read back.
macro_rules! columns {
    () => {
        "SELECT id, action, target, matched, started_by, node, state, seen, done,
       cancel_requested, error, created_at, modified_at, finished_at
FROM longshore_operations "
    };
}
/// One operation.
pub(crate) const ONE: &str = concat!(columns!(), "WHERE id = $1");
/// The newest, newest first (ids are UUIDv7).
pub(crate) const NEWEST: &str = concat!(columns!(), "ORDER BY id DESC LIMIT $1");
/// Progress of a running operation; answers its cancel request.
pub(crate) const PROGRESS: &str = "
UPDATE longshore_operations SET seen = $2, done = $3, modified_at = now()
WHERE id = $1 AND state = 'running' RETURNING cancel_requested";
/// Ends a running operation.
pub(crate) const FINISH: &str = "
UPDATE longshore_operations
SET state = $2, error = $3, modified_at = now(), finished_at = now()
WHERE id = $1 AND state = 'running'";
/// Asks a running operation to stop.
pub(crate) const CANCEL: &str = "
UPDATE longshore_operations SET cancel_requested = true
WHERE id = $1 AND state = 'running'";
/// Operations that ended more than $1 milliseconds ago.
pub(crate) const PURGE: &str = "
DELETE FROM longshore_operations
WHERE finished_at < now() - $1 * interval '1 millisecond'";
