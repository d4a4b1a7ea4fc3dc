//! Enqueueing: bulk inserts, unique keys, enqueue inside the caller's own
//! transaction, and bad input that changes nothing.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Barrier;

use common::{Runs, TestDb, counting_registry, quick_config, task, tasks, wait_state};
use longshore::postgres::enqueue_in;
use longshore::{Client, EnqueueResult, Metrics, NewTask, StoreError, TaskState};
use uuid::Uuid;

const NOOP: &str = "noop";

fn keyed(key: &str, n: usize) -> Vec<NewTask> {
    let mut batch = tasks(NOOP, n);
    for t in &mut batch {
        t.unique_key = Some(key.to_owned());
    }
    batch
}

/// Enqueues each of `rows` from its own task, all released at once;
/// answers with each row's id.
async fn all_at_once(
    client: &Client,
    rows: Vec<NewTask>,
) -> Vec<(Uuid, Result<EnqueueResult, longshore::Error>)> {
    let start = Arc::new(Barrier::new(rows.len()));
    let calls: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let (client, start) = (client.clone(), start.clone());
            tokio::spawn(async move {
                let id = row.id;
                start.wait().await;
                (id, client.enqueue_task(row).await)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("a caller panicked"));
    }
    answers
}

/// The value of one series in a metrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

// ---------------------------------------------------------------- bad input

fn invalid_tasks() -> Vec<(&'static str, NewTask)> {
    let mut no_attempts = task(NOOP);
    no_attempts.max_attempts = 0;
    let mut empty_key = task(NOOP);
    empty_key.unique_key = Some(String::new());
    let mut zero_limit = task(NOOP);
    zero_limit.time_limit_ms = Some(0);
    // Built in code, not parsed: a parser would refuse it, a task must too,
    // or it could never be read back once stored.
    let mut deep = serde_json::json!(1);
    for _ in 0..200 {
        deep = serde_json::json!([deep]);
    }
    let too_deep = NewTask::new(NOOP, deep);
    // Control characters in names (fake rows, escape sequences in an
    // operator's terminal) and NUL anywhere, which PostgreSQL cannot store:
    // refused alike on both engines.
    let mut newline_queue = task(NOOP);
    newline_queue.queue = "mail\nqueued  fake-row".into();
    let mut nul_related = task(NOOP);
    nul_related.related = Some(longshore::Related {
        kind: "user".into(),
        id: "4\u{0}2".into(),
    });
    let mut tab_key = task(NOOP);
    tab_key.unique_key = Some("a\tb".into());
    let mut escape_schedule = task(NOOP);
    escape_schedule.schedule = Some("nightly\u{9b}2J".into());
    vec![
        ("max_attempts 0", no_attempts),
        ("empty actor", task("")),
        ("empty unique key", empty_key),
        ("time limit 0", zero_limit),
        ("args nested 200 deep", too_deep),
        ("queue name with a newline", newline_queue),
        ("actor name with ESC", task("noop\u{1b}[31m")),
        ("related id with NUL", nul_related),
        ("unique key with a tab", tab_key),
        ("schedule name with a C1 control", escape_schedule),
        (
            "args string with NUL",
            NewTask::new(NOOP, serde_json::json!({"text": "a\u{0}b"})),
        ),
        (
            "args key with NUL",
            NewTask::new(NOOP, serde_json::json!({"a\u{0}": 1})),
        ),
        // A secret's reference that is not one.
        (
            "a $secret that is not a name",
            NewTask::new(NOOP, serde_json::json!({"h": {"$secret": 1}})),
        ),
        (
            "a $secret beside another key",
            NewTask::new(NOOP, serde_json::json!({"$secret": "a", "b": 1})),
        ),
        (
            "a $secret with a bad name",
            NewTask::new(NOOP, serde_json::json!([{"$secret": "Not Allowed"}])),
        ),
    ]
}

