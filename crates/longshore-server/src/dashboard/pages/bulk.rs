//! Bulk actions on tasks — retry, cancel or delete the rows ticked on the
//! tasks page, or every task its filter shows, counted first — and the
//! operations they start: `/operations` lists them, `/operations/{id}`
//! shows one's progress, live, with a button to stop it. An operation
//! runs on the server (`longshore::ops::operations`): closing the page
//! does not stop it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use longshore::core::{BulkAction, Operation, OperationState};
use longshore::ops::operations::{self, Job, Starter};
use uuid::Uuid;

use super::Done;
use super::tasks::{FilterView, encode, field, filter_of};
use crate::dashboard::audit::AuditDetail;
use crate::dashboard::session::{CsrfForm, Refusal, Signed};
use crate::dashboard::view::{Chrome, maybe_time, time};
use crate::dashboard::{Dash, html};

/// The most tasks the confirmation page counts: past it, it says "at
/// least". The operation itself takes every one.
const COUNTED: i64 = 10_000;
/// Operations listed.
const LISTED: i64 = 50;

/// The pairs of a query string or a form body.
fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

fn action_of(pairs: &[(String, String)]) -> Result<BulkAction, Refusal> {
    let name = field(pairs, "action").unwrap_or_default();
    BulkAction::parse(name).ok_or_else(|| {
        Refusal::BadRequest(format!(
            "`{name}` is not a bulk action (retry, cancel or delete)."
        ))
    })
}

/// What an action does, in words for its button and its page.
fn verb(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "Retry",
        BulkAction::Cancel => "Cancel",
        BulkAction::Delete => "Delete",
    }
}

/// To which tasks an action applies.
fn applies(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "Only finished tasks are queued again; the others are left alone.",
        BulkAction::Cancel => {
            "Waiting tasks are cancelled and running ones asked to stop; finished ones are left alone."
        }
        BulkAction::Delete => {
            "Deleted with their logs, for good; running tasks are left alone (cancel them first)."
        }
    }
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct Confirm {
    page: Chrome,
    verb: &'static str,
    action: &'static str,
    applies: &'static str,
    words: String,
    count: String,
    /// The filters again, as hidden fields of the confirming form.
    fields: Vec<(&'static str, String)>,
    back: String,
}

/// `GET /tasks/bulk?action=A&<the list's filters>`: how many tasks the
/// filter shows now, and a form to confirm the action on all of them.
pub(crate) async fn confirm(
    State(dash): State<Dash>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let pairs = pairs(raw.unwrap_or_default().as_bytes());
    let action = action_of(&pairs)?;
    let view = FilterView::from_pairs(&pairs);
    let filter = filter_of(&view, None).map_err(Refusal::BadRequest)?;
    let (n, exact) = operations::count(dash.store.as_ref(), &filter, COUNTED).await?;
    let count = if exact {
        format!("{n} tasks match now.")
    } else {
        format!(
            "At least {n} tasks match now (counting stops there; the operation takes them all)."
        )
    };
    let page = Confirm {
        page: Chrome::new(&signed, "tasks"),
        verb: verb(action),
        action: action.as_str(),
        applies: applies(action),
        words: view.words(),
        count,
        fields: view.query(),
        back: format!("/tasks?{}", encode(&view.query())),
    };
    Ok(html(StatusCode::OK, &page))
}

/// `POST /tasks/bulk`: starts an operation on the ticked rows (`id`, one
/// per row) or, with `scope=filter`, on every task the filters show; then
/// shows its progress.
pub(crate) async fn start(
    State(dash): State<Dash>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, Refusal> {
    let pairs = pairs(&body);
    signed.check_change(field(&pairs, "csrf").unwrap_or_default())?;
    let action = action_of(&pairs)?;
    let (job, target, matched) = if field(&pairs, "scope") == Some("filter") {
        let view = FilterView::from_pairs(&pairs);
        let filter = filter_of(&view, None).map_err(Refusal::BadRequest)?;
        // Counted again (the page that confirmed it may be old), for the
        // progress to show against.
        let (n, exact) = operations::count(dash.store.as_ref(), &filter, COUNTED).await?;
        (
            Job::Filtered(action, filter),
            view.words(),
            exact.then_some(n),
        )
    } else {
        let ids = pairs
            .iter()
            .filter(|(name, _)| name == "id")
            .map(|(_, id)| {
                Uuid::parse_str(id.trim())
                    .map_err(|_| Refusal::BadRequest(format!("`{id}` is not a task id.")))
            })
            .collect::<Result<Vec<Uuid>, Refusal>>()?;
        if ids.is_empty() {
            return Err(Refusal::BadRequest(
                "No task was ticked: tick the rows to act on, or use the actions on every matching task."
                    .into(),
            ));
        }
        let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        (
            Job::Picked(action, ids),
            format!("{n} tasks ticked on the tasks page"),
            Some(n),
        )
    };
    let starter = Starter {
        token: signed.session.token.name.clone(),
        node: operations::this_process(),
    };
    let words = target.clone();
    let id = operations::start(dash.store.clone(), job, target, matched, &starter).await?;
    tracing::info!(token = %starter.token, operation = %id, action = action.as_str(), "dashboard: bulk operation started");
    let mut response = Redirect::to(&format!("/operations/{id}")).into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "{} {words}: operation {id}",
        action.as_str()
    )));
    Ok(response)
}

