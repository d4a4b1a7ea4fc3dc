//! Losing the database connections: the worker reconnects and nothing is
//! lost or left behind.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Runs, TestDb, quick_config, registry_with, tasks, wait_count, wait_for};
use longshore::{TaskContext, TaskState, WorkerConfig};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_recovers_when_its_database_connections_are_cut() {
    let db = TestDb::new().await;
    let ids: HashSet<Uuid> = db.enqueue(tasks("short", 300)).await.into_iter().collect();
    let runs = Runs::new();
    let seen = runs.clone();
    let registry = registry_with("short", move |_args, ctx: TaskContext| {
        seen.record(ctx.task_id());
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        }
    });
    let config = WorkerConfig {
        concurrency: 4,
        ..quick_config()
    };
    let worker = db.worker(registry, config);

    // Cut every connection, several times, while the worker is in the
    // middle of the backlog; each cut after the worker made progress again.
    let mut ended = 0;
    for cut in 1..=5_i64 {
        wait_for(
            "the worker to make progress",
            Duration::from_secs(20),
            || async { (db.count(TaskState::Succeeded).await >= 30 * cut).then_some(()) },
        )
        .await;
        ended += db.terminate_other_backends().await;
    }
    assert!(ended > 0, "no backend was terminated");
    assert!(
        db.count(TaskState::Succeeded).await < 300,
        "the cuts came too late to test anything"
    );

    wait_count(&db, TaskState::Succeeded, 300, Duration::from_secs(30)).await;
    worker.shutdown().await.unwrap();

    assert_eq!(db.total().await, 300, "a task was lost");
    assert_eq!(db.count(TaskState::Running).await, 0);
    let ran = runs.snapshot();
    for id in &ids {
        assert!(
            ran.get(id).copied().unwrap_or(0) >= 1,
            "task {id} never ran"
        );
    }
    // Every recorded success belongs to an execution that ran here.
    let stored: Vec<(Uuid, i32)> = sqlx::query_as("SELECT id, attempt FROM longshore_tasks")
        .fetch_all(&db.observer)
        .await
        .unwrap();
    for (id, attempt) in stored {
        assert!(attempt >= 1, "task {id} succeeded without an execution");
    }
}

#[tokio::test]
async fn a_log_line_with_a_nul_byte_is_stored_and_blocks_nothing() {
    let db = TestDb::new().await;
    let id = db.enqueue_one(common::task("binary")).await;
    let registry = registry_with("binary", |_args, ctx: TaskContext| {
        ctx.info("body: \u{0}\u{1}PNG");
        async { Ok(()) }
    });
    let worker = db.worker(registry, quick_config());
    common::wait_state(&db, id, TaskState::Succeeded).await;
    worker.shutdown().await.unwrap();
    let logs = longshore::Store::logs(&db.store, id).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "body: \u{FFFD}\u{1}PNG");
}

#[tokio::test]
async fn a_running_task_deleted_by_hand_blocks_nothing() {
    let db = TestDb::new().await;
    let doomed = db.enqueue_one(common::task("slow")).await;
    let (release, released) = tokio::sync::watch::channel(false);
    let registry = registry_with("slow", move |_args, ctx: TaskContext| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|go| *go).await;
            ctx.info("finishing after the row is gone");
            Ok(())
        }
    });
    let worker = db.worker(registry, quick_config());
    common::wait_state(&db, doomed, TaskState::Running).await;
    sqlx::query("DELETE FROM longshore_tasks WHERE id = $1")
        .bind(doomed)
        .execute(&db.observer)
        .await
        .unwrap();
    release.send(true).unwrap();
    // Later tasks still run and are recorded.
    let later = db.enqueue(tasks("slow", 5)).await;
    for id in later {
        common::wait_state(&db, id, TaskState::Succeeded).await;
    }
    worker.shutdown().await.unwrap();
    assert_eq!(db.total().await, 5);
}

#[tokio::test]
async fn a_result_the_database_refuses_does_not_hold_back_the_others() {
    let db = TestDb::new().await;
    // Make recording the success of `poison` tasks fail, every time.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON longshore_tasks FOR EACH ROW
         WHEN (OLD.actor = 'poison' AND NEW.state = 'succeeded') EXECUTE FUNCTION refuse();",
    )
    .execute(&db.observer)
    .await
    .unwrap();
    let runs = Runs::new();
    let mut registry = common::counting_registry("fine", &runs);
    registry.register_actor(
        "poison",
        common::FnActor(|_args, _ctx: TaskContext| async { Ok(()) }),
    );
    let poison = db.enqueue_one(common::task("poison")).await;
    let fine = db.enqueue(tasks("fine", 40)).await;
    let worker = db.worker(registry, quick_config());
    wait_count(&db, TaskState::Succeeded, 40, Duration::from_secs(30)).await;
    worker.shutdown().await.unwrap();
    assert!(fine.iter().all(|id| runs.of(*id) >= 1));
    // The refused result was not recorded: the task is still active, to be
    // rescued when its lease expires.
    assert!(!db.task(poison).await.state.is_terminal());
}
