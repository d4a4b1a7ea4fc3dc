//! W, churn: do the hot path's costs stay flat once millions of tasks
//! have passed through the table? Not a pre-written history (F's) but
//! real churn: dead rows, index entries of deleted tasks, vacuum and the
//! purge at work while the worker runs.
//!
//! 1. Fresh: A (`--bulk-tasks`) and B on the new scratch database.
//! 2. Churn: `--churn-tasks` pass through a queue of their own: written
//!    1,000 at a time while the worker (the bench's concurrency and
//!    prefetch) runs them, at most 50,000 waiting at once; meanwhile a
//!    purger deletes succeeded tasks through the store's own purge
//!    statement (1,000 a statement, the maintenance leader's batch),
//!    counting the rows it deletes per second against the completions.
//! 3. After: A and B again, on the churned table.
//!
//! The ratios after / fresh are the result: within 20 % is the bar.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use longshore::{Store, TaskState};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::latency::latency;
use crate::report::{BulkReport, LatencyReport};
use crate::{Options, Via, bulk_on, count, start_consumer, task};

/// What the purger deletes per statement.
const PURGE_BATCH: i64 = 1000;
/// Tasks waiting at most while the churn is written.
const MOST_WAITING: u64 = 50_000;

#[derive(Serialize)]
pub(crate) struct ChurnReport {
    pub(crate) fresh: Phase,
    pub(crate) churn: ChurnRun,
    pub(crate) after: Phase,
    /// A's processing rate after the churn over before (1.0: unchanged).
    pub(crate) ratio_process: f64,
    /// B's p50 after over before (1.0: unchanged; above: slower).
    pub(crate) ratio_b_p50: f64,
    pub(crate) ratio_b_p99: f64,
}

/// A and B at one point of the table's life.
#[derive(Serialize)]
pub(crate) struct Phase {
    pub(crate) a_bulk: BulkReport,
    pub(crate) b_latency: LatencyReport,
}

/// The churn itself.
#[derive(Serialize)]
pub(crate) struct ChurnRun {
    pub(crate) tasks: usize,
    pub(crate) seconds: f64,
    pub(crate) completed_per_sec: f64,
    /// Succeeded tasks the purger deleted while the worker ran (the
    /// fresh phase's among them).
    pub(crate) purged: u64,
    pub(crate) purged_per_sec: f64,
    /// The churn's succeeded tasks not yet purged when the last one
    /// ran: a purge that keeps up leaves about a batch or two.
    pub(crate) unpurged_at_end: u64,
}

pub(crate) async fn run(store: &Arc<dyn Store>, args: &Options) -> anyhow::Result<ChurnReport> {
    tracing::info!("W: fresh table");
    let fresh = phase(store, args, "bench_w_fresh").await?;
    let churn = churn(store, args, args.churn_tasks).await?;
    tracing::info!("W: after the churn");
    let after = phase(store, args, "bench_w_after").await?;
    Ok(ChurnReport {
        ratio_process: after.a_bulk.process_per_sec / fresh.a_bulk.process_per_sec,
        ratio_b_p50: after.b_latency.p50_ms / fresh.b_latency.p50_ms,
        ratio_b_p99: after.b_latency.p99_ms / fresh.b_latency.p99_ms,
        fresh,
        churn,
        after,
    })
}

async fn phase(store: &Arc<dyn Store>, args: &Options, queue: &str) -> anyhow::Result<Phase> {
    Ok(Phase {
        a_bulk: bulk_on(store, queue, args, Via::Inline).await?,
        b_latency: latency(store, args, Via::Inline).await?,
    })
}

async fn churn(store: &Arc<dyn Store>, args: &Options, total: usize) -> anyhow::Result<ChurnRun> {
    let queue = "bench_w_churn";
    tracing::info!(tasks = total, "W: churning");
    let (worker, probe) = start_consumer(store, queue, args, false, Via::Inline)?;
    let stop = CancellationToken::new();
    let purged = Arc::new(AtomicU64::new(0));
    let purger = tokio::spawn(purge(store.clone(), purged.clone(), stop.clone()));
    let start = Instant::now();
    let mut written = 0usize;
    while written < total {
        let waiting = (written as u64).saturating_sub(probe.runs.load(Ordering::Relaxed));
        if waiting >= MOST_WAITING {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let chunk = (total - written).min(1000);
        store
            .enqueue((0..chunk).map(|_| task(queue)).collect())
            .await?;
        written += chunk;
        if start.elapsed() > Duration::from_secs(3600) {
            bail!("W: the churn is not written after an hour");
        }
    }
    while probe.runs.load(Ordering::Relaxed) < total as u64 {
        if start.elapsed() > Duration::from_secs(3600) {
            bail!("W: the churn is not done after an hour");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let purged_by_then = purged.load(Ordering::Relaxed);
    let unpurged = count(store, queue, |s| s == TaskState::Succeeded).await?;
    stop.cancel();
    purger.await??;
    worker.shutdown().await?;
    Ok(ChurnRun {
        tasks: total,
        seconds,
        completed_per_sec: total as f64 / seconds,
        purged: purged_by_then,
        purged_per_sec: purged_by_then as f64 / seconds,
        unpurged_at_end: u64::try_from(unpurged).unwrap_or(0),
    })
}

/// Deletes succeeded tasks as the maintenance leader does, with no
/// retention, until stopped; adds what it deleted to `purged`.
async fn purge(
    store: Arc<dyn Store>,
    purged: Arc<AtomicU64>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    while !stop.is_cancelled() {
        let n = store
            .purge_finished(TaskState::Succeeded, Duration::ZERO, PURGE_BATCH)
            .await?;
        purged.fetch_add(n, Ordering::Relaxed);
        if (n as i64) < PURGE_BATCH {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}
