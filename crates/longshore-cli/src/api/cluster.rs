//! `/api/v1/workers` and `/api/v1/schedules`: the live nodes, who leads,
//! the capacity settings, and the cron schedules.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::model::RelatedObject;

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
pub(crate) async fn workers(State(api): State<ApiState>) -> Result<Json<Workers>, ApiError> {
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

/// What a run does while the previous one is still active.
#[derive(Clone, Copy, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Overlap {
    /// The new run waits until the previous one finishes (runs due
    /// meanwhile collapse into it).
    Queue,
    /// The new run is dropped and counted as skipped.
    Skip,
    /// The previous run is cancelled and the new one starts.
    Replace,
}

impl From<Overlap> for longshore::core::Overlap {
    fn from(overlap: Overlap) -> longshore::core::Overlap {
        match overlap {
            Overlap::Queue => longshore::core::Overlap::Queue,
            Overlap::Skip => longshore::core::Overlap::Skip,
            Overlap::Replace => longshore::core::Overlap::Replace,
        }
    }
}

impl From<longshore::core::Overlap> for Overlap {
    fn from(overlap: longshore::core::Overlap) -> Overlap {
        match overlap {
            longshore::core::Overlap::Queue => Overlap::Queue,
            longshore::core::Overlap::Skip => Overlap::Skip,
            longshore::core::Overlap::Replace => Overlap::Replace,
        }
    }
}

/// A cron schedule.
#[derive(Serialize, ToSchema)]
pub(crate) struct Schedule {
    name: String,
    /// The actor each run calls.
    actor: String,
    #[schema(value_type = Object)]
    args: serde_json::Value,
    queue: String,
    priority: i16,
    max_attempts: i32,
    time_limit_ms: Option<i64>,
    related: Option<RelatedObject>,
    /// The cron expression.
    cron: String,
    /// The IANA time zone it is read in.
    time_zone: String,
    overlap: Overlap,
    paused: bool,
    /// One of Longshore's own maintenance schedules.
    builtin: bool,
    next_run_at: Option<DateTime<Utc>>,
    last_run_at: Option<DateTime<Utc>>,
    /// The task its last run created.
    last_task_id: Option<Uuid>,
    /// A run by hand is waiting.
    run_requested: bool,
    /// Runs dropped by the `skip` policy.
    skipped_runs: i64,
    last_skipped_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
}

impl From<longshore::core::Schedule> for Schedule {
    fn from(s: longshore::core::Schedule) -> Schedule {
        Schedule {
            name: s.def.name,
            actor: s.def.actor,
            args: s.def.args,
            queue: s.def.queue,
            priority: s.def.priority,
            max_attempts: s.def.max_attempts,
            time_limit_ms: s.def.time_limit_ms,
            related: s.def.related.map(|r| RelatedObject {
                kind: r.kind,
                id: r.id,
            }),
            cron: s.def.cron,
            time_zone: s.def.time_zone,
            overlap: s.def.overlap.into(),
            paused: s.paused,
            builtin: s.builtin,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            last_task_id: s.last_task_id,
            run_requested: s.run_requested,
            skipped_runs: s.skipped_runs,
            last_skipped_at: s.last_skipped_at,
            created_at: s.created_at,
            modified_at: s.modified_at,
        }
    }
}

/// Every schedule.
#[derive(Serialize, ToSchema)]
pub(crate) struct ScheduleList {
    /// By name.
    schedules: Vec<Schedule>,
}

/// Every schedule, the built-in maintenance ones too.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    operation_id = "list_schedules",
    tag = "schedules",
    responses(
        (status = 200, description = "The schedules", body = ScheduleList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn schedules(State(api): State<ApiState>) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = api
        .store
        .schedules()
        .await?
        .into_iter()
        .map(Schedule::from)
        .collect();
    Ok(Json(ScheduleList { schedules }))
}
