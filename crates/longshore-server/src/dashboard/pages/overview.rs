//! `/`: the cluster at a glance: tasks by state, the queues' depth,
//! running tasks against the workers' slots, failures of the last hour,
//! who leads.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use longshore::TaskState;
use longshore::core::{StatsKey, TaskFilter};

use super::Done;
use crate::dashboard::session::{Refusal, Signed};
use crate::dashboard::view::{Chrome, time};
use crate::dashboard::{Dash, html};

/// Failures counted in the last hour, at most (the count reads no more:
/// past it, the tasks page has them all).
const FAILURES_SHOWN: i64 = 100;

/// A queue's line.
pub(crate) struct QueueLine {
    pub(crate) name: String,
    pub(crate) paused: &'static str,
    pub(crate) scheduled: i64,
    pub(crate) queued: i64,
    pub(crate) running: i64,
    pub(crate) cap: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    page: Chrome,
    counts: Vec<(&'static str, i64)>,
    running: i64,
    slots: i64,
    workers: usize,
    failed_last_hour: String,
    cap: String,
    queues: Vec<QueueLine>,
    leaders: Vec<(String, String, String)>,
}

/// `GET /`.
pub(crate) async fn page(
    State(dash): State<Dash>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let store = dash.store.as_ref();
    let mut by_state: BTreeMap<TaskState, i64> = TaskState::ALL.iter().map(|s| (*s, 0)).collect();
    for row in store.stats(StatsKey::State).await? {
        by_state.insert(row.state, row.count);
    }
    let mut counts: Vec<(&'static str, i64)> = by_state
        .iter()
        .map(|(state, n)| (state.as_str(), *n))
        .collect();
    counts.push(("total", by_state.values().sum()));

    let workers = store.workers().await?;
    let slots: i64 = workers
        .iter()
        .map(|w| i64::from(w.presence.concurrency))
        .sum();
    let cluster = store.cluster_settings().await?;
    let now = Utc::now();
    // The newest failed tasks, from the failed tasks' own index (a filter
    // on the finish time would make it a walk of the whole table past the
    // queued tasks), then those of them that failed within the hour. A task
    // created long before it failed can hide behind a hundred newer
    // failures; the count is then `100+` anyway.
    let hour_ago = now - chrono::Duration::hours(1);
    let failed = store
        .list(&TaskFilter {
            states: vec![TaskState::Failed],
            limit: FAILURES_SHOWN + 1,
            ..TaskFilter::default()
        })
        .await?
        .iter()
        .filter(|task| task.finished_at.is_some_and(|at| at >= hour_ago))
        .count();
    let failed_last_hour = if i64::try_from(failed).unwrap_or(i64::MAX) > FAILURES_SHOWN {
        format!("{FAILURES_SHOWN}+")
    } else {
        failed.to_string()
    };

    let settings = store.queue_settings().await?;
    let mut queues: BTreeMap<String, QueueLine> = BTreeMap::new();
    let line = |name: &str| QueueLine {
        name: name.to_owned(),
        paused: "no",
        scheduled: 0,
        queued: 0,
        running: 0,
        cap: "-".to_owned(),
    };
    for row in store.queue_depths().await? {
        let queue = queues
            .entry(row.key.clone())
            .or_insert_with(|| line(&row.key));
        match row.state {
            TaskState::Scheduled => queue.scheduled = row.count,
            TaskState::Queued => queue.queued = row.count,
            TaskState::Running => queue.running = row.count,
            _ => {}
        }
    }
    for setting in settings {
        let queue = queues
            .entry(setting.name.clone())
            .or_insert_with(|| line(&setting.name));
        queue.paused = if setting.paused { "yes" } else { "no" };
        queue.cap = setting
            .max_running
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
    }
    let leaders = store
        .leaders()
        .await?
        .into_iter()
        .map(|l| (l.name, l.holder, time(l.expires_at)))
        .collect();
    let page = Overview {
        page: Chrome::new(&signed, "overview")
            .live(5)
            .done(done.done.as_deref()),
        running: by_state.get(&TaskState::Running).copied().unwrap_or(0),
        counts,
        slots,
        workers: workers.len(),
        failed_last_hour,
        cap: cluster
            .max_running
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        queues: queues.into_values().collect(),
        leaders,
    };
    Ok(html(StatusCode::OK, &page))
}
