//! Maintenance: the cluster's housekeeping, small services run by one node
//! at a time.
//!
//! | service | file | when |
//! |---|---|---|
//! | promote due delayed tasks (waking their workers) | `promote.rs` | every pass |
//! | fold the task count changes into their totals | `counts.rs` | every pass |
//! | rescue running tasks whose lease expired | `rescue.rs` | built-in schedule `longshore.rescue` (every second by default) |
//! | forget workers not seen for a lease | `workers.rs` | built-in schedule `longshore.workers` (every five seconds) |
//! | delete expired agent tokens | `agent_tokens.rs` | built-in schedule `longshore.agent_tokens` (daily) |
//! | purge finished tasks past their retention | `purge.rs` | built-in schedule `longshore.purge` (every minute) |
//! | fire due cron schedules | `scheduler.rs` | its own loop, every `scheduler_interval` |
//!
//! Operators see, pause and retime the built-in schedules with
//! `longshore schedules` like any schedule.
//!
//! Each role is held by one node of the cluster at a time (see [`role`]):
//! the maintenance role ([`Leadership::MAINTENANCE`]) by the node that runs
//! [`run`]'s passes, the scheduler role by the one that fires schedules.
//! When the holder dies, another worker takes the role within one lease;
//! when it stops, it resigns and another takes it at its next pass; when
//! its maintenance passes keep failing, it stands down for a lease. Each
//! service handles bounded batches and repeats while they come back full;
//! a purge gets at most a third of a lease per pass and goes on at the
//! next, so that it never holds up a rescue.
//!
//! Every worker runs both loops; a worker started and stopped by the
//! application (see [`crate::Worker`]) starts and stops them with it.

mod agent_tokens;
mod counts;
mod promote;
mod purge;
mod rescue;
mod role;
pub(crate) mod scheduler;
mod workers;

use std::sync::Arc;

use chrono::Utc;
use longshore_core::schedule::builtin;
use longshore_core::{CronSpec, Leadership, Store};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use role::Role;

use crate::caps::Caps;
use crate::config::WorkerConfig;

/// What the leader-run services need of the node that runs them.
pub(crate) struct Node {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: WorkerConfig,
    /// This node's view of the running-task caps, which every pass
    /// refreshes.
    pub(crate) caps: Arc<Caps>,
}

/// Rows each step handles per statement.
const BATCH: i64 = 1000;

/// Passes in a row with a failed step after which the leader gives up its
/// role for a lease, so that a node whose connection is broken does not
/// keep the cluster's rescue to itself.
const FAILED_PASSES_TO_STAND_DOWN: u32 = 3;

/// The maintenance loop of one worker: every `maintenance_interval`, reads
/// the cluster's caps (every node), then, while it holds the maintenance
/// role, runs one pass.
pub(crate) async fn run(node: Arc<Node>, stop: CancellationToken) {
    let config = &node.config;
    let interval = config.maintenance_interval;
    let mut role = Role::new(
        Leadership::MAINTENANCE,
        "runs the cluster's maintenance",
        &config.id,
        config.metrics.as_ref(),
    );
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
        node.caps.refresh(node.store.as_ref(), &node.config).await;
        if stand_down_until.is_some_and(|until| Instant::now() < until) {
            continue;
        }
        if !role.renew(node.store.as_ref(), config.lease).await {
            continue;
        }
        if pass(&node, &stop).await {
            failed_passes = 0;
        } else {
            failed_passes += 1;
            if failed_passes >= FAILED_PASSES_TO_STAND_DOWN {
                tracing::warn!(
                    worker = %config.id,
                    "maintenance failed {failed_passes} passes in a row; leaving it to another worker for a lease"
                );
                role.resign(node.store.as_ref()).await;
                failed_passes = 0;
                stand_down_until = Some(Instant::now() + config.lease);
            }
        }
    }
    role.resign(node.store.as_ref()).await;
}

/// How a maintenance job went.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
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
async fn pass(node: &Node, stop: &CancellationToken) -> bool {
    let mut ok = promote::run(node).await == Job::Done;
    ok &= counts::run(node).await == Job::Done;
    for name in builtin::ALL {
        // What to record once the job is done; `None` with `run` true: the
        // schedule cannot be read, so the job runs at every pass rather
        // than never.
        let (fire, run) = match node.store.schedule(name).await {
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
            builtin::RESCUE => rescue::run(node).await,
            builtin::WORKERS => workers::run(node).await,
            builtin::AGENT_TOKENS => agent_tokens::run(node).await,
            _ => {
                // At most a third of a lease, so that the role (renewed for
                // a lease at each pass) cannot lapse meanwhile and the next
                // pass's rescue is not held up.
                let budget = Instant::now() + node.config.lease / 3;
                purge::run(node, budget, stop).await
            }
        };
        match (job, fire) {
            (Job::Done, Some(fire)) => {
                if let Err(e) = node.store.fire_schedule(&fire).await {
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
