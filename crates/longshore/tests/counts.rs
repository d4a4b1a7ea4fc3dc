//! The task counts that stats and queue depths read are kept by the
//! database as tasks change (triggers, migration 9), not by counting the
//! table. They must agree with a recount of the table after every kind of
//! change — enqueue, claim, completion, retry, cancel, rescue, deletion,
//! purge — whether or not the changes have been folded, and under
//! concurrent workers and folds.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use common::{TestDb, quick_config, wait_for};
use longshore::core::{Claim, MinuteRow, StatsKey, TaskSelection};
use longshore::{NewTask, Registry, TaskContext, TaskError, TaskState};

/// Succeeds, fails once then succeeds, or fails for good, by actor.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register_actor(
        "ok",
        common::FnActor(|_args, _ctx: TaskContext| async { Ok(()) }),
    );
    registry.register_actor(
        "flaky",
        common::FnActor(|_args, ctx: TaskContext| async move {
            if ctx.attempt() == 1 {
                Err(TaskError::retry("first attempt fails"))
            } else {
                Ok(())
            }
        }),
    );
    registry.register_actor(
        "broken",
        common::FnActor(|_args, _ctx: TaskContext| async { Err(TaskError::fatal("always fails")) }),
    );
    registry
}

fn on(actor: &str, queue: &str) -> NewTask {
    let mut task = NewTask::new(actor, serde_json::json!({}));
    task.queue = queue.to_owned();
    task
}

fn later(actor: &str, queue: &str) -> NewTask {
    let mut task = on(actor, queue);
    task.run_at = Some(Utc::now() + chrono::Duration::hours(1));
    task
}

/// The mix of tasks the tests enqueue: three actors over two queues, some
/// of them due in an hour.
fn mix(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| {
            let actor = ["ok", "flaky", "broken"][i % 3];
            let queue = ["alpha", "beta"][i % 2];
            if i % 10 == 9 {
                later(actor, queue)
            } else {
                on(actor, queue)
            }
        })
        .collect()
}

/// The store's stats by every key, against a recount of the table: equal
/// group for group (no group with none on either side).
async fn assert_counts_exact(db: &TestDb, when: &str) {
    let groups = db.groups().await;
    let mut by_state = BTreeMap::new();
    let mut by_actor = BTreeMap::new();
    let mut by_queue = BTreeMap::new();
    let mut depths = BTreeMap::new();
    for ((queue, actor, state), n) in &groups {
        *by_state
            .entry((state.as_str().to_owned(), *state))
            .or_insert(0) += n;
        *by_actor.entry((actor.clone(), *state)).or_insert(0) += n;
        *by_queue.entry((queue.clone(), *state)).or_insert(0) += n;
        if !state.is_terminal() {
            *depths.entry((queue.clone(), *state)).or_insert(0) += n;
        }
    }
    let read = |rows: Vec<longshore::core::StatsRow>| -> BTreeMap<(String, TaskState), i64> {
        rows.into_iter()
            .map(|r| ((r.key, r.state), r.count))
            .collect()
    };
    let stats = |key| async move { read(db.store.stats(key).await.expect("stats")) };
    assert_eq!(stats(StatsKey::State).await, by_state, "by state, {when}");
    assert_eq!(stats(StatsKey::Actor).await, by_actor, "by actor, {when}");
    assert_eq!(stats(StatsKey::Queue).await, by_queue, "by queue, {when}");
    assert_eq!(
        read(db.store.queue_depths().await.expect("depths")),
        depths,
        "queue depths, {when}"
    );
}

