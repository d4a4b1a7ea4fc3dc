//! `/api/v1/tasks`: list, show, enqueue, retry, cancel, delete by filter.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use longshore::core::{CancelResult, TaskFilter, TaskSelection, TokenInfo};
use longshore::ops::operations::{self, Job, Starter};
use longshore::{NewTask, Related, StoreError, TaskState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Object, optional_object};
use super::model::{Execution, RelatedObject, StateCounts, Task, executions};
use super::operations::OperationView;
use super::state::ApiState;
use longshore::ops::{self, ActorCatalog, Wording, filters};

/// The most tasks one page may hold.
pub(crate) const MAX_PAGE: i64 = 1000;
/// Tasks on a page unless `limit` says otherwise.
pub(crate) const DEFAULT_PAGE: i64 = 50;
/// The most tasks one enqueue may carry: they are inserted in one
/// statement, all or none.
pub(crate) const MAX_BULK: usize = 1000;

/// Which tasks to list, newest first.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only these states, comma-separated, e.g. `queued,running`.
    #[param(min_length = 1, example = "queued,running")]
    state: Option<String>,
    /// Only this actor.
    #[param(min_length = 1)]
    actor: Option<String>,
    /// Only this queue.
    #[param(min_length = 1)]
    queue: Option<String>,
    /// Only tasks created by this schedule.
    #[param(min_length = 1)]
    schedule: Option<String>,
    /// Only these statuses, comma-separated: `scheduled`, `waiting_to_run`,
    /// `running`, `successful`, `warning`, `error`, `cancelled`.
    #[param(min_length = 1, example = "warning,error")]
    status: Option<String>,
    /// Only tasks working on objects of this kind (`KIND`), or on one
    /// object (`KIND:ID`).
    #[param(min_length = 1, example = "user:42")]
    related: Option<String>,
    /// Only tasks that work on no object (not with `related`).
    standalone: Option<bool>,
    /// Leave out successful tasks; succeeded tasks that logged a warning or
    /// an error stay.
    exclude_successful: Option<bool>,
    /// Only tasks created at or after this: an RFC 3339 time (encode a `+`
    /// offset as `%2B`, or use `Z`) or an age such as `2h` or `7d`,
    /// meaning that long before now.
    #[param(min_length = 1, example = "2h")]
    created_after: Option<String>,
    /// Only tasks created before this (an RFC 3339 time or an age, as
    /// `created_after`).
    #[param(min_length = 1)]
    created_before: Option<String>,
    /// Only tasks that finished at or after this (an RFC 3339 time or an
    /// age, as `created_after`); unfinished tasks never match.
    #[param(min_length = 1)]
    finished_after: Option<String>,
    /// Only tasks that finished before this (an RFC 3339 time or an age,
    /// as `created_after`); unfinished tasks never match.
    #[param(min_length = 1)]
    finished_before: Option<String>,
    /// Only tasks older than this one: pass the previous page's
    /// `next_before` to get the next page.
    before: Option<Uuid>,
    /// At most this many (1 to 1000; default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of tasks.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskPage {
    /// Newest first.
    tasks: Vec<Task>,
    /// The `before` of the next page; `null` when this is the last one.
    next_before: Option<Uuid>,
}

/// The states of a comma-separated `state` parameter (none: every state).
fn parse_states(list: Option<&str>) -> Result<Vec<TaskState>, ApiError> {
    match list {
        None => Ok(Vec::new()),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<TaskState>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::invalid_query(format!("state: {e}"))),
    }
}

/// List tasks, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "An unknown or malformed filter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<ApiState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let states = parse_states(query.state.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let statuses = match query.status.as_deref() {
        None => Vec::new(),
        Some(list) => filters::parse_statuses(&[list])
            .map_err(|e| ApiError::invalid_query(format!("status: {e}")))?,
    };
    let (related_kind, related_id) = match query.related.as_deref() {
        None => (None, None),
        Some(related) => {
            let (kind, id) = filters::parse_related(related).map_err(ApiError::invalid_query)?;
            (Some(kind), id)
        }
    };
    let now = Utc::now();
    let time = |name: &str, value: Option<String>| {
        value
            .map(|v| filters::parse_time(name, &v, now))
            .transpose()
            .map_err(ApiError::invalid_query)
    };
    let filter = TaskFilter {
        states,
        statuses,
        actor: query.actor,
        queue: query.queue,
        schedule: query.schedule,
        related_kind,
        related_id,
        standalone: query.standalone.unwrap_or(false),
        exclude_successful: query.exclude_successful.unwrap_or(false),
        created_after: time("created_after", query.created_after)?,
        created_before: time("created_before", query.created_before)?,
        finished_after: time("finished_after", query.finished_after)?,
        finished_before: time("finished_before", query.finished_before)?,
        before: query.before,
        // One more than asked tells whether another page follows.
        limit: limit + 1,
    };
    // A filter that cannot mean anything is the query's fault.
    if let Err(longshore::StoreError::InvalidInput(message)) = filter.validate() {
        return Err(ApiError::invalid_query(message));
    }
    let mut rows = api.store.list(&filter).await?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_before = rows.last().filter(|_| more).map(|row| row.id);
    let now = Utc::now();
    Ok(Json(TaskPage {
        tasks: rows.into_iter().map(|row| Task::new(row, now)).collect(),
        next_before,
    }))
}

