//! `/api/v1/schedules/…`: list, create, show, change, pause, resume, run
//! and delete cron schedules, with the checks and the words of
//! `longshore schedules add|edit|…` (see [`longshore::ops::schedules`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use longshore::core::PutMode;
use longshore::{Related, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, optional_object};
use super::model::{RelatedObject, Task};
use super::state::ApiState;
use longshore::ops::Wording;
use longshore::ops::schedules::{self as ops, Changes, DeleteRefusal, check_deletable};

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
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = api
        .store
        .schedules()
        .await?
        .into_iter()
        .map(Schedule::from)
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

/// A field that may be given as `null`: absent is `None`, `null` is
/// `Some(None)`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// As [`nullable`], for an object.
fn nullable_object<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    optional_object(deserializer).map(Some)
}

/// A schedule to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSchedule {
    /// Unique across the cluster; `longshore.` is reserved.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    name: String,
    /// The actor each run calls.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    actor: String,
    /// Cron expression: five fields (a leading seconds field is accepted)
    /// or an alias such as `@hourly`.
    #[schema(min_length = 1)]
    cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[schema(min_length = 1)]
    time_zone: Option<String>,
    /// Arguments of each run: a JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    args: Option<serde_json::Value>,
    /// Queue each run goes to (default `default`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    queue: Option<String>,
    /// Priority of each run, lower first (default 0).
    priority: Option<i16>,
    /// Executions each run may have (default: the server's
    /// `retry.max_attempts`).
    #[schema(minimum = 1, maximum = 10000)]
    max_attempts: Option<i32>,
    /// Time limit of each execution in milliseconds (default: the worker's).
    #[schema(minimum = 1)]
    time_limit_ms: Option<i64>,
    /// The object each run works on.
    #[serde(default, deserialize_with = "optional_object")]
    related: Option<RelatedObject>,
    /// Overlap policy (default `queue`).
    overlap: Option<Overlap>,
    /// Create it paused: it runs only by hand until resumed.
    #[serde(default)]
    paused: bool,
    /// Accept an actor that is not built in (one your own workers
    /// register).
    #[serde(default)]
    any_actor: bool,
}

/// Changes to a schedule: only the fields given; `null` clears
/// `time_limit_ms` and `related`. A built-in schedule takes only `cron`
/// and `time_zone`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleChanges {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    actor: Option<String>,
    #[schema(min_length = 1)]
    cron: Option<String>,
    #[schema(min_length = 1)]
    time_zone: Option<String>,
    // `default`, or the schema would list `args` as required.
    #[serde(default)]
    #[schema(value_type = Object)]
    args: Option<serde_json::Value>,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    queue: Option<String>,
    priority: Option<i16>,
    #[schema(minimum = 1, maximum = 10000)]
    max_attempts: Option<i32>,
    /// `null`: the worker's.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    time_limit_ms: Option<Option<i64>>,
    /// `null`: standalone.
    #[serde(default, deserialize_with = "nullable_object")]
    #[schema(value_type = Option<RelatedObject>)]
    related: Option<Option<RelatedObject>>,
    overlap: Option<Overlap>,
    /// Accept an actor that is not built in.
    #[serde(default)]
    any_actor: bool,
}

fn args(args: Option<serde_json::Value>) -> Result<Option<serde_json::Value>, ApiError> {
    match args {
        Some(args) if !args.is_object() => Err(ApiError::invalid_input(
            "args must be a JSON object, e.g. {\"ms\": 100}",
        )),
        other => Ok(other),
    }
}

fn related(related: RelatedObject) -> Result<Related, ApiError> {
    if related.kind.is_empty() || related.id.is_empty() {
        return Err(ApiError::invalid_input(
            "related needs both a kind and an id",
        ));
    }
    Ok(Related {
        kind: related.kind,
        id: related.id,
    })
}

/// One schedule and its most recent runs.
#[derive(Serialize, ToSchema)]
pub(crate) struct ScheduleDetail {
    schedule: Schedule,
    /// Up to 10, newest first; none for a built-in schedule.
    recent_runs: Vec<Task>,
}

/// What running a schedule by hand did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub(crate) enum RunOutcome {
    /// A task was enqueued (for a built-in schedule: the run is requested
    /// of the maintenance leader, and `task` is nil).
    Enqueued {
        task: Uuid,
        /// The previous run, cancelled by the `replace` policy.
        replaced: Option<Uuid>,
    },
    /// The previous run is still active (policy `queue`): this one runs
    /// once it finishes.
    Waiting { behind: Uuid },
    /// The previous run is still active (policy `skip`): this one was
    /// dropped and counted.
    Skipped { behind: Uuid },
    /// Nothing done: the schedule changed meanwhile.
    Stale,
}

impl From<longshore::core::FireOutcome> for RunOutcome {
    fn from(outcome: longshore::core::FireOutcome) -> RunOutcome {
        use longshore::core::FireOutcome as F;
        match outcome {
            F::Enqueued { task, replaced } => RunOutcome::Enqueued { task, replaced },
            F::Waiting { behind } => RunOutcome::Waiting { behind },
            F::Skipped { behind } => RunOutcome::Skipped { behind },
            F::Stale => RunOutcome::Stale,
        }
    }
}

