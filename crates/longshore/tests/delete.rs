//! Bulk deletion by filter and the flush of a queue: only the tasks
//! selected go, with their logs, a bounded batch at a time; running tasks
//! are never deleted, only asked to cancel; a dry run counts exactly what a
//! deletion then removes.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::{FnActor, TestDb, quick_config, registry_with, task, tasks, wait_count, wait_for};
use longshore::core::{Claim, TaskSelection};
use longshore::{NewTask, Registry, StoreError, TaskContext, TaskError, TaskState};
use uuid::Uuid;

/// An actor that logs a line, then fails when its args say so.
async fn logging_actor(args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
    ctx.info("a line that goes with its task");
    if args["fail"] == true {
        Err(TaskError::fatal("failing on purpose"))
    } else {
        Ok(())
    }
}

/// `mail` and `report`, both [`logging_actor`].
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register_actor("mail", FnActor(logging_actor));
    registry.register_actor("report", FnActor(logging_actor));
    registry
}

fn on(actor: &str, queue: &str) -> NewTask {
    let mut task = task(actor);
    task.queue = queue.to_owned();
    task
}

fn failing(actor: &str) -> NewTask {
    let mut task = NewTask::new(actor, serde_json::json!({"fail": true}));
    task.max_attempts = 1;
    task
}

fn later(actor: &str) -> NewTask {
    let mut task = task(actor);
    task.run_at = Some(Utc::now() + chrono::Duration::hours(1));
    task
}

/// Claims every due task of `queue` under a lease that outlives the test,
/// for a worker that does not exist: they stay running.
async fn hold_running(db: &TestDb, queue: &str, n: usize) -> Vec<Uuid> {
    let claimed = db
        .store
        .claim(&Claim {
            owner: "elsewhere".into(),
            queues: vec![queue.to_owned()],
            limit: n,
            lease: Duration::from_secs(600),
            capped: false,
            pool: None,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), n);
    claimed.into_iter().map(|t| t.id).collect()
}

/// Tasks by (actor, state), from the store's stats.
async fn by_actor(db: &TestDb) -> HashMap<(String, TaskState), i64> {
    db.store
        .stats(longshore::core::StatsKey::Actor)
        .await
        .expect("stats")
        .into_iter()
        .map(|row| ((row.key, row.state), row.count))
        .collect()
}

fn counts(pairs: &[(&str, TaskState, i64)]) -> HashMap<(String, TaskState), i64> {
    pairs
        .iter()
        .map(|(actor, state, n)| (((*actor).to_owned(), *state), *n))
        .collect()
}

/// Deletes in batches of `limit` until a batch comes back short, as the
/// command line does; returns the total and each batch's size.
async fn delete_all(db: &TestDb, selection: &TaskSelection, limit: i64) -> (u64, Vec<u64>) {
    let limit_u64 = u64::try_from(limit).expect("a positive limit");
    let mut batches = Vec::new();
    loop {
        let deleted = db
            .store
            .delete_matching(selection, limit)
            .await
            .expect("delete");
        assert!(deleted <= limit_u64, "a batch of {deleted} over {limit}");
        batches.push(deleted);
        if deleted < limit_u64 {
            return (batches.iter().sum(), batches);
        }
    }
}

/// What a dry run says: the matching tasks' total.
async fn matching(db: &TestDb, selection: &TaskSelection) -> i64 {
    db.store
        .count_matching(selection)
        .await
        .expect("count")
        .iter()
        .map(|(_, n)| n)
        .sum()
}

/// Finished tasks with logs: `mail` 4 succeeded and 2 failed, `report` 3
/// succeeded; returns the ids of the mail tasks and of the report tasks.
async fn finished_tasks(db: &TestDb) -> (Vec<Uuid>, Vec<Uuid>) {
    let worker = db.worker(registry(), quick_config());
    let mut mail = db.enqueue(tasks("mail", 4)).await;
    mail.extend(db.enqueue(vec![failing("mail"), failing("mail")]).await);
    let report = db.enqueue(tasks("report", 3)).await;
    wait_count(db, TaskState::Succeeded, 7, Duration::from_secs(20)).await;
    wait_count(db, TaskState::Failed, 2, Duration::from_secs(20)).await;
    worker.shutdown().await.expect("stop the worker");
    (mail, report)
}