/// A task with its logs, by execution.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskDetail {
    task: Task,
    /// The current (or last) execution.
    current_execution: Execution,
    /// Earlier executions, newest first.
    previous_executions: Vec<Execution>,
}

/// One task, with its logs split into the current execution and the
/// previous ones.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}",
    operation_id = "show_task",
    tag = "tasks",
    params(("id" = Uuid, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task and its logs", body = TaskDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No task has this id", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TaskDetail>, ApiError> {
    let row = api
        .store
        .task(id)
        .await?
        .ok_or(longshore::StoreError::NotFound(id))?;
    let logs = api.store.logs(id).await?;
    let (current_execution, previous_executions) = executions(row.execution, logs);
    Ok(Json(TaskDetail {
        task: Task::new(row, Utc::now()),
        current_execution,
        previous_executions,
    }))
}

/// A task to enqueue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRequest {
    /// The actor that runs it.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    actor: String,
    /// Its arguments: a JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    args: Option<serde_json::Value>,
    /// Default `default`.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    queue: Option<String>,
    /// Lower runs first (default 0).
    priority: Option<i16>,
    /// Due no earlier than this (default: now).
    run_at: Option<DateTime<Utc>>,
    /// Executions allowed (default: the server's `retry.max_attempts`).
    #[schema(minimum = 1, maximum = 10000)]
    max_attempts: Option<i32>,
    /// Time limit of each execution in milliseconds (default: the
    /// worker's).
    #[schema(minimum = 1)]
    time_limit_ms: Option<i64>,
    /// While an active task holds this key, no other is inserted.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    unique_key: Option<String>,
    /// The object it works on.
    #[serde(default, deserialize_with = "optional_object")]
    related: Option<RelatedObject>,
    /// Labels an agent must offer to receive it, when its queue belongs to
    /// an agent pool (letters, digits, `-`, `_`, `.`; default none).
    #[serde(default)]
    requires: Vec<String>,
    /// Accept an actor that is not built in (one your own workers
    /// register); built-in actors' arguments are checked.
    #[serde(default)]
    any_actor: bool,
}

/// A bulk enqueue as first read: each task is read on its own after.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    tasks: Vec<serde_json::Value>,
}

/// One task, or `{"tasks": [...]}` with 1 to 1000 tasks.
// The document's shape only: the server reads each task on its own, so that
// an error names the one that is wrong.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum EnqueueRequest {
    One(TaskRequest),
    Many(BulkTasks),
}

/// Many tasks, inserted together: all of them or none.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct BulkTasks {
    /// 1 to 1000 tasks.
    tasks: Vec<TaskRequest>,
}

/// What happened to one task.
#[derive(Serialize, ToSchema)]
pub(crate) struct Enqueued {
    /// Its id; for a duplicate, the id of the active task holding its
    /// unique key.
    id: Uuid,
    /// False when an active task already held its unique key.
    inserted: bool,
}

/// What happened to each task, in the order sent.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnqueueResponse {
    tasks: Vec<Enqueued>,
}

