//! What `tasks` commands read and change, from the database or from a
//! server's API (`--server`): the same values either way, so that one
//! piece of code prints them.

use std::collections::BTreeMap;

use anyhow::bail;
use chrono::Utc;
use longshore::core::{CancelResult, StatsKey, StatsRow, TaskFilter, TaskSelection};
use longshore::ops::bulk;
use longshore::{LogEntry, LogLevel, TaskRow, TaskState};
use serde::Deserialize;
use uuid::Uuid;

use super::GroupBy;
use crate::commands::Source;

/// A page of tasks as the API answers it.
#[derive(Deserialize)]
struct TaskPage {
    tasks: Vec<TaskRow>,
    next_before: Option<Uuid>,
}

/// A task and its logs as the API answers them.
#[derive(Deserialize)]
struct TaskDetail {
    task: TaskRow,
    current_execution: ApiExecution,
    previous_executions: Vec<ApiExecution>,
}

#[derive(Deserialize)]
struct ApiExecution {
    number: i32,
    logs: Vec<ApiLogLine>,
}

#[derive(Deserialize)]
struct ApiLogLine {
    at: chrono::DateTime<Utc>,
    level: LogLevel,
    message: String,
}

/// Counts by state as the API answers them.
type ApiCounts = BTreeMap<TaskState, i64>;

#[derive(Deserialize)]
struct ApiStats {
    counts: ApiCounts,
    groups: Vec<ApiStatsGroup>,
}

#[derive(Deserialize)]
struct ApiStatsGroup {
    key: String,
    counts: ApiCounts,
}

#[derive(Deserialize)]
struct ApiCancelled {
    outcome: String,
}

#[derive(Deserialize)]
struct ApiDeletion {
    matched: ApiCounts,
    /// A dry run's (0).
    #[serde(default)]
    deleted: u64,
    /// A confirmed deletion's: it runs on the server in the background.
    operation: Option<ApiOperation>,
}

/// A bulk operation, as `GET /api/v1/operations/{id}` shows it.
#[derive(Deserialize)]
struct ApiOperation {
    id: uuid::Uuid,
    state: String,
    stalled: bool,
    done: u64,
    error: Option<String>,
}

/// How often a background deletion's progress is asked for.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits for the server's background deletion `operation` to end, telling
/// its progress on standard error; how many it deleted.
async fn deleted_by(
    api: &crate::remote::Remote,
    mut operation: ApiOperation,
    total: i64,
) -> anyhow::Result<u64> {
    let id = operation.id.to_string();
    let mut told = 0;
    loop {
        if operation.done > told {
            told = operation.done;
            eprintln!("deleted {told} of {total} tasks");
        }
        match operation.state.as_str() {
            "running" if operation.stalled => anyhow::bail!(
                "the server's deletion {id} stopped making progress after {} tasks (its node stopped?); run the command again for the rest",
                operation.done
            ),
            "running" => {}
            "finished" => return Ok(operation.done),
            "cancelled" => anyhow::bail!(
                "the deletion {id} was stopped on request after {} tasks",
                operation.done
            ),
            other => anyhow::bail!(
                "the deletion {id} ended {other} after {} tasks: {}",
                operation.done,
                operation.error.unwrap_or_default()
            ),
        }
        tokio::time::sleep(POLL).await;
        operation = api.get(&["operations", &id], &[]).await?;
    }
}

/// The counts of `counts` that are not zero, as the database gives them.
fn nonzero(counts: &ApiCounts) -> impl Iterator<Item = (TaskState, i64)> + '_ {
    counts
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(state, n)| (*state, *n))
}