/// The id of the newest task in `state`.
async fn newest_in(db: &TestDb, state: TaskState) -> uuid::Uuid {
    let page = db
        .store
        .list(&longshore::core::TaskFilter {
            states: vec![state],
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list");
    page[0].id
}

/// Checks the counts before and after a fold of the pending changes.
async fn check(db: &TestDb, when: &str) {
    assert_counts_exact(db, &format!("{when}, before a fold")).await;
    db.store.fold_counts().await.expect("fold");
    assert_counts_exact(db, &format!("{when}, after a fold")).await;
}

conformance! {
    #[tokio::test]
    async fn stats_match_a_recount_after_every_kind_of_change(db) {
        check(&db, "empty").await;
        db.enqueue(mix(60)).await;
        check(&db, "enqueued").await;

        // Claimed by a worker that does not exist: running.
        let held = db
            .store
            .claim(&Claim {
                owner: "elsewhere".into(),
                queues: vec!["alpha".into()],
                limit: 5,
                lease: Duration::from_secs(600),
                capped: false,
                pool: None,
            })
            .await
            .expect("claim");
        assert_eq!(held.len(), 5);
        check(&db, "claimed").await;
        // Its lease expires: the rescue puts them back.
        for task in &held {
            db.set_lease(task.id, "elsewhere", Utc::now() - chrono::Duration::seconds(1)).await;
        }
        assert_eq!(db.store.rescue_expired(100).await.expect("rescue"), 5);
        check(&db, "rescued").await;

        // A worker runs what is due: successes, retries, failures.
        let worker = db.worker(registry(), both_queues());
        let due = 54;
        wait_for("the due tasks to finish", Duration::from_secs(30), || async {
            let finished = db.count(TaskState::Succeeded).await + db.count(TaskState::Failed).await;
            (finished == due).then_some(())
        })
        .await;
        worker.shutdown().await.expect("shutdown");
        check(&db, "run").await;

        // Cancel a waiting task; retry a failed one.
        db.store.cancel(newest_in(&db, TaskState::Scheduled).await).await.expect("cancel");
        db.store.retry(newest_in(&db, TaskState::Failed).await).await.expect("retry");
        check(&db, "cancelled and retried").await;

        // Deletion by filter, then a purge of the rest of the successes.
        let selection = TaskSelection {
            states: vec![TaskState::Failed],
            actor: Some("broken".into()),
            ..TaskSelection::default()
        };
        assert!(db.store.delete_matching(&selection, 1000).await.expect("delete") > 0);
        check(&db, "deleted").await;
        let purged = db
            .store
            .purge_finished(TaskState::Succeeded, Duration::ZERO, 1000)
            .await
            .expect("purge");
        assert!(purged > 0);
        check(&db, "purged").await;
        // Deleting everything brings every group back to none.
        for state in TaskState::ALL {
            if state == TaskState::Running {
                continue;
            }
            let selection = TaskSelection { states: vec![state], ..TaskSelection::default() };
            db.store.delete_matching(&selection, 1000).await.expect("delete");
        }
        check(&db, "emptied").await;
        assert!(db.store.stats(StatsKey::State).await.expect("stats").is_empty());
    }

    #[tokio::test]
    async fn a_recount_repairs_counts_that_drifted(db) {
        db.enqueue(mix(30)).await;
        db.store.fold_counts().await.expect("fold");
        // As if rows had been written with the triggers off.
        db.observer()
            .execute("UPDATE longshore_task_counts SET n = n + 7 WHERE actor = 'ok'")
            .await;
        db.observer()
            .execute("DELETE FROM longshore_task_counts WHERE actor = 'flaky'")
            .await;
        let exact = db.groups().await;
        let ok_groups = exact.keys().filter(|(_, actor, _)| actor == "ok").count();
        let by_actor = db.store.stats(StatsKey::Actor).await.expect("stats");
        assert!(by_actor.iter().all(|r| r.key != "flaky"), "{by_actor:?}");
        let ok: i64 = by_actor.iter().filter(|r| r.key == "ok").map(|r| r.count).sum();
        assert_eq!(ok, 10 + 7 * i64::try_from(ok_groups).expect("small"));

        let groups = db.store.recount().await.expect("recount");
        assert_eq!(groups, u64::try_from(exact.len()).expect("small"));
        assert_counts_exact(&db, "after a recount").await;
        // And the triggers go on from there.
        db.enqueue(mix(9)).await;
        check(&db, "after a recount and more tasks").await;
    }

    #[tokio::test]
    async fn counts_stay_exact_under_concurrent_workers_and_folds(db) {
        let done = Arc::new(AtomicBool::new(false));
        // Folds as often as it can while the workers change tasks.
        let folder = {
            let store = db.other_store().await;
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut folded = 0;
                while !done.load(Ordering::Relaxed) {
                    folded += store.fold_counts().await.expect("fold");
                    tokio::task::yield_now().await;
                }
                folded
            })
        };
        let mut workers = Vec::new();
        for _ in 0..3 {
            let mut config = both_queues();
            config.concurrency = 8;
            workers.push(longshore::Worker::new(db.other_store().await, registry(), config)
                .expect("worker")
                .start());
        }
        // Enqueued in several batches while the workers run.
        let mut due = 0;
        for _ in 0..10 {
            let batch = mix(200);
            due += batch.iter().filter(|t| t.run_at.is_none()).count();
            db.enqueue(batch).await;
        }
        let due = i64::try_from(due).expect("small");
        wait_for("the due tasks to finish", Duration::from_secs(60), || async {
            let finished = db.count(TaskState::Succeeded).await + db.count(TaskState::Failed).await;
            (finished == due).then_some(())
        })
        .await;
        for worker in workers {
            worker.shutdown().await.expect("shutdown");
        }
        done.store(true, Ordering::Relaxed);
        let folded = folder.await.expect("folder");
        if db.engine() == common::Engine::Postgres {
            assert!(folded > 0, "the folder folded nothing");
        }
        check(&db, "after the run").await;
    }

    #[tokio::test]
    async fn each_fold_adds_to_the_minutes_throughput(db) {
        let total = |rows: &[MinuteRow]| {
            rows.iter().fold((0, 0, 0), |(e, s, f), r| {
                (e + r.enqueued, s + r.succeeded, f + r.failed)
            })
        };
        let read = || async {
            db.store
                .throughput(Utc::now() - chrono::Duration::hours(1))
                .await
                .expect("throughput")
        };
        db.store.fold_counts().await.expect("fold");
        assert!(read().await.is_empty(), "nothing happened yet");

        db.enqueue(mix(60)).await;
        db.store.fold_counts().await.expect("fold");
        let rows = read().await;
        assert_eq!(total(&rows), (60, 0, 0), "{rows:?}");
        assert_eq!(rows.last().and_then(|r| r.waiting), Some(60), "{rows:?}");

        // Successes, failures after a retry (counted once, as a success),
        // failures for good; the worker's leader folds too.
        let worker = db.worker(registry(), both_queues());
        wait_for("the due tasks to finish", Duration::from_secs(30), || async {
            let finished = db.count(TaskState::Succeeded).await + db.count(TaskState::Failed).await;
            (finished == 54).then_some(())
        })
        .await;
        worker.shutdown().await.expect("shutdown");
        db.store.fold_counts().await.expect("fold");
        let rows = read().await;
        let (succeeded, failed) = (db.count(TaskState::Succeeded).await, db.count(TaskState::Failed).await);
        assert!(failed > 0 && succeeded > failed, "{succeeded} {failed}");
        assert_eq!(total(&rows), (60, succeeded, failed), "{rows:?}");
        assert_eq!(rows.last().and_then(|r| r.waiting), Some(6), "the tasks due in an hour");

        // Deletions and purges take nothing back; a fold with nothing new
        // adds nothing.
        let purged = db
            .store
            .purge_finished(TaskState::Succeeded, Duration::ZERO, 1000)
            .await
            .expect("purge");
        assert!(purged > 0);
        db.store.fold_counts().await.expect("fold");
        db.store.fold_counts().await.expect("fold");
        assert_eq!(total(&read().await), (60, succeeded, failed));

        // Kept for the retention, then purged.
        assert_eq!(db.store.purge_throughput(Duration::from_secs(3600)).await.expect("purge"), 0);
        assert!(!read().await.is_empty());
        assert!(db.store.purge_throughput(Duration::ZERO).await.expect("purge") > 0);
        assert!(read().await.is_empty());
    }
}

/// Worker settings for these tests: both queues, short timings.
fn both_queues() -> longshore::WorkerConfig {
    let mut config = quick_config();
    config.queues = vec!["alpha".into(), "beta".into()];
    config
}