conformance! {
    #[tokio::test]
    async fn only_the_selected_tasks_go_with_their_logs_and_running_ones_stay(db) {
        let (mail_finished, report_finished) = finished_tasks(&db).await;
        let mail_queued = db.enqueue(tasks("mail", 5)).await;
        db.enqueue(vec![on("mail", "other"), on("mail", "other")]).await;
        db.enqueue(tasks("report", 3)).await;
        db.enqueue(vec![later("mail"), later("mail")]).await;
        db.enqueue(vec![on("mail", "hot"), on("mail", "hot")]).await;
        let running = hold_running(&db, "hot", 2).await;
        assert!(!db.store.logs(mail_finished[0]).await.unwrap().is_empty());
        assert_eq!(
            by_actor(&db).await,
            counts(&[
                ("mail", TaskState::Scheduled, 2),
                ("mail", TaskState::Queued, 7),
                ("mail", TaskState::Running, 2),
                ("mail", TaskState::Succeeded, 4),
                ("mail", TaskState::Failed, 2),
                ("report", TaskState::Queued, 3),
                ("report", TaskState::Succeeded, 3),
            ])
        );

        // The queued tasks of one actor, on every queue.
        let queued_mail = TaskSelection {
            states: vec![TaskState::Queued],
            actor: Some("mail".into()),
            ..TaskSelection::default()
        };
        assert_eq!(
            db.store.count_matching(&queued_mail).await.unwrap(),
            vec![(TaskState::Queued, 7)]
        );
        assert_eq!(delete_all(&db, &queued_mail, 100).await, (7, vec![7]));
        assert_eq!(
            by_actor(&db).await,
            counts(&[
                ("mail", TaskState::Scheduled, 2),
                ("mail", TaskState::Running, 2),
                ("mail", TaskState::Succeeded, 4),
                ("mail", TaskState::Failed, 2),
                ("report", TaskState::Queued, 3),
                ("report", TaskState::Succeeded, 3),
            ])
        );
        assert!(db.store.task(mail_queued[0]).await.unwrap().is_none());

        // Everything of that actor but its running tasks: a selection
        // without states never takes running ones.
        let all_mail = TaskSelection {
            actor: Some("mail".into()),
            ..TaskSelection::default()
        };
        assert_eq!(
            db.store.count_matching(&all_mail).await.unwrap(),
            vec![
                (TaskState::Scheduled, 2),
                (TaskState::Succeeded, 4),
                (TaskState::Failed, 2),
            ]
        );
        assert_eq!(delete_all(&db, &all_mail, 3).await, (8, vec![3, 3, 2]));
        for id in &mail_finished {
            assert!(db.store.task(*id).await.unwrap().is_none());
            assert!(db.store.logs(*id).await.unwrap().is_empty(), "logs go with their task");
        }
        for id in &report_finished {
            assert!(!db.store.logs(*id).await.unwrap().is_empty(), "other tasks keep their logs");
        }
        assert_eq!(
            by_actor(&db).await,
            counts(&[
                ("mail", TaskState::Running, 2),
                ("report", TaskState::Queued, 3),
                ("report", TaskState::Succeeded, 3),
            ])
        );

        // A queue whose tasks all run: nothing to delete, and they run on.
        let hot = TaskSelection {
            queue: Some("hot".into()),
            ..TaskSelection::default()
        };
        assert_eq!(db.store.count_matching(&hot).await.unwrap(), vec![]);
        assert_eq!(db.store.delete_matching(&hot, 100).await.unwrap(), 0);
        for id in &running {
            assert_eq!(db.task(*id).await.state, TaskState::Running);
        }
        // Counting may name running tasks; deleting may not.
        let running_hot = TaskSelection {
            states: vec![TaskState::Running],
            ..hot.clone()
        };
        assert_eq!(
            db.store.count_matching(&running_hot).await.unwrap(),
            vec![(TaskState::Running, 2)]
        );
        let refused = [
            running_hot,
            TaskSelection {
                states: vec![TaskState::Queued, TaskState::Running],
                ..TaskSelection::default()
            },
            TaskSelection::default(),
            TaskSelection {
                actor: Some(String::new()),
                ..TaskSelection::default()
            },
        ];
        for selection in refused {
            let result = db.store.delete_matching(&selection, 100).await;
            assert!(matches!(result, Err(StoreError::InvalidInput(_))), "{selection:?}: {result:?}");
        }
        assert_eq!(db.total().await, 8, "a refused deletion changed something");
    }

    #[tokio::test]
    async fn age_counts_from_the_finish_of_finished_tasks_and_the_creation_of_waiting_ones(db) {
        let (mail, _report) = finished_tasks(&db).await;
        let hours_ago = |n| Utc::now() - chrono::Duration::hours(n);
        // Finished two hours ago, though created just now: old.
        db.backdate_finished(mail[0], hours_ago(2)).await;
        // Created two hours ago, finished just now: not old.
        db.backdate_created(mail[1], hours_ago(2)).await;
        // Finished half an hour ago: not old.
        db.backdate_finished(mail[2], Utc::now() - chrono::Duration::minutes(30)).await;
        // Waiting since two hours ago: old; waiting since now: not.
        let old_queued = db.enqueue_one(task("mail")).await;
        db.backdate_created(old_queued, hours_ago(2)).await;
        let new_queued = db.enqueue_one(task("mail")).await;
        let old_scheduled = db.enqueue_one(later("mail")).await;
        db.backdate_created(old_scheduled, hours_ago(3)).await;
        // Running ones are never deleted, however old.
        db.enqueue_one(on("mail", "hot")).await;
        let running = hold_running(&db, "hot", 1).await[0];
        db.backdate_created(running, hours_ago(5)).await;

        let old = TaskSelection {
            older_than: Some(Duration::from_secs(3600)),
            ..TaskSelection::default()
        };
        assert_eq!(
            db.store.count_matching(&old).await.unwrap(),
            vec![
                (TaskState::Scheduled, 1),
                (TaskState::Queued, 1),
                (TaskState::Succeeded, 1),
            ]
        );
        assert_eq!(delete_all(&db, &old, 100).await.0, 3);
        for id in [mail[0], old_queued, old_scheduled] {
            assert!(db.store.task(id).await.unwrap().is_none(), "{id} is old");
        }
        for id in [mail[1], mail[2], new_queued, running] {
            assert!(db.store.task(id).await.unwrap().is_some(), "{id} is not old");
        }

        // Finished only, older than 10 minutes: the one finished half an hour ago.
        let finished = TaskSelection {
            states: vec![TaskState::Succeeded, TaskState::Failed, TaskState::Cancelled],
            older_than: Some(Duration::from_secs(600)),
            ..TaskSelection::default()
        };
        assert_eq!(matching(&db, &finished).await, 1);
        assert_eq!(delete_all(&db, &finished, 100).await.0, 1);
        assert!(db.store.task(mail[2]).await.unwrap().is_none());
        assert_eq!(db.task(new_queued).await.state, TaskState::Queued);
    }

    #[tokio::test]
    async fn twelve_thousand_tasks_go_in_three_bounded_batches(db) {
        for _ in 0..12 {
            db.enqueue(tasks("bulk", 1000)).await;
        }
        db.enqueue(tasks("keep", 10)).await;
        let mut scheduled_bulk = later("bulk");
        scheduled_bulk.queue = "other".into();
        db.enqueue_one(scheduled_bulk).await;
        let selection = TaskSelection {
            states: vec![TaskState::Queued],
            actor: Some("bulk".into()),
            ..TaskSelection::default()
        };
        let dry_run = matching(&db, &selection).await;
        assert_eq!(dry_run, 12_000);
        let (deleted, batches) = delete_all(&db, &selection, 5_000).await;
        assert_eq!(batches, vec![5_000, 5_000, 2_000]);
        assert_eq!(i64::try_from(deleted).unwrap(), dry_run, "the dry run counted what went");
        assert_eq!(db.store.delete_matching(&selection, 5_000).await.unwrap(), 0);
        assert_eq!(db.count(TaskState::Queued).await, 10);
        assert_eq!(db.count(TaskState::Scheduled).await, 1);
    }

    #[tokio::test]
    async fn a_dry_run_counts_exactly_what_each_deletion_then_removes(db) {
        finished_tasks(&db).await;
        db.enqueue(tasks("mail", 4)).await;
        db.enqueue(vec![on("mail", "other"), on("report", "other"), later("report")]).await;
        let selections = [
            TaskSelection {
                queue: Some("other".into()),
                ..TaskSelection::default()
            },
            TaskSelection {
                states: vec![TaskState::Scheduled, TaskState::Failed],
                ..TaskSelection::default()
            },
            TaskSelection {
                actor: Some("report".into()),
                queue: Some("default".into()),
                older_than: Some(Duration::ZERO),
                ..TaskSelection::default()
            },
            TaskSelection {
                states: vec![TaskState::Queued, TaskState::Succeeded],
                actor: Some("mail".into()),
                ..TaskSelection::default()
            },
        ];
        let expected = [2, 3, 3, 8];
        for (selection, expected) in selections.iter().zip(expected) {
            let total_before = db.total().await;
            let counted = matching(&db, selection).await;
            assert_eq!(counted, expected, "{selection:?}");
            let (deleted, _) = delete_all(&db, selection, 2).await;
            assert_eq!(i64::try_from(deleted).unwrap(), counted, "{selection:?}");
            assert_eq!(db.total().await, total_before - counted);
            assert_eq!(matching(&db, selection).await, 0);
        }
        assert_eq!(db.total().await, 0);
    }

    #[tokio::test]
    async fn a_flush_deletes_the_waiting_tasks_and_asks_the_running_ones_to_cancel(db) {
        let registry = registry_with("long", |_args, ctx: TaskContext| async move {
            tokio::select! {
                () = ctx.cancelled() => Err(TaskError::retry("stopped on request")),
                () = tokio::time::sleep(Duration::from_secs(60)) => Ok(()),
            }
        });
        let mut config = quick_config();
        config.queues = vec!["hot".into()];
        config.concurrency = 3;
        let worker = db.worker(registry, config);
        let started: Vec<Uuid> = db
            .enqueue((0..3).map(|_| on("long", "hot")).collect())
            .await;
        common::wait_count(&db, TaskState::Running, 3, Duration::from_secs(20)).await;
        // Paused, so that no slot a cancelled task frees takes another.
        db.store.set_queue_paused("hot", true).await.unwrap();
        // Waiting behind them: queued and scheduled; another queue's too.
        db.enqueue((0..5).map(|_| on("long", "hot")).collect()).await;
        let mut delayed = later("long");
        delayed.queue = "hot".into();
        db.enqueue_one(delayed).await;
        let elsewhere = db.enqueue_one(on("long", "cold")).await;

        let asked = db.store.cancel_running_in_queue("hot", 2).await.unwrap();
        let asked = asked + db.store.cancel_running_in_queue("hot", 2).await.unwrap();
        assert_eq!(asked, 3);
        assert_eq!(db.store.cancel_running_in_queue("hot", 2).await.unwrap(), 0, "asked once each");
        let waiting = TaskSelection {
            states: vec![TaskState::Scheduled, TaskState::Queued],
            queue: Some("hot".into()),
            ..TaskSelection::default()
        };
        assert_eq!(
            db.store.count_matching(&waiting).await.unwrap(),
            vec![(TaskState::Scheduled, 1), (TaskState::Queued, 5)]
        );
        assert_eq!(delete_all(&db, &waiting, 4).await, (6, vec![4, 2]));

        // The running ones stop and end cancelled, not retried.
        wait_for("the running tasks to be cancelled", Duration::from_secs(20), || async {
            let mut done = true;
            for id in &started {
                done &= db.task(*id).await.state == TaskState::Cancelled;
            }
            done.then_some(())
        })
        .await;
        worker.shutdown().await.unwrap();
        assert_eq!(db.total().await, 4);
        assert_eq!(db.task(elsewhere).await.state, TaskState::Queued);
        assert!(matches!(
            db.store.cancel_running_in_queue(" ", 10).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
}