/// The same values from the database or from the API.
impl Source {
    /// The tasks `filter` takes, newest first (through the API, a page of
    /// at most its maximum at a time).
    pub(super) async fn tasks(&self, filter: &TaskFilter) -> anyhow::Result<Vec<TaskRow>> {
        let api = match self {
            Source::Db(store) => return Ok(store.list(filter).await?),
            Source::Api(api) => api,
        };
        let mut query: Vec<(&str, String)> = Vec::new();
        let join = |items: Vec<String>| items.join(",");
        if !filter.states.is_empty() {
            query.push((
                "state",
                join(
                    filter
                        .states
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                ),
            ));
        }
        if !filter.statuses.is_empty() {
            let names = filter
                .statuses
                .iter()
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            query.push(("status", join(names)));
        }
        let text = |name, value: &Option<String>| value.clone().map(|v| (name, v));
        query.extend(text("actor", &filter.actor));
        query.extend(text("queue", &filter.queue));
        query.extend(text("schedule", &filter.schedule));
        if let Some(kind) = &filter.related_kind {
            let related = match &filter.related_id {
                Some(id) => format!("{kind}:{id}"),
                None => kind.clone(),
            };
            query.push(("related", related));
        }
        if filter.standalone {
            query.push(("standalone", "true".into()));
        }
        if filter.exclude_successful {
            query.push(("exclude_successful", "true".into()));
        }
        let times = [
            ("created_after", filter.created_after),
            ("created_before", filter.created_before),
            ("finished_after", filter.finished_after),
            ("finished_before", filter.finished_before),
        ];
        for (name, at) in times {
            if let Some(at) = at {
                query.push((
                    name,
                    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ));
            }
        }
        let mut tasks = Vec::new();
        let mut before = filter.before;
        loop {
            let wanted = filter.limit - i64::try_from(tasks.len()).unwrap_or(i64::MAX);
            let mut page_query = query.clone();
            page_query.push(("limit", wanted.min(API_PAGE).to_string()));
            if let Some(before) = before {
                page_query.push(("before", before.to_string()));
            }
            let page: TaskPage = api.get(&["tasks"], &page_query).await?;
            tasks.extend(page.tasks);
            before = page.next_before;
            if before.is_none() || i64::try_from(tasks.len()).unwrap_or(i64::MAX) >= filter.limit {
                return Ok(tasks);
            }
        }
    }

    /// One task and its log lines.
    pub(super) async fn task(&self, id: Uuid) -> anyhow::Result<(TaskRow, Vec<LogEntry>)> {
        match self {
            Source::Db(store) => {
                let task = store
                    .task(id)
                    .await?
                    .ok_or(longshore::StoreError::NotFound(id))?;
                let logs = store.logs(id).await?;
                Ok((task, logs))
            }
            Source::Api(api) => {
                let detail: TaskDetail = api.get(&["tasks", &id.to_string()], &[]).await?;
                let mut executions = detail.previous_executions;
                executions.reverse();
                executions.push(detail.current_execution);
                let logs = executions
                    .into_iter()
                    .flat_map(|execution| {
                        execution.logs.into_iter().map(move |line| LogEntry {
                            task_id: id,
                            execution: execution.number,
                            at: line.at,
                            level: line.level,
                            message: line.message,
                        })
                    })
                    .collect();
                Ok((detail.task, logs))
            }
        }
    }

    /// Task counts: by state (keyed by the state's name), or by actor or
    /// queue and state; only counts that are not zero.
    pub(super) async fn stats(&self, by: GroupBy) -> anyhow::Result<Vec<StatsRow>> {
        let (key, name) = match by {
            GroupBy::State => (StatsKey::State, "state"),
            GroupBy::Actor => (StatsKey::Actor, "actor"),
            GroupBy::Queue => (StatsKey::Queue, "queue"),
        };
        let api = match self {
            Source::Db(store) => return Ok(store.stats(key).await?),
            Source::Api(api) => api,
        };
        let stats: ApiStats = api.get(&["stats"], &[("by", name.to_owned())]).await?;
        let rows = if let GroupBy::State = by {
            nonzero(&stats.counts)
                .map(|(state, count)| StatsRow {
                    key: state.as_str().to_owned(),
                    state,
                    count,
                })
                .collect()
        } else {
            stats
                .groups
                .iter()
                .flat_map(|group| {
                    nonzero(&group.counts).map(|(state, count)| StatsRow {
                        key: group.key.clone(),
                        state,
                        count,
                    })
                })
                .collect()
        };
        Ok(rows)
    }

