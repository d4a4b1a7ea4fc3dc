//! A worker never runs more than its concurrency at once, however deep the
//! queue, and the database never shows more running than its slots and
//! its prefetch.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestDb;
use common::{Runs, counting_registry, quick_config, registry_with, tasks, wait_count};
use longshore::{Prefetch, TaskContext, TaskState, WorkerConfig};

const NOOP: &str = "noop";

/// Runs 2,000 no-op tasks on a worker of 4 slots with `prefetch`; returns
/// the most tasks the database showed running at once.
async fn most_running(db: &TestDb, prefetch: Prefetch) -> i64 {
    for _ in 0..4 {
        db.enqueue(tasks(NOOP, 500)).await;
    }
    let runs = Runs::new();
    let config = WorkerConfig {
        concurrency: 4,
        prefetch,
        ..quick_config()
    };
    let worker = db.worker(counting_registry(NOOP, &runs), config);

    let mut most = 0;
    let mut samples = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Both counts from one snapshot of the table.
        let counts = db.state_counts().await;
        let running = counts.get(&TaskState::Running).copied().unwrap_or(0);
        let succeeded = counts.get(&TaskState::Succeeded).copied().unwrap_or(0);
        most = most.max(running);
        samples += 1;
        if succeeded == 2000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {succeeded} of 2000 succeeded"
        );
    }
    worker.shutdown().await.expect("the worker stops");
    assert!(samples > 10, "too few samples ({samples}) to judge");
    assert_eq!(runs.total(), 2000);
    most
}

conformance! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn running_tasks_in_the_database_never_exceed_the_worker_concurrency(db) {
        // Without a prefetch: no more than the slots.
        let most = most_running(&db, Prefetch::Tasks(0)).await;
        assert!(most <= 4, "{most} tasks were running at once with concurrency 4");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn running_tasks_never_exceed_the_slots_and_the_automatic_prefetch(db) {
        // With `auto`: no more than the slots and three per slot claimed
        // ahead of them (no-op handlers take it to its most).
        let most = most_running(&db, Prefetch::Auto).await;
        assert!(most <= 16, "{most} tasks were running at once with concurrency 4 and prefetch auto");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn handlers_in_flight_never_exceed_the_worker_concurrency(db) {
        db.enqueue(tasks("busy", 200)).await;
        let current = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (c, m) = (current.clone(), most.clone());
        let registry = registry_with("busy", move |_args, _ctx: TaskContext| {
            let (current, most) = (c.clone(), m.clone());
            async move {
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                current.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let config = WorkerConfig {
            concurrency: 4,
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        wait_count(&db, TaskState::Succeeded, 200, Duration::from_secs(30)).await;
        worker.shutdown().await.unwrap();
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 4, "{most} handlers ran at once with concurrency 4");
        assert_eq!(most, 4, "the worker should use all of its slots");
    }
}
