//! B, latency: an idle, listening worker; tasks enqueued one at a time;
//! each one's time from the enqueue call to its handler's start, and the
//! two parts of it, split where the enqueue call returns.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use longshore::Store;

use crate::report::{LatencyReport, Percentiles};
use crate::{Options, Probe, Via, start_consumer, task};

pub(crate) async fn latency(
    store: &Arc<dyn Store>,
    args: &Options,
    via: Via<'_>,
) -> anyhow::Result<LatencyReport> {
    let queue = &via.queue('b');
    let n = args.latency_tasks;
    let (worker, probe) = start_consumer(store, queue, args, true, via)?;
    if let Via::Agent(_) = via {
        // An agent has no listener to connect, but a session to open:
        // one task run proves it open. Its start is not among those sent.
        store.enqueue(vec![task(queue)]).await?;
        wait_for_runs(&probe, 1, "B: the agent did not run its warm-up task").await?;
        probe.runs.store(0, Ordering::Relaxed);
    }
    // Let the worker connect its listener and go idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    tracing::info!(tasks = n, queue, "B: enqueueing one at a time");
    let mut sent = HashMap::with_capacity(n);
    let mut ticker = tokio::time::interval(args.latency_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..n {
        ticker.tick().await;
        let task = task(queue);
        let id = task.id;
        let at = Instant::now();
        store.enqueue(vec![task]).await?;
        sent.insert(id, (at, Instant::now()));
    }
    wait_for_runs(&probe, n, "B: tasks not started").await?;
    worker.shutdown().await?;
    let started = probe
        .started
        .as_ref()
        .map(Mutex::lock)
        .and_then(Result::ok)
        .ok_or_else(|| anyhow::anyhow!("the latency probe recorded nothing"))?;
    let (mut whole, mut enqueue, mut pickup) = (Vec::new(), Vec::new(), Vec::new());
    for (id, (called, answered)) in &sent {
        if let Some(start) = started.get(id) {
            let parts = LatencyParts::of(*called, *answered, *start);
            whole.push(parts.whole);
            enqueue.push(parts.enqueue);
            pickup.push(parts.pickup);
        }
    }
    let Percentiles {
        p50_ms,
        p95_ms,
        p99_ms,
        max_ms,
    } = Percentiles::of(whole);
    Ok(LatencyReport {
        tasks: n,
        interval_ms: args.latency_interval.as_secs_f64() * 1e3,
        p50_ms,
        p95_ms,
        p99_ms,
        max_ms,
        enqueue: Percentiles::of(enqueue),
        pickup: Percentiles::of(pickup),
    })
}

/// One B task's latency and its two parts, in milliseconds.
#[derive(Debug, PartialEq)]
struct LatencyParts {
    /// The enqueue call until the handler started.
    whole: f64,
    /// The enqueue call until it returned.
    enqueue: f64,
    /// Its return until the handler started; zero when the handler
    /// started first (the two parts then add up to more than the whole).
    pickup: f64,
}

impl LatencyParts {
    fn of(called: Instant, answered: Instant, started: Instant) -> LatencyParts {
        let ms =
            |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        LatencyParts {
            whole: ms(called, started),
            enqueue: ms(called, answered),
            pickup: ms(answered, started),
        }
    }
}

/// Waits until `probe` has seen `n` runs, for at most a minute.
async fn wait_for_runs(probe: &Probe, n: usize, failure: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.runs.load(Ordering::Relaxed) < n as u64 {
        if Instant::now() > deadline {
            bail!("{failure} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_splits_at_the_enqueue_calls_return() {
        let called = Instant::now();
        let at = |ms: u64| called + Duration::from_millis(ms);
        assert_eq!(
            LatencyParts::of(called, at(3), at(5)),
            LatencyParts {
                whole: 5.0,
                enqueue: 3.0,
                pickup: 2.0
            }
        );
        // The handler started before the enqueue call returned.
        assert_eq!(
            LatencyParts::of(called, at(4), at(3)),
            LatencyParts {
                whole: 3.0,
                enqueue: 4.0,
                pickup: 0.0
            }
        );
    }
}
