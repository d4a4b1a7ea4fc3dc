//! M, many producers: a web server's load, where each request enqueues
//! one task. Many producers each call [`Client::enqueue_task`] back to
//! back for a while, once with the client's gathering off (one insert and
//! one commit per call) and once with it on (concurrent calls share
//! inserts); no worker runs. Reported per run: enqueues per second and the
//! latency of one call, from the call to its answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use longshore::{Client, Store};
use serde::Serialize;

use crate::report::Percentiles;
use crate::task;

/// Both runs, and the rate of the gathered one over the other's.
#[derive(Serialize)]
pub(crate) struct ProducersReport {
    pub(crate) producers: usize,
    pub(crate) alone: ProducersRun,
    pub(crate) gathered: ProducersRun,
    /// Gathered enqueues per second over those of the run without.
    pub(crate) speedup: f64,
}

/// One run.
#[derive(Serialize)]
pub(crate) struct ProducersRun {
    pub(crate) seconds: f64,
    pub(crate) enqueued: usize,
    pub(crate) enqueue_per_sec: f64,
    /// One call's latency, call to answer.
    pub(crate) latency: Percentiles,
}

/// Runs `producers` producers for `duration`, without gathering first
/// (so that the gathered run, not it, meets the larger table).
pub(crate) async fn run(
    store: &Arc<dyn Store>,
    producers: usize,
    duration: Duration,
) -> anyhow::Result<ProducersReport> {
    tracing::info!(producers, "M: producers, one commit per call");
    let alone = produce(
        Client::new(store.clone()).gathering(false),
        "bench_m_alone",
        producers,
        duration,
    )
    .await?;
    tracing::info!(producers, "M: producers, calls gathered");
    let gathered = produce(
        Client::new(store.clone()),
        "bench_m_gathered",
        producers,
        duration,
    )
    .await?;
    Ok(ProducersReport {
        producers,
        speedup: gathered.enqueue_per_sec / alone.enqueue_per_sec,
        alone,
        gathered,
    })
}

async fn produce(
    client: Client,
    queue: &'static str,
    producers: usize,
    duration: Duration,
) -> anyhow::Result<ProducersRun> {
    let start = Instant::now();
    let deadline = start + duration;
    let calls: Vec<_> = (0..producers)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut millis = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    client.enqueue_task(task(queue)).await?;
                    millis.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(millis)
            })
        })
        .collect();
    let mut millis = Vec::new();
    for call in calls {
        millis.extend(call.await.context("a producer panicked")??);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(ProducersRun {
        seconds,
        enqueued: millis.len(),
        enqueue_per_sec: millis.len() as f64 / seconds,
        latency: Percentiles::of(millis),
    })
}
