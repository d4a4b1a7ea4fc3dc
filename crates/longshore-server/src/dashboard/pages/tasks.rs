//! `/tasks`: the tasks list with its filters ("Show only standalone",
//! "Exclude successful tasks", on by default as the seeds' page has it),
//! a page at a time; `/tasks/{id}`: one task with its logs by execution;
//! retry and cancel.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use longshore::core::{CancelResult, TaskFilter};
use longshore::ops::filters;
use longshore::{ExecutionLogs, LogEntry, Status, StoreError, TaskState};
use serde::Deserialize;
use uuid::Uuid;

use super::Done;
use crate::dashboard::session::{CsrfForm, Refusal, Signed};
use crate::dashboard::view::{Chrome, TaskLine, maybe_time, time};
use crate::dashboard::{Dash, html};

/// Tasks on a page.
const PAGE: i64 = 50;

/// The filters as the form sends them.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    related: String,
    /// An age: tasks created within it.
    #[serde(default)]
    created: String,
    standalone: Option<String>,
    exclude_successful: Option<String>,
    /// Set by the form: its checkboxes say what they say. Absent (a first
    /// visit), successful tasks are left out.
    filtered: Option<String>,
    before: Option<Uuid>,
}

/// The filters, as the form shows them again.
pub(crate) struct FilterView {
    pub(crate) state: String,
    pub(crate) status: String,
    pub(crate) actor: String,
    pub(crate) queue: String,
    pub(crate) schedule: String,
    pub(crate) related: String,
    pub(crate) created: String,
    pub(crate) standalone: bool,
    pub(crate) exclude_successful: bool,
}

impl FilterView {
    pub(crate) fn state_options(&self) -> Vec<&'static str> {
        TaskState::ALL.iter().map(|s| s.as_str()).collect()
    }

    pub(crate) fn status_options(&self) -> Vec<&'static str> {
        Status::ALL.iter().map(|s| s.as_str()).collect()
    }

    /// The filters named in `pairs` (a query string or a form's fields,
    /// as they come), as a later visit shows them (`filtered` is set).
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> FilterView {
        let get = |name: &str| field(pairs, name).unwrap_or_default().to_owned();
        let has = |name: &str| pairs.iter().any(|(n, _)| n == name);
        FilterView {
            state: get("state"),
            status: get("status"),
            actor: get("actor"),
            queue: get("queue"),
            schedule: get("schedule"),
            related: get("related"),
            created: get("created"),
            standalone: has("standalone"),
            exclude_successful: has("exclude_successful"),
        }
    }

    /// The filters in words, for an operation's record.
    pub(crate) fn words(&self) -> String {
        let mut words: Vec<String> = self
            .query()
            .into_iter()
            .filter(|(name, _)| *name != "filtered")
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if words.is_empty() {
            words.push("every task".to_owned());
        }
        words.join(" ")
    }

    /// The query string of these filters (for links).
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("filtered", "1".to_owned())];
        for (name, value) in [
            ("state", &self.state),
            ("status", &self.status),
            ("actor", &self.actor),
            ("queue", &self.queue),
            ("schedule", &self.schedule),
            ("related", &self.related),
            ("created", &self.created),
        ] {
            if !value.is_empty() {
                query.push((name, value.clone()));
            }
        }
        if self.standalone {
            query.push(("standalone", "true".to_owned()));
        }
        if self.exclude_successful {
            query.push(("exclude_successful", "true".to_owned()));
        }
        query
    }
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct List {
    page: Chrome,
    filter: FilterView,
    /// The filters as a query string, for the bulk actions' links.
    filter_query: String,
    error: Option<String>,
    tasks: Vec<TaskLine>,
    next_page: Option<String>,
}

