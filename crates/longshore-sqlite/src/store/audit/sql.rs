//! The statements of [`super`].

/// Records entry `?1` (id) at time `?2` by `?3` via `?4`: action `?5` on
/// `?6`, status `?7`.
pub(crate) const RECORD: &str = "
INSERT INTO longshore_audit (id, at, who, via, action, target, status)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Up to `?2` entries older than entry `?1` (or every one when null),
/// newest first (the primary key: UUIDv7 text sorts by time).
pub(crate) const ENTRIES: &str = "
SELECT id, at, who, via, action, target, status FROM longshore_audit
WHERE ?1 IS NULL OR id < ?1
ORDER BY id DESC LIMIT ?2";

/// Deletes up to `?2` entries recorded before time `?1`
/// (`longshore_audit_at`).
pub(crate) const PURGE: &str = "
DELETE FROM longshore_audit WHERE id IN (
    SELECT id FROM longshore_audit WHERE at < ?1 ORDER BY at LIMIT ?2)";
