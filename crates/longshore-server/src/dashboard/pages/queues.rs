//! `/queues`: every queue with its depth by state, cap and pause; pause,
//! resume, flush (after typing the queue's name) and set a cap.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use longshore::TaskState;
use longshore::core::{QueueSettings, StatsKey};
use longshore::ops::bulk;
use longshore::ops::runtime_settings::{self, Key};
use serde::Deserialize;

use super::Done;
use crate::dashboard::session::{Refusal, Signed};
use crate::dashboard::view::Chrome;
use crate::dashboard::{Dash, html};

/// A queue's line.
#[derive(Default)]
pub(crate) struct QueueLine {
    pub(crate) name: String,
    pub(crate) is_paused: bool,
    pub(crate) cap: String,
    pub(crate) scheduled: i64,
    pub(crate) queued: i64,
    pub(crate) running: i64,
    pub(crate) succeeded: i64,
    pub(crate) failed: i64,
    pub(crate) cancelled: i64,
}

#[derive(Template)]
#[template(path = "queues.html")]
struct List {
    page: Chrome,
    queues: Vec<QueueLine>,
}

/// `GET /queues`.
pub(crate) async fn list(
    State(dash): State<Dash>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let mut queues: BTreeMap<String, QueueLine> = BTreeMap::new();
    for row in dash.store.stats(StatsKey::Queue).await? {
        let queue = queues
            .entry(row.key.clone())
            .or_insert_with(|| line(&row.key));
        let slot = match row.state {
            TaskState::Scheduled => &mut queue.scheduled,
            TaskState::Queued => &mut queue.queued,
            TaskState::Running => &mut queue.running,
            TaskState::Succeeded => &mut queue.succeeded,
            TaskState::Failed => &mut queue.failed,
            TaskState::Cancelled => &mut queue.cancelled,
        };
        *slot = row.count;
    }
    for setting in dash.store.queue_settings().await? {
        let queue = queues
            .entry(setting.name.clone())
            .or_insert_with(|| line(&setting.name));
        queue.is_paused = setting.paused;
        queue.cap = setting
            .max_running
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
    }
    let page = List {
        page: Chrome::new(&signed, "queues")
            .live(5)
            .done(done.done.as_deref()),
        queues: queues.into_values().collect(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn line(name: &str) -> QueueLine {
    QueueLine {
        name: name.to_owned(),
        cap: "-".to_owned(),
        ..QueueLine::default()
    }
}

/// A queue action's form.
#[derive(Deserialize)]
pub(crate) struct ActForm {
    csrf: String,
    /// Flush: the queue's name, typed back.
    #[serde(default)]
    confirm: String,
    /// Cap: a positive whole number, or `none` (or empty).
    #[serde(default)]
    cap: String,
}

/// `POST /queues/{name}/{pause|resume|flush|cap}`.
pub(crate) async fn act(
    State(dash): State<Dash>,
    signed: Signed,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    QueueSettings::check_name(&name)?;
    let store = dash.store.as_ref();
    let done = match action.as_str() {
        "pause" => {
            store.set_queue_paused(&name, true).await?;
            "paused"
        }
        "resume" => {
            store.set_queue_paused(&name, false).await?;
            "resumed"
        }
        "flush" => {
            if form.confirm != name {
                return Err(Refusal::BadRequest(format!(
                    "Flushing needs the queue's name typed to confirm: type {name} exactly."
                )));
            }
            let flushed = bulk::flush(store, &name, |_| {}).await?;
            tracing::info!(token = %signed.session.token.name, queue = %name, deleted = flushed.deleted, signalled = flushed.signalled, "dashboard: queue flushed");
            "flushed"
        }
        "cap" => {
            let key = Key::QueueMaxRunning(name.clone());
            let text = if form.cap.trim().is_empty() {
                "none"
            } else {
                form.cap.trim()
            };
            let cap = runtime_settings::parse_cap(&key, text)
                .map_err(|e| Refusal::BadRequest(e.to_string()))?;
            runtime_settings::apply(store, &key, cap).await?;
            "saved"
        }
        other => {
            return Err(Refusal::NotFound(format!(
                "No queue action is called {other}."
            )));
        }
    };
    tracing::info!(token = %signed.session.token.name, queue = %name, action = %action, "dashboard: queue changed");
    Ok(Redirect::to(&format!("/queues?done={done}")).into_response())
}
