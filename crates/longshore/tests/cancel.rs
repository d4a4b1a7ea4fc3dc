//! Cancelling: a waiting task at once; a running one on any node through
//! its worker; never a finished one.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use common::{
    Runs, counting_registry, quick_config, registry_with, start_worker, task, wait_for, wait_state,
};
use longshore::core::CancelResult;
use longshore::{
    CancelReason, Registry, Status, StoreError, TaskContext, TaskError, TaskState, WorkerConfig,
};
use uuid::Uuid;

const NOOP: &str = "noop";

/// A handler that runs until it is asked to stop, and records why.
fn until_cancelled(runs: &Runs, reasons: &Arc<Mutex<HashMap<Uuid, CancelReason>>>) -> Registry {
    let runs = runs.clone();
    let reasons = reasons.clone();
    registry_with("long", move |_args, ctx: TaskContext| {
        runs.record(ctx.task_id());
        let reasons = reasons.clone();
        async move {
            tokio::select! {
                () = ctx.cancelled() => {
                    if let Some(reason) = ctx.cancel_reason() {
                        reasons.lock().expect("lock").insert(ctx.task_id(), reason);
                    }
                    Err(TaskError::retry("stopped on request"))
                }
                () = tokio::time::sleep(Duration::from_secs(60)) => Ok(()),
            }
        }
    })
}

async fn wait_started(runs: &Runs, id: Uuid) {
    wait_for("the handler to start", Duration::from_secs(20), || async {
        (runs.of(id) > 0).then_some(())
    })
    .await;
}

conformance! {
    #[tokio::test]
    async fn cancelling_a_queued_task_cancels_it_at_once_and_it_never_runs(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        assert_eq!(db.store.cancel(id).await.unwrap(), CancelResult::Cancelled);
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Cancelled);
        assert!(row.finished_at.is_some());
        assert_eq!(row.status(), Status::Cancelled);

        // A worker that starts afterwards runs newer work but not the cancelled task.
        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        let later = db.enqueue_one(task(NOOP)).await;
        wait_state(&db, later, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 0);
        assert_eq!(db.task(id).await.state, TaskState::Cancelled);
    }

    #[tokio::test]
    async fn cancelling_a_scheduled_task_cancels_it_at_once(db) {
        let mut later = task(NOOP);
        later.run_at = Some(Utc::now() + chrono::Duration::hours(1));
        let id = db.enqueue_one(later).await;
        assert_eq!(db.store.cancel(id).await.unwrap(), CancelResult::Cancelled);
        assert_eq!(db.task(id).await.state, TaskState::Cancelled);
    }

    #[tokio::test]
    async fn cancelling_a_running_task_from_another_node_stops_its_handler_and_it_ends_cancelled(db) {
        let runs = Runs::new();
        let reasons = Arc::default();
        let worker = db.worker(until_cancelled(&runs, &reasons), quick_config());
        let mut t = task("long");
        t.max_attempts = 5;
        let id = db.enqueue_one(t).await;
        wait_started(&runs, id).await;

        // An operator on another node: a pool of its own.
        let operator = db.other_store().await;
        assert_eq!(operator.cancel(id).await.unwrap(), CancelResult::Signalled);

        let done = wait_state(&db, id, TaskState::Cancelled).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1, "a cancelled task is not retried");
        assert_eq!(runs.of(id), 1);
        assert_eq!(
            reasons.lock().unwrap().get(&id),
            Some(&CancelReason::Operator)
        );
        assert!(done.finished_at.is_some());
        assert!(done.lease_owner.is_none());
    }

    #[tokio::test]
    async fn a_cancellation_reaches_a_running_task_by_notification_without_waiting_for_a_heartbeat(db) {
        let runs = Runs::new();
        let reasons = Arc::default();
        // Heartbeats far apart: only the notification can explain a quick stop.
        let config = WorkerConfig {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(30),
            ..quick_config()
        };
        let worker = db.worker(until_cancelled(&runs, &reasons), config);
        let id = db.enqueue_one(task("long")).await;
        wait_started(&runs, id).await;

        let operator = db.other_store().await;
        assert_eq!(operator.cancel(id).await.unwrap(), CancelResult::Signalled);
        wait_for(
            "the handler to see the cancellation",
            Duration::from_secs(10),
            || async { reasons.lock().unwrap().contains_key(&id).then_some(()) },
        )
        .await;
        let done = wait_state(&db, id, TaskState::Cancelled).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
    }

    #[tokio::test]
    async fn a_cancellation_reaches_a_poll_only_worker_through_its_heartbeat(db) {
        let runs = Runs::new();
        let reasons = Arc::default();
        let store = db.poll_only_store().await;
        let worker = start_worker(store, until_cancelled(&runs, &reasons), quick_config());
        let id = db.enqueue_one(task("long")).await;
        wait_started(&runs, id).await;

        let operator = db.other_store().await;
        assert_eq!(operator.cancel(id).await.unwrap(), CancelResult::Signalled);
        let done = wait_state(&db, id, TaskState::Cancelled).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
        assert_eq!(
            reasons.lock().unwrap().get(&id),
            Some(&CancelReason::Operator)
        );
    }

    #[tokio::test]
    async fn a_running_task_that_ignores_cancellation_is_aborted_and_ends_cancelled(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("stubborn", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async {
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        let config = WorkerConfig {
            cancel_grace: Duration::from_millis(300),
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let mut t = task("stubborn");
        t.max_attempts = 5;
        let id = db.enqueue_one(t).await;
        wait_started(&runs, id).await;

        assert_eq!(db.store.cancel(id).await.unwrap(), CancelResult::Signalled);
        let done = wait_state(&db, id, TaskState::Cancelled).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
        assert_eq!(runs.of(id), 1);
    }

    #[tokio::test]
    async fn cancelling_a_finished_task_is_an_invalid_state_and_changes_nothing(db) {
        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        let id = db.enqueue_one(task(NOOP)).await;
        let before = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();

        match db.store.cancel(id).await {
            Err(StoreError::InvalidState {
                id: got,
                state,
                action,
            }) => {
                assert_eq!(got, id);
                assert_eq!(state, TaskState::Succeeded);
                assert_eq!(action, "cancel");
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
        assert_eq!(db.task(id).await, before);
    }

    #[tokio::test]
    async fn cancelling_an_unknown_task_is_not_found(db) {
        let unknown = Uuid::now_v7();
        assert!(matches!(
            db.store.cancel(unknown).await,
            Err(StoreError::NotFound(id)) if id == unknown
        ));
    }

    #[tokio::test]
    async fn a_cancelled_task_whose_worker_died_ends_cancelled_when_its_lease_is_rescued(db) {
        let mut t = task(NOOP);
        t.max_attempts = 5;
        let id = db.enqueue_one(t).await;
        // A worker claims it and dies.
        db.store
            .claim(&longshore::core::Claim {
                owner: "ghost".into(),
                queues: vec![longshore::NewTask::DEFAULT_QUEUE.into()],
                limit: 1,
                lease: Duration::from_secs(1),
                capped: false,
                pool: None,
            })
            .await
            .unwrap();
        assert_eq!(db.store.cancel(id).await.unwrap(), CancelResult::Signalled);

        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        let done = wait_state(&db, id, TaskState::Cancelled).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 0, "a cancelled task must not run again");
        assert_eq!(done.attempt, 1);
        assert!(done.finished_at.is_some());
    }
}
