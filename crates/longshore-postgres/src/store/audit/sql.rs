//! The statements of [`super`].

/// Records entry `$1` (id) by `$2` via `$3`: action `$4` on `$5`, status `$6`.
pub(crate) const RECORD: &str = "
INSERT INTO longshore_audit (id, who, via, action, target, status)
VALUES ($1, $2, $3, $4, $5, $6)";

/// Up to `$2` entries older than entry `$1` (or every one when null),
/// newest first (`longshore_audit_pkey`).
pub(crate) const ENTRIES: &str = "
SELECT id, at, who, via, action, target, status FROM longshore_audit
WHERE $1::uuid IS NULL OR id < $1
ORDER BY id DESC LIMIT $2";

/// Deletes up to `$2` entries recorded more than `$1` ms ago
/// (`longshore_audit_at`).
pub(crate) const PURGE: &str = "
DELETE FROM longshore_audit WHERE id IN (
    SELECT id FROM longshore_audit WHERE at < now() - $1 * interval '1 millisecond'
    ORDER BY at LIMIT $2)";
