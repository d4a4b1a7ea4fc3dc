//! `/`: the cluster at a glance: tasks by state, the queues' depth,
//! running tasks against the workers' slots, failures of the last hour,
//! the day's throughput and backlog as charts, who leads.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use longshore::TaskState;
use longshore::core::StatsKey;

use super::Done;
use crate::dashboard::chart::{BUCKETS, Day, SPAN_MINUTES};
use crate::dashboard::session::{Refusal, Signed};
use crate::dashboard::view::{Chrome, time};
use crate::dashboard::{Dash, html};

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
    failed_last_hour: i64,
    day: Day,
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
    // The day's throughput per minute, which the maintenance fold keeps:
    // the charts, and the failures of the last hour.
    let minutes = store
        .throughput(now - chrono::Duration::minutes(SPAN_MINUTES * BUCKETS as i64))
        .await?;
    let hour_ago = now - chrono::Duration::hours(1);
    let failed_last_hour: i64 = minutes
        .iter()
        .filter(|m| m.minute >= hour_ago)
        .map(|m| m.failed)
        .sum();
    let day = Day::new(&minutes, now);

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
        day,
        cap: cluster
            .max_running
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        queues: queues.into_values().collect(),
        leaders,
    };
    Ok(html(StatusCode::OK, &page))
}
