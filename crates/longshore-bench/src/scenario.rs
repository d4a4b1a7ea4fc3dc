//! U, a directory sync: the worked scaling scenario of
//! docs/operations.md, measured. One task per user, each a `PUT
//! /users/{id}` through the built-in `http` actor to a stand-in directory
//! served by this process, which answers 204 after `--directory-latency`
//! (20 ms by default, a typical SaaS API). The same backlog of `--users`
//! is drained by each `--layouts` entry, `PxC`: P `longshore worker`
//! processes of C slots each (and the bench's `--prefetch`).
//!
//! Per layout: the wall time from resuming the queue to the last task
//! recorded succeeded; tasks/s against what the slots alone would allow
//! (slots ÷ latency); the most requests the directory saw at once (how
//! many slots were really busy); CPU seconds of the worker processes and
//! of a local PostgreSQL server; and how busy the whole machine was.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use longshore::{NewTask, Store};
use serde::Serialize;

use crate::cpu;
use crate::scale::{Fleet, Target, drain, write_backlog};

/// `PxC`: P worker processes of C slots each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Worker processes.
    pub processes: usize,
    /// Slots (concurrency) of each.
    pub slots: usize,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(text: &str) -> Result<Layout, String> {
        let bad = || format!("layout `{text}`: expected PROCESSESxSLOTS, e.g. 4x64");
        let (p, c) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let processes: usize = p.trim().parse().map_err(|_| bad())?;
        let slots: usize = c.trim().parse().map_err(|_| bad())?;
        if !(1..=64).contains(&processes) || !(1..=4096).contains(&slots) {
            return Err(format!(
                "layout `{text}`: 1 to 64 processes of 1 to 4096 slots"
            ));
        }
        Ok(Layout { processes, slots })
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.processes, self.slots)
    }
}

/// Every layout's run.
#[derive(Serialize)]
pub(crate) struct ScenarioReport {
    pub(crate) users: usize,
    pub(crate) directory_latency_ms: f64,
    pub(crate) runs: Vec<ScenarioRun>,
}

/// One layout.
#[derive(Serialize)]
pub(crate) struct ScenarioRun {
    pub(crate) layout: String,
    pub(crate) processes: usize,
    pub(crate) slots: usize,
    pub(crate) seconds: f64,
    pub(crate) process_per_sec: f64,
    /// What the slots alone allow: slots ÷ the directory's latency.
    pub(crate) slots_allow_per_sec: f64,
    /// The most requests the directory was answering at once.
    pub(crate) most_in_flight: usize,
    pub(crate) worker_cpu_seconds: f64,
    /// A local PostgreSQL server's processes; absent on SQLite (the
    /// database runs inside the workers) or a remote server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) database_cpu_seconds: Option<f64>,
    /// The whole machine: busy cores on average over the run.
    pub(crate) machine_busy_cores: f64,
    pub(crate) machine_busy_percent: f64,
}

/// What the layouts drain.
pub(crate) struct Plan<'a> {
    pub(crate) target: &'a Target,
    pub(crate) users: usize,
    pub(crate) latency: Duration,
    pub(crate) layouts: &'a [Layout],
    /// Each worker's `worker.prefetch` (the bench's `--prefetch`).
    pub(crate) prefetch: longshore::Prefetch,
}

/// The stand-in directory: requests being answered now, and the most ever.
#[derive(Default)]
struct Directory {
    in_flight: AtomicUsize,
    most: AtomicUsize,
    latency: Duration,
}

async fn put_user(State(directory): State<Arc<Directory>>) -> axum::http::StatusCode {
    let now = directory.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    directory.most.fetch_max(now, Ordering::Relaxed);
    tokio::time::sleep(directory.latency).await;
    directory.in_flight.fetch_sub(1, Ordering::Relaxed);
    axum::http::StatusCode::NO_CONTENT
}

pub(crate) async fn run(store: &Arc<dyn Store>, plan: &Plan<'_>) -> anyhow::Result<ScenarioReport> {
    let directory = Arc::new(Directory {
        latency: plan.latency,
        ..Directory::default()
    });
    let app = axum::Router::new()
        .route("/users/{id}", axum::routing::put(put_user))
        .with_state(directory.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the stand-in directory")?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut runs = Vec::new();
    for layout in plan.layouts {
        let queue = format!("bench_u{layout}");
        tracing::info!(%layout, users = plan.users, "U: writing one task per user");
        write_backlog(store, &queue, plan.users, |i| {
            NewTask::new(
                "http",
                serde_json::json!({
                    "url": format!("{base}/users/{i}"),
                    "method": "PUT",
                    "body": {"id": i, "email": format!("user{i}@example.com"), "active": true},
                    "expect_status": [204],
                }),
            )
        })
        .await?;
        let fleet = Fleet::start(
            store,
            plan.target,
            &queue,
            layout.processes,
            layout.slots,
            plan.prefetch,
        )
        .await?;
        directory.most.store(0, Ordering::Relaxed);
        let span = cpu::Span::start(matches!(plan.target, Target::Postgres(_)));
        let workers_before = fleet.cpu_seconds();
        tracing::info!(%layout, "U: draining");
        let seconds = drain(store, &queue, plan.users).await?.as_secs_f64();
        let worker_cpu_seconds = fleet.cpu_seconds() - workers_before;
        let spent = span.spent(seconds);
        fleet.stop().await;
        let slots = layout.processes * layout.slots;
        runs.push(ScenarioRun {
            layout: layout.to_string(),
            processes: layout.processes,
            slots: layout.slots,
            seconds,
            process_per_sec: plan.users as f64 / seconds,
            slots_allow_per_sec: slots as f64 / plan.latency.as_secs_f64().max(1e-6),
            most_in_flight: directory.most.load(Ordering::Relaxed),
            worker_cpu_seconds,
            database_cpu_seconds: spent.database_cpu_seconds,
            machine_busy_cores: spent.machine_busy_cores,
            machine_busy_percent: spent.machine_busy_percent,
        });
    }
    server.abort();
    Ok(ScenarioReport {
        users: plan.users,
        directory_latency_ms: plan.latency.as_secs_f64() * 1e3,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_is_processes_by_slots() {
        assert_eq!(
            "4x64".parse::<Layout>(),
            Ok(Layout {
                processes: 4,
                slots: 64
            })
        );
        assert_eq!(
            "1X16".parse::<Layout>().map(|l| l.to_string()),
            Ok("1x16".into())
        );
        for bad in ["4", "x64", "4x", "0x16", "65x1", "1x0", "ax1"] {
            assert!(bad.parse::<Layout>().is_err(), "{bad}");
        }
    }
}