fn text(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The store's filter for what the form says; a message when it says
/// something that cannot mean anything.
pub(crate) fn filter_of(view: &FilterView, before: Option<Uuid>) -> Result<TaskFilter, String> {
    let now = Utc::now();
    let states = match text(&view.state) {
        None => Vec::new(),
        Some(state) => vec![state.parse::<TaskState>().map_err(|e| e.to_string())?],
    };
    let statuses = match text(&view.status) {
        None => Vec::new(),
        Some(status) => filters::parse_statuses(&[status])?,
    };
    let (related_kind, related_id) = match text(&view.related) {
        None => (None, None),
        Some(related) => {
            let (kind, id) = filters::parse_related(&related)?;
            (Some(kind), id)
        }
    };
    let created_after = text(&view.created)
        .map(|age| filters::parse_time("Created within", &age, now))
        .transpose()?;
    let filter = TaskFilter {
        states,
        statuses,
        actor: text(&view.actor),
        queue: text(&view.queue),
        schedule: text(&view.schedule),
        related_kind,
        related_id,
        standalone: view.standalone,
        exclude_successful: view.exclude_successful,
        created_after,
        before,
        limit: PAGE + 1,
        ..TaskFilter::default()
    };
    match filter.validate() {
        Err(StoreError::InvalidInput(message)) => Err(message),
        _ => Ok(filter),
    }
}

/// `GET /tasks`.
pub(crate) async fn list(
    State(dash): State<Dash>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    let first_visit = query.filtered.is_none();
    let view = FilterView {
        state: query.state,
        status: query.status,
        actor: query.actor,
        queue: query.queue,
        schedule: query.schedule,
        related: query.related,
        created: query.created,
        standalone: query.standalone.is_some(),
        exclude_successful: first_visit || query.exclude_successful.is_some(),
    };
    let now = Utc::now();
    let (tasks, next_page, error) = match filter_of(&view, query.before) {
        Err(error) => (Vec::new(), None, Some(error)),
        Ok(filter) => {
            let mut rows = dash.store.list(&filter).await?;
            let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > PAGE;
            rows.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
            let next = more
                .then(|| rows.last().map(|t| t.id))
                .flatten()
                .map(|last| {
                    let mut query = view.query();
                    query.push(("before", last.to_string()));
                    format!("/tasks?{}", encode(&query))
                });
            (
                rows.iter().map(|t| TaskLine::new(t, now)).collect(),
                next,
                None,
            )
        }
    };
    let page = List {
        page: Chrome::new(&signed, "tasks").live(5),
        filter_query: encode(&view.query()),
        filter: view,
        error,
        tasks,
        next_page,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The first value of field `name` among `pairs`.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn encode(query: &[(&str, String)]) -> String {
    query
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One line of a log.
pub(crate) struct LogLine {
    pub(crate) at: String,
    pub(crate) level: &'static str,
    pub(crate) message: String,
}

/// One execution's log.
pub(crate) struct ExecutionLog {
    pub(crate) number: i32,
    /// Its earlier lines, not shown.
    pub(crate) hidden: usize,
    pub(crate) lines: Vec<LogLine>,
}

#[derive(Template)]
#[template(path = "task.html")]
struct Detail {
    page: Chrome,
    task: TaskLineDetail,
    fields: Vec<(&'static str, String)>,
    schedule: Option<String>,
    args: String,
    current: ExecutionLog,
    previous: Vec<ExecutionLog>,
}

/// What the detail page's heading and buttons need.
struct TaskLineDetail {
    id: String,
    short_id: String,
    actor: String,
    status: String,
    status_label: &'static str,
    retryable: bool,
    cancellable: bool,
}

/// A task's log split by execution: the current one, and the earlier ones,
/// newest first.
/// Lines of each execution shown unless all are asked for: its last ones,
/// where it ended. A page stays light (under 100 KB with three such
/// executions) however much a handler logged.
const LINES_SHOWN: usize = 150;

/// `?logs=all` on a task's page: every log line.
#[derive(Deserialize, Default)]
pub(crate) struct LogsQuery {
    logs: Option<String>,
}

fn executions(current: i32, logs: Vec<LogEntry>, all: bool) -> (ExecutionLog, Vec<ExecutionLog>) {
    let log = |number: i32, logs: Vec<LogEntry>| -> ExecutionLog {
        let hidden = if all {
            0
        } else {
            logs.len().saturating_sub(LINES_SHOWN)
        };
        ExecutionLog {
            number,
            hidden,
            lines: logs
                .into_iter()
                .skip(hidden)
                .map(|line| LogLine {
                    at: time(line.at),
                    level: line.level.as_str(),
                    message: line.message,
                })
                .collect(),
        }
    };
    let split = ExecutionLogs::split(current, logs);
    let previous = split
        .previous
        .into_iter()
        .map(|(number, logs)| log(number, logs))
        .collect();
    (log(current, split.current), previous)
}

/// `GET /tasks/{id}`.
pub(crate) async fn show(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    Query(done): Query<Done>,
    Query(shown): Query<LogsQuery>,
) -> Result<Response, Refusal> {
    let id = Uuid::parse_str(id.trim())
        .map_err(|_| Refusal::NotFound(format!("`{id}` is not a task id.")))?;
    let task = dash
        .store
        .task(id)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("No task has the id {id}.")))?;
    let logs = dash.store.logs(id).await?;
    let now = Utc::now();
    let line = TaskLine::new(&task, now);
    let (current, previous) =
        executions(task.execution, logs, shown.logs.as_deref() == Some("all"));
    let mut fields: Vec<(&'static str, String)> = vec![
        ("id", task.id.to_string()),
        ("queue", task.queue.clone()),
        ("state", task.state.to_string()),
        ("attempt", task.attempts_label()),
        ("priority", task.priority.to_string()),
        ("created", time(task.created_at)),
        ("run at", time(task.run_at)),
        ("started", maybe_time(task.started_at)),
        ("finished", maybe_time(task.finished_at)),
        ("duration", line.duration.clone()),
        ("related", line.related.clone()),
    ];
    if let Some(owner) = &task.lease_owner {
        fields.push((
            "lease",
            format!("{owner} until {}", maybe_time(task.lease_expires_at)),
        ));
    }
    if let Some(ms) = task.time_limit_ms {
        fields.push(("time limit", format!("{ms} ms")));
    }
    if let Some(key) = &task.unique_key {
        fields.push(("unique key", key.clone()));
    }
    if let Some(error) = &task.last_error {
        fields.push(("last error", error.clone()));
    }
    if task.cancel_requested {
        fields.push(("cancel", "requested".to_owned()));
    }
    let running = task.state == TaskState::Running;
    let page = Detail {
        page: {
            let chrome = Chrome::new(&signed, "tasks").done(done.done.as_deref());
            if task.state.is_terminal() {
                chrome
            } else {
                chrome.live(3)
            }
        },
        task: TaskLineDetail {
            id: line.id.clone(),
            short_id: line.short_id.clone(),
            actor: task.actor.clone(),
            status: line.status.clone(),
            status_label: line.status_label,
            retryable: task.state.is_terminal(),
            cancellable: !(task.state.is_terminal() || (running && task.cancel_requested)),
        },
        fields,
        schedule: task.schedule.clone(),
        args: serde_json::to_string_pretty(&task.args).unwrap_or_else(|_| task.args.to_string()),
        current,
        previous,
    };
    Ok(html(StatusCode::OK, &page))
}

fn task_id(id: &str) -> Result<Uuid, Refusal> {
    Uuid::parse_str(id.trim()).map_err(|_| Refusal::NotFound(format!("`{id}` is not a task id.")))
}

/// `POST /tasks/{id}/retry`.
pub(crate) async fn retry(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let id = task_id(&id)?;
    dash.store.retry(id).await?;
    tracing::info!(token = %signed.session.token.name, task = %id, "dashboard: task retried");
    Ok(Redirect::to(&format!("/tasks/{id}?done=retried")).into_response())
}

/// `POST /tasks/{id}/cancel`.
pub(crate) async fn cancel(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let id = task_id(&id)?;
    let done = match dash.store.cancel(id).await? {
        CancelResult::Cancelled => "cancelled",
        CancelResult::Signalled => "signalled",
    };
    tracing::info!(token = %signed.session.token.name, task = %id, "dashboard: task cancelled");
    Ok(Redirect::to(&format!("/tasks/{id}?done={done}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore::LogLevel;

    fn lines(execution: i32, n: usize) -> Vec<LogEntry> {
        (0..n)
            .map(|i| LogEntry {
                task_id: Uuid::nil(),
                execution,
                at: Utc::now(),
                level: LogLevel::Info,
                message: format!("line {i}"),
            })
            .collect()
    }

    #[test]
    fn each_execution_shows_its_last_lines_unless_all_are_asked_for() {
        let logs = [lines(1, 400), lines(2, 10), lines(3, 151)].concat();
        let (current, previous) = executions(3, logs.clone(), false);
        assert_eq!((current.number, current.hidden), (3, 1));
        assert_eq!(current.lines.len(), LINES_SHOWN);
        assert_eq!(current.lines[0].message, "line 1");
        let shown: Vec<_> = previous
            .iter()
            .map(|e| (e.number, e.hidden, e.lines.len()))
            .collect();
        assert_eq!(shown, [(2, 0, 10), (1, 250, LINES_SHOWN)]);
        assert_eq!(previous[1].lines[LINES_SHOWN - 1].message, "line 399");

        let (current, previous) = executions(3, logs, true);
        assert_eq!((current.hidden, current.lines.len()), (0, 151));
        assert_eq!(previous[1].lines.len(), 400);
    }
}
