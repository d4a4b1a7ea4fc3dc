//! Graceful stop: in-flight tasks may finish within the drain timeout; the
//! rest are cancelled and handed straight back to the queue, and nothing is
//! lost.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Runs, quick_config, registry_with, task, wait_count, wait_for, wait_state};
use longshore::{CancelReason, Registry, TaskContext, TaskError, TaskState, WorkerConfig};
use uuid::Uuid;

/// While `slow` is set, executions wait (for `work`, or until cancelled);
/// otherwise they succeed at once. Records every start and every
/// cancellation seen.
fn slow_while(
    slow: &Arc<AtomicBool>,
    runs: &Runs,
    cancelled: &Arc<Mutex<Vec<(Uuid, CancelReason)>>>,
    work: Duration,
) -> Registry {
    let slow = slow.clone();
    let runs = runs.clone();
    let cancelled = cancelled.clone();
    registry_with("slow", move |_args, ctx: TaskContext| {
        runs.record(ctx.task_id());
        let cancelled = cancelled.clone();
        let slow = slow.load(Ordering::SeqCst);
        async move {
            if !slow {
                return Ok(());
            }
            tokio::select! {
                () = ctx.cancelled() => {
                    let reason = ctx.cancel_reason().expect("a cancelled execution has a reason");
                    cancelled.lock().expect("lock").push((ctx.task_id(), reason));
                    Err(TaskError::retry("interrupted"))
                }
                () = tokio::time::sleep(work) => Ok(()),
            }
        }
    })
}

async fn wait_started(runs: &Runs, n: usize) {
    wait_for(
        &format!("{n} handlers to start"),
        Duration::from_secs(20),
        || async { (runs.snapshot().len() >= n).then_some(()) },
    )
    .await;
}

