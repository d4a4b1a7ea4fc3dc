//! Running-task caps: per queue and for the whole cluster, read by every
//! claim; tasks over a cap wait in the queue.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Runs, TestDb, quick_config, registry_with, start_worker, tasks};
use longshore::core::{Claim, ClusterSettings, Completion, QueueSettings, StatsKey, Transition};
use longshore::{NewTask, StoreError, TaskContext, TaskRow, TaskState, WorkerConfig};
use uuid::Uuid;

const NOOP: &str = "noop";
const OWNER: &str = "w";

fn claim_of(queues: &[&str], limit: usize, capped: bool) -> Claim {
    Claim {
        owner: OWNER.to_owned(),
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        limit,
        lease: Duration::from_secs(60),
        capped,
        pool: None,
    }
}

/// Claims up to `limit` from `queues` as [`OWNER`].
async fn claim(db: &TestDb, queues: &[&str], limit: usize, capped: bool) -> Vec<Uuid> {
    db.store
        .claim(&claim_of(queues, limit, capped))
        .await
        .expect("claim")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// The success of claimed task `row`.
fn success(row: &TaskRow) -> Completion {
    Completion {
        id: row.id,
        queue: row.queue.clone(),
        execution: row.execution,
        transition: Transition {
            state: TaskState::Succeeded,
            delay: None,
            error: None,
            refund_attempt: false,
        },
        worst_level: None,
        logs: Vec::new(),
    }
}

/// Records the success of running task `id`.
async fn finish(db: &TestDb, id: Uuid) {
    let row = db.task(id).await;
    let rejected = db
        .store
        .complete(OWNER, &[success(&row)])
        .await
        .expect("complete");
    assert!(rejected.is_empty());
}

/// Enqueues one task in `queue` per priority; returns their ids by priority.
async fn by_priority(db: &TestDb, queue: &str, priorities: &[i16]) -> HashMap<i16, Uuid> {
    let batch: Vec<NewTask> = priorities
        .iter()
        .map(|&p| {
            let mut t = NewTask::new(NOOP, serde_json::json!({ "p": p }));
            t.queue = queue.to_owned();
            t.priority = p;
            t
        })
        .collect();
    let ids = db.enqueue(batch).await;
    priorities.iter().copied().zip(ids).collect()
}

fn ids_of(map: &HashMap<i16, Uuid>, priorities: &[i16]) -> Vec<Uuid> {
    priorities.iter().map(|p| map[p]).collect()
}

fn settings(name: &str, paused: bool, max_running: Option<i32>) -> QueueSettings {
    QueueSettings {
        name: name.into(),
        paused,
        max_running,
    }
}

fn assert_invalid(result: Result<(), StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::InvalidInput(_))),
        "{what}: expected InvalidInput, got {result:?}"
    );
}

