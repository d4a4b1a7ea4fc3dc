//! Metrics: the depth the store reports from its active-state indexes, and
//! what a worker and a client count, read back from the exposition text.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use common::{FnActor, quick_config, start_worker, task, wait_for, wait_state};
use longshore::core::{Claim, StatsKey};
use longshore::{
    Client, Metrics, NewTask, Registry, TaskContext, TaskError, TaskState, WorkerConfig,
    WorkerState,
};

fn in_queue(actor: &str, queue: &str) -> NewTask {
    let mut t = task(actor);
    t.queue = queue.to_owned();
    t
}

/// The value of the one sample `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// The value of `longshore_NAME{actor="ACTOR",queue="QUEUE"}`, 0 when absent.
fn of(text: &str, name: &str, actor: &str, queue: &str) -> f64 {
    sample(
        text,
        &format!("longshore_{name}{{actor=\"{actor}\",queue=\"{queue}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Actors whose outcomes are known in advance: `ok` succeeds, `flaky`
/// fails its first attempt, `doomed` always fails (with a retry while
/// attempts remain), `waits` runs until cancelled and then stops.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register_actor("ok", FnActor(|_, _| async { Ok(()) }));
    registry.register_actor(
        "flaky",
        FnActor(|_, ctx: TaskContext| async move {
            if ctx.attempt() == 1 {
                Err(TaskError::retry("first attempt fails"))
            } else {
                Ok(())
            }
        }),
    );
    registry.register_actor(
        "doomed",
        FnActor(|_, _| async { Err(TaskError::retry("always fails")) }),
    );
    registry.register_actor(
        "waits",
        FnActor(|_, ctx: TaskContext| async move {
            ctx.cancelled().await;
            Err(TaskError::retry("stopped: cancelled"))
        }),
    );
    registry
}

conformance! {
    #[tokio::test]
    async fn queue_depths_counts_the_active_tasks_of_each_queue_by_state(db) {
        let mut later = in_queue("noop", "mail");
        later.run_at = Some(Utc::now() + chrono::Duration::hours(1));
        db.enqueue(vec![
            in_queue("noop", "mail"),
            in_queue("noop", "mail"),
            in_queue("noop", "mail"),
            later.clone(),
            NewTask { id: uuid::Uuid::now_v7(), ..later },
        ])
        .await;
        db.enqueue(vec![in_queue("noop", "reports"), in_queue("noop", "reports")]).await;
        let claimed = db
            .store
            .claim(&Claim {
                owner: "probe".into(),
                queues: vec!["reports".into()],
                limit: 1,
                lease: Duration::from_secs(30),
                capped: false,
                pool: None,
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        // Finished tasks are never counted.
        for id in db.enqueue(vec![in_queue("noop", "done"), in_queue("noop", "done")]).await {
            db.store.cancel(id).await.unwrap();
        }

        let depths: BTreeMap<(String, TaskState), i64> = db
            .store
            .queue_depths()
            .await
            .unwrap()
            .into_iter()
            .map(|row| ((row.key, row.state), row.count))
            .collect();
        let expected: BTreeMap<(String, TaskState), i64> = [
            (("mail".to_owned(), TaskState::Queued), 3),
            (("mail".to_owned(), TaskState::Scheduled), 2),
            (("reports".to_owned(), TaskState::Queued), 1),
            (("reports".to_owned(), TaskState::Running), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(depths, expected);

        // The same as the full statistics say of the active states.
        let stats: BTreeMap<(String, TaskState), i64> = db
            .store
            .stats(StatsKey::Queue)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| !row.state.is_terminal())
            .map(|row| ((row.key, row.state), row.count))
            .collect();
        assert_eq!(depths, stats);
    }

    #[tokio::test]
    async fn a_worker_and_a_client_count_what_they_do_by_actor_and_queue(db) {
        let metrics = Metrics::new();
        let client = Client::new(db.store()).with_metrics(metrics.clone());
        let mut batch = vec![
            in_queue("ok", "default"),
            in_queue("ok", "default"),
            in_queue("ok", "default"),
            in_queue("flaky", "mail"),
            in_queue("flaky", "mail"),
        ];
        let mut doomed = in_queue("doomed", "default");
        doomed.max_attempts = 2;
        batch.push(doomed);
        // A duplicate of an active unique key is not counted.
        let mut keyed = in_queue("waits", "default");
        keyed.unique_key = Some("one".into());
        let keyed_again = NewTask { id: uuid::Uuid::now_v7(), ..keyed.clone() };
        batch.push(keyed);
        batch.push(keyed_again);
        let results = client.enqueue_many(batch).await.unwrap();
        let waiting = results[6].id;
        assert!(!results[7].inserted);

        // A task whose worker died: the maintenance leader rescues it.
        let orphan = db.enqueue_one(in_queue("ok", "orphans")).await;
        let claim = Claim {
            owner: "ghost".into(),
            queues: vec!["orphans".into()],
            limit: 1,
            lease: Duration::from_secs(30),
            capped: false,
            pool: None,
        };
        assert_eq!(db.store.claim(&claim).await.unwrap().len(), 1);
        db.set_lease(orphan, "ghost", Utc::now() - chrono::Duration::minutes(1)).await;

        let config = WorkerConfig {
            queues: vec!["default".into(), "mail".into()],
            metrics: Some(metrics.clone()),
            ..quick_config()
        };
        let worker = start_worker(db.store(), registry(), config);
        let health = worker.health();
        assert_eq!(health.state(), WorkerState::Running);
        wait_state(&db, waiting, TaskState::Running).await;
        db.store.cancel(waiting).await.unwrap();

        let text = wait_for("every outcome to be counted", Duration::from_secs(20), || async {
            let text = metrics.encode().await.unwrap();
            let done = of(&text, "tasks_succeeded_total", "ok", "default") == 3.0
                && of(&text, "tasks_succeeded_total", "flaky", "mail") == 2.0
                && of(&text, "tasks_failed_total", "doomed", "default") == 1.0
                && of(&text, "tasks_cancelled_total", "waits", "default") == 1.0
                && sample(&text, "longshore_lease_rescues_total") == Some(1.0)
                && sample(&text, "longshore_leader{role=\"maintenance\"}") == Some(1.0)
                && sample(&text, "longshore_leader{role=\"scheduler\"}") == Some(1.0);
            done.then_some(text)
        })
        .await;
        for (name, actor, queue, want) in [
            ("tasks_enqueued_total", "ok", "default", 3.0),
            ("tasks_enqueued_total", "flaky", "mail", 2.0),
            ("tasks_enqueued_total", "doomed", "default", 1.0),
            ("tasks_enqueued_total", "waits", "default", 1.0),
            ("tasks_started_total", "ok", "default", 3.0),
            ("tasks_started_total", "flaky", "mail", 4.0),
            ("tasks_started_total", "doomed", "default", 2.0),
            ("tasks_started_total", "waits", "default", 1.0),
            ("tasks_retried_total", "flaky", "mail", 2.0),
            ("tasks_retried_total", "doomed", "default", 1.0),
            ("tasks_retried_total", "ok", "default", 0.0),
            ("tasks_failed_total", "flaky", "mail", 0.0),
            ("tasks_running", "ok", "default", 0.0),
            ("tasks_running", "waits", "default", 0.0),
            ("task_duration_seconds_count", "flaky", "mail", 4.0),
            ("task_duration_seconds_count", "doomed", "default", 2.0),
        ] {
            assert_eq!(of(&text, name, actor, queue), want, "{name} {actor} {queue}:\n{text}");
        }
        // The rescued task was enqueued by the test's store, not the client.
        assert_eq!(of(&text, "tasks_enqueued_total", "ok", "orphans"), 0.0);
        assert_eq!(sample(&text, "longshore_worker_slots"), Some(4.0));
        // `auto`, measured: at most three per slot.
        let prefetch = sample(&text, "longshore_worker_prefetch");
        assert!(prefetch.is_some_and(|n| (0.0..=12.0).contains(&n)), "{text}");

        worker.shutdown().await.unwrap();
        assert_eq!(health.state(), WorkerState::Stopped);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_slots"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "longshore_worker_prefetch"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "longshore_leader{role=\"maintenance\"}"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "longshore_leader{role=\"scheduler\"}"), Some(0.0), "{text}");
    }
}
