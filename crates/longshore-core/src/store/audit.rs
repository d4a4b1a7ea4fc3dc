//! The audit trail: every change made through the API or the dashboard —
//! who (the token's name), what (the method and route), on what (the path
//! and query: the task, schedule, queue or setting, or a bulk action's
//! filter), when, and how it ended (the answer's status). Admins list it;
//! the maintenance purge deletes entries past `retention.audit`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;

/// An entry to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The token's name.
    pub who: String,
    /// Through what: `api` or `dashboard`.
    pub via: String,
    /// The method and route, e.g. `POST /api/v1/tasks/{id}/retry`.
    pub action: String,
    /// The path and query asked, e.g. `/api/v1/tasks/0190…/retry`.
    pub target: String,
    /// The answer's HTTP status.
    pub status: u16,
}

impl NewAuditEntry {
    /// The most bytes of a target kept (a query may be long).
    pub const MAX_TARGET_BYTES: usize = 2048;

    /// An entry; a target longer than [`NewAuditEntry::MAX_TARGET_BYTES`]
    /// is cut at a character boundary.
    pub fn new(
        who: impl Into<String>,
        via: &str,
        action: impl Into<String>,
        target: &str,
        status: u16,
    ) -> NewAuditEntry {
        let mut end = target.len().min(Self::MAX_TARGET_BYTES);
        while !target.is_char_boundary(end) {
            end -= 1;
        }
        NewAuditEntry {
            who: who.into(),
            via: via.to_owned(),
            action: action.into(),
            target: target[..end].to_owned(),
            status,
        }
    }
}

/// A recorded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// UUIDv7: entries sort by it as by time.
    pub id: Uuid,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The entry as it was given.
    pub entry: NewAuditEntry,
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records a change.
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` entries, newest first, older than entry `before` when
    /// given (the previous page's last).
    async fn audit_entries(
        &self,
        limit: i64,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes up to `limit` entries recorded more than `older_than` ago;
    /// returns how many.
    async fn purge_audit(&self, older_than: Duration, limit: i64) -> Result<u64, StoreError>;
}