conformance! {
    #[tokio::test]
    async fn a_queue_limit_covers_queued_and_due_delayed_tasks_together(db) {
        db.store.set_queue_limit("q", Some(1)).await.unwrap();
        // One task due later, then one due now: the claim sees both due.
        let mut delayed = NewTask::new(NOOP, serde_json::json!({}));
        delayed.queue = "q".into();
        let due_at = chrono::Utc::now() + chrono::Duration::milliseconds(300);
        delayed.run_at = Some(due_at);
        let delayed = db.enqueue(vec![delayed]).await[0];
        let now = by_priority(&db, "q", &[0]).await;
        common::wait_for("the delayed task to fall due", Duration::from_secs(10), || async {
            (chrono::Utc::now() > due_at).then_some(())
        })
        .await;
        assert_eq!(db.task(delayed).await.state, TaskState::Scheduled);

        let first = claim(&db, &["q"], 10, true).await;
        assert_eq!(first.len(), 1, "the limit is 1 across queued and due tasks: {first:?}");
        assert!(claim(&db, &["q"], 10, false).await.is_empty());
        finish(&db, first[0]).await;
        let second = claim(&db, &["q"], 10, true).await;
        assert_eq!(second.len(), 1);
        let mut both = vec![first[0], second[0]];
        both.sort();
        let mut expected = vec![delayed, now[&0]];
        expected.sort();
        assert_eq!(both, expected);
    }

    #[tokio::test]
    async fn a_queue_limit_caps_its_running_tasks_most_urgent_first(db) {
        db.store.set_queue_limit("q", Some(2)).await.unwrap();
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", false, Some(2))]);
        // Inserted in neither urgency nor id order.
        let q = by_priority(&db, "q", &[3, 1, 4, 0, 2]).await;
        let other = by_priority(&db, "other", &[5, 6, 7]).await;

        // Caps hold whether or not the claim takes the claim lock.
        assert_eq!(claim(&db, &["q"], 10, false).await, ids_of(&q, &[0, 1]));
        assert!(claim(&db, &["q"], 10, false).await.is_empty());
        assert!(claim(&db, &["q"], 10, true).await.is_empty());
        // Over the cap they wait, untouched.
        for p in [2, 3, 4] {
            let t = db.task(q[&p]).await;
            assert_eq!(t.state, TaskState::Queued);
            assert_eq!(t.attempt, 0);
            assert_eq!(t.last_error, None);
        }
        // A queue without a limit of its own is not held back.
        assert_eq!(claim(&db, &["q", "other"], 10, false).await, ids_of(&other, &[5, 6, 7]));

        // A finished task frees its place for the next most urgent.
        finish(&db, q[&0]).await;
        assert_eq!(claim(&db, &["q"], 10, false).await, ids_of(&q, &[2]));
        assert!(claim(&db, &["q"], 10, false).await.is_empty());

        // Pause and limit are separate settings of the queue.
        db.store.set_queue_paused("q", true).await.unwrap();
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", true, Some(2))]);
        db.store.set_queue_limit("q", Some(3)).await.unwrap();
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", true, Some(3))]);
        assert!(claim(&db, &["q"], 10, false).await.is_empty(), "paused");
        db.store.set_queue_paused("q", false).await.unwrap();
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", false, Some(3))]);
        // Running: 1 and 2; the limit is 3.
        assert_eq!(claim(&db, &["q"], 10, false).await, ids_of(&q, &[3]));
        assert!(claim(&db, &["q"], 10, false).await.is_empty());
        assert_eq!(db.task(q[&4]).await.state, TaskState::Queued);
    }

    #[tokio::test]
    async fn the_global_cap_holds_across_queues_and_for_refills(db) {
        db.store.set_max_running(Some(3)).await.unwrap();
        assert_eq!(db.store.cluster_settings().await.unwrap().max_running, Some(3));
        let mut ids = by_priority(&db, "a", &[1, 3, 5]).await;
        ids.extend(by_priority(&db, "b", &[0, 2, 4]).await);
        ids.extend(by_priority(&db, "c", &[6]).await);
        let all = ["a", "b", "c"];

        assert_eq!(claim(&db, &["a", "b"], 10, true).await, ids_of(&ids, &[0, 1, 2]));
        assert!(claim(&db, &all, 10, true).await.is_empty());
        assert!(claim(&db, &["c"], 10, false).await.is_empty(), "the cap covers every queue");
        assert_eq!(db.running().await, 3);

        // The claim half of complete_and_claim respects the cap too.
        let done = db.task(ids[&0]).await;
        let (rejected, refill) = db
            .store
            .complete_and_claim(OWNER, &[success(&done)], &claim_of(&all, 10, true))
            .await
            .unwrap();
        assert!(rejected.is_empty());
        assert_eq!(refill.iter().map(|t| t.id).collect::<Vec<_>>(), ids_of(&ids, &[3]));
        assert_eq!(db.running().await, 3);
        let (_, refill) = db
            .store
            .complete_and_claim(OWNER, &[], &claim_of(&all, 10, false))
            .await
            .unwrap();
        assert!(refill.is_empty());

        // A queue limit and the global cap together: each holds.
        finish(&db, ids[&1]).await;
        finish(&db, ids[&2]).await;
        db.store.set_queue_limit("b", Some(1)).await.unwrap();
        // Running: 3 (a). Free: 2 globally, 1 in b.
        assert_eq!(claim(&db, &all, 10, true).await, ids_of(&ids, &[4, 5]));
        assert!(claim(&db, &all, 10, true).await.is_empty());
        assert_eq!(db.task(ids[&6]).await.state, TaskState::Queued);
        assert_eq!(db.running().await, 3);
    }

    #[tokio::test]
    async fn lifting_a_cap_frees_the_queue_and_invalid_caps_change_nothing(db) {
        assert_eq!(db.store.cluster_settings().await.unwrap(), ClusterSettings::default());
        db.store.set_max_running(Some(1)).await.unwrap();
        db.store.set_queue_limit("q", Some(1)).await.unwrap();
        db.enqueue(
            tasks(NOOP, 5)
                .into_iter()
                .map(|mut t| {
                    t.queue = "q".into();
                    t
                })
                .collect(),
        )
        .await;
        assert_eq!(claim(&db, &["q"], 10, true).await.len(), 1);

        db.store.set_max_running(None).await.unwrap();
        assert_eq!(db.store.cluster_settings().await.unwrap(), ClusterSettings { max_running: None });
        assert!(claim(&db, &["q"], 10, true).await.is_empty(), "the queue's own limit still holds");
        db.store.set_queue_limit("q", None).await.unwrap();
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", false, None)]);
        assert_eq!(claim(&db, &["q"], 10, false).await.len(), 4);
        assert_eq!(db.running().await, 5);

        db.store.set_max_running(Some(5)).await.unwrap();
        db.store.set_queue_limit("q", Some(2)).await.unwrap();
        for bad in [0, -1, i32::MIN] {
            assert_invalid(db.store.set_max_running(Some(bad)).await, &format!("global cap {bad}"));
            assert_invalid(db.store.set_queue_limit("q", Some(bad)).await, &format!("queue limit {bad}"));
        }
        assert_invalid(db.store.set_queue_limit("", Some(2)).await, "empty queue name");
        assert_invalid(db.store.set_queue_limit("  ", Some(2)).await, "blank queue name");
        assert_eq!(db.store.cluster_settings().await.unwrap().max_running, Some(5));
        assert_eq!(db.store.queue_settings().await.unwrap(), [settings("q", false, Some(2))]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn workers_never_run_more_than_the_global_cap(db) {
        db.store.set_max_running(Some(2)).await.unwrap();
        db.enqueue(tasks(NOOP, 40)).await;
        let runs = Runs::new();
        let registry = |runs: &Runs| {
            let runs = runs.clone();
            registry_with(NOOP, move |_args, ctx: TaskContext| {
                runs.record(ctx.task_id());
                async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(())
                }
            })
        };
        let node = |id: &str| WorkerConfig { id: id.into(), concurrency: 8, ..quick_config() };
        // Two nodes, so that the cap is the cluster's and not one worker's.
        let a = start_worker(db.other_store().await, registry(&runs), node("a"));
        let b = start_worker(db.other_store().await, registry(&runs), node("b"));

        let mut most = 0;
        let mut samples = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let counts = db.state_counts().await;
            let running = counts.get(&TaskState::Running).copied().unwrap_or(0);
            let succeeded = counts.get(&TaskState::Succeeded).copied().unwrap_or(0);
            most = most.max(running);
            samples += 1;
            assert!(running <= 2, "{running} tasks running under a cap of 2");
            if succeeded == 40 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out: {succeeded} of 40 succeeded");
        }
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        assert!(samples > 10, "too few samples ({samples}) to judge");
        assert!(most <= 2);
        assert_eq!(runs.total(), 40, "each task ran once");
        assert!(db.attempts().await.iter().all(|&(_, attempt)| attempt == 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_worker_never_runs_more_than_a_queue_limit_while_other_queues_run_freely(db) {
        db.store.set_queue_limit("slow", Some(1)).await.unwrap();
        for queue in ["slow", "fast"] {
            db.enqueue(
                tasks(NOOP, 20)
                    .into_iter()
                    .map(|mut t| {
                        t.queue = queue.into();
                        t
                    })
                    .collect(),
            )
            .await;
        }
        let runs = Runs::new();
        let counted = runs.clone();
        let registry = registry_with(NOOP, move |_args, ctx: TaskContext| {
            counted.record(ctx.task_id());
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(())
            }
        });
        let config = WorkerConfig {
            queues: vec!["slow".into(), "fast".into()],
            concurrency: 8,
            ..quick_config()
        };
        let worker = db.worker(registry, config);

        let mut samples = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // One statement: one snapshot.
            let stats = db.store.stats(StatsKey::Queue).await.unwrap();
            let count = |queue: &str, state: TaskState| {
                stats
                    .iter()
                    .filter(|r| r.key == queue && r.state == state)
                    .map(|r| r.count)
                    .sum::<i64>()
            };
            let slow_running = count("slow", TaskState::Running);
            assert!(slow_running <= 1, "{slow_running} tasks of queue slow running under a limit of 1");
            samples += 1;
            if count("slow", TaskState::Succeeded) + count("fast", TaskState::Succeeded) == 40 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out: {stats:?}");
        }
        worker.shutdown().await.unwrap();
        assert!(samples > 10, "too few samples ({samples}) to judge");
        assert_eq!(runs.total(), 40);
    }
}
