//! `/api/v1/workers`: the live nodes, who leads, and the capacity
//! settings; with the connected agents and the pools, in the seeds' shape.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::agents::Agent;
use super::error::{ApiError, ErrorBody};
use super::state::ApiState;
use longshore::ops;

/// A live worker node.
#[derive(Serialize, ToSchema)]
pub(crate) struct Worker {
    /// Its id, the lease owner of its tasks.
    id: String,
    host: String,
    /// The Longshore version it runs.
    version: String,
    /// The queues it serves.
    queues: Vec<String>,
    /// Its slots.
    concurrency: i32,
    /// Tasks it runs now.
    running: i32,
    /// The cluster-wide roles it holds, e.g. `maintenance`.
    leads: Vec<String>,
    /// The pool it serves, when it is an agent (its host then reads
    /// `agent (LANGUAGE)`); `null` for a worker node.
    pool: Option<String>,
    started_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

/// A cluster-wide role and its holder.
#[derive(Serialize, ToSchema)]
pub(crate) struct Leader {
    /// The role: `maintenance` or `scheduler`.
    role: String,
    /// The node holding it.
    holder: String,
    acquired_at: DateTime<Utc>,
    /// When its lease runs out unless renewed.
    expires_at: DateTime<Utc>,
}

/// A queue's own cap on running tasks.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueueCap {
    queue: String,
    max_running: i32,
}

/// The caps on running tasks, across the cluster.
#[derive(Serialize, ToSchema)]
pub(crate) struct Capacity {
    /// At most this many tasks run at once across all nodes (`null`: no cap).
    max_running: Option<i32>,
    /// Queues with a cap of their own, by name.
    queues: Vec<QueueCap>,
    /// Slots of the live workers, added up.
    total_slots: i64,
    /// Tasks the live workers run now, added up.
    running: i64,
}

/// A pool's name and labels.
#[derive(Serialize, ToSchema)]
pub(crate) struct PoolName {
    name: String,
    labels: Vec<String>,
}

/// A pool and what it does now.
#[derive(Serialize, ToSchema)]
pub(crate) struct PoolNow {
    pool: PoolName,
    /// Its agents connected now.
    live_agents: i64,
    /// Tasks of its queues running now.
    running_now: i64,
    /// Tasks of its queues queued now.
    pending_now: i64,
}

/// The live nodes, the roles they hold and the capacity settings.
#[derive(Serialize, ToSchema)]
pub(crate) struct Workers {
    /// Every live node, agents too, by id.
    workers: Vec<Worker>,
    /// By role.
    leaders: Vec<Leader>,
    capacity: Capacity,
    /// Slots of every live node, agents included: how many tasks the
    /// cluster can run at once (before caps).
    task_max_concurrent: i64,
    /// Slots of the inline worker nodes alone.
    task_inline_max_concurrent: i64,
    /// The connected agents, by id.
    agents: Vec<Agent>,
    /// Every pool, by name.
    pools: Vec<PoolNow>,
}

/// The live worker nodes, who leads, and the cluster's capacity settings.
#[utoipa::path(
    get,
    path = "/api/v1/workers",
    operation_id = "list_workers",
    tag = "workers",
    responses(
        (status = 200, description = "The live workers", body = Workers),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<Workers>, ApiError> {
    let workers = api.store.workers().await?;
    let leaders = api.store.leaders().await?;
    let pools = ops::agents::pool_status(api.store.as_ref()).await?;
    let task_max_concurrent = workers
        .iter()
        .map(|w| i64::from(w.presence.concurrency))
        .sum();
    let task_inline_max_concurrent = workers
        .iter()
        .filter(|w| w.presence.agent.is_none())
        .map(|w| i64::from(w.presence.concurrency))
        .sum();
    let agents = workers
        .iter()
        .cloned()
        .filter_map(ops::agents::ConnectedAgent::from_worker)
        .map(Agent::from)
        .collect();
    let cluster = api.store.cluster_settings().await?;
    let queues = api.store.queue_settings().await?;
    let capacity = Capacity {
        max_running: cluster.max_running,
        queues: queues
            .into_iter()
            .filter_map(|q| {
                q.max_running.map(|max_running| QueueCap {
                    queue: q.name,
                    max_running,
                })
            })
            .collect(),
        total_slots: workers
            .iter()
            .map(|w| i64::from(w.presence.concurrency))
            .sum(),
        running: workers.iter().map(|w| i64::from(w.presence.running)).sum(),
    };
    let workers = workers
        .into_iter()
        .map(|w| Worker {
            pool: w.presence.agent.map(|a| a.pool),
            leads: leaders
                .iter()
                .filter(|l| l.holder == w.presence.id)
                .map(|l| l.name.clone())
                .collect(),
            id: w.presence.id,
            host: w.presence.host,
            version: w.presence.version,
            queues: w.presence.queues,
            concurrency: w.presence.concurrency,
            running: w.presence.running,
            started_at: w.started_at,
            last_seen_at: w.last_seen_at,
        })
        .collect();
    Ok(Json(Workers {
        workers,
        leaders: leaders
            .into_iter()
            .map(|l| Leader {
                role: l.name,
                holder: l.holder,
                acquired_at: l.acquired_at,
                expires_at: l.expires_at,
            })
            .collect(),
        capacity,
        task_max_concurrent,
        task_inline_max_concurrent,
        agents,
        pools: pools
            .into_iter()
            .map(|status| PoolNow {
                pool: PoolName {
                    name: status.pool.name,
                    labels: status.pool.labels,
                },
                live_agents: status.live_agents,
                running_now: status.running_now,
                pending_now: status.pending_now,
            })
            .collect(),
    }))
}