conformance! {
    // ---------------------------------------------------------------- bulk

    #[tokio::test]
    async fn enqueue_many_inserts_every_task_of_a_large_batch(db) {
        let client = Client::new(db.store());
        let batch = tasks(NOOP, 5000);
        let wanted: HashSet<Uuid> = batch.iter().map(|t| t.id).collect();
        let results = client.enqueue_many(batch).await.unwrap();
        assert_eq!(results.len(), 5000);
        assert!(results.iter().all(|r| r.inserted));
        let reported: HashSet<Uuid> = results.iter().map(|r| r.id).collect();
        assert_eq!(reported, wanted);
        let stored: Vec<Uuid> = db.ids().await;
        assert_eq!(stored.into_iter().collect::<HashSet<_>>(), wanted);
        assert_eq!(db.count(TaskState::Queued).await, 5000);
    }

    #[tokio::test]
    async fn enqueued_fields_are_stored_as_given(db) {
        let mut t = task(NOOP);
        t.queue = "mail".into();
        t.args = serde_json::json!({ "to": "a@example.com", "n": [1, 2] });
        t.priority = -3;
        t.max_attempts = 7;
        t.time_limit_ms = Some(1234);
        t.unique_key = Some("mail:a".into());
        t.related = Some(longshore::Related {
            kind: "user".into(),
            id: "42".into(),
        });
        let id = db.enqueue_one(t.clone()).await;
        let row = db.task(id).await;
        assert_eq!(row.queue, t.queue);
        assert_eq!(row.actor, t.actor);
        assert_eq!(row.args, t.args);
        assert_eq!(row.priority, -3);
        assert_eq!(row.max_attempts, 7);
        assert_eq!(row.time_limit_ms, Some(1234));
        assert_eq!(row.unique_key, t.unique_key);
        assert_eq!(row.related, t.related);
        assert_eq!(row.attempt, 0);
        assert_eq!(row.state, TaskState::Queued);
        assert!(row.lease_owner.is_none() && row.started_at.is_none());
    }

    // ---------------------------------------------------------------- unique keys

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn enqueuing_a_held_unique_key_ten_thousand_times_leaves_one_task(db) {
        // The first batch: one of its thousand becomes the holder.
        let first = db.store.enqueue(keyed("report:7", 1000)).await.unwrap();
        let holders: Vec<&EnqueueResult> = first.iter().filter(|r| r.inserted).collect();
        assert_eq!(holders.len(), 1);
        let holder = holders[0].id;
        assert!(first.iter().all(|r| r.id == holder));

        // Nine more thousand, concurrently, while the holder still waits.
        let mut calls = Vec::new();
        for _ in 0..9 {
            let store = db.store.clone();
            calls.push(tokio::spawn(async move {
                store.enqueue(keyed("report:7", 1000)).await.unwrap()
            }));
        }
        for call in calls {
            let results = call.await.unwrap();
            assert_eq!(results.len(), 1000);
            assert!(results.iter().all(|r| !r.inserted && r.id == holder));
        }
        assert_eq!(db.total().await, 1);
        assert_eq!(db.task(holder).await.state, TaskState::Queued);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_enqueues_of_a_unique_key_insert_exactly_one(db) {
        let mut calls = Vec::new();
        for _ in 0..10 {
            // Separate pools: separate sessions racing for the key.
            let store = db.other_store().await;
            calls.push(tokio::spawn(async move {
                store.enqueue(keyed("sync:acme", 100)).await.unwrap()
            }));
        }
        let mut results = Vec::new();
        for call in calls {
            results.extend(call.await.unwrap());
        }
        let inserted: Vec<Uuid> = results
            .iter()
            .filter(|r| r.inserted)
            .map(|r| r.id)
            .collect();
        assert_eq!(inserted.len(), 1, "{inserted:?}");
        assert!(results.iter().all(|r| r.id == inserted[0]));
        assert_eq!(db.total().await, 1);
    }

    #[tokio::test]
    async fn a_unique_key_can_be_enqueued_again_once_its_holder_finished(db) {
        let first = db.store.enqueue(keyed("nightly", 1)).await.unwrap()[0];
        assert!(first.inserted);
        let while_waiting = db.store.enqueue(keyed("nightly", 1)).await.unwrap()[0];
        assert_eq!(
            while_waiting,
            EnqueueResult {
                id: first.id,
                inserted: false
            }
        );

        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        wait_state(&db, first.id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();

        let again = db.store.enqueue(keyed("nightly", 1)).await.unwrap()[0];
        assert!(again.inserted);
        assert_ne!(again.id, first.id);
        assert_eq!(db.total().await, 2);
    }

    #[tokio::test]
    async fn a_unique_key_is_held_by_a_scheduled_task_too(db) {
        let mut later = keyed("digest", 1);
        later[0].run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        let holder = db.store.enqueue(later).await.unwrap()[0];
        assert!(holder.inserted);
        assert_eq!(db.task(holder.id).await.state, TaskState::Scheduled);
        let dup = db.store.enqueue(keyed("digest", 1)).await.unwrap()[0];
        assert!(!dup.inserted);
        assert_eq!(dup.id, holder.id);
        assert_eq!(db.total().await, 1);
    }

    // ---------------------------------------------------------------- bad input

    #[tokio::test]
    async fn an_invalid_task_is_rejected_as_invalid_input_and_nothing_is_written(db) {
        for (what, bad) in invalid_tasks() {
            match db.store.enqueue(vec![bad]).await {
                Err(StoreError::InvalidInput(message)) => assert!(!message.is_empty(), "{what}"),
                other => panic!("{what}: expected InvalidInput, got {other:?}"),
            }
        }
        assert_eq!(db.total().await, 0);
    }

    // ---------------------------------------------------------------- gathered

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_single_enqueues_share_inserts_and_each_caller_hears_of_its_own(db) {
        let metrics = Metrics::new();
        let client = Client::new(db.store()).with_metrics(metrics.clone());
        let rows = tasks(NOOP, 300);
        let wanted: HashSet<Uuid> = rows.iter().map(|t| t.id).collect();
        let answers = all_at_once(&client, rows).await;
        for (id, answer) in &answers {
            assert_eq!(
                answer.as_ref().ok(),
                Some(&EnqueueResult { id: *id, inserted: true }),
                "{id}: {answer:?}"
            );
        }
        assert_eq!(db.ids().await.into_iter().collect::<HashSet<_>>(), wanted);
        // Every task went through an insert, and the inserts were shared:
        // 300 callers at once against at most four writers.
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_enqueue_gathered_tasks_sum"), 300.0);
        let inserts = sample(&text, "longshore_enqueue_gathered_tasks_count");
        assert!((1.0..300.0).contains(&inserts), "{inserts} inserts for 300 tasks");
        assert_eq!(
            sample(&text, r#"longshore_tasks_enqueued_total{actor="noop",queue="default"}"#),
            300.0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_gathered_task_that_fails_its_insert_fails_alone(db) {
        // A task whose id is taken fails any insert that carries it.
        let taken = db.enqueue_one(task(NOOP)).await;
        let mut rows = tasks(NOOP, 200);
        let mut again = task(NOOP);
        again.id = taken;
        rows.insert(150, again);
        let good: HashSet<Uuid> = rows.iter().map(|t| t.id).filter(|id| *id != taken).collect();
        let client = Client::new(db.store());
        let answers = all_at_once(&client, rows).await;
        for (id, answer) in &answers {
            if *id == taken {
                assert!(answer.is_err(), "the taken id was accepted: {answer:?}");
            } else {
                assert!(matches!(answer, Ok(r) if r.inserted && r.id == *id), "{id}: {answer:?}");
            }
        }
        let stored: HashSet<Uuid> = db.ids().await.into_iter().collect();
        assert_eq!(stored.len(), 201);
        assert!(stored.contains(&taken) && good.is_subset(&stored));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_refused_task_is_refused_before_it_joins_the_others(db) {
        let mut rows = tasks(NOOP, 100);
        let bad: Vec<NewTask> = invalid_tasks().into_iter().map(|(_, t)| t).collect();
        let refused: HashSet<Uuid> = bad.iter().map(|t| t.id).collect();
        rows.extend(bad);
        let client = Client::new(db.store());
        for (id, answer) in all_at_once(&client, rows).await {
            if refused.contains(&id) {
                assert!(
                    matches!(answer, Err(longshore::Error::Store(StoreError::InvalidInput(_)))),
                    "{answer:?}"
                );
            } else {
                assert!(matches!(answer, Ok(r) if r.inserted), "{answer:?}");
            }
        }
        assert_eq!(db.total().await, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn gathered_tasks_with_one_unique_key_insert_one_and_name_it_to_the_rest(db) {
        let client = Client::new(db.store());
        let answers = all_at_once(&client, keyed("invoice:9", 100)).await;
        let results: Vec<EnqueueResult> =
            answers.into_iter().map(|(_, a)| a.unwrap()).collect();
        let holders: Vec<Uuid> = results.iter().filter(|r| r.inserted).map(|r| r.id).collect();
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert!(results.iter().all(|r| r.id == holders[0]));
        assert_eq!(db.total().await, 1);
    }

    #[tokio::test]
    async fn without_gathering_each_enqueue_is_answered_alike(db) {
        let metrics = Metrics::new();
        let client = Client::new(db.store())
            .with_metrics(metrics.clone())
            .gathering(false);
        let answers = all_at_once(&client, tasks(NOOP, 20)).await;
        assert!(answers.iter().all(|(id, a)| matches!(a, Ok(r) if r.inserted && r.id == *id)));
        assert_eq!(db.total().await, 20);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_enqueue_gathered_tasks_count"), 0.0);
    }

    #[tokio::test]
    async fn a_batch_containing_one_invalid_task_inserts_none_of_them(db) {
        for (what, bad) in invalid_tasks() {
            let mut batch = tasks(NOOP, 100);
            batch.insert(50, bad);
            let result = db.store.enqueue(batch).await;
            assert!(
                matches!(result, Err(StoreError::InvalidInput(_))),
                "{what}: {result:?}"
            );
            assert_eq!(db.total().await, 0, "{what}");
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL only
//
// Tests of behaviour that only exists on PostgreSQL; not part of the
// conformance suite.

// ---------------------------------------------------------------- transactions

// PostgreSQL only: `longshore::postgres::enqueue_in` takes the caller's
// sqlx PostgreSQL transaction.
#[tokio::test]
async fn a_task_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let db = TestDb::postgres().await;
    let mut tx = db.pg().store.pool().begin().await.unwrap();
    let results = enqueue_in(&mut tx, vec![task(NOOP)]).await.unwrap();
    assert!(results[0].inserted);
    tx.rollback().await.unwrap();
    assert!(db.store.task(results[0].id).await.unwrap().is_none());
    assert_eq!(db.total().await, 0);
}

// PostgreSQL only: `longshore::postgres::enqueue_in` takes the caller's
// sqlx PostgreSQL transaction.
#[tokio::test]
async fn a_task_enqueued_in_a_committed_transaction_exists_and_runs() {
    let db = TestDb::postgres().await;
    let runs = Runs::new();
    let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
    let mut tx = db.pg().store.pool().begin().await.unwrap();
    // The application's own write in the same transaction.
    sqlx::query("CREATE TABLE orders (id int PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let id = enqueue_in(&mut tx, vec![task(NOOP)]).await.unwrap()[0].id;
    // Invisible to everyone else until the commit.
    assert!(db.store.task(id).await.unwrap().is_none());
    tx.commit().await.unwrap();

    let done = wait_state(&db, id, TaskState::Succeeded).await;
    worker.shutdown().await.unwrap();
    assert_eq!(done.attempt, 1);
    assert_eq!(runs.of(id), 1);
}

// PostgreSQL only: `longshore::postgres::enqueue_in` takes the caller's
// sqlx PostgreSQL transaction.
#[tokio::test]
async fn an_invalid_task_in_the_callers_transaction_is_rejected_before_writing() {
    let db = TestDb::postgres().await;
    let mut tx = db.pg().store.pool().begin().await.unwrap();
    let mut bad = task(NOOP);
    bad.max_attempts = 0;
    let result = enqueue_in(&mut tx, vec![task(NOOP), bad]).await;
    assert!(
        matches!(result, Err(StoreError::InvalidInput(_))),
        "{result:?}"
    );
    // The caller's transaction is still usable: nothing failed inside it.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(one, 1);
    tx.commit().await.unwrap();
    assert_eq!(db.total().await, 0);
}

/// A typed task for `enqueue_task_in`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Welcome {
    user_id: i64,
}

impl longshore::Task for Welcome {
    const ACTOR: &'static str = "welcome";
    const QUEUE: &'static str = "mail";
    async fn run(self, _ctx: longshore::TaskContext) -> Result<(), longshore::TaskError> {
        Ok(())
    }
}

// PostgreSQL only: `longshore::postgres::enqueue_task_in` takes the caller's
// sqlx PostgreSQL transaction.
#[tokio::test]
async fn a_typed_task_enqueued_in_the_callers_transaction_keeps_its_type_defaults_and_its_fate() {
    use longshore::EnqueueOptions;
    use longshore::postgres::enqueue_task_in;

    let db = TestDb::postgres().await;
    let options = EnqueueOptions {
        unique_key: Some("welcome-7".into()),
        ..EnqueueOptions::default()
    };
    let mut tx = db.pg().store.pool().begin().await.unwrap();
    let first = enqueue_task_in(&mut tx, &Welcome { user_id: 7 }, &options)
        .await
        .unwrap();
    let second = enqueue_task_in(&mut tx, &Welcome { user_id: 7 }, &options)
        .await
        .unwrap();
    assert!(first.inserted);
    assert!(!second.inserted, "the key is held inside the transaction");
    assert_eq!(second.id, first.id);
    tx.commit().await.unwrap();

    let row = db.store.task(first.id).await.unwrap().expect("committed");
    assert_eq!(row.actor, "welcome");
    assert_eq!(row.queue, "mail");
    assert_eq!(row.args, serde_json::json!({"user_id": 7}));

    let mut tx = db.pg().store.pool().begin().await.unwrap();
    let gone = enqueue_task_in(&mut tx, &Welcome { user_id: 8 }, &EnqueueOptions::default())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(db.store.task(gone.id).await.unwrap().is_none());
    assert_eq!(db.total().await, 1);
}
