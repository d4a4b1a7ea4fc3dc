//! Claiming: batches sized to the limit, urgency order, SKIP LOCKED races,
//! leases and their renewal, rescue of expired leases, fencing of late
//! results.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{
    Runs, TestDb, counting_registry, quick_config, registry_with, start_worker, task, tasks,
    wait_count, wait_for, wait_state,
};
use longshore::core::{Claim, Completion, Transition};
use longshore::{LogLevel, NewTask, TaskContext, TaskError, TaskState, WorkerConfig};
use uuid::Uuid;

const NOOP: &str = "noop";

fn claim(owner: &str, limit: usize, lease: Duration) -> Claim {
    Claim {
        owner: owner.to_owned(),
        queues: vec![NewTask::DEFAULT_QUEUE.to_owned()],
        limit,
        lease,
        capped: false,
        pool: None,
    }
}

fn succeeded(id: Uuid, execution: i32) -> Completion {
    Completion {
        id,
        queue: NewTask::DEFAULT_QUEUE.to_owned(),
        execution,
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

/// Claims as `owner` with a short lease, waits for the lease to expire and
/// rescues it: the task is queued again with `attempt` unchanged.
async fn claim_and_let_expire(db: &TestDb, owner: &str) -> Uuid {
    let claimed = db
        .store
        .claim(&claim(owner, 1, Duration::from_secs(1)))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].id;
    wait_for(
        "the lease to expire and be rescued",
        Duration::from_secs(10),
        || async { (db.store.rescue_expired(10).await.expect("rescue") > 0).then_some(()) },
    )
    .await;
    assert_eq!(db.task(id).await.state, TaskState::Queued);
    id
}

/// Five tasks inserted in an order that is neither their urgency order nor
/// their id order; returns their ids in the expected claim order.
async fn five_tasks_of_mixed_urgency(db: &TestDb) -> Vec<Uuid> {
    let now = Utc::now();
    let spec = [
        ("a", 5, 10),
        ("b", 0, 1),
        ("c", 0, 5),
        ("d", 1, 20),
        ("e", 5, 30),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, priority, secs_ago) in spec {
        let mut t = task(NOOP);
        t.priority = priority;
        t.run_at = Some(now - chrono::Duration::seconds(secs_ago));
        ids.insert(name, db.enqueue_one(t).await);
    }
    ["c", "b", "d", "e", "a"].iter().map(|n| ids[n]).collect()
}

/// A deterministic scramble, so that the order above is arbitrary but
/// reproducible.
fn fastrand_like(seed: i64, modulo: i64) -> i64 {
    (seed.wrapping_mul(2_654_435_761) ^ (seed >> 3)).rem_euclid(modulo)
}

conformance! {
    #[tokio::test]
    async fn claim_returns_at_most_limit_tasks(db) {
        db.enqueue(tasks(NOOP, 10)).await;
        let claimed = db
            .store
            .claim(&claim("w", 3, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        assert_eq!(db.count(TaskState::Running).await, 3);
        assert_eq!(db.count(TaskState::Queued).await, 7);
    }

    #[tokio::test]
    async fn claim_marks_tasks_running_under_the_owners_lease_with_attempt_one(db) {
        let ids: HashSet<Uuid> = db.enqueue(tasks(NOOP, 2)).await.into_iter().collect();
        let lease = Duration::from_secs(30);
        let claimed = db.store.claim(&claim("worker-a", 5, lease)).await.unwrap();
        assert_eq!(claimed.iter().map(|t| t.id).collect::<HashSet<_>>(), ids);
        for returned in claimed {
            let stored = db.task(returned.id).await;
            for row in [&returned, &stored] {
                assert_eq!(row.state, TaskState::Running);
                assert_eq!(row.lease_owner.as_deref(), Some("worker-a"));
                assert_eq!(row.attempt, 1);
                let started = row.started_at.expect("started_at set");
                let expires = row.lease_expires_at.expect("lease expiry set");
                assert_eq!((expires - started).to_std().unwrap(), lease);
            }
            assert_eq!(returned.lease_expires_at, stored.lease_expires_at);
        }
    }

    #[tokio::test]
    async fn claiming_a_task_again_increments_its_attempt(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        let first = db
            .store
            .claim(&claim("w", 1, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(first[0].attempt, 1);
        // The first execution fails and is due again at once.
        let retry = Completion {
            transition: Transition {
                state: TaskState::Queued,
                delay: Some(Duration::ZERO),
                error: Some("boom".into()),
                refund_attempt: false,
            },
            ..succeeded(id, 1)
        };
        assert!(db.store.complete("w", &[retry]).await.unwrap().is_empty());
        let second = db
            .store
            .claim(&claim("w", 1, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, id);
        assert_eq!(second[0].attempt, 2);
        assert_eq!(db.task(id).await.attempt, 2);
    }

    #[tokio::test]
    async fn claim_takes_the_most_urgent_tasks_first_by_priority_then_run_at(db) {
        let expected = five_tasks_of_mixed_urgency(&db).await;
        let mut order = Vec::new();
        for _ in 0..5 {
            let claimed = db
                .store
                .claim(&claim("w", 1, Duration::from_secs(30)))
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1);
            order.push(claimed[0].id);
        }
        assert_eq!(order, expected);
    }

    #[tokio::test]
    async fn claim_returns_its_batch_in_priority_then_run_at_order(db) {
        let now = Utc::now();
        // Enough rows that the planner has choices; urgency unrelated to id order.
        let batch: Vec<NewTask> = (0..300)
            .map(|i| {
                let mut t = task(NOOP);
                t.priority = fastrand_like(i, 4) as i16;
                t.run_at =
                    Some(now - chrono::Duration::milliseconds(fastrand_like(i * 7 + 3, 100_000)));
                t
            })
            .collect();
        db.enqueue(batch).await;
        let claimed = db
            .store
            .claim(&claim("w", 300, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 300);
        let keys: Vec<_> = claimed
            .iter()
            .map(|t| (t.priority, t.run_at, t.id))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert!(
            keys == sorted,
            "claimed batch is not in (priority, run_at, id) order"
        );
    }

    #[tokio::test]
    async fn claim_never_returns_tasks_from_queues_not_asked_for(db) {
        let mut others = tasks(NOOP, 3);
        for t in &mut others {
            t.queue = "other".into();
            t.priority = -10; // more urgent than anything in `default`
        }
        let other_ids = db.enqueue(others).await;
        let wanted: HashSet<Uuid> = db.enqueue(tasks(NOOP, 2)).await.into_iter().collect();
        let claimed = db
            .store
            .claim(&claim("w", 10, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.iter().map(|t| t.id).collect::<HashSet<_>>(), wanted);
        for id in other_ids {
            assert_eq!(db.task(id).await.state, TaskState::Queued);
        }
    }

    #[tokio::test]
    async fn claim_takes_the_most_urgent_across_the_queues_asked_for(db) {
        let mut slow = tasks(NOOP, 3);
        for t in &mut slow {
            t.queue = "slow".into();
            t.priority = 3;
        }
        db.enqueue(slow).await;
        let mut fast = tasks(NOOP, 2);
        for t in &mut fast {
            t.queue = "fast".into();
            t.priority = 1;
        }
        let fast_ids: HashSet<Uuid> = db.enqueue(fast).await.into_iter().collect();
        let claimed = db
            .store
            .claim(&Claim {
                owner: "w".into(),
                queues: vec!["slow".into(), "fast".into()],
                limit: 2,
                lease: Duration::from_secs(30),
                capped: false,
                pool: None,
            })
            .await
            .unwrap();
        assert_eq!(
            claimed.iter().map(|t| t.id).collect::<HashSet<_>>(),
            fast_ids
        );
    }

    #[tokio::test]
    async fn claim_never_returns_tasks_due_in_the_future(db) {
        let mut later = tasks(NOOP, 2);
        for t in &mut later {
            t.run_at = Some(Utc::now() + chrono::Duration::hours(1));
        }
        let later_ids = db.enqueue(later).await;
        let mut due = task(NOOP);
        due.run_at = Some(Utc::now() - chrono::Duration::seconds(1));
        let due_id = db.enqueue_one(due).await;
        let claimed = db
            .store
            .claim(&claim("w", 10, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.iter().map(|t| t.id).collect::<Vec<_>>(), [due_id]);
        for id in later_ids {
            assert_eq!(db.task(id).await.state, TaskState::Scheduled);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_never_hand_out_a_task_twice(db) {
        db.enqueue(tasks(NOOP, 600)).await;
        let mut claimers = Vec::new();
        for i in 0..8 {
            let store = db.store();
            let observer = db.observer();
            claimers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store
                        .claim(&claim(&format!("w{i}"), 7, Duration::from_secs(30)))
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        // SKIP LOCKED may skip rows others hold; stop only when none are left.
                        if observer.count(TaskState::Queued).await == 0 {
                            return got;
                        }
                    }
                    got.extend(batch.into_iter().map(|t| (t.id, t.lease_owner)));
                }
            }));
        }
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.unwrap());
        }
        let distinct: HashSet<Uuid> = all.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            all.len(),
            600,
            "some task was handed out twice or not at all"
        );
        assert_eq!(distinct.len(), 600);
        // Each task's stored owner is the claimer that got it.
        for (id, owner) in all.iter().take(50) {
            assert_eq!(&db.task(*id).await.lease_owner, owner);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_workers_racing_over_a_backlog_run_every_task_exactly_once(db) {
        let runs_a = Runs::new();
        let runs_b = Runs::new();
        let config = |id: &str| WorkerConfig {
            id: id.to_owned(),
            concurrency: 8,
            lease: Duration::from_secs(10),
            heartbeat: Duration::from_secs(1),
            ..quick_config()
        };
        let store_a = db.other_store().await;
        let store_b = db.other_store().await;
        let a = start_worker(store_a, counting_registry(NOOP, &runs_a), config("a"));
        let b = start_worker(store_b, counting_registry(NOOP, &runs_b), config("b"));
        // Both are idle and woken together by the inserts.
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.extend(db.enqueue(tasks(NOOP, 500)).await);
        }
        wait_count(&db, TaskState::Succeeded, 2000, Duration::from_secs(30)).await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();

        let (ran_a, ran_b) = (runs_a.snapshot(), runs_b.snapshot());
        assert!(
            !ran_a.is_empty() && !ran_b.is_empty(),
            "both workers should have taken part (a: {}, b: {})",
            ran_a.len(),
            ran_b.len()
        );
        for id in &ids {
            let n = ran_a.get(id).copied().unwrap_or(0) + ran_b.get(id).copied().unwrap_or(0);
            assert_eq!(n, 1, "task {id} ran {n} times");
        }
        assert_eq!(runs_a.total() + runs_b.total(), 2000);
        let not_first: Vec<(Uuid, i32)> = db
            .attempts()
            .await
            .into_iter()
            .filter(|&(_, attempt)| attempt != 1)
            .collect();
        assert_eq!(not_first.len(), 0, "{not_first:?}");
    }

    #[tokio::test]
    async fn a_handler_running_longer_than_its_lease_keeps_it_through_heartbeats(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("long", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async move {
                tokio::select! {
                    () = ctx.cancelled() => Err(TaskError::retry(format!("stopped: {:?}", ctx.cancel_reason()))),
                    () = tokio::time::sleep(Duration::from_secs(4)) => Ok(()),
                }
            }
        });
        let config = WorkerConfig {
            lease: Duration::from_secs(2),
            heartbeat: Duration::from_millis(300),
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let id = db.enqueue_one(task("long")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
        assert_eq!(runs.of(id), 1);
        assert!(done.last_error.is_none(), "{:?}", done.last_error);
        let started = done.started_at.unwrap();
        let finished = done.finished_at.unwrap();
        assert!(finished - started >= chrono::Duration::seconds(4));
    }

    #[tokio::test]
    async fn heartbeat_renews_only_leases_its_owner_holds_for_that_attempt(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        db.store
            .claim(&claim("a", 1, Duration::from_secs(1)))
            .await
            .unwrap();
        let before = db.task(id).await.lease_expires_at.unwrap();

        let beat = db
            .store
            .heartbeat("a", &[(id, 1)], Duration::from_secs(60), &[])
            .await
            .unwrap();
        assert!(beat.lost.is_empty());
        let renewed = db.task(id).await.lease_expires_at.unwrap();
        assert!(renewed - before > chrono::Duration::seconds(50));

        let wrong_owner = db
            .store
            .heartbeat("b", &[(id, 1)], Duration::from_secs(600), &[])
            .await
            .unwrap();
        assert_eq!(wrong_owner.lost, [id]);
        let wrong_attempt = db
            .store
            .heartbeat("a", &[(id, 2)], Duration::from_secs(600), &[])
            .await
            .unwrap();
        assert_eq!(wrong_attempt.lost, [id]);
        let after = db.task(id).await;
        assert_eq!(after.lease_expires_at.unwrap(), renewed);
        assert_eq!(after.lease_owner.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn rescue_leaves_unexpired_leases_alone(db) {
        let id = db.enqueue_one(task(NOOP)).await;
        db.store
            .claim(&claim("a", 1, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(db.store.rescue_expired(100).await.unwrap(), 0);
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Running);
        assert_eq!(row.lease_owner.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn an_expired_lease_is_rescued_and_the_task_runs_again_as_attempt_two(db) {
        let mut t = task(NOOP);
        t.max_attempts = 3;
        let id = db.enqueue_one(t).await;
        // A worker that claims and then vanishes without renewing.
        let ghost = db
            .store
            .claim(&claim("ghost", 1, Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(ghost.len(), 1);

        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();

        assert_eq!(done.attempt, 2);
        assert_eq!(runs.of(id), 1);
        let logs = db.store.logs(id).await.unwrap();
        let rescue: Vec<_> = logs.iter().filter(|l| l.execution == 1).collect();
        assert_eq!(rescue.len(), 1, "{logs:?}");
        assert_eq!(rescue[0].level, LogLevel::Error);
        assert!(
            rescue[0].message.contains("lease") && rescue[0].message.contains("ghost"),
            "{}",
            rescue[0].message
        );
    }

    #[tokio::test]
    async fn a_rescued_task_without_attempts_left_fails_naming_the_expired_lease(db) {
        let mut t = task(NOOP);
        t.max_attempts = 1;
        let id = db.enqueue_one(t).await;
        db.store
            .claim(&claim("ghost", 1, Duration::from_secs(1)))
            .await
            .unwrap();

        let runs = Runs::new();
        let worker = db.worker(counting_registry(NOOP, &runs), quick_config());
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();

        assert_eq!(failed.attempt, 1);
        assert_eq!(runs.of(id), 0);
        assert!(failed.finished_at.is_some());
        assert!(failed.lease_owner.is_none());
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains("lease") && error.contains("expired") && error.contains("ghost"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_late_completion_from_a_worker_that_lost_its_lease_is_rejected(db) {
        db.enqueue_one(task(NOOP)).await;
        let id = claim_and_let_expire(&db, "a").await;
        let b = db
            .store
            .claim(&claim("b", 1, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(b[0].id, id);
        assert_eq!(b[0].attempt, 2);

        let rejected = db.store.complete("a", &[succeeded(id, 1)]).await.unwrap();
        assert_eq!(rejected, [id]);
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Running);
        assert_eq!(row.lease_owner.as_deref(), Some("b"));
        assert_eq!(row.attempt, 2);
        assert!(row.finished_at.is_none());

        // The holder's own completion still applies.
        let rejected = db.store.complete("b", &[succeeded(id, 2)]).await.unwrap();
        assert!(rejected.is_empty());
        assert_eq!(db.task(id).await.state, TaskState::Succeeded);
    }

    #[tokio::test]
    async fn a_completion_for_a_previous_attempt_is_rejected_even_from_the_same_owner(db) {
        db.enqueue_one(task(NOOP)).await;
        // The same worker name claims again after its first lease expired
        // (e.g. a restarted process with a fixed id).
        let id = claim_and_let_expire(&db, "w").await;
        let again = db
            .store
            .claim(&claim("w", 1, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(again[0].attempt, 2);

        let rejected = db.store.complete("w", &[succeeded(id, 1)]).await.unwrap();
        assert_eq!(rejected, [id]);
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Running);
        assert_eq!(row.attempt, 2);
        assert_eq!(row.lease_owner.as_deref(), Some("w"));
    }

    #[tokio::test]
    async fn a_worker_stops_an_execution_whose_lease_it_lost_and_records_nothing(db) {
        let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reasons.clone();
        let runs = Runs::new();
        let started = runs.clone();
        let registry = registry_with("long", move |_args, ctx: TaskContext| {
            started.record(ctx.task_id());
            let seen = seen.clone();
            async move {
                ctx.cancelled().await;
                seen.lock().unwrap().push(ctx.cancel_reason());
                Err(TaskError::retry("stopped"))
            }
        });
        let worker = db.worker(registry, quick_config());
        let id = db.enqueue_one(task("long")).await;
        wait_for("the handler to start", Duration::from_secs(20), || async {
            (runs.of(id) == 1).then_some(())
        })
        .await;
        // Another worker now holds the task (as after a rescue and a new claim).
        db.set_lease(id, "thief", Utc::now() + chrono::Duration::hours(1))
            .await;

        wait_for(
            "the handler to be stopped",
            Duration::from_secs(10),
            || async { (!reasons.lock().unwrap().is_empty()).then_some(()) },
        )
        .await;
        worker.shutdown().await.unwrap();
        assert_eq!(
            *reasons.lock().unwrap(),
            [Some(longshore::CancelReason::LeaseLost)]
        );
        // The new holder's task is untouched.
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Running);
        assert_eq!(row.lease_owner.as_deref(), Some("thief"));
        assert_eq!(row.attempt, 1);
        assert!(row.last_error.is_none());
    }

    #[tokio::test]
    async fn a_worker_runs_only_the_queues_it_serves(db) {
        let in_queue = |queue: &str, n| {
            let mut batch = tasks(NOOP, n);
            for t in &mut batch {
                t.queue = queue.to_owned();
            }
            batch
        };
        let served_a = db.enqueue(in_queue("a", 5)).await;
        let served_b = db.enqueue(in_queue("b", 5)).await;
        let other = db.enqueue(in_queue("c", 5)).await;
        let runs = Runs::new();
        let config = WorkerConfig {
            queues: vec!["a".into(), "b".into()],
            ..quick_config()
        };
        let worker = db.worker(counting_registry(NOOP, &runs), config);
        wait_count(&db, TaskState::Succeeded, 10, Duration::from_secs(20)).await;
        // One more task on a served queue, to be sure the worker kept looking.
        let mut last = task(NOOP);
        last.queue = "b".into();
        let last = db.enqueue_one(last).await;
        wait_state(&db, last, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        for id in served_a.iter().chain(&served_b) {
            assert_eq!(runs.of(*id), 1);
        }
        for id in other {
            assert_eq!(runs.of(id), 0);
            assert_eq!(db.task(id).await.state, TaskState::Queued);
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL only

/// The heartbeat never waits for a row lock. A worker's completion holds
/// the rows it finishes while its heartbeat, on another connection, renews
/// the same worker's leases; a heartbeat that waited could close a cycle
/// of waits with it (PostgreSQL then fails one of the two, after a
/// second's stall). A row locked at that moment is reported held, its
/// lease left for the next beat; the other rows are renewed.
#[tokio::test]
async fn a_heartbeat_passes_over_a_row_another_transaction_holds() {
    let db = TestDb::postgres().await;
    let ids = db.enqueue(vec![task(NOOP), task(NOOP)]).await;
    let claimed = db
        .store
        .claim(&claim("a", 2, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let (locked, free) = (ids[0], ids[1]);
    let db = &db;
    let lease_of = |id| async move { db.task(id).await.lease_expires_at.unwrap() };
    let locked_before = lease_of(locked).await;
    let free_before = lease_of(free).await;

    let mut tx = db.pg().store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM longshore_tasks WHERE id = $1 FOR NO KEY UPDATE")
        .bind(locked)
        .execute(&mut *tx)
        .await
        .unwrap();
    let held = [(locked, 1), (free, 1)];
    let beat = tokio::time::timeout(
        Duration::from_secs(60),
        db.store
            .heartbeat("a", &held, Duration::from_secs(600), &[]),
    )
    .await
    .expect("the heartbeat waited for a row another transaction holds")
    .unwrap();
    assert!(beat.lost.is_empty(), "{beat:?}");
    assert!(beat.cancel_requested.is_empty());
    tx.rollback().await.unwrap();
    assert_eq!(lease_of(locked).await, locked_before);
    assert!(lease_of(free).await - free_before > chrono::Duration::seconds(500));

    // The next beat renews it.
    let beat = db
        .store
        .heartbeat("a", &held, Duration::from_secs(600), &[])
        .await
        .unwrap();
    assert!(beat.lost.is_empty(), "{beat:?}");
    assert!(lease_of(locked).await - locked_before > chrono::Duration::seconds(500));
}
