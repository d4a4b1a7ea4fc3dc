//! `/workers`: the seeds' Workers page: status cards (mode, version,
//! cluster cap, total slots, running), the worker nodes with their roles.
//! Agents and pools join it when they exist.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use longshore::TaskState;
use longshore::core::StatsKey;

use crate::dashboard::session::{Refusal, Signed};
use crate::dashboard::view::{Chrome, age, time};
use crate::dashboard::{Dash, html};

/// A worker node's line.
pub(crate) struct WorkerLine {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) version: String,
    pub(crate) queues: String,
    pub(crate) running: i32,
    pub(crate) slots: i32,
    pub(crate) roles: String,
    pub(crate) started: String,
    pub(crate) last_seen: String,
}

#[derive(Template)]
#[template(path = "workers.html")]
struct Page {
    page: Chrome,
    version: &'static str,
    cap: String,
    slots: i64,
    running: i64,
    workers: Vec<WorkerLine>,
}

/// `GET /workers`.
pub(crate) async fn page(State(dash): State<Dash>, signed: Signed) -> Result<Response, Refusal> {
    let store = dash.store.as_ref();
    let workers = store.workers().await?;
    let leaders = store.leaders().await?;
    let cluster = store.cluster_settings().await?;
    // Running now, from the database's counts: a node's own figure is as
    // of its last heartbeat.
    let running = store
        .stats(StatsKey::State)
        .await?
        .into_iter()
        .find(|row| row.state == TaskState::Running)
        .map_or(0, |row| row.count);
    let now = Utc::now();
    let page = Page {
        page: Chrome::new(&signed, "workers").live(5),
        version: env!("CARGO_PKG_VERSION"),
        cap: cluster
            .max_running
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        slots: workers
            .iter()
            .map(|w| i64::from(w.presence.concurrency))
            .sum(),
        running,
        workers: workers
            .into_iter()
            .map(|w| WorkerLine {
                roles: leaders
                    .iter()
                    .filter(|l| l.holder == w.presence.id)
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                id: w.presence.id,
                host: w.presence.host,
                version: w.presence.version,
                queues: w.presence.queues.join(", "),
                running: w.presence.running,
                slots: w.presence.concurrency,
                started: time(w.started_at),
                last_seen: age(w.last_seen_at, now),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, &page))
}
