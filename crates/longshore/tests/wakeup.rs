//! How a worker learns of work: events (NOTIFY) while listening, polling in
//! poll-only mode, and the backlog it finds when it starts.

#[macro_use]
mod common;

use std::time::Duration;

use common::{
    Runs, TestDb, counting_registry, quick_config, start_worker, task, tasks, wait_count, wait_for,
};
use longshore::{TaskState, WorkerConfig};
use uuid::Uuid;

const NOOP: &str = "noop";

/// Waits until task `id` succeeded, within `deadline`.
async fn wait_succeeded_within(db: &TestDb, id: Uuid, deadline: Duration) {
    wait_for(
        &format!("task {id} to succeed within {deadline:?}"),
        deadline,
        || async { (db.task(id).await.state == TaskState::Succeeded).then_some(()) },
    )
    .await;
}

conformance! {
    #[tokio::test]
    async fn an_idle_listening_worker_is_woken_by_notify_not_by_polling(db) {
        let runs = Runs::new();
        // Polling every 30 s (and a 60 s listen timeout) cannot explain a pick-up
        // within a few seconds.
        let config = common::slow_poll_config();
        let worker = db.worker(counting_registry(NOOP, &runs), config);
        wait_for("the worker to listen", Duration::from_secs(10), || async {
            (db.listeners().await > 0).then_some(())
        })
        .await;

        let first = db.enqueue_one(task(NOOP)).await;
        wait_succeeded_within(&db, first, Duration::from_secs(10)).await;
        // By now the worker has found nothing more and gone back to sleep.
        let second = db.enqueue_one(task(NOOP)).await;
        wait_succeeded_within(&db, second, Duration::from_secs(10)).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(first), 1);
        assert_eq!(runs.of(second), 1);
    }

    #[tokio::test]
    async fn a_poll_only_worker_does_not_listen_and_still_runs_tasks(db) {
        let runs = Runs::new();
        let store = db.poll_only_store().await;
        let config = WorkerConfig {
            idle_min: Duration::from_millis(20),
            idle_max: Duration::from_millis(200),
            ..quick_config()
        };
        let worker = start_worker(store, counting_registry(NOOP, &runs), config);
        // Enqueued while it polls an empty queue.
        let first = db.enqueue_one(task(NOOP)).await;
        wait_succeeded_within(&db, first, Duration::from_secs(10)).await;
        let more = db.enqueue(tasks(NOOP, 20)).await;
        wait_count(&db, TaskState::Succeeded, 21, Duration::from_secs(20)).await;
        assert_eq!(
            db.listeners().await,
            0,
            "poll-only must not listen"
        );
        worker.shutdown().await.unwrap();
        for id in more {
            assert_eq!(runs.of(id), 1);
        }
    }

    #[tokio::test]
    async fn a_starting_worker_takes_the_existing_backlog(db) {
        let runs = Runs::new();
        let ids = db.enqueue(tasks(NOOP, 50)).await;
        // Poll slowly: only the start-up claim (and the claims that follow a
        // full batch) can explain the backlog running quickly.
        let config = common::slow_poll_config();
        let store = db.poll_only_store().await;
        let worker = start_worker(store, counting_registry(NOOP, &runs), config);
        wait_count(&db, TaskState::Succeeded, 50, Duration::from_secs(20)).await;
        worker.shutdown().await.unwrap();
        for id in ids {
            assert_eq!(runs.of(id), 1);
        }
    }

    #[tokio::test]
    async fn a_delayed_task_wakes_an_idle_listening_worker_when_it_becomes_due(db) {
        let runs = Runs::new();
        let config = common::slow_poll_config();
        let worker = db.worker(counting_registry(NOOP, &runs), config);
        wait_for("the worker to listen", Duration::from_secs(10), || async {
            (db.listeners().await > 0).then_some(())
        })
        .await;
        let mut later = task(NOOP);
        later.run_at = Some(chrono::Utc::now() + chrono::Duration::seconds(1));
        let id = db.enqueue_one(later).await;
        assert_eq!(db.task(id).await.state, TaskState::Scheduled);
        // Due in 1 s; only the promotion's notification can explain a run well
        // before the next 30 s poll.
        wait_succeeded_within(&db, id, Duration::from_secs(10)).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 1);
    }
}

// ---------------------------------------------------------------- PostgreSQL only
//
// Tests of behaviour that only exists on PostgreSQL; not part of the
// conformance suite.

// PostgreSQL only: cuts the LISTEN connection (pg_terminate_backend) and
// tells listening connections apart by backend pid.
#[tokio::test]
async fn a_listening_worker_listens_again_after_its_connection_is_cut() {
    let db = TestDb::postgres().await;
    let runs = Runs::new();
    let config = common::slow_poll_config();
    let worker = db.worker(counting_registry(NOOP, &runs), config);
    let before = wait_for("the worker to LISTEN", Duration::from_secs(10), || async {
        let pids = db.pg().listening_pids().await;
        (!pids.is_empty()).then_some(pids)
    })
    .await;
    assert!(db.pg().terminate_other_backends().await > 0);
    wait_for(
        "the worker to LISTEN again on a new connection",
        Duration::from_secs(10),
        || async {
            let pids = db.pg().listening_pids().await;
            pids.iter().any(|p| !before.contains(p)).then_some(())
        },
    )
    .await;

    let first = db.enqueue_one(task(NOOP)).await;
    wait_succeeded_within(&db, first, Duration::from_secs(10)).await;
    let second = db.enqueue_one(task(NOOP)).await;
    wait_succeeded_within(&db, second, Duration::from_secs(10)).await;
    worker.shutdown().await.unwrap();
    assert_eq!(runs.of(second), 1);
}
