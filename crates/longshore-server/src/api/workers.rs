//! `/api/v1/workers`: the live nodes, who leads, and the capacity
//! settings.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::ApiState;

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

/// The live nodes, the roles they hold and the capacity settings.
#[derive(Serialize, ToSchema)]
pub(crate) struct Workers {
    /// By id.
    workers: Vec<Worker>,
    /// By role.
    leaders: Vec<Leader>,
    capacity: Capacity,
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
    }))
}
