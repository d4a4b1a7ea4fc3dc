//! `/api/v1/stats` and `/api/v1/queues`: task counts, queues with their
//! depth by state, pause, resume and flush.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use longshore::core::{QueueSettings, StatsKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::model::StateCounts;
use super::state::ApiState;
use longshore::ops::bulk;

/// How to group counts.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GroupBy {
    /// One count per state.
    #[default]
    State,
    /// Per actor, by state.
    Actor,
    /// Per queue, by state.
    Queue,
}

/// Which counts.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// `state` (default), `actor` or `queue`.
    by: Option<GroupBy>,
}

/// The counts of one actor or queue.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatsGroup {
    /// The actor or queue.
    key: String,
    counts: StateCounts,
    total: i64,
}

/// Task counts.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stats {
    by: GroupBy,
    /// Every task, by state.
    counts: StateCounts,
    /// Every task.
    total: i64,
    /// Per actor or queue, by name (empty when grouping by state).
    groups: Vec<StatsGroup>,
}

/// Count tasks by state, or by actor or queue and state.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    operation_id = "task_stats",
    tag = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "The counts", body = Stats),
        (status = 400, description = "An unknown grouping or parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn stats(
    State(api): State<ApiState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let by = query.by.unwrap_or_default();
    let key = match by {
        GroupBy::State => StatsKey::State,
        GroupBy::Actor => StatsKey::Actor,
        GroupBy::Queue => StatsKey::Queue,
    };
    let mut counts = StateCounts::default();
    let mut groups: BTreeMap<String, StateCounts> = BTreeMap::new();
    for row in api.store.stats(key).await? {
        counts.add(row.state, row.count);
        if !matches!(by, GroupBy::State) {
            groups.entry(row.key).or_default().add(row.state, row.count);
        }
    }
    Ok(Json(Stats {
        by,
        total: counts.total(),
        counts,
        groups: groups
            .into_iter()
            .map(|(key, counts)| StatsGroup {
                key,
                total: counts.total(),
                counts,
            })
            .collect(),
    }))
}

/// What a recount did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Recount {
    /// The (queue, actor, state) groups counted.
    groups: u64,
    /// How long counting took, in seconds.
    seconds: f64,
}