/// An operation, as its pages show it.
pub(crate) struct OperationLine {
    pub(crate) id: String,
    pub(crate) action: &'static str,
    pub(crate) target: String,
    /// `running`, `stalled`, `finished`, `cancelled`, `failed`.
    pub(crate) state: &'static str,
    pub(crate) running: bool,
    pub(crate) matched: String,
    pub(crate) matched_n: i64,
    pub(crate) seen: i64,
    pub(crate) done: i64,
    pub(crate) cancel_requested: bool,
    pub(crate) error: String,
    pub(crate) started_by: String,
    pub(crate) node: String,
    pub(crate) created_at: String,
    pub(crate) modified_at: String,
    pub(crate) finished_at: String,
}

impl From<&Operation> for OperationLine {
    fn from(op: &Operation) -> Self {
        let stalled = op.stalled(Utc::now());
        OperationLine {
            id: op.new.id.to_string(),
            action: op.new.action.as_str(),
            target: op.new.target.clone(),
            state: if stalled {
                "stalled"
            } else {
                op.state.as_str()
            },
            running: op.state == OperationState::Running && !stalled,
            matched: op
                .new
                .matched
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            matched_n: op.new.matched.unwrap_or(0),
            seen: op.seen,
            done: op.done,
            cancel_requested: op.cancel_requested,
            error: op.error.clone().unwrap_or_default(),
            started_by: op.new.started_by.clone(),
            node: op.new.node.clone(),
            created_at: time(op.created_at),
            modified_at: time(op.modified_at),
            finished_at: maybe_time(op.finished_at),
        }
    }
}

#[derive(Template)]
#[template(path = "operation.html")]
struct Detail {
    page: Chrome,
    op: OperationLine,
}

fn operation_id(id: &str) -> Result<Uuid, Refusal> {
    Uuid::parse_str(id.trim())
        .map_err(|_| Refusal::NotFound(format!("`{id}` is not an operation id.")))
}

/// `GET /operations/{id}`.
pub(crate) async fn show(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, Refusal> {
    let id = operation_id(&id)?;
    let op = dash
        .store
        .operation(id)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("No bulk operation has the id {id}.")))?;
    let op = OperationLine::from(&op);
    let chrome = Chrome::new(&signed, "tasks").done(done.done.as_deref());
    let page = Detail {
        page: if op.running { chrome.live(2) } else { chrome },
        op,
    };
    Ok(html(StatusCode::OK, &page))
}

/// `POST /operations/{id}/cancel`.
pub(crate) async fn cancel(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let id = operation_id(&id)?;
    let asked = dash.store.cancel_operation(id).await?;
    let done = if asked { "stopping" } else { "ended" };
    Ok(Redirect::to(&format!("/operations/{id}?done={done}")).into_response())
}

#[derive(Template)]
#[template(path = "operations.html")]
struct List {
    page: Chrome,
    operations: Vec<OperationLine>,
}

/// `GET /operations`.
pub(crate) async fn list(State(dash): State<Dash>, signed: Signed) -> Result<Response, Refusal> {
    let operations = dash.store.operations(LISTED).await?;
    let page = List {
        page: Chrome::new(&signed, "tasks").live(5),
        operations: operations.iter().map(OperationLine::from).collect(),
    };
    Ok(html(StatusCode::OK, &page))
}
