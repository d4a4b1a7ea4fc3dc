//! Bulk operations in the background (`longshore::ops::operations`), on
//! both engines: each action over several pages of a filter, picked rows,
//! a deletion by selection, progress recorded, and a stop on request.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{TestDb, wait_for};
use longshore::core::{BulkAction, Operation, OperationState, TaskFilter, TaskSelection};
use longshore::ops::operations::{self, Job, Starter};
use longshore::{NewTask, Store, TaskState};
use uuid::Uuid;

fn later(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| {
            let mut task = NewTask::new(
                if i % 2 == 0 { "even" } else { "odd" },
                serde_json::json!({}),
            );
            task.run_at = Some(Utc::now() + chrono::Duration::hours(1));
            task
        })
        .collect()
}

fn starter() -> Starter {
    Starter {
        token: "tester".into(),
        node: "node-1".into(),
    }
}

fn only(state: TaskState) -> TaskFilter {
    TaskFilter {
        states: vec![state],
        ..TaskFilter::default()
    }
}

/// Starts `job` and waits for it to end.
async fn run(store: &Arc<dyn Store>, job: Job) -> Operation {
    let id = operations::start(
        Arc::clone(store),
        job,
        "the test's".into(),
        None,
        &starter(),
    )
    .await
    .expect("start");
    ended(store, id).await
}

async fn ended(store: &Arc<dyn Store>, id: Uuid) -> Operation {
    wait_for("the operation to end", Duration::from_secs(60), || async {
        let op = store.operation(id).await.expect("read").expect("recorded");
        (op.state != OperationState::Running).then_some(op)
    })
    .await
}

conformance! {
    #[tokio::test]
    async fn each_action_goes_through_every_page_of_a_filter(db) {
        let store: Arc<dyn Store> = db.store.clone();
        db.enqueue(later(1200)).await;

        let cancelled = run(&store, Job::Filtered(BulkAction::Cancel, only(TaskState::Scheduled))).await;
        assert_eq!(cancelled.state, OperationState::Finished, "{cancelled:?}");
        assert_eq!((cancelled.seen, cancelled.done), (1200, 1200));
        assert_eq!(db.count(TaskState::Cancelled).await, 1200);
        assert_eq!(cancelled.new.started_by, "tester");
        assert!(cancelled.finished_at.is_some());

        // Only one actor's: the filter is the list's, actor included.
        let filter = TaskFilter { actor: Some("even".into()), ..only(TaskState::Cancelled) };
        assert_eq!(operations::count(store.as_ref(), &filter, 10_000).await.expect("count"), (600, true));
        assert_eq!(operations::count(store.as_ref(), &filter, 100).await.expect("count"), (100, false));
        let retried = run(&store, Job::Filtered(BulkAction::Retry, filter)).await;
        assert_eq!((retried.state, retried.done), (OperationState::Finished, 600));
        assert_eq!(db.count(TaskState::Queued).await, 600);

        // Picked rows: a cancelled one is retried, a queued one is passed
        // over (only finished tasks are retried), a missing id too.
        let cancelled_one = db.store.list(&TaskFilter { limit: 1, ..only(TaskState::Cancelled) }).await.expect("list")[0].id;
        let queued_one = db.store.list(&TaskFilter { limit: 1, ..only(TaskState::Queued) }).await.expect("list")[0].id;
        let picked = run(&store, Job::Picked(BulkAction::Retry, vec![cancelled_one, queued_one, Uuid::now_v7()])).await;
        assert_eq!((picked.state, picked.seen, picked.done), (OperationState::Finished, 3, 1));

        // Both are queued now (the cancelled one was retried).
        let deleted = run(&store, Job::Picked(BulkAction::Delete, vec![cancelled_one, queued_one])).await;
        assert_eq!(deleted.done, 2);
        let by_selection = run(&store, Job::Delete(TaskSelection { states: vec![TaskState::Queued], ..TaskSelection::default() })).await;
        assert_eq!((by_selection.state, by_selection.done), (OperationState::Finished, 599));
        assert_eq!(db.count(TaskState::Queued).await, 0);
        assert_eq!(db.count(TaskState::Cancelled).await, 599);

        // Newest first; a finished operation cannot be stopped; purged once
        // ended long enough ago.
        let listed = store.operations(10).await.expect("list");
        assert_eq!(listed.len(), 5);
        assert_eq!(listed[0].new.id, by_selection.new.id);
        assert!(!store.cancel_operation(by_selection.new.id).await.expect("cancel"));
        assert_eq!(store.purge_operations(Duration::from_secs(3600)).await.expect("purge"), 0);
        assert_eq!(store.purge_operations(Duration::ZERO).await.expect("purge"), 5);
        assert!(store.operations(10).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn an_operation_stops_between_batches_when_asked(db) {
        let store: Arc<dyn Store> = db.store.clone();
        db.enqueue(later(1500)).await;
        let id = operations::start(
            Arc::clone(&store),
            Job::Filtered(BulkAction::Cancel, only(TaskState::Scheduled)),
            "scheduled".into(),
            Some(1500),
            &starter(),
        )
        .await
        .expect("start");
        // Asked at once: the first batch alone (500 cancellations) takes
        // far longer than this one write.
        assert!(store.cancel_operation(id).await.expect("cancel"));
        let op = ended(&store, id).await;
        assert_eq!(op.state, OperationState::Cancelled, "{op:?}");
        assert!(op.cancel_requested);
        assert_eq!(op.new.matched, Some(1500));
        assert!(op.done < 1500, "{op:?}");
        // What it did stays done, and nothing more.
        assert_eq!(db.count(TaskState::Cancelled).await, op.done);
    }

    #[tokio::test]
    async fn bad_operations_are_refused_and_nothing_is_recorded(db) {
        let store: Arc<dyn Store> = db.store.clone();
        let running = Job::Delete(TaskSelection { states: vec![TaskState::Running], ..TaskSelection::default() });
        assert!(operations::start(Arc::clone(&store), running, "running".into(), None, &starter()).await.is_err());
        let everything = Job::Delete(TaskSelection::default());
        assert!(operations::start(Arc::clone(&store), everything, "all".into(), None, &starter()).await.is_err());
        assert!(store.operations(10).await.expect("list").is_empty());
        assert!(!store.cancel_operation(Uuid::now_v7()).await.expect("cancel"));
        assert!(store.operation(Uuid::now_v7()).await.expect("read").is_none());
        let _: &TestDb = &db;
    }
}