/// Whether to delete.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// `true`: really delete it.
    #[serde(default)]
    confirm: bool,
}

/// A deleted schedule.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deleted {
    name: String,
    deleted: bool,
}

async fn load(api: &ApiState, name: &str) -> Result<longshore::core::Schedule, ApiError> {
    Ok(api
        .store
        .schedule(name)
        .await?
        .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))?)
}

/// Create a schedule, checked as `longshore schedules add` checks it.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    operation_id = "create_schedule",
    tag = "schedules",
    request_body = NewSchedule,
    responses(
        (status = 201, description = "Created", body = Schedule),
        (status = 400, description = "Malformed JSON, an unknown field, an invalid cron expression or time zone, an unknown actor or bad arguments; nothing was written", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 409, description = "A schedule of this name exists", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<NewSchedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let changes = Changes {
        actor: Some(request.actor),
        cron: Some(request.cron),
        time_zone: request.time_zone,
        args: args(request.args)?,
        queue: request.queue,
        priority: request.priority,
        max_attempts: request.max_attempts,
        time_limit_ms: request.time_limit_ms.map(Some),
        related: request.related.map(related).transpose()?.map(Some),
        overlap: request.overlap.map(Into::into),
        any_actor: request.any_actor,
    };
    let (def, next) = ops::new_schedule(
        &request.name,
        changes,
        api.default_max_attempts,
        api.actors.as_ref(),
        Wording::Api,
    )?;
    let schedule = ops::create(api.store.as_ref(), &def, next, request.paused).await?;
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

/// One schedule, with its most recent runs.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}",
    operation_id = "show_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ScheduleDetail>, ApiError> {
    let schedule = load(&api, &name).await?;
    let runs = ops::recent_runs(api.store.as_ref(), &name).await?;
    let now = Utc::now();
    Ok(Json(ScheduleDetail {
        schedule: schedule.into(),
        recent_runs: runs.into_iter().map(|t| Task::new(t, now)).collect(),
    }))
}

/// Change a schedule: only the fields given, checked as
/// `longshore schedules edit` checks them. A new cron expression or time
/// zone moves its next run.
#[utoipa::path(
    patch,
    path = "/api/v1/schedules/{name}",
    operation_id = "change_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    request_body = ScheduleChanges,
    responses(
        (status = 200, description = "Changed (or unchanged: the same values)", body = Schedule),
        (status = 400, description = "Malformed JSON, an unknown field, no field, an invalid value, or a field a built-in schedule does not take; nothing was written", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<ScheduleChanges>,
) -> Result<Json<Schedule>, ApiError> {
    let changes = Changes {
        actor: request.actor,
        cron: request.cron,
        time_zone: request.time_zone,
        args: args(request.args)?,
        queue: request.queue,
        priority: request.priority,
        max_attempts: request.max_attempts,
        time_limit_ms: request.time_limit_ms,
        related: request
            .related
            .map(|r| r.map(related).transpose())
            .transpose()?,
        overlap: request.overlap.map(Into::into),
        any_actor: request.any_actor,
    };
    let old = load(&api, &name).await?;
    let (def, next) = ops::edited_schedule(&old, changes, api.actors.as_ref(), Wording::Api)?;
    if def == old.def {
        return Ok(Json(old.into()));
    }
    let schedule = api.store.put_schedule(&def, PutMode::Update, next).await?;
    Ok(Json(schedule.into()))
}

/// Stop a schedule from running on its own (it can still be run by hand).
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/pause",
    operation_id = "pause_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "Paused", body = Schedule),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn pause(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        api.store.set_schedule_paused(&name, true).await?.into(),
    ))
}

/// Let a paused schedule run again: it runs at once, then on its cron.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/resume",
    operation_id = "resume_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "Resumed", body = Schedule),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn resume(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        api.store.set_schedule_paused(&name, false).await?.into(),
    ))
}

/// Run a schedule now, paused or not, under its overlap policy.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/run",
    operation_id = "run_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
    responses(
        (status = 200, description = "What the run did", body = RunOutcome),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn run(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RunOutcome>, ApiError> {
    let (_, outcome) = ops::fire_now(api.store.as_ref(), &name).await?;
    Ok(Json(outcome.into()))
}

/// Delete a schedule (not a built-in one) with `?confirm=true`. The tasks
/// it created stay.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{name}",
    operation_id = "delete_schedule",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule", min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"), DeleteQuery),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 400, description = "A built-in schedule, or no `confirm=true`; nothing was changed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Json<Deleted>, ApiError> {
    match check_deletable(&name, query.confirm, Wording::Api) {
        Err(DeleteRefusal::Builtin(why)) => return Err(ApiError::invalid_input(why)),
        Err(DeleteRefusal::Unconfirmed(why)) => return Err(ApiError::confirmation_required(why)),
        Ok(()) => {}
    }
    api.store.delete_schedule(&name).await?;
    Ok(Json(Deleted {
        name,
        deleted: true,
    }))
}