/// Enqueue one task, or many at once.
///
/// The body is one task, or `{"tasks": [...]}` with up to 1000. Every task
/// is checked before anything is written; the tasks are inserted together.
/// The answer is 201 when at least one task was inserted, 200 when every
/// one was a duplicate of an active task with the same unique key. The
/// body is `{"tasks": [...]}` either way, one entry per task sent, in
/// order; when exactly one task was inserted, `Location` names it.
#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    operation_id = "enqueue_tasks",
    tag = "tasks",
    request_body(content = EnqueueRequest, description = "One task, or `{\"tasks\": [...]}`"),
    responses(
        (status = 201, description = "Inserted (some may be duplicates)", body = EnqueueResponse,
            headers(("Location" = String, description = "`/api/v1/tasks/{id}` of the task, when exactly one was inserted"))),
        (status = 200, description = "Every task was a duplicate", body = EnqueueResponse),
        (status = 400, description = "Malformed JSON, an unknown field, an unknown actor or bad arguments; nothing was written", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn enqueue(
    State(api): State<ApiState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let requests: Vec<TaskRequest> = match body {
        serde_json::Value::Object(ref map) if map.contains_key("tasks") => {
            let bulk: BulkRequest =
                serde_json::from_value(body).map_err(|e| ApiError::invalid_body(e.to_string()))?;
            if bulk.tasks.is_empty() || bulk.tasks.len() > MAX_BULK {
                return Err(ApiError::invalid_input(format!(
                    "a bulk enqueue carries 1 to {MAX_BULK} tasks, got {}",
                    bulk.tasks.len()
                )));
            }
            bulk.tasks
                .into_iter()
                .enumerate()
                .map(|(i, task)| {
                    serde_json::from_value(task)
                        .map(|Object(task)| task)
                        .map_err(|e| ApiError::invalid_body(format!("tasks[{i}]: {e}")))
                })
                .collect::<Result<_, _>>()?
        }
        serde_json::Value::Object(_) => {
            vec![serde_json::from_value(body).map_err(|e| ApiError::invalid_body(e.to_string()))?]
        }
        _ => {
            return Err(ApiError::invalid_body(
                "the body must be a task object or {\"tasks\": [...]}",
            ));
        }
    };
    let bulk = requests.len() > 1;
    let tasks = requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            new_task(request, api.default_max_attempts, api.actors.as_ref()).map_err(|e| {
                ApiError::invalid_input(if bulk { format!("tasks[{i}]: {e}") } else { e })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = match <[NewTask; 1]>::try_from(tasks) {
        // One task: gathered with other requests' into a shared insert.
        Ok([task]) => vec![api.client.enqueue_task(task).await?],
        // A bulk enqueue: one insert of its own, all or nothing.
        Err(tasks) => {
            let tally = api.metrics.enqueue_tally(&tasks);
            let results = api.store.enqueue(tasks).await?;
            tally.record(&results);
            results
        }
    };
    let mut inserted = results.iter().filter(|r| r.inserted);
    let (status, location) = match (inserted.next(), inserted.next()) {
        (Some(only), None) => (
            StatusCode::CREATED,
            Some(format!("/api/v1/tasks/{}", only.id)),
        ),
        (Some(_), Some(_)) => (StatusCode::CREATED, None),
        (None, _) => (StatusCode::OK, None),
    };
    let body = Json(EnqueueResponse {
        tasks: results
            .into_iter()
            .map(|r| Enqueued {
                id: r.id,
                inserted: r.inserted,
            })
            .collect(),
    });
    Ok(match location {
        Some(location) => (status, [(header::LOCATION, location)], body).into_response(),
        None => (status, body).into_response(),
    })
}

/// The task a request asks for, checked as `longshore enqueue` checks it.
fn new_task(
    request: TaskRequest,
    default_max_attempts: i32,
    actors: &dyn ActorCatalog,
) -> Result<NewTask, String> {
    let args = request
        .args
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    if !args.is_object() {
        return Err("args must be a JSON object".into());
    }
    ops::check_actor(
        actors,
        &request.actor,
        &args,
        request.any_actor,
        Wording::Api,
    )
    .map_err(|e| e.to_string())?;
    let mut task = NewTask::new(request.actor, args);
    if let Some(queue) = request.queue {
        task.queue = queue;
    }
    task.priority = request.priority.unwrap_or(0);
    task.run_at = request.run_at;
    task.max_attempts = request.max_attempts.unwrap_or(default_max_attempts);
    task.time_limit_ms = request.time_limit_ms;
    task.unique_key = request.unique_key;
    task.requires = request.requires;
    task.related = request.related.map(|r| Related {
        kind: r.kind,
        id: r.id,
    });
    if let Some(related) = &task.related
        && (related.kind.is_empty() || related.id.is_empty())
    {
        return Err("related needs both a kind and an id".into());
    }
    task.validate()?;
    Ok(task)
}

/// Queue a finished task again, with a fresh set of attempts.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/retry",
    operation_id = "retry_task",
    tag = "tasks",
    params(("id" = Uuid, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, queued again", body = Task),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No task has this id", body = ErrorBody),
        (status = 409, description = "The task has not finished, or an active task holds its unique key", body = ErrorBody),
    )
)]
pub(crate) async fn retry(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Task>, ApiError> {
    let row = api.store.retry(id).await?;
    Ok(Json(Task::new(row, Utc::now())))
}

/// What a cancellation did.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CancelOutcome {
    /// It was waiting and is now cancelled.
    Cancelled,
    /// It is running: its worker was told to stop it.
    Signalled,
}

/// The answer to a cancellation.
#[derive(Serialize, ToSchema)]
pub(crate) struct Cancelled {
    id: Uuid,
    outcome: CancelOutcome,
}

/// Cancel a waiting task, or tell a running one's worker to stop it.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/cancel",
    operation_id = "cancel_task",
    tag = "tasks",
    params(("id" = Uuid, Path, description = "The task's id")),
    responses(
        (status = 200, description = "Cancelled, or its worker signalled", body = Cancelled),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No task has this id", body = ErrorBody),
        (status = 409, description = "The task has finished", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Cancelled>, ApiError> {
    let outcome = match api.store.cancel(id).await? {
        CancelResult::Cancelled => CancelOutcome::Cancelled,
        CancelResult::Signalled => CancelOutcome::Signalled,
    };
    Ok(Json(Cancelled { id, outcome }))
}

/// Which tasks to delete, and whether to.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Only these states, comma-separated: scheduled, queued, succeeded,
    /// failed, cancelled (never `running`: cancel running tasks first).
    /// Default: every state but running.
    #[param(example = "queued")]
    state: Option<String>,
    /// Only this actor.
    actor: Option<String>,
    /// Only this queue.
    queue: Option<String>,
    /// Only tasks older than this, e.g. `7d` or `12h`: a finished task
    /// counts from when it finished, a waiting one from when it was
    /// created.
    #[param(example = "7d")]
    older_than: Option<String>,
    /// `true`: only count the matching tasks, by state.
    dry_run: Option<bool>,
    /// `true`: delete them. One of `dry_run` and `confirm` is required.
    confirm: Option<bool>,
}

/// What a dry run of a deletion matched.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deletion {
    /// Always true here: nothing was deleted, only counted.
    dry_run: bool,
    /// The matching tasks by state.
    matched: StateCounts,
    /// Their total.
    matched_total: i64,
    /// Always 0: nothing was deleted.
    deleted: u64,
}

/// A deletion started in the background.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletionStarted {
    /// Always false.
    dry_run: bool,
    /// The matching tasks by state, counted as it started.
    matched: StateCounts,
    /// Their total.
    matched_total: i64,
    /// The operation that deletes them: poll
    /// `GET /api/v1/operations/{id}` (also in the `Location` header) until
    /// its state is no longer `running`; its `done` is how many went.
    operation: OperationView,
}

/// Delete the tasks that match every filter given, with their logs.
///
/// At least one filter is required, and `confirm=true` (or `dry_run=true`
/// to count the matching tasks first, changing nothing: `200`). Running
/// tasks are never deleted. Confirmed, the deletion runs on the server in
/// the background, in transactions of 5,000, and the answer comes at once
/// (`202`) with the operation to poll; it goes on if the client goes
/// away, and `POST /api/v1/operations/{id}/cancel` stops it.
#[utoipa::path(
    delete,
    path = "/api/v1/tasks",
    operation_id = "delete_tasks",
    tag = "tasks",
    params(DeleteQuery),
    responses(
        (status = 200, description = "Counted (dry run); nothing deleted", body = Deletion),
        (status = 202, description = "Started: the tasks are being deleted in the background", body = DeletionStarted,
            headers(("Location" = String, description = "The operation to poll"))),
        (status = 400, description = "No filter, a running state, an unknown or malformed filter, or neither `confirm=true` nor `dry_run=true`; nothing was deleted", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(api): State<ApiState>,
    Extension(token): Extension<TokenInfo>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Response, ApiError> {
    let states = parse_states(query.state.as_deref())?;
    let older_than = query
        .older_than
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| ApiError::invalid_query(format!("older_than: {e} (e.g. 7d or 12h)")))?;
    let selection = TaskSelection {
        states,
        actor: query.actor,
        queue: query.queue,
        older_than,
    };
    selection.check_deletable()?;
    let dry_run = query.dry_run == Some(true);
    match (dry_run, query.confirm == Some(true)) {
        (true, true) => {
            return Err(ApiError::invalid_query(
                "give dry_run=true or confirm=true, not both",
            ));
        }
        (false, false) => {
            return Err(ApiError::confirmation_required(
                "deleting tasks needs confirm=true (or dry_run=true to count them first)",
            ));
        }
        _ => {}
    }
    let mut matched = StateCounts::default();
    for (state, n) in api.store.count_matching(&selection).await? {
        matched.add(state, n);
    }
    if dry_run {
        return Ok(Json(Deletion {
            dry_run,
            matched_total: matched.total(),
            matched,
            deleted: 0,
        })
        .into_response());
    }
    let target = selection.describe();
    let id = operations::start(
        api.store.clone(),
        Job::Delete(selection),
        target,
        Some(matched.total()),
        &Starter {
            token: token.name,
            node: operations::this_process(),
        },
    )
    .await?;
    let operation = api.store.operation(id).await?.ok_or_else(|| {
        ApiError::from(StoreError::Database(
            "the operation just started is gone".into(),
        ))
    })?;
    let location = format!("/api/v1/operations/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(DeletionStarted {
            dry_run: false,
            matched_total: matched.total(),
            matched,
            operation: operation.into(),
        }),
    )
        .into_response())
}
