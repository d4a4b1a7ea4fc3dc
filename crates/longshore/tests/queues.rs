//! Queues paused and resumed for every node.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Runs, counting_registry, quick_config, start_worker, task, wait_count, wait_for};
use longshore::core::{Claim, QueueSettings};
use longshore::{NewTask, StoreError, TaskState, WorkerConfig};

const NOOP: &str = "noop";

fn in_queue(queue: &str, n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|_| {
            let mut t = task(NOOP);
            t.queue = queue.to_owned();
            t
        })
        .collect()
}

fn claim_of(queue: &str) -> Claim {
    Claim {
        owner: "probe".to_owned(),
        queues: vec![queue.to_owned()],
        limit: 10,
        lease: Duration::from_secs(30),
        capped: false,
        pool: None,
    }
}

conformance! {
    #[tokio::test]
    async fn a_paused_queue_is_untouched_until_resumed_while_others_run(db) {
        db.store.set_queue_paused("reports", true).await.unwrap();
        let paused = db.enqueue(in_queue("reports", 5)).await;
        db.enqueue(in_queue("default", 5)).await;
        let runs = Runs::new();
        let config = WorkerConfig {
            queues: vec!["default".into(), "reports".into()],
            ..quick_config()
        };
        // Another node, so that the pause is seen through the database.
        let worker = start_worker(db.other_store().await, counting_registry(NOOP, &runs), config);
        // The worker claims (its other queue's tasks all ran)…
        wait_count(&db, TaskState::Succeeded, 5, Duration::from_secs(20)).await;
        // …and a further claim of the paused queue finds nothing.
        assert!(db.store.claim(&claim_of("reports")).await.unwrap().is_empty());
        for id in &paused {
            assert_eq!(db.task(*id).await.state, TaskState::Queued);
            assert_eq!(runs.of(*id), 0);
        }

        db.store.set_queue_paused("reports", false).await.unwrap();
        wait_count(&db, TaskState::Succeeded, 10, Duration::from_secs(20)).await;
        worker.shutdown().await.unwrap();
        assert!(paused.iter().all(|id| runs.of(*id) == 1));
    }

    #[tokio::test]
    async fn a_paused_queue_keeps_its_delayed_tasks_too(db) {
        let due = chrono::Utc::now() + chrono::Duration::milliseconds(200);
        let mut later = task(NOOP);
        later.run_at = Some(due);
        later.queue = "mail".into();
        db.store.set_queue_paused("mail", true).await.unwrap();
        let id = db.enqueue_one(later).await;
        wait_for("the task to fall due", Duration::from_secs(5), || async {
            (chrono::Utc::now() > due).then_some(())
        })
        .await;
        // Due, still `scheduled` (no maintenance pass ran), and not claimed.
        assert_eq!(db.task(id).await.state, TaskState::Scheduled);
        assert!(db.store.claim(&claim_of("mail")).await.unwrap().is_empty());
        db.store.set_queue_paused("mail", false).await.unwrap();
        assert_eq!(db.store.claim(&claim_of("mail")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn queue_settings_show_what_was_paused_and_resumed(db) {
        assert!(db.store.queue_settings().await.unwrap().is_empty());
        db.store.set_queue_paused("b", true).await.unwrap();
        db.store.set_queue_paused("a", true).await.unwrap();
        db.store.set_queue_paused("a", true).await.unwrap();
        db.store.set_queue_paused("b", false).await.unwrap();
        assert_eq!(
            db.store.queue_settings().await.unwrap(),
            vec![
                QueueSettings { name: "a".into(), paused: true, max_running: None },
                QueueSettings { name: "b".into(), paused: false, max_running: None },
            ]
        );
    }

    #[tokio::test]
    async fn resuming_wakes_an_idle_listening_worker(db) {
        db.store.set_queue_paused("default", true).await.unwrap();
        let id = db.enqueue_one(task(NOOP)).await;
        let runs = Runs::new();
        // Polling every 30 s (and a 60 s listen timeout) cannot explain a
        // pick-up within a few seconds of the resume.
        let config = common::slow_poll_config();
        let config = WorkerConfig {
            queues: vec!["default".into(), "other".into()],
            ..config
        };
        let worker = db.worker(counting_registry(NOOP, &runs), config);
        wait_for("the worker to listen", Duration::from_secs(10), || async {
            (db.listeners().await > 0).then_some(())
        })
        .await;
        // A task of its other queue runs: the worker has claimed since it
        // started, found the paused queue's task not claimable, and sleeps.
        let other = db.enqueue_one(in_queue("other", 1).remove(0)).await;
        common::wait_state(&db, other, TaskState::Succeeded).await;
        db.store.set_queue_paused("default", false).await.unwrap();
        common::wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 1);
    }

    #[tokio::test]
    async fn an_empty_queue_name_is_refused_and_nothing_changes(db) {
        for name in ["", "  "] {
            let result = db.store.set_queue_paused(name, true).await;
            assert!(matches!(result, Err(StoreError::InvalidInput(_))), "{name:?}: {result:?}");
        }
        assert!(db.store.queue_settings().await.unwrap().is_empty());
    }
}
