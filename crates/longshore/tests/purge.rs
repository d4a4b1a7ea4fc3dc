//! Finished tasks past their retention are purged with their logs, by the
//! maintenance leader, in batches, whatever the load.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use common::{Runs, counting_registry, quick_config, task, tasks, wait_count, wait_for};
use longshore::core::PutMode;
use longshore::core::schedule::builtin;
use longshore::{Retention, StoreError, TaskState, WorkerConfig};

const NOOP: &str = "noop";

conformance! {
    #[tokio::test]
    async fn purge_removes_only_finished_tasks_past_retention_with_their_logs(db) {
        let registry = common::registry_with(NOOP, |_args, ctx: longshore::TaskContext| async move {
            ctx.info("a line to purge");
            Ok(())
        });
        let worker = db.worker(registry, quick_config());
        let done = db.enqueue(tasks(NOOP, 6)).await;
        wait_count(&db, TaskState::Succeeded, 6, Duration::from_secs(20)).await;
        worker.shutdown().await.unwrap();
        let waiting = db.enqueue_one(task(NOOP)).await;
        // Tight around a retention of one hour: two hours old goes, half an
        // hour old stays.
        let two_hours_ago = Utc::now() - chrono::Duration::hours(2);
        for id in &done[..4] {
            db.backdate_finished(*id, two_hours_ago).await;
        }
        db.backdate_finished(done[4], Utc::now() - chrono::Duration::minutes(30)).await;
        assert!(!db.store.logs(done[0]).await.unwrap().is_empty());

        // Batches: 4 old ones, 3 at a time.
        let hour = Duration::from_secs(3600);
        assert_eq!(db.store.purge_finished(TaskState::Succeeded, hour, 3).await.unwrap(), 3);
        assert_eq!(db.store.purge_finished(TaskState::Succeeded, hour, 3).await.unwrap(), 1);
        assert_eq!(db.store.purge_finished(TaskState::Succeeded, hour, 3).await.unwrap(), 0);
        // Another state's retention does not touch them.
        assert_eq!(db.store.purge_finished(TaskState::Failed, Duration::ZERO, 100).await.unwrap(), 0);
        for id in &done[..4] {
            assert!(db.store.task(*id).await.unwrap().is_none());
            assert!(db.store.logs(*id).await.unwrap().is_empty(), "logs go with their task");
        }
        for id in &done[4..] {
            assert_eq!(db.task(*id).await.state, TaskState::Succeeded);
        }
        assert_eq!(db.task(waiting).await.state, TaskState::Queued);
    }

    #[tokio::test]
    async fn only_finished_states_can_be_purged(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        for state in [TaskState::Scheduled, TaskState::Queued, TaskState::Running] {
            let result = db.store.purge_finished(state, Duration::ZERO, 100).await;
            assert!(matches!(result, Err(StoreError::InvalidInput(_))), "{state}: {result:?}");
        }
        assert_eq!(db.task(id).await.state, TaskState::Queued);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_leader_purges_past_retention_while_a_steady_load_runs(db) {
        // The built-in purge runs every second instead of every minute.
        let mut purge = db
            .store
            .schedule(builtin::PURGE)
            .await
            .unwrap()
            .expect("the built-in purge schedule is seeded")
            .def;
        purge.cron = "* * * * * *".into();
        db.store
            .put_schedule(&purge, PutMode::Update, Some(Utc::now()))
            .await
            .unwrap();
        let runs = Runs::new();
        let config = WorkerConfig {
            retention: Retention {
                succeeded: Duration::from_secs(2),
                ..Retention::default()
            },
            ..quick_config()
        };
        let worker = db.worker(counting_registry(NOOP, &runs), config);
        let early = db.enqueue(tasks(NOOP, 50)).await;
        // All ran (some may already be purged).
        wait_for("the early tasks to run", Duration::from_secs(20), || async {
            early.iter().all(|id| runs.of(*id) == 1).then_some(())
        })
        .await;

        // A steady load from now on.
        let producing = Arc::new(AtomicBool::new(true));
        let producer = tokio::spawn({
            let store = db.store();
            let producing = producing.clone();
            async move {
                while producing.load(Ordering::Relaxed) {
                    store.enqueue(tasks(NOOP, 5)).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        wait_for("the early tasks to be purged under load", Duration::from_secs(30), || async {
            let mut left = 0;
            for id in &early {
                if db.store.task(*id).await.unwrap().is_some() {
                    left += 1;
                }
            }
            (left == 0).then_some(())
        })
        .await;
        // Tasks that finished within the retention are all still there.
        let recent = db.enqueue(tasks(NOOP, 5)).await;
        wait_for("the recent tasks to run", Duration::from_secs(20), || async {
            recent.iter().all(|id| runs.of(*id) == 1).then_some(())
        })
        .await;
        // Run well within the retention (2 s): every one must still be there.
        for id in &recent {
            let task = db.store.task(*id).await.unwrap();
            assert!(task.is_some(), "a task finished within its retention was purged");
        }
        producing.store(false, Ordering::Relaxed);
        producer.await.unwrap();
        worker.shutdown().await.unwrap();
    }
}
