//! `/api/v1/operations`: bulk operations running in the background — the
//! deletions `DELETE /api/v1/tasks` starts, and the dashboard's bulk
//! actions: their progress, and a request to stop one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use longshore::core::Operation;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::ApiPath;
use super::state::ApiState;

/// Operations listed.
const LISTED: i64 = 100;

/// A bulk operation.
#[derive(Serialize, ToSchema)]
pub(crate) struct OperationView {
    id: Uuid,
    /// `retry`, `cancel` or `delete`.
    action: String,
    /// Which tasks, in words (the filter as it was given).
    target: String,
    /// `running`, `finished`, `cancelled` (stopped on request) or `failed`.
    state: String,
    /// Still `running` but without progress for a minute: the node that ran
    /// it stopped; what it did stays done.
    stalled: bool,
    /// How many tasks matched when it started, if they were counted.
    matched: Option<i64>,
    /// Tasks looked at so far.
    seen: i64,
    /// Tasks changed so far.
    done: i64,
    /// Someone asked it to stop.
    cancel_requested: bool,
    /// Why it failed.
    error: Option<String>,
    /// The token that started it.
    started_by: String,
    /// The node that runs it.
    node: String,
    created_at: DateTime<Utc>,
    /// Its last progress.
    modified_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Operation> for OperationView {
    fn from(op: Operation) -> Self {
        OperationView {
            stalled: op.stalled(Utc::now()),
            id: op.new.id,
            action: op.new.action.as_str().to_owned(),
            target: op.new.target,
            state: op.state.as_str().to_owned(),
            matched: op.new.matched,
            seen: op.seen,
            done: op.done,
            cancel_requested: op.cancel_requested,
            error: op.error,
            started_by: op.new.started_by,
            node: op.new.node,
            created_at: op.created_at,
            modified_at: op.modified_at,
            finished_at: op.finished_at,
        }
    }
}

/// The newest bulk operations.
#[derive(Serialize, ToSchema)]
pub(crate) struct OperationList {
    /// The newest 100, newest first.
    operations: Vec<OperationView>,
}

/// The newest bulk operations, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/operations",
    operation_id = "list_operations",
    tag = "operations",
    responses(
        (status = 200, description = "The newest 100 operations", body = OperationList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<OperationList>, ApiError> {
    let operations = api.store.operations(LISTED).await?;
    Ok(Json(OperationList {
        operations: operations.into_iter().map(OperationView::from).collect(),
    }))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::OperationNotFound,
        format!("no bulk operation has id {id}"),
    )
}

/// One bulk operation: poll it until its state is no longer `running`.
#[utoipa::path(
    get,
    path = "/api/v1/operations/{id}",
    operation_id = "show_operation",
    tag = "operations",
    params(("id" = Uuid, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "The operation", body = OperationView),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No operation has this id (code `operation_not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OperationView>, ApiError> {
    let op = api
        .store
        .operation(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(op.into()))
}

/// Ask a running operation to stop: its node stops after the batch it is
/// on (what it did stays done) and the operation ends `cancelled`.
#[utoipa::path(
    post,
    path = "/api/v1/operations/{id}/cancel",
    operation_id = "cancel_operation",
    tag = "operations",
    params(("id" = Uuid, Path, description = "The operation's id")),
    responses(
        (status = 202, description = "Asked; it stops after its current batch", body = OperationView),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No operation has this id (code `operation_not_found`)", body = ErrorBody),
        (status = 409, description = "It is not running any more (code `invalid_state`)", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    let asked = api.store.cancel_operation(id).await?;
    let op = api
        .store
        .operation(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !asked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidState,
            format!("bulk operation {id} is {}, not running", op.state.as_str()),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(op.into())))
}
