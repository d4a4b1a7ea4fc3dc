//! Maintenance: promotes delayed tasks that became due (waking their
//! workers), folds the task count changes into their totals, then runs
//! the built-in schedules that are due: rescue of running tasks whose
//! lease expired (`longshore.rescue`, every second by
//! default), forgetting workers not seen for a lease (`longshore.workers`,
//! every five seconds) and the purge of finished tasks past their retention
//! (`longshore.purge`, every minute). Operators see, pause and retime them
//! with `longshore schedules` like any schedule.
//!
//! One node of the cluster does it at a time: the holder of the
//! maintenance role ([`Leadership::MAINTENANCE`]), a lease every worker
//! tries to take or renew on each pass. When the holder dies, another
//! worker takes the role within one lease; when it stops, it resigns and
//! another takes it at its next pass; when its passes keep failing, it
//! stands down for a lease. Each pass handles bounded batches and repeats
//! while they come back full; a purge gets at most a third of a lease per
//! pass and goes on at the next.

use std::sync::Arc;

use chrono::Utc;
use longshore_core::schedule::builtin;
use longshore_core::{CronSpec, Leadership, TaskState};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Shared, scheduler};
use crate::metrics::RoleGauge;

const BATCH: i64 = 1000;

/// Passes in a row with a failed step after which the leader gives up its
/// role for a lease, so that a node whose connection is broken does not
/// keep the cluster's rescue to itself.
const FAILED_PASSES_TO_STAND_DOWN: u32 = 3;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let interval = config.maintenance_interval;
    let mut leading = false;
    // `longshore_leader{role="maintenance"}`: follows `leading`.
    let mut gauge = RoleGauge::new(config.metrics.as_ref(), Leadership::MAINTENANCE);
    let mut failed_passes = 0;
    let mut stand_down_until: Option<Instant> = None;
    loop {
        // Spread the nodes' passes so that they do not all run at once.
        let jitter = interval.mul_f64(fastrand::f64() * 0.2);
        tokio::select! {
            () = tokio::time::sleep(interval + jitter) => {}
            () = stop.cancelled() => break,
        }
        // Every node, leader or not, keeps up with the cluster's caps.
        shared.refresh_caps().await;
        if stand_down_until.is_some_and(|until| Instant::now() < until) {
            continue;
        }
        let now_leading = match shared
            .store
            .try_lead(Leadership::MAINTENANCE, &config.id, config.lease)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take or renew the maintenance role");
                false
            }
        };
        if now_leading != leading {
            if now_leading {
                tracing::info!(worker = %config.id, "this worker now runs the cluster's maintenance");
            } else {
                tracing::info!(worker = %config.id, "another worker runs the cluster's maintenance now");
            }
            leading = now_leading;
            gauge.set(leading);
        }
        if !leading {
            continue;
        }
        if pass(&shared, &stop).await {
            failed_passes = 0;
        } else {
            failed_passes += 1;
            if failed_passes >= FAILED_PASSES_TO_STAND_DOWN {
                tracing::warn!(
                    worker = %config.id,
                    "maintenance failed {failed_passes} passes in a row; leaving it to another worker for a lease"
                );
                resign(&shared).await;
                leading = false;
                gauge.set(false);
                failed_passes = 0;
                stand_down_until = Some(Instant::now() + config.lease);
            }
        }
    }
    // Whether or not this node believes it leads (a renewal may have
    // committed after its reply was lost): resigning only acts if it does,
    // and lets another worker take over at its next pass, not after a lease.
    gauge.set(false);
    resign(&shared).await;
}

/// How a maintenance job went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    /// Done: its run is recorded.
    Done,
    /// Stopped at its time budget: it goes on at the next pass.
    Unfinished,
    /// A step failed.
    Failed,
}