    /// Rebuilds the task counts from the tasks; the number of groups.
    pub(super) async fn recount(&self) -> anyhow::Result<u64> {
        #[derive(serde::Deserialize)]
        struct Recounted {
            groups: u64,
        }
        match self {
            Source::Db(store) => Ok(store.recount().await?),
            Source::Api(api) => {
                let answer: Recounted = api
                    .post(&["stats", "recount"], &serde_json::json!({}))
                    .await?;
                Ok(answer.groups)
            }
        }
    }

    /// Queues a finished task again.
    pub(super) async fn retry(&self, id: Uuid) -> anyhow::Result<TaskRow> {
        match self {
            Source::Db(store) => Ok(store.retry(id).await?),
            Source::Api(api) => {
                api.post(&["tasks", &id.to_string(), "retry"], &serde_json::json!({}))
                    .await
            }
        }
    }

    /// Cancels a waiting task or signals a running one.
    pub(super) async fn cancel(&self, id: Uuid) -> anyhow::Result<CancelResult> {
        match self {
            Source::Db(store) => Ok(store.cancel(id).await?),
            Source::Api(api) => {
                let answer: ApiCancelled = api
                    .post(
                        &["tasks", &id.to_string(), "cancel"],
                        &serde_json::json!({}),
                    )
                    .await?;
                match answer.outcome.as_str() {
                    "cancelled" => Ok(CancelResult::Cancelled),
                    "signalled" => Ok(CancelResult::Signalled),
                    other => bail!("the server answered an unknown cancellation outcome `{other}`"),
                }
            }
        }
    }

    /// Counts the tasks `selection` takes by state and, unless `dry_run`,
    /// deletes them; the counts (not zero) and how many were deleted.
    pub(super) async fn delete(
        &self,
        selection: &TaskSelection,
        dry_run: bool,
    ) -> anyhow::Result<(Vec<(TaskState, i64)>, u64)> {
        match self {
            Source::Db(store) => {
                let counts = store.count_matching(selection).await?;
                let total: i64 = counts.iter().map(|(_, n)| n).sum();
                let deleted = if dry_run || total == 0 {
                    0
                } else {
                    bulk::delete(store.as_ref(), selection, |done| {
                        eprintln!("deleted {done} of {total} tasks");
                    })
                    .await?
                };
                Ok((counts, deleted))
            }
            Source::Api(api) => {
                let mut query: Vec<(&str, String)> = Vec::new();
                if !selection.states.is_empty() {
                    let states: Vec<&str> = selection.states.iter().map(|s| s.as_str()).collect();
                    query.push(("state", states.join(",")));
                }
                query.extend(selection.actor.clone().map(|a| ("actor", a)));
                query.extend(selection.queue.clone().map(|q| ("queue", q)));
                if let Some(age) = selection.older_than {
                    query.push(("older_than", humantime::format_duration(age).to_string()));
                }
                query.push((if dry_run { "dry_run" } else { "confirm" }, "true".into()));
                let answer: ApiDeletion = api.delete(&["tasks"], &query).await?;
                let counts: Vec<(TaskState, i64)> = nonzero(&answer.matched).collect();
                let deleted = match answer.operation {
                    None => answer.deleted,
                    Some(operation) => {
                        let total = counts.iter().map(|(_, n)| n).sum();
                        deleted_by(api, operation, total).await?
                    }
                };
                Ok((counts, deleted))
            }
        }
    }
}

/// The most tasks the API gives on one page.
const API_PAGE: i64 = 1000;