conformance! {
    #[tokio::test]
    async fn shutdown_lets_an_in_flight_task_finish_within_the_drain_timeout(db) {
        let runs = Runs::new();
        let cancelled = Arc::default();
        let config = WorkerConfig {
            drain_timeout: Duration::from_secs(10),
            ..quick_config()
        };
        let slow = Arc::new(AtomicBool::new(true));
        let worker = db.worker(
            slow_while(&slow, &runs, &cancelled, Duration::from_millis(800)),
            config,
        );
        let id = db.enqueue_one(task("slow")).await;
        wait_started(&runs, 1).await;

        worker.shutdown().await.unwrap();
        // Recorded by the time shutdown returns.
        let done = db.task(id).await;
        assert_eq!(done.state, TaskState::Succeeded);
        assert_eq!(done.attempt, 1);
        assert!(cancelled.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_task_running_past_the_drain_timeout_goes_back_to_the_queue_at_once_and_runs_later(db) {
        let runs = Runs::new();
        let cancelled = Arc::default();
        let config = WorkerConfig {
            concurrency: 2,
            drain_timeout: Duration::from_millis(300),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            ..quick_config()
        };
        let slow = Arc::new(AtomicBool::new(true));
        let registry = slow_while(&slow, &runs, &cancelled, Duration::from_secs(60));
        let worker = db.worker(registry.clone(), config);
        let ids = db.enqueue(common::tasks("slow", 3)).await;
        wait_started(&runs, 2).await;
        assert_eq!(db.total().await, 3);
        let in_flight: HashSet<Uuid> = runs.snapshot().into_keys().collect();
        assert_eq!(in_flight.len(), 2);
        let max_before = db.task(ids[0]).await.max_attempts;

        worker.shutdown().await.unwrap();

        // At once, not after the (30 s) lease.
        for &id in &ids {
            let row = db.task(id).await;
            assert_eq!(row.state, TaskState::Queued, "task {id}");
            assert!(row.lease_owner.is_none() && row.lease_expires_at.is_none());
            assert_eq!(row.max_attempts, max_before, "max_attempts never changes");
            if in_flight.contains(&id) {
                assert_eq!(row.execution, 1, "the interrupted execution keeps its number");
                assert_eq!(row.attempt, 0, "and does not count as an attempt");
            } else {
                assert_eq!((row.attempt, row.execution), (0, 0));
            }
        }
        let seen = cancelled.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|(_, r)| *r == CancelReason::Shutdown));
        assert_eq!(db.total().await, 3);

        // A new worker finishes everything; nothing was lost.
        slow.store(false, Ordering::SeqCst);
        let worker = db.worker(registry, quick_config());
        wait_count(&db, TaskState::Succeeded, 3, Duration::from_secs(20)).await;
        worker.shutdown().await.unwrap();
        assert_eq!(db.total().await, 3);
        for id in in_flight {
            let row = db.task(id).await;
            assert_eq!((row.attempt, row.execution), (1, 2), "{row:?}");
            let logs = db.store.logs(id).await.unwrap();
            assert!(
                logs.iter()
                    .any(|l| l.execution == 1 && l.message.contains("interrupted")),
                "{logs:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_handler_ignoring_cancellation_at_shutdown_is_aborted_and_its_task_returned(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("stubborn", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async move {
                if ctx.execution() == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        });
        let config = WorkerConfig {
            drain_timeout: Duration::from_millis(300),
            cancel_grace: Duration::from_millis(300),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            ..quick_config()
        };
        let worker = db.worker(registry.clone(), config);
        let id = db.enqueue_one(task("stubborn")).await;
        wait_started(&runs, 1).await;
        let max_before = db.task(id).await.max_attempts;

        tokio::time::timeout(Duration::from_secs(20), worker.shutdown())
            .await
            .expect("shutdown ends even if a handler ignores cancellation")
            .unwrap();
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Queued);
        assert!(row.lease_owner.is_none());
        assert_eq!((row.attempt, row.execution), (0, 1));
        assert_eq!(row.max_attempts, max_before);

        let worker = db.worker(registry, quick_config());
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!((done.attempt, done.execution), (1, 2));
    }

    #[tokio::test]
    async fn a_task_returned_at_shutdown_wakes_another_idle_worker_at_once(db) {
        let runs = Runs::new();
        let cancelled = Arc::default();
        let slow = Arc::new(AtomicBool::new(true));
        let leaving = db.worker(
            slow_while(&slow, &runs, &cancelled, Duration::from_secs(60)),
            WorkerConfig {
                drain_timeout: Duration::from_millis(300),
                ..quick_config()
            },
        );
        let id = db.enqueue_one(task("slow")).await;
        wait_started(&runs, 1).await;

        // A second node, listening, that polls only every 30 s.
        let staying_runs = Runs::new();
        let staying = common::start_worker(
            db.other_store().await,
            common::counting_registry("slow", &staying_runs),
            common::slow_poll_config(),
        );
        wait_for(
            "the second worker to listen",
            Duration::from_secs(10),
            || async { (db.listeners().await >= 2).then_some(()) },
        )
        .await;

        leaving.shutdown().await.unwrap();
        wait_for(
            "the second worker to pick the task up",
            Duration::from_secs(10),
            || async { (db.task(id).await.state == TaskState::Succeeded).then_some(()) },
        )
        .await;
        staying.shutdown().await.unwrap();
        assert_eq!(staying_runs.of(id), 1);
        let done = db.task(id).await;
        assert_eq!((done.attempt, done.execution), (1, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_never_leaves_a_claimed_task_running(db) {
        db.enqueue(common::tasks("noop", 3000)).await;
        // Stop busy workers at arbitrary moments: a claim may be in flight.
        for round in 0..20 {
            let runs = Runs::new();
            let config = WorkerConfig {
                concurrency: 2,
                lease: Duration::from_secs(30),
                heartbeat: Duration::from_secs(10),
                ..quick_config()
            };
            let worker = db.worker(common::counting_registry("noop", &runs), config);
            wait_for(
                "the worker to make progress",
                Duration::from_secs(20),
                || async { (runs.total() >= 20).then_some(()) },
            )
            .await;
            worker.shutdown().await.unwrap();
            let left: Vec<(Uuid, Option<String>)> = db.running_owners().await;
            assert!(
                left.is_empty(),
                "round {round}: after shutdown these tasks are still running under the \
                 stopped worker's lease (never run here: {}): {left:?}",
                left.iter().all(|(id, _)| runs.of(*id) == 0)
            );
        }
        assert_eq!(db.total().await, 3000);
    }
}
