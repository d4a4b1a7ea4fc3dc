//! Prefetch (`WorkerConfig::prefetch`): tasks claimed ahead of free slots
//! wait in memory under their leases, never run beyond the worker's
//! concurrency, and go back to the queue at once, unstarted and with their
//! attempts, when the worker stops.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Runs, quick_config, registry_with, task, tasks, wait_count, wait_for};
use longshore::{Registry, TaskContext, TaskState, WorkerConfig};
use tokio::sync::Semaphore;

/// Actor `held`: records each start, then waits for a permit of `release`.
fn held(runs: &Runs, release: &Arc<Semaphore>) -> Registry {
    let (runs, release) = (runs.clone(), release.clone());
    registry_with("held", move |_args, ctx: TaskContext| {
        runs.record(ctx.task_id());
        let release = release.clone();
        async move {
            let _ = release.acquire().await;
            Ok(())
        }
    })
}

conformance! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_prefetching_worker_runs_no_more_than_its_slots_and_every_task_once(db) {
        let runs = Runs::new();
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let registry = {
            let (runs, now, most) = (runs.clone(), now.clone(), most.clone());
            registry_with("count", move |_args, ctx: TaskContext| {
                runs.record(ctx.task_id());
                let (now, most) = (now.clone(), most.clone());
                async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    // Long enough for the others to queue behind the slots.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }
            })
        };
        let config = WorkerConfig {
            concurrency: 2,
            prefetch: 6,
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let ids = db.enqueue(tasks("count", 60)).await;
        wait_count(&db, TaskState::Succeeded, 60, Duration::from_secs(30)).await;
        worker.shutdown().await.unwrap();
        assert!(most.load(Ordering::SeqCst) <= 2, "{} at once", most.load(Ordering::SeqCst));
        let seen = runs.snapshot();
        assert_eq!(seen.len(), 60);
        assert!(ids.iter().all(|id| seen.get(id) == Some(&1)), "{seen:?}");
        assert_eq!(db.total().await, 60);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stop_hands_prefetched_tasks_back_at_once_unstarted_with_their_attempts(db) {
        let runs = Runs::new();
        // The one running handler waits for this.
        let release = Arc::new(Semaphore::new(0));
        let registry = held(&runs, &release);
        let config = WorkerConfig {
            concurrency: 1,
            prefetch: 3,
            // Long: the prefetched tasks must not wait for the drain.
            drain_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let ids = db.enqueue(tasks("held", 4)).await;
        // One slot runs a handler; three more tasks are claimed ahead of it.
        wait_for("one start and four running tasks", Duration::from_secs(20), || async {
            (runs.snapshot().len() == 1 && db.running().await == 4).then_some(())
        })
        .await;

        let stopping = tokio::spawn(worker.shutdown());
        // Back in the queue while the running handler still holds its slot.
        wait_count(&db, TaskState::Queued, 3, Duration::from_secs(20)).await;
        assert_eq!(runs.snapshot().len(), 1, "a prefetched task started during the stop");
        release.add_permits(1);
        stopping.await.unwrap().unwrap();

        let started = *runs.snapshot().keys().next().unwrap();
        for id in ids {
            let row = db.task(id).await;
            if id == started {
                assert_eq!((row.state, row.attempt), (TaskState::Succeeded, 1));
            } else {
                assert_eq!(row.state, TaskState::Queued, "task {id}");
                assert_eq!(row.attempt, 0, "an unstarted task spends no attempt");
                assert!(row.lease_owner.is_none() && row.lease_expires_at.is_none());
            }
        }
        assert_eq!(runs.snapshot().len(), 1);
        assert_eq!(db.total().await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_operator_cancel_ends_a_prefetched_task_without_running_it(db) {
        let runs = Runs::new();
        let release = Arc::new(Semaphore::new(0));
        let registry = held(&runs, &release);
        let config = WorkerConfig {
            concurrency: 1,
            prefetch: 1,
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let first = db.enqueue_one(task("held")).await;
        wait_for("the first to start", Duration::from_secs(20), || async {
            (runs.snapshot().len() == 1).then_some(())
        })
        .await;
        let second = db.enqueue_one(task("held")).await;
        wait_for("the second to be claimed ahead", Duration::from_secs(20), || async {
            (db.running().await == 2).then_some(())
        })
        .await;

        db.store.cancel(second).await.unwrap();
        let cancelled = common::wait_state(&db, second, TaskState::Cancelled).await;
        assert!(!runs.snapshot().contains_key(&second), "the cancelled task ran");
        // Never attempted: its attempt was given back, its execution kept
        // (the line saying why is logged under it).
        assert_eq!(cancelled.attempt, 0);
        assert_eq!(cancelled.execution, 1);
        release.add_permits(1);
        common::wait_state(&db, first, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.snapshot().len(), 1);
    }
}
