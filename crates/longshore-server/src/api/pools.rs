//! `/api/v1/pools`: agent pools with what they do now, and making one, as
//! `longshore pools list|add` does. A queue handed to a pool is run only by
//! that pool's agents; inline workers skip it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use longshore::core::NewPool as StoreNewPool;
use longshore::ops::agents::PoolStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::state::ApiState;
use longshore::ops;

/// An agent pool and what it does now.
#[derive(Serialize, ToSchema)]
pub(crate) struct Pool {
    name: String,
    /// The queues its agents serve (inline workers skip them).
    queues: Vec<String>,
    /// The labels its agents are expected to offer.
    labels: Vec<String>,
    /// At most this many of its tasks run at once, across its agents
    /// (`null`: no cap of its own).
    max_running: Option<i32>,
    created_at: DateTime<Utc>,
    /// Agents of the pool connected now, to any gateway of the cluster.
    live_agents: i64,
    /// Tasks of its queues running now.
    running_now: i64,
    /// Tasks of its queues waiting to run now (queued).
    pending_now: i64,
}

impl From<PoolStatus> for Pool {
    fn from(status: PoolStatus) -> Pool {
        Pool {
            name: status.pool.name,
            queues: status.pool.queues,
            labels: status.pool.labels,
            max_running: status.pool.max_running,
            created_at: status.pool.created_at,
            live_agents: status.live_agents,
            running_now: status.running_now,
            pending_now: status.pending_now,
        }
    }
}

/// Every pool.
#[derive(Serialize, ToSchema)]
pub(crate) struct PoolList {
    /// By name.
    pools: Vec<Pool>,
}

/// A pool to make.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPool {
    /// Letters, digits, `-`, `_` and `.`; at most 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    name: String,
    /// Its queues (1 to 50), none of which may belong to another pool.
    #[schema(min_items = 1, max_items = 50)]
    queues: Vec<String>,
    /// The labels its agents are expected to offer (at most 50).
    #[serde(default)]
    #[schema(max_items = 50)]
    labels: Vec<String>,
    /// At most this many of its tasks run at once (`null` or absent: no
    /// cap of its own).
    #[serde(default)]
    #[schema(minimum = 0)]
    max_running: Option<i32>,
}

/// Every pool, with its live agents and its running and waiting tasks.
#[utoipa::path(
    get,
    path = "/api/v1/pools",
    operation_id = "list_pools",
    tag = "agents",
    responses(
        (status = 200, description = "The pools", body = PoolList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<PoolList>, ApiError> {
    let pools = ops::agents::pool_status(api.store.as_ref()).await?;
    Ok(Json(PoolList {
        pools: pools.into_iter().map(Pool::from).collect(),
    }))
}

/// Make a pool and hand it its queues, as `longshore pools add` does: from
/// the answer on, inline workers no longer claim from those queues.
#[utoipa::path(
    post,
    path = "/api/v1/pools",
    operation_id = "create_pool",
    tag = "agents",
    request_body = NewPool,
    responses(
        (status = 201, description = "Made", body = Pool),
        (status = 400, description = "Malformed JSON, an unknown field, a malformed name or label, no queue, a queue listed twice or one that belongs to another pool; nothing was written", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 409, description = "A pool of this name exists (code `conflict`); nothing was written", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<NewPool>,
) -> Result<(StatusCode, Json<Pool>), ApiError> {
    let new = StoreNewPool {
        name: request.name,
        queues: request.queues,
        labels: request.labels,
        max_running: request.max_running,
    };
    new.validate()?;
    let pool = api.store.create_pool(&new).await?;
    let status = ops::agents::pool_status(api.store.as_ref())
        .await?
        .into_iter()
        .find(|status| status.pool.name == pool.name)
        .unwrap_or(PoolStatus {
            pool,
            live_agents: 0,
            running_now: 0,
            pending_now: 0,
        });
    Ok((StatusCode::CREATED, Json(status.into())))
}
