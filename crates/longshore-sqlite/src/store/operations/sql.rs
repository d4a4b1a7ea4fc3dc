//! The statements of [`super`]. The table is small (operations are
//! started by hand, and purged): the primary key serves every statement.

/// Records a new operation, running: ?1 id, ?2 action, ?3 target,
/// ?4 matched, ?5 started by, ?6 node, ?7 now.
pub(crate) const CREATE: &str = "
INSERT INTO longshore_operations
    (id, action, target, matched, started_by, node, created_at, modified_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";
/// The columns read back.
macro_rules! columns {
    () => {
        "SELECT id, action, target, matched, started_by, node, state, seen, done,
       cancel_requested, error, created_at, modified_at, finished_at
FROM longshore_operations "
    };
}
/// One operation.
pub(crate) const ONE: &str = concat!(columns!(), "WHERE id = ?1");
/// The newest, newest first (ids are UUIDv7, whose text sorts by time).
pub(crate) const NEWEST: &str = concat!(columns!(), "ORDER BY id DESC LIMIT ?1");
/// Progress of a running operation (?4 now); answers its cancel request.
pub(crate) const PROGRESS: &str = "
UPDATE longshore_operations SET seen = ?2, done = ?3, modified_at = ?4
WHERE id = ?1 AND state = 'running' RETURNING cancel_requested";
/// Ends a running operation (?4 now).
pub(crate) const FINISH: &str = "
UPDATE longshore_operations SET state = ?2, error = ?3, modified_at = ?4, finished_at = ?4
WHERE id = ?1 AND state = 'running'";
/// Asks a running operation to stop.
pub(crate) const CANCEL: &str = "
UPDATE longshore_operations SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'";
/// Operations that ended before ?1.
pub(crate) const PURGE: &str = "DELETE FROM longshore_operations WHERE finished_at < ?1";
