//! `/workers`: the seeds' Workers page: status cards (mode, version,
//! cluster cap, total slots, running), the worker nodes with their roles,
//! the connected agents (with a drain button) and the pools.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use longshore::TaskState;
use longshore::core::StatsKey;
use longshore::ops::{self, OpError};
use serde::Deserialize;

use crate::dashboard::pages::Done;
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

/// A connected agent's line.
pub(crate) struct AgentLine {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) pool: String,
    pub(crate) labels: String,
    pub(crate) running: i32,
    pub(crate) slots: i32,
    pub(crate) draining: bool,
    pub(crate) connected: String,
    pub(crate) last_seen: String,
}

/// A pool's line.
pub(crate) struct PoolLine {
    pub(crate) name: String,
    pub(crate) queues: String,
    pub(crate) labels: String,
    pub(crate) cap: String,
    pub(crate) agents: i64,
    pub(crate) running: i64,
    pub(crate) queued: i64,
}

#[derive(Template)]
#[template(path = "workers.html")]
struct Page {
    page: Chrome,
    version: &'static str,
    mode: &'static str,
    cap: String,
    slots: i64,
    running: i64,
    workers: Vec<WorkerLine>,
    agents: Vec<AgentLine>,
    pools: Vec<PoolLine>,
}

fn listed(words: &[String]) -> String {
    if words.is_empty() {
        "-".to_owned()
    } else {
        words.join(", ")
    }
}

/// `GET /workers`.
pub(crate) async fn page(
    State(dash): State<Dash>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let store = dash.store.as_ref();
    let all = store.workers().await?;
    let pools = ops::agents::pool_status(store).await.map_err(refusal)?;
    let (agents, workers): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|w| w.presence.agent.is_some());
    let agents: Vec<_> = agents
        .into_iter()
        .filter_map(ops::agents::ConnectedAgent::from_worker)
        .collect();
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
        page: Chrome::new(&signed, "workers")
            .live(5)
            .done(done.done.as_deref()),
        version: env!("CARGO_PKG_VERSION"),
        mode: if pools.is_empty() {
            "inline"
        } else {
            "inline + agents"
        },
        cap: cluster
            .max_running
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        slots: workers
            .iter()
            .map(|w| i64::from(w.presence.concurrency))
            .chain(agents.iter().map(|a| i64::from(a.slots)))
            .sum(),
        running,
        agents: agents
            .into_iter()
            .map(|a| AgentLine {
                labels: listed(&a.labels),
                connected: time(a.connected_at),
                last_seen: age(a.last_seen, now),
                id: a.id,
                kind: a.kind,
                pool: a.pool,
                running: a.running,
                slots: a.slots,
                draining: a.draining,
            })
            .collect(),
        pools: pools
            .into_iter()
            .map(|p| PoolLine {
                queues: listed(&p.pool.queues),
                labels: listed(&p.pool.labels),
                cap: p
                    .pool
                    .max_running
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                name: p.pool.name,
                agents: p.live_agents,
                running: p.running_now,
                queued: p.pending_now,
            })
            .collect(),
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

/// A drain button's form.
#[derive(Deserialize)]
pub(crate) struct DrainForm {
    csrf: String,
}

/// `POST /agents/{id}/drain`: asks the agent to drain, as
/// `longshore agents drain` does.
pub(crate) async fn drain(
    State(dash): State<Dash>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<DrainForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    ops::agents::drain(dash.store.as_ref(), &id)
        .await
        .map_err(refusal)?;
    tracing::info!(token = %signed.session.token.name, agent = %id, "dashboard: agent drained");
    Ok(Redirect::to("/workers?done=draining").into_response())
}

fn refusal(error: OpError) -> Refusal {
    match error {
        OpError::Invalid(message) => Refusal::BadRequest(message),
        OpError::Store(longshore::StoreError::AgentNotFound(id)) => {
            Refusal::NotFound(format!("No connected agent has the id {id}."))
        }
        OpError::Store(error) | OpError::Partial { source: error, .. } => error.into(),
        other => {
            tracing::warn!(error = %other, "dashboard: an operation failed");
            Refusal::Unavailable
        }
    }
}
