//! The scheduler: fires due schedules, on one node of the cluster at a time.
//!
//! Every worker tries, each scheduler interval, to take or renew the
//! scheduler role ([`Leadership::SCHEDULER`]); only its holder looks for due
//! schedules. Each run is fired by [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule), fenced on the
//! due time the scheduler read, so that even two nodes that both believe
//! they lead (one whose lease ran out during a pause) cannot both fire a
//! run. The next due time is computed from *now*, not from the missed due
//! time: a cluster that was down for a day fires each schedule once, not
//! once per missed run.
//!
//! The worker's own schedules ([`WorkerConfig::schedules`]) are created or
//! updated by name first, and retried each pass until stored.
//!
//! [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule): longshore_core::Store::fire_schedule
//! [`WorkerConfig::schedules`]: crate::WorkerConfig::schedules

use std::sync::Arc;

use chrono::Utc;
use longshore_core::{
    CronSpec, Fire, FireKind, FireOutcome, Leadership, Overlap, PutMode, Schedule, ScheduleDef,
};
use tokio_util::sync::CancellationToken;

use super::Node;
use super::role::Role;

/// Due schedules read per query; the pass reads again while they come full
/// and some fired. Schedules waiting behind their previous runs come first
/// (their due time is the oldest), so more than this many waiting at once
/// would hold up the others.
const BATCH: i64 = 1000;

pub(crate) async fn run(node: Arc<Node>, stop: CancellationToken) {
    let config = &node.config;
    let interval = config.scheduler_interval;
    let mut undefined: Vec<ScheduleDef> = config.schedules.clone();
    let mut role = Role::new(
        Leadership::SCHEDULER,
        "fires the cluster's schedules",
        &config.id,
        config.metrics.as_ref(),
    );
    loop {
        if !undefined.is_empty() {
            undefined = define(&node, undefined).await;
        }
        let jitter = interval.mul_f64(fastrand::f64() * 0.2);
        tokio::select! {
            () = tokio::time::sleep(interval + jitter) => {}
            () = stop.cancelled() => break,
        }
        if role.renew(node.store.as_ref(), config.lease).await {
            fire_due(&node, &stop).await;
        }
    }
    role.resign(node.store.as_ref()).await;
}

/// Creates or updates the worker's own schedules; returns those that could
/// not be stored (to try again).
async fn define(node: &Node, defs: Vec<ScheduleDef>) -> Vec<ScheduleDef> {
    let mut left = Vec::new();
    for def in defs {
        // Validated when the worker was built.
        let next = def
            .validate()
            .ok()
            .and_then(|spec| spec.next_after(Utc::now()));
        match node.store.put_schedule(&def, PutMode::Upsert, next).await {
            Ok(schedule) => tracing::info!(
                schedule = %schedule.def.name,
                cron = %schedule.def.cron,
                next_run_at = ?schedule.next_run_at,
                paused = schedule.paused,
                "schedule defined"
            ),
            Err(e) if e.is_transient() => {
                tracing::warn!(schedule = %def.name, error = %e, "cannot store this schedule yet; trying again");
                left.push(def);
            }
            Err(e) => {
                tracing::error!(schedule = %def.name, error = %e, "this schedule was refused");
            }
        }
    }
    left
}

/// Fires every schedule with a run to fire, in batches.
async fn fire_due(node: &Node, stop: &CancellationToken) {
    loop {
        let due = match node.store.due_schedules(BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the due schedules");
                return;
            }
        };
        let full = due.len() as i64 == BATCH;
        let mut fired_any = false;
        for schedule in &due {
            if stop.is_cancelled() {
                return;
            }
            fired_any |= fire(node, schedule).await;
        }
        // A full batch of schedules that all wait behind their previous
        // runs would come back the same: stop there.
        if !full || !fired_any {
            return;
        }
    }
}

/// What to fire for `schedule` at `now`: its cron run if due, else a run by
/// hand that was waiting.
pub(crate) fn next_fire(
    schedule: &Schedule,
    spec: &CronSpec,
    now: chrono::DateTime<Utc>,
    task: bool,
) -> Option<Fire> {
    let name = schedule.def.name.clone();
    let mut run = task.then(|| schedule.def.task());
    match schedule.next_run_at {
        Some(due) if !schedule.paused && due <= now => {
            // The run is the one due at `due`: its task says so.
            if let Some(run) = &mut run {
                run.run_at = Some(due);
            }
            Some(Fire {
                name,
                kind: FireKind::Due(due),
                next_run_at: spec.next_after(now),
                task: run,
            })
        }
        _ if schedule.run_requested => Some(Fire {
            name,
            kind: FireKind::Requested,
            next_run_at: None,
            task: run,
        }),
        _ => None,
    }
}

/// Fires one schedule's pending run; true when something changed.
async fn fire(node: &Node, schedule: &Schedule) -> bool {
    let name = &schedule.def.name;
    let spec = match CronSpec::parse(&schedule.def.cron, &schedule.def.time_zone) {
        Ok(spec) => spec,
        Err(e) => {
            tracing::error!(schedule = %name, error = %e, "schedule cannot be read; skipping it");
            return false;
        }
    };
    let Some(fire) = next_fire(schedule, &spec, Utc::now(), true) else {
        return false;
    };
    // A run that must wait for the previous one waits without a write: a
    // plain read of that run's state (the fire checks it again, locked).
    if schedule.def.overlap == Overlap::Queue
        && let Some(previous) = schedule.last_task_id
        && let Ok(Some(task)) = node.store.task(previous).await
        && !task.state.is_terminal()
    {
        return false;
    }
    match node.store.fire_schedule(&fire).await {
        Ok(FireOutcome::Enqueued { task, replaced }) => {
            tracing::info!(schedule = %name, %task, ?replaced, next_run_at = ?fire.next_run_at, "schedule fired");
            if let (Some(metrics), Some(run)) = (&node.config.metrics, &fire.task) {
                metrics.enqueued_one(&run.actor, &run.queue);
            }
            true
        }
        Ok(FireOutcome::Skipped { behind }) => {
            tracing::warn!(schedule = %name, %behind, "run skipped: the previous run is still active (overlap policy skip)");
            true
        }
        Ok(FireOutcome::Waiting { behind }) => {
            tracing::debug!(schedule = %name, %behind, "run waits for the previous run to finish (overlap policy queue)");
            false
        }
        Ok(FireOutcome::Stale) => false,
        Err(e) => {
            tracing::warn!(schedule = %name, error = %e, "firing the schedule failed; trying again at the next pass");
            false
        }
    }
}
