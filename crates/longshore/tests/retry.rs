//! An operator's retry: only of finished tasks, with a fresh set of
//! attempts; anything else is refused and changes nothing.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Runs, quick_config, registry_with, task, wait_state};
use longshore::core::Claim;
use longshore::{NewTask, StoreError, TaskContext, TaskError, TaskState};
use uuid::Uuid;

const NOOP: &str = "noop";

fn assert_invalid_state(
    result: Result<longshore::TaskRow, StoreError>,
    id: Uuid,
    state: TaskState,
) {
    match result {
        Err(StoreError::InvalidState {
            id: got,
            state: was,
            action,
        }) => {
            assert_eq!(got, id);
            assert_eq!(was, state);
            assert_eq!(action, "retry");
        }
        other => panic!("expected InvalidState, got {other:?}"),
    }
}

conformance! {
    #[tokio::test]
    async fn retrying_an_unknown_task_is_not_found(db) {
        let unknown = Uuid::now_v7();
        assert!(matches!(
            db.store.retry(unknown).await,
            Err(StoreError::NotFound(id)) if id == unknown
        ));
        assert_eq!(db.total().await, 0);
    }

    #[tokio::test]
    async fn retrying_a_queued_task_is_an_invalid_state_and_changes_nothing(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        let before = db.task(id).await;
        assert_invalid_state(db.store.retry(id).await, id, TaskState::Queued);
        assert_eq!(db.task(id).await, before);
    }

    #[tokio::test]
    async fn retrying_a_running_task_is_an_invalid_state_and_changes_nothing(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        db.store
            .claim(&Claim {
                owner: "w".into(),
                queues: vec![NewTask::DEFAULT_QUEUE.into()],
                limit: 1,
                lease: Duration::from_secs(30),
                capped: false,
                pool: None,
            })
            .await
            .unwrap();
        let before = db.task(id).await;
        assert_eq!(before.state, TaskState::Running);
        assert_invalid_state(db.store.retry(id).await, id, TaskState::Running);
        assert_eq!(db.task(id).await, before);
    }

    #[tokio::test]
    async fn retrying_a_failed_task_counts_its_attempts_from_zero_and_it_runs(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("once_broken", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async move {
                if ctx.execution() == 1 {
                    Err(TaskError::fatal("broken the first time"))
                } else {
                    Ok(())
                }
            }
        });
        let worker = db.worker(registry, quick_config());
        let mut t = task("once_broken");
        t.max_attempts = 1;
        let id = db.enqueue_one(t).await;
        wait_state(&db, id, TaskState::Failed).await;

        let retried = db.store.retry(id).await.unwrap();
        assert_eq!(
            (retried.attempt, retried.max_attempts, retried.execution),
            (0, 1, 1),
            "a fresh set of attempts; max_attempts unchanged; the execution number goes on"
        );
        assert!(retried.finished_at.is_none());

        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!((done.attempt, done.execution), (1, 2));
        assert_eq!(runs.of(id), 2);
        // Each execution's lines stay apart.
        let logs = db.store.logs(id).await.unwrap();
        assert!(
            logs.iter()
                .any(|l| l.execution == 1 && l.message.contains("broken the first time")),
            "{logs:?}"
        );
        assert!(logs.iter().all(|l| l.execution == 1), "{logs:?}");
    }

    #[tokio::test]
    async fn retrying_a_task_whose_unique_key_is_held_again_is_a_conflict_and_changes_nothing(db) {
        let mut first = task(NOOP);
        first.unique_key = Some("daily".into());
        let first = db.enqueue_one(first).await;
        assert_eq!(
            db.store.cancel(first).await.unwrap(),
            longshore::core::CancelResult::Cancelled
        );
        // The key is free again, and a new task takes it.
        let mut second = task(NOOP);
        second.unique_key = Some("daily".into());
        let second = db.store.enqueue(vec![second]).await.unwrap()[0];
        assert!(second.inserted);

        let before = db.task(first).await;
        let result = db.store.retry(first).await;
        assert!(
            matches!(&result, Err(StoreError::UniqueConflict { key }) if key == "daily"),
            "{result:?}"
        );
        assert_eq!(db.task(first).await, before);
        assert_eq!(db.total().await, 2);
    }
}