/// Rebuild the task counts that stats read, from a count of the tasks.
///
/// A repair, needed only after task rows were changed with the database's
/// triggers off; task writes wait while it counts.
#[utoipa::path(
    post,
    path = "/api/v1/stats/recount",
    operation_id = "recount_tasks",
    tag = "stats",
    responses(
        (status = 200, description = "The counts were rebuilt", body = Recount),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
    )
)]
pub(crate) async fn recount(State(api): State<ApiState>) -> Result<Json<Recount>, ApiError> {
    let started = std::time::Instant::now();
    let groups = api.store.recount().await?;
    Ok(Json(Recount {
        groups,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// A queue: its settings and its tasks by state.
#[derive(Serialize, ToSchema)]
pub(crate) struct Queue {
    name: String,
    /// No node claims its tasks while it is paused.
    paused: bool,
    /// At most this many of its tasks run at once across the cluster
    /// (`null`: no cap of its own).
    max_running: Option<i32>,
    /// Its tasks by state.
    counts: StateCounts,
}

/// Every queue with tasks or settings.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueueList {
    /// By name.
    queues: Vec<Queue>,
}

/// Every queue that has tasks or settings, with its depth by state.
#[utoipa::path(
    get,
    path = "/api/v1/queues",
    operation_id = "list_queues",
    tag = "queues",
    responses(
        (status = 200, description = "The queues", body = QueueList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<QueueList>, ApiError> {
    let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
    for setting in api.store.queue_settings().await? {
        let queue = queue_entry(&mut queues, setting.name);
        queue.paused = setting.paused;
        queue.max_running = setting.max_running;
    }
    for row in api.store.stats(StatsKey::Queue).await? {
        queue_entry(&mut queues, row.key)
            .counts
            .add(row.state, row.count);
    }
    Ok(Json(QueueList {
        queues: queues.into_values().collect(),
    }))
}

fn queue_entry(queues: &mut BTreeMap<String, Queue>, name: String) -> &mut Queue {
    queues.entry(name.clone()).or_insert_with(|| Queue {
        name,
        paused: false,
        max_running: None,
        counts: StateCounts::default(),
    })
}

/// A queue's pause, as it is now.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueuePaused {
    name: String,
    paused: bool,
}

/// Stop every node from claiming the queue's tasks (running ones finish).
#[utoipa::path(
    post,
    path = "/api/v1/queues/{name}/pause",
    operation_id = "pause_queue",
    tag = "queues",
    params(("name" = String, Path, description = "The queue", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "Paused", body = QueuePaused),
        (status = 400, description = "An empty queue name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
    )
)]
pub(crate) async fn pause(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    set_paused(&api, name, true).await
}

/// Let nodes claim the queue's tasks again.
#[utoipa::path(
    post,
    path = "/api/v1/queues/{name}/resume",
    operation_id = "resume_queue",
    tag = "queues",
    params(("name" = String, Path, description = "The queue", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "Resumed", body = QueuePaused),
        (status = 400, description = "An empty queue name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
    )
)]
pub(crate) async fn resume(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    set_paused(&api, name, false).await
}

async fn set_paused(
    api: &ApiState,
    name: String,
    paused: bool,
) -> Result<Json<QueuePaused>, ApiError> {
    QueueSettings::check_name(&name)?;
    api.store.set_queue_paused(&name, paused).await?;
    Ok(Json(QueuePaused { name, paused }))
}

/// Whether to flush a queue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlushRequest {
    /// `true`: flush it.
    #[serde(default)]
    confirm: bool,
    /// `true`: only count what a flush would delete and ask to cancel.
    #[serde(default)]
    dry_run: bool,
}

/// What a flush matched and did.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueueFlush {
    name: String,
    /// True when nothing was changed, only counted.
    dry_run: bool,
    /// The queue's waiting and running tasks, counted before the flush.
    matched: StateCounts,
    /// Waiting (scheduled and queued) tasks deleted (0 on a dry run).
    deleted: u64,
    /// Running tasks whose workers were asked to cancel them (0 on a dry
    /// run).
    signalled: u64,
}

/// Flush a queue: delete its waiting (scheduled and queued) tasks with
/// their logs, and ask its running tasks to cancel.
///
/// The body is `{"confirm": true}`, or `{"dry_run": true}` to count first,
/// changing nothing. Finished tasks stay. Tasks enqueued meanwhile may
/// stay too: pause the queue first to hold its producers' new tasks.
#[utoipa::path(
    post,
    path = "/api/v1/queues/{name}/flush",
    operation_id = "flush_queue",
    tag = "queues",
    params(("name" = String, Path, description = "The queue", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    request_body(content = FlushRequest, description = "`{\"confirm\": true}` or `{\"dry_run\": true}`"),
    responses(
        (status = 200, description = "Counted (dry run) or flushed", body = QueueFlush),
        (status = 400, description = "An empty queue name, malformed JSON, an unknown field, or neither `confirm` nor `dry_run`; nothing was changed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn flush(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<FlushRequest>,
) -> Result<Json<QueueFlush>, ApiError> {
    QueueSettings::check_name(&name)?;
    match (request.dry_run, request.confirm) {
        (true, true) => {
            return Err(ApiError::invalid_body(
                "give \"dry_run\": true or \"confirm\": true, not both",
            ));
        }
        (false, false) => {
            return Err(ApiError::confirmation_required(
                "flushing a queue needs {\"confirm\": true} (or {\"dry_run\": true} to count first)",
            ));
        }
        _ => {}
    }
    let mut matched = StateCounts::default();
    for (state, n) in api.store.count_matching(&bulk::flushed_by(&name)).await? {
        matched.add(state, n);
    }
    let flushed = if request.dry_run {
        bulk::Flushed::default()
    } else {
        bulk::flush(api.store.as_ref(), &name, |done| {
            tracing::info!(queue = %name, deleted = done, "flushing queue");
        })
        .await?
    };
    Ok(Json(QueueFlush {
        name,
        dry_run: request.dry_run,
        matched,
        deleted: flushed.deleted,
        signalled: flushed.signalled,
    }))
}