/// One pass of the leader: promote due tasks, then each built-in schedule
/// that is due — rescue of expired leases, forgetting dead workers, purge —
/// in that order, so that a long purge never holds up a rescue. True when
/// every step worked.
async fn pass(shared: &Shared, stop: &CancellationToken) -> bool {
    let mut ok = promote(shared).await;
    ok &= fold_counts(shared).await;
    for name in builtin::ALL {
        // What to record once the job is done; `None` with `run` true: the
        // schedule cannot be read, so the job runs at every pass rather
        // than never.
        let (fire, run) = match shared.store.schedule(name).await {
            Ok(Some(schedule)) if schedule.next_run_at.is_none() && !schedule.paused => {
                tracing::error!(
                    schedule = name,
                    "built-in schedule has no next run; running it at every pass (retime it with `longshore schedules edit`)"
                );
                (None, true)
            }
            Ok(Some(schedule)) => {
                match CronSpec::parse(&schedule.def.cron, &schedule.def.time_zone) {
                    Ok(spec) => {
                        let fire = scheduler::next_fire(&schedule, &spec, Utc::now(), false);
                        let run = fire.is_some();
                        (fire, run)
                    }
                    Err(e) => {
                        tracing::error!(schedule = name, error = %e, "built-in schedule cannot be read; running it at every pass");
                        (None, true)
                    }
                }
            }
            Ok(None) => (None, true),
            Err(e) => {
                tracing::warn!(schedule = name, error = %e, "cannot read a built-in schedule");
                ok = false;
                continue;
            }
        };
        if !run {
            continue;
        }
        let job = match name {
            builtin::RESCUE => rescue(shared).await,
            builtin::WORKERS => forget_workers(shared).await,
            _ => {
                // At most a third of a lease, so that the role (renewed for
                // a lease at each pass) cannot lapse meanwhile and the next
                // pass's rescue is not held up.
                let budget = Instant::now() + shared.config.lease / 3;
                purge(shared, budget, stop).await
            }
        };
        match (job, fire) {
            (Job::Done, Some(fire)) => {
                if let Err(e) = shared.store.fire_schedule(&fire).await {
                    tracing::warn!(schedule = name, error = %e, "cannot record the run of a built-in schedule");
                    ok = false;
                }
            }
            // A failing purge does not make the leader stand down: that
            // would hold up rescue, and another node would fail the same.
            (Job::Failed, _) if name != builtin::PURGE => ok = false,
            _ => {}
        }
    }
    ok
}

async fn promote(shared: &Shared) -> bool {
    loop {
        match shared.store.promote_due(BATCH).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "promoting due tasks failed");
                return false;
            }
        }
    }
}

/// Folds the task count changes appended since the last pass into the
/// totals, so that reading the counts stays cheap (one fold takes every
/// change committed before it).
async fn fold_counts(shared: &Shared) -> bool {
    match shared.store.fold_counts().await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "folding the task counts failed");
            false
        }
    }
}

async fn rescue(shared: &Shared) -> Job {
    loop {
        match shared.store.rescue_expired(BATCH).await {
            Ok(0) => return Job::Done,
            Ok(n) => {
                tracing::warn!(
                    rescued = n,
                    "returned tasks with expired leases to the queue"
                );
                if let Some(metrics) = &shared.config.metrics {
                    metrics.rescued(n);
                }
                if (n as i64) < BATCH {
                    return Job::Done;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "rescuing expired leases failed");
                return Job::Failed;
            }
        }
    }
}

/// A worker not seen for a lease is dead: its tasks are rescued, and it
/// leaves the list of live ones.
async fn forget_workers(shared: &Shared) -> Job {
    match shared.store.forget_workers(shared.config.lease).await {
        Ok(0) => Job::Done,
        Ok(n) => {
            tracing::info!(forgotten = n, "removed workers not seen for a lease");
            Job::Done
        }
        Err(e) => {
            tracing::warn!(error = %e, "removing workers not seen failed");
            Job::Failed
        }
    }
}

async fn resign(shared: &Shared) {
    if let Err(e) = shared
        .store
        .resign(Leadership::MAINTENANCE, &shared.config.id)
        .await
    {
        tracing::warn!(error = %e, "cannot resign the maintenance role; it passes on when its lease expires");
    }
}

/// Deletes finished tasks past their retention, state by state, in batches,
/// until none is left, or `budget` is reached or the worker stops (the rest
/// waits for the next pass).
async fn purge(shared: &Shared, budget: Instant, stop: &CancellationToken) -> Job {
    let retention = shared.config.retention;
    for (state, keep) in [
        (TaskState::Succeeded, retention.succeeded),
        (TaskState::Failed, retention.failed),
        (TaskState::Cancelled, retention.cancelled),
    ] {
        let mut purged = 0;
        let mut job = Job::Done;
        loop {
            if Instant::now() >= budget || stop.is_cancelled() {
                job = Job::Unfinished;
                break;
            }
            match shared.store.purge_finished(state, keep, BATCH).await {
                Ok(n) => {
                    purged += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, %state, "purging finished tasks failed");
                    job = Job::Failed;
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(%state, purged, retention = ?keep, "purged finished tasks past retention");
        }
        if job != Job::Done {
            return job;
        }
    }
    Job::Done
}
