//! Prefetch (`WorkerConfig::prefetch`): tasks claimed ahead of free slots
//! wait in memory under their leases, never run beyond the worker's
//! concurrency, and go back to the queue at once, unstarted and with their
//! attempts, when the worker stops. `auto` claims ahead after short tasks
//! and not after long ones.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestDb;
use common::{Runs, quick_config, registry_with, task, tasks, wait_count, wait_for};
use longshore::{Prefetch, Registry, TaskContext, TaskState, WorkerConfig, WorkerHandle};
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

/// Actor `paced`: sleeps `{"ms": n}` milliseconds; or, given `{"hold":
/// true}`, records its start and waits for a permit of `release`.
fn paced(runs: &Runs, release: &Arc<Semaphore>) -> Registry {
    let (runs, release) = (runs.clone(), release.clone());
    registry_with("paced", move |args, ctx: TaskContext| {
        let hold = args["hold"].as_bool() == Some(true);
        let ms = args["ms"].as_u64().unwrap_or(0);
        if hold {
            runs.record(ctx.task_id());
        }
        let release = release.clone();
        async move {
            if hold {
                let _ = release.acquire().await;
            } else if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok(())
        }
    })
}

/// A worker of one slot with `prefetch: auto`, running `paced`.
fn one_auto_slot(db: &TestDb, runs: &Runs, release: &Arc<Semaphore>) -> WorkerHandle {
    let config = WorkerConfig {
        concurrency: 1,
        prefetch: Prefetch::Auto,
        ..quick_config()
    };
    db.worker(paced(runs, release), config)
}

fn paced_tasks(args: serde_json::Value, n: usize) -> Vec<longshore::NewTask> {
    (0..n)
        .map(|_| longshore::NewTask::new("paced", args.clone()))
        .collect()
}

conformance! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn auto_claims_ahead_once_tasks_prove_short(db) {
        let (runs, release) = (Runs::new(), Arc::new(Semaphore::new(0)));
        let worker = one_auto_slot(&db, &runs, &release);
        // Handlers that end at once, against claims that take a round trip.
        db.enqueue(paced_tasks(serde_json::json!({}), 100)).await;
        wait_count(&db, TaskState::Succeeded, 100, Duration::from_secs(30)).await;

        // No handler ends from here on, so the prefetch stays where the
        // short ones left it: three per slot, all claimed with the first.
        let held = db.enqueue(paced_tasks(serde_json::json!({"hold": true}), 4)).await;
        wait_for("one start and three claimed ahead", Duration::from_secs(20), || async {
            (runs.snapshot().len() == 1 && db.running().await == 4).then_some(())
        })
        .await;
        release.add_permits(4);
        wait_count(&db, TaskState::Succeeded, 104, Duration::from_secs(30)).await;
        worker.shutdown().await.unwrap();
        let seen = runs.snapshot();
        assert!(held.iter().all(|id| seen.get(id) == Some(&1)), "{seen:?}");
        assert_eq!(db.total().await, 104);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn auto_claims_nothing_ahead_of_long_tasks(db) {
        let (runs, release) = (Runs::new(), Arc::new(Semaphore::new(0)));
        let worker = one_auto_slot(&db, &runs, &release);
        // One handler of a second: far longer than two claims.
        let slow = db.enqueue_one(longshore::NewTask::new("paced", serde_json::json!({"ms": 1000}))).await;
        common::wait_state(&db, slow, TaskState::Succeeded).await;

        // The three are enqueued together, so a claim for more than the
        // one free slot would take them all at once.
        db.enqueue(paced_tasks(serde_json::json!({"hold": true}), 3)).await;
        wait_for("the first to start", Duration::from_secs(20), || async {
            (runs.snapshot().len() == 1).then_some(())
        })
        .await;
        assert_eq!(db.running().await, 1, "a task was claimed ahead of a long one");
        release.add_permits(3);
        wait_count(&db, TaskState::Succeeded, 4, Duration::from_secs(30)).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.snapshot().len(), 3);
        assert_eq!(db.total().await, 4);
    }

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
            prefetch: Prefetch::Tasks(6),
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
            prefetch: Prefetch::Tasks(3),
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
            prefetch: Prefetch::Tasks(1),
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
