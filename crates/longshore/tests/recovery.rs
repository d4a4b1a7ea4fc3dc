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
