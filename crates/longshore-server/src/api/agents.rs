//! `/api/v1/agents`: the agents connected now, to any gateway of the
//! cluster, and draining one, as `longshore agents list|drain` does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use longshore::ops::agents::ConnectedAgent;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::state::ApiState;
use longshore::ops;

/// An agent connected now.
#[derive(Serialize, ToSchema)]
pub(crate) struct Agent {
    /// Its id, the lease owner of its tasks.
    id: String,
    /// What it is written in, as it says (`rust`, `python`).
    #[serde(rename = "type")]
    kind: String,
    /// The pool it serves.
    pool: String,
    /// The labels it offers.
    labels: Vec<String>,
    /// Tasks it runs now.
    active_count: i32,
    /// Its slots.
    slots: i32,
    /// The version of its SDK.
    version: String,
    /// An operator asked it to drain: it finishes what it runs and takes
    /// nothing more.
    draining: bool,
    connected_at: DateTime<Utc>,
    /// When its gateway last recorded it as alive.
    last_seen: DateTime<Utc>,
}

impl From<ConnectedAgent> for Agent {
    fn from(agent: ConnectedAgent) -> Agent {
        Agent {
            id: agent.id,
            kind: agent.kind,
            pool: agent.pool,
            labels: agent.labels,
            active_count: agent.running,
            slots: agent.slots,
            version: agent.version,
            draining: agent.draining,
            connected_at: agent.connected_at,
            last_seen: agent.last_seen,
        }
    }
}

/// The agents connected now.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentList {
    /// By id.
    agents: Vec<Agent>,
}

/// The agents connected now, to any gateway of the cluster.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    operation_id = "list_agents",
    tag = "agents",
    responses(
        (status = 200, description = "The connected agents", body = AgentList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<AgentList>, ApiError> {
    let agents = ops::agents::connected(api.store.as_ref()).await?;
    Ok(Json(AgentList {
        agents: agents.into_iter().map(Agent::from).collect(),
    }))
}

/// Drain a connected agent, as `longshore agents drain` does: its gateway
/// reads the request at its next heartbeat, takes nothing more for it and
/// tells it; the agent finishes what it runs.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/drain",
    operation_id = "drain_agent",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id", min_length = 1, max_length = 200)),
    responses(
        (status = 202, description = "Asked; the agent drains within a heartbeat", body = Agent),
        (status = 400, description = "The id is a worker node's, not an agent's (send that process SIGTERM)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No agent with this id is connected (code `agent_not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn drain(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let agent = ops::agents::drain(api.store.as_ref(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(agent.into())))
}
