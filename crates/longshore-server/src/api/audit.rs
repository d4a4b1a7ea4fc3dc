//! `/api/v1/audit`: the audit trail — every change made through the API or
//! the dashboard, newest first. Admin only, reading too (see
//! `auth.rs`): it names every token and what it did.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::state::ApiState;

/// The most entries one page may hold.
const MAX_PAGE: i64 = 1000;
/// Entries on a page unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 100;

/// Which entries.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries older than this one: pass the previous page's
    /// `next_before` to get the next page.
    before: Option<Uuid>,
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One change.
#[derive(Serialize, ToSchema)]
pub(crate) struct Entry {
    id: Uuid,
    at: DateTime<Utc>,
    /// The token's name.
    who: String,
    /// `api` or `dashboard`.
    via: String,
    /// The method and route, e.g. `POST /api/v1/tasks/{id}/retry`.
    action: String,
    /// The path and query asked: which task, schedule, queue or setting,
    /// or a bulk action's filter.
    target: String,
    /// The answer's HTTP status: how it ended.
    status: u16,
}

/// A page of the audit trail.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<Entry>,
    /// The `before` of the next page; `null` when this is the last one.
    next_before: Option<Uuid>,
}

/// The audit trail, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit trail", body = AuditPage),
        (status = 400, description = "A limit out of range or a malformed `before`", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read (the audit trail needs an admin token)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<ApiState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let mut entries = api.store.audit_entries(limit + 1, query.before).await?;
    let more = i64::try_from(entries.len()).unwrap_or(i64::MAX) > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_before = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries: entries
            .into_iter()
            .map(|e| Entry {
                id: e.id,
                at: e.at,
                who: e.entry.who,
                via: e.entry.via,
                action: e.entry.action,
                target: e.entry.target,
                status: e.entry.status,
            })
            .collect(),
        next_before,
    }))
}
