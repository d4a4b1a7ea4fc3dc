//! Cron schedules: defined by name (by operators or in code), fired once
//! per due run by whichever node holds the scheduler role, with an overlap
//! policy against the previous run; the built-in maintenance jobs are
//! schedules too.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::{Runs, TestDb, counting_registry, quick_config, start_worker, task, wait_for};
use longshore::core::schedule::builtin;
use longshore::core::{
    Claim, Completion, CronSpec, Fire, FireKind, FireOutcome, Overlap, PutMode, Schedule,
    ScheduleDef, TaskFilter, Transition,
};
use longshore::{
    Registry, Related, StoreError, TaskContext, TaskRow, TaskState, Worker, WorkerConfig,
};
use uuid::Uuid;

const ACTOR: &str = "tick";

/// `t` as the engines store it (microseconds).
fn us(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("a representable time")
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// A schedule calling [`ACTOR`] on the default queue.
fn def(name: &str, cron: &str) -> ScheduleDef {
    ScheduleDef::new(name, ACTOR, cron)
}

/// Hourly at the minute half an hour from now: its next run is far enough
/// away that it never comes due during a test, while a next run computed
/// from a due time hours in the past would be in the past.
fn hourly_half_an_hour_away() -> String {
    format!("{} * * * *", (Utc::now().minute() + 30) % 60)
}

/// Worker settings whose scheduler looks for due schedules every 50 ms.
fn scheduling_config() -> WorkerConfig {
    WorkerConfig {
        scheduler_interval: Duration::from_millis(50),
        ..quick_config()
    }
}

/// Schedule `name` as stored; it must exist.
async fn stored(db: &TestDb, name: &str) -> Schedule {
    db.store
        .schedule(name)
        .await
        .expect("read the schedule")
        .unwrap_or_else(|| panic!("schedule {name} exists"))
}

/// The tasks schedule `name` created, newest first.
async fn history(db: &TestDb, name: &str) -> Vec<TaskRow> {
    db.store
        .list(&TaskFilter {
            schedule: Some(name.to_owned()),
            limit: 1000,
            ..TaskFilter::default()
        })
        .await
        .expect("list the schedule's tasks")
}

/// The names of every stored schedule, in the store's order.
async fn names(db: &TestDb) -> Vec<String> {
    db.store
        .schedules()
        .await
        .expect("list schedules")
        .into_iter()
        .map(|s| s.def.name)
        .collect()
}

/// The names of the schedules with a run to fire.
async fn due_names(db: &TestDb) -> Vec<String> {
    db.store
        .due_schedules(100)
        .await
        .expect("read the due schedules")
        .into_iter()
        .map(|s| s.def.name)
        .collect()
}

/// The run of `def` due at `at`, as the scheduler fires it (its task runs
/// at `at`), with `next` to store as the next due time.
fn due_run(def: &ScheduleDef, at: DateTime<Utc>, next: DateTime<Utc>) -> Fire {
    let mut run = def.task();
    run.run_at = Some(at);
    Fire {
        name: def.name.clone(),
        kind: FireKind::Due(at),
        next_run_at: Some(next),
        task: Some(run),
    }
}

/// A run by hand of `def` (`Now`, or the `Requested` one that waited).
fn by_hand(def: &ScheduleDef, kind: FireKind) -> Fire {
    Fire {
        name: def.name.clone(),
        kind,
        next_run_at: None,
        task: Some(def.task()),
    }
}

/// What the maintenance leader records for a built-in job.
fn builtin_run(name: &str, kind: FireKind, next: Option<DateTime<Utc>>) -> Fire {
    Fire {
        name: name.to_owned(),
        kind,
        next_run_at: next,
        task: None,
    }
}

async fn fire(db: &TestDb, fire: &Fire) -> FireOutcome {
    db.store
        .fire_schedule(fire)
        .await
        .expect("fire the schedule")
}

/// The task a fire enqueued, with the run it replaced.
fn enqueued(outcome: FireOutcome) -> (Uuid, Option<Uuid>) {
    match outcome {
        FireOutcome::Enqueued { task, replaced } => (task, replaced),
        other => panic!("expected a task to be enqueued, got {other:?}"),
    }
}

/// Claims the one queued task of the default queue as `owner`.
async fn claim_one(db: &TestDb, owner: &str) -> TaskRow {
    let mut claimed = db
        .store
        .claim(&Claim {
            owner: owner.to_owned(),
            queues: vec![longshore::NewTask::DEFAULT_QUEUE.to_owned()],
            limit: 1,
            lease: Duration::from_secs(60),
            capped: false,
            pool: None,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "one task to claim");
    claimed.remove(0)
}

/// Claims task `id` (the only queued one) and records its success.
async fn run_to_success(db: &TestDb, id: Uuid) {
    let row = claim_one(db, "hand").await;
    assert_eq!(row.id, id);
    let rejected = db
        .store
        .complete(
            "hand",
            &[Completion {
                id,
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
            }],
        )
        .await
        .expect("complete");
    assert!(rejected.is_empty());
    assert_eq!(db.task(id).await.state, TaskState::Succeeded);
}

/// Retimes built-in `name` to `cron`, due now.
async fn retime_builtin(db: &TestDb, name: &str, cron: &str) {
    let mut job = stored(db, name).await.def;
    job.cron = cron.into();
    db.store
        .put_schedule(&job, PutMode::Update, Some(us(Utc::now())))
        .await
        .expect("retime a built-in schedule");
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::InvalidInput(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected InvalidInput mentioning `{needle}`, got {other:?}"),
    }
}

conformance! {
    #[tokio::test]
    async fn put_schedule_creates_updates_and_upserts_by_name(db) {
        let t1 = us(Utc::now() + minutes(60));
        let t2 = us(Utc::now() + minutes(120));
        let t3 = us(Utc::now() + minutes(180));
        let nightly = def("nightly", "0 3 * * *");
        let created = db.store.put_schedule(&nightly, PutMode::Create, Some(t1)).await.unwrap();
        assert_eq!(created.def, nightly);
        assert!(!created.paused && !created.builtin);
        assert_eq!(created.next_run_at, Some(t1));
        assert_eq!(created.last_run_at, None);
        assert_eq!(created.last_task_id, None);
        assert!(!created.run_requested);
        assert_eq!((created.skipped_runs, created.last_skipped_at), (0, None));
        assert_eq!(stored(&db, "nightly").await, created);

        // Create of an existing name: refused, nothing changed.
        let mut changed = nightly.clone();
        changed.args = serde_json::json!({ "v": 2 });
        match db.store.put_schedule(&changed, PutMode::Create, Some(t2)).await {
            Err(StoreError::ScheduleExists(name)) => assert_eq!(name, "nightly"),
            other => panic!("expected ScheduleExists, got {other:?}"),
        }
        assert_eq!(stored(&db, "nightly").await, created);

        // Update of a missing name: refused, nothing stored.
        match db.store.put_schedule(&def("ghost", "@daily"), PutMode::Update, Some(t1)).await {
            Err(StoreError::ScheduleNotFound(name)) => assert_eq!(name, "ghost"),
            other => panic!("expected ScheduleNotFound, got {other:?}"),
        }
        assert!(db.store.schedule("ghost").await.unwrap().is_none());

        // Update of everything but the timing: the next run stays.
        changed.queue = "reports".into();
        changed.priority = 3;
        changed.max_attempts = 2;
        changed.time_limit_ms = Some(5_000);
        changed.related = Some(Related { kind: "user".into(), id: "42".into() });
        changed.overlap = Overlap::Skip;
        let updated = db.store.put_schedule(&changed, PutMode::Update, Some(t2)).await.unwrap();
        assert_eq!(updated.def, changed);
        assert_eq!(updated.next_run_at, Some(t1), "same cron and zone: the next run stays");
        assert_eq!(updated.created_at, created.created_at);
        assert_eq!(stored(&db, "nightly").await, updated);

        // An operator's pause survives an upsert of the definition.
        let paused = db.store.set_schedule_paused("nightly", true).await.unwrap();
        assert!(paused.paused);
        changed.args = serde_json::json!({ "v": 3 });
        let upserted = db.store.put_schedule(&changed, PutMode::Upsert, Some(t2)).await.unwrap();
        assert_eq!(upserted.def, changed);
        assert!(upserted.paused, "an upsert keeps the pause");
        assert_eq!(upserted.next_run_at, Some(t1));

        // A new cron expression takes the given next run.
        changed.cron = "0 4 * * *".into();
        let retimed = db.store.put_schedule(&changed, PutMode::Upsert, Some(t2)).await.unwrap();
        assert_eq!(retimed.next_run_at, Some(t2));
        assert!(retimed.paused);
        // So does a new time zone.
        changed.time_zone = "Europe/Paris".into();
        let rezoned = db.store.put_schedule(&changed, PutMode::Update, Some(t3)).await.unwrap();
        assert_eq!(rezoned.next_run_at, Some(t3));
        assert_eq!(rezoned.def, changed);
        assert!(rezoned.paused);
        assert_eq!(stored(&db, "nightly").await, rezoned);

        // Upsert of a new name creates it.
        let hourly = def("hourly", "@hourly");
        let fresh = db.store.put_schedule(&hourly, PutMode::Upsert, Some(t1)).await.unwrap();
        assert_eq!((fresh.def.clone(), fresh.next_run_at, fresh.paused), (hourly, Some(t1), false));

        // Every schedule, by name.
        assert_eq!(
            names(&db).await,
            ["hourly", builtin::AGENT_TOKENS, builtin::PURGE, builtin::RESCUE, builtin::WORKERS, "nightly"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_puts_of_one_new_name_store_it_once(db) {
        let other = db.other_store().await;
        let next = Some(us(Utc::now() + minutes(60)));
        for round in 0..5 {
            let created = def(&format!("created-{round}"), "@daily");
            let (a, b) = tokio::join!(
                db.store.put_schedule(&created, PutMode::Create, next),
                other.put_schedule(&created, PutMode::Create, next),
            );
            let (ok, exists) = match (a, b) {
                (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
                other => panic!("expected one create to succeed and one to be refused, got {other:?}"),
            };
            assert_eq!(ok.def, created);
            assert!(
                matches!(&exists, StoreError::ScheduleExists(name) if *name == created.name),
                "the losing create must say the schedule exists, got {exists:?}"
            );

            let upserted = def(&format!("upserted-{round}"), "@daily");
            let (a, b) = tokio::join!(
                db.store.put_schedule(&upserted, PutMode::Upsert, next),
                other.put_schedule(&upserted, PutMode::Upsert, next),
            );
            assert_eq!(a.expect("first concurrent upsert").def, upserted);
            assert_eq!(b.expect("second concurrent upsert").def, upserted);
        }
        let user = db.store.schedules().await.unwrap().into_iter().filter(|s| !s.builtin).count();
        assert_eq!(user, 10);
    }

    #[tokio::test]
    async fn built_in_schedules_are_seeded_and_only_their_timing_changes(db) {
        let all = db.store.schedules().await.unwrap();
        let seeded: Vec<&Schedule> = all.iter().filter(|s| s.builtin).collect();
        assert_eq!(all.len(), 4, "a fresh database has only the built-in schedules");
        let crons: Vec<(&str, &str)> =
            seeded.iter().map(|s| (s.def.name.as_str(), s.def.cron.as_str())).collect();
        assert_eq!(
            crons,
            [
                (builtin::AGENT_TOKENS, "0 0 3 * * *"),
                (builtin::PURGE, "0 * * * * *"),
                (builtin::RESCUE, "* * * * * *"),
                (builtin::WORKERS, "*/5 * * * * *"),
            ]
        );
        for s in &seeded {
            assert_eq!(s.def.actor, s.def.name);
            assert!(!s.paused);
            assert!(s.next_run_at.is_some());
            assert_eq!(s.def.time_zone, "UTC");
        }
        // Due from the start, but they are the maintenance leader's: the
        // scheduler never sees them.
        assert!(due_names(&db).await.is_empty());

        // Their job cannot change…
        let purge = stored(&db, builtin::PURGE).await;
        let mut other_actor = purge.def.clone();
        other_actor.actor = ACTOR.into();
        let mut other_queue = purge.def.clone();
        other_queue.queue = "elsewhere".into();
        let mut other_args = purge.def.clone();
        other_args.args = serde_json::json!({ "x": 1 });
        for edit in [&other_actor, &other_queue, &other_args] {
            for mode in [PutMode::Update, PutMode::Upsert] {
                assert_invalid(
                    db.store.put_schedule(edit, mode, Some(us(Utc::now()))).await,
                    "built-in schedule",
                );
            }
        }
        assert_eq!(stored(&db, builtin::PURGE).await, purge);
        // …nor can they be created again or deleted…
        assert!(matches!(
            db.store.put_schedule(&purge.def, PutMode::Create, None).await,
            Err(StoreError::ScheduleExists(_))
        ));
        assert_invalid(db.store.delete_schedule(builtin::PURGE).await, "cannot be deleted");
        assert_eq!(stored(&db, builtin::PURGE).await, purge);

        // …but their timing can.
        let next = us(Utc::now() + minutes(10));
        let mut retimed = purge.def.clone();
        retimed.cron = "*/2 * * * * *".into();
        retimed.time_zone = "Europe/Paris".into();
        let after = db.store.put_schedule(&retimed, PutMode::Update, Some(next)).await.unwrap();
        assert_eq!(after.def, retimed);
        assert!(after.builtin, "still built in");
        assert_eq!(after.next_run_at, Some(next));
        // And they can be paused.
        assert!(db.store.set_schedule_paused(builtin::RESCUE, true).await.unwrap().paused);
        assert!(stored(&db, builtin::RESCUE).await.builtin);

        // Their prefix is reserved.
        let squatter = def("longshore.mine", "@daily");
        for mode in [PutMode::Create, PutMode::Upsert] {
            assert_invalid(
                db.store.put_schedule(&squatter, mode, Some(next)).await,
                "reserved",
            );
        }
        assert!(db.store.schedule("longshore.mine").await.unwrap().is_none());
        assert_eq!(db.store.schedules().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn built_in_runs_are_recorded_without_a_task(db) {
        let user = def("user", "@daily");
        let past = us(Utc::now() - minutes(10));
        db.store.put_schedule(&user, PutMode::Create, Some(past)).await.unwrap();
        // A built-in schedule takes no task; any other needs one.
        let mut with_task = builtin_run(builtin::WORKERS, FireKind::Now, None);
        with_task.task = Some(user.task());
        assert!(matches!(
            db.store.fire_schedule(&with_task).await,
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            db.store.fire_schedule(&builtin_run("user", FireKind::Due(past), None)).await,
            Err(StoreError::InvalidInput(_))
        ));

        // Run by hand: the request waits for the leader.
        let workers = stored(&db, builtin::WORKERS).await;
        assert_eq!(
            fire(&db, &builtin_run(builtin::WORKERS, FireKind::Now, None)).await,
            FireOutcome::Waiting { behind: Uuid::nil() }
        );
        let requested = stored(&db, builtin::WORKERS).await;
        assert!(requested.run_requested);
        assert_eq!(requested.next_run_at, workers.next_run_at);
        assert!(!due_names(&db).await.contains(&builtin::WORKERS.to_owned()));
        // The leader did it and records it.
        assert_eq!(
            fire(&db, &builtin_run(builtin::WORKERS, FireKind::Requested, None)).await,
            FireOutcome::Enqueued { task: Uuid::nil(), replaced: None }
        );
        let done = stored(&db, builtin::WORKERS).await;
        assert!(!done.run_requested);
        assert!(done.last_run_at.is_some());
        assert_eq!(done.next_run_at, workers.next_run_at, "a run by hand keeps the next due time");
        assert_eq!(
            fire(&db, &builtin_run(builtin::WORKERS, FireKind::Requested, None)).await,
            FireOutcome::Stale
        );
        // A due run moves the next due time.
        let due = done.next_run_at.expect("seeded with a next run");
        let next = us(Utc::now() + minutes(5));
        assert_eq!(
            fire(&db, &builtin_run(builtin::WORKERS, FireKind::Due(due), Some(next))).await,
            FireOutcome::Enqueued { task: Uuid::nil(), replaced: None }
        );
        assert_eq!(stored(&db, builtin::WORKERS).await.next_run_at, Some(next));
        assert_eq!(
            fire(&db, &builtin_run(builtin::WORKERS, FireKind::Due(due), Some(next))).await,
            FireOutcome::Stale
        );
        assert_eq!(db.total().await, 0, "built-in runs enqueue nothing");
    }

    #[tokio::test]
    async fn a_worker_with_an_invalid_schedule_does_not_start_and_stores_nothing(db) {
        let before = db.store.schedules().await.unwrap();
        let good = def("good", "@daily");
        let mut bad_zone = def("bad-zone", "@daily");
        bad_zone.time_zone = "Mars/Olympus".into();
        let cases = [
            (def("bad-cron", "61 * * * *"), "invalid cron expression `61 * * * *`"),
            (def("never", "0 0 31 2 *"), "never comes due"),
            (bad_zone, "unknown time zone `Mars/Olympus`"),
            (ScheduleDef::new("bad-actor", "nobody", "@daily"), "unknown actor `nobody`"),
            (def("longshore.mine", "@daily"), "reserved for built-in schedules"),
        ];
        for (bad, problem) in cases {
            let registry = common::registry_with(ACTOR, |_args, _ctx: TaskContext| async { Ok(()) });
            let config = WorkerConfig {
                schedules: vec![good.clone(), bad.clone()],
                ..scheduling_config()
            };
            let Err(err) = Worker::new(db.store(), registry, config) else {
                panic!("a worker with schedule {} started", bad.name);
            };
            let err = err.to_string();
            assert!(err.contains(problem), "{}: {err}", bad.name);
            if !ScheduleDef::is_builtin_name(&bad.name) {
                assert!(err.contains(&bad.name), "the error names the schedule: {err}");
            }
        }
        assert_eq!(db.store.schedules().await.unwrap(), before, "nothing stored");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_same_due_run_fired_twice_enqueues_one_task(db) {
        let report = def("report", "*/5 * * * *");
        let due = us(Utc::now() - minutes(10));
        let next = us(Utc::now() + minutes(60));
        db.store.put_schedule(&report, PutMode::Create, Some(due)).await.unwrap();
        assert_eq!(due_names(&db).await, ["report"]);

        // Two schedulers fire the run they both read, at once.
        let other = db.other_store().await;
        let (first, second) = (due_run(&report, due, next), due_run(&report, due, next));
        let (a, b) = tokio::join!(
            db.store.fire_schedule(&first),
            other.fire_schedule(&second),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let tasks: Vec<Uuid> = outcomes
            .iter()
            .filter_map(|o| match o {
                FireOutcome::Enqueued { task, replaced: None } => Some(*task),
                _ => None,
            })
            .collect();
        assert_eq!(tasks.len(), 1, "{outcomes:?}");
        assert!(outcomes.contains(&FireOutcome::Stale), "{outcomes:?}");
        let id = tasks[0];
        // Later and wrong fences change nothing either.
        for at in [due, due - minutes(5), next + chrono::Duration::microseconds(1)] {
            assert_eq!(fire(&db, &due_run(&report, at, next)).await, FireOutcome::Stale);
        }
        assert_eq!(db.total().await, 1);

        let run = db.task(id).await;
        assert_eq!(run.schedule.as_deref(), Some("report"));
        assert_eq!(run.run_at, due, "the run is the one due at its due time");
        assert_eq!((run.actor.as_str(), run.queue.as_str()), (ACTOR, "default"));
        assert_eq!(run.state, TaskState::Queued);
        let s = stored(&db, "report").await;
        assert_eq!(s.next_run_at, Some(next));
        assert_eq!(s.last_task_id, Some(id));
        assert!(s.last_run_at.is_some());
        assert!(!s.run_requested);
        assert!(due_names(&db).await.is_empty());

        // The history lists the schedule's runs only.
        let stranger = db.enqueue_one(task(ACTOR)).await;
        let daily = def("daily", "@daily");
        db.store.put_schedule(&daily, PutMode::Create, Some(due)).await.unwrap();
        let (daily_run, _) = enqueued(fire(&db, &due_run(&daily, due, next)).await);
        db.store.cancel(id).await.unwrap();
        let (second, _) = enqueued(fire(&db, &due_run(&report, next, next + minutes(5))).await);
        assert_eq!(db.task(second).await.run_at, next);
        let listed: Vec<Uuid> = history(&db, "report").await.iter().map(|t| t.id).collect();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&id) && listed.contains(&second), "{listed:?}");
        let daily_history: Vec<Uuid> = history(&db, "daily").await.iter().map(|t| t.id).collect();
        assert_eq!(daily_history, [daily_run]);
        assert_eq!(db.task(stranger).await.schedule, None);

        // Deleting a schedule keeps its tasks, with its name.
        db.store.delete_schedule("report").await.unwrap();
        assert!(db.store.schedule("report").await.unwrap().is_none());
        assert_eq!(history(&db, "report").await.len(), 2);
        assert!(matches!(
            db.store.delete_schedule("report").await,
            Err(StoreError::ScheduleNotFound(name)) if name == "report"
        ));
        let gone = next + minutes(5);
        assert_eq!(fire(&db, &due_run(&report, gone, gone)).await, FireOutcome::Stale);
        assert_eq!(fire(&db, &by_hand(&report, FireKind::Requested)).await, FireOutcome::Stale);
        assert!(matches!(
            db.store.fire_schedule(&by_hand(&report, FireKind::Now)).await,
            Err(StoreError::ScheduleNotFound(name)) if name == "report"
        ));
        assert_eq!(db.total().await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_nodes_running_the_scheduler_create_each_due_run_once(db) {
        let every_second = def("every-second", "* * * * * *");
        let first_due = us(Utc::now());
        db.store.put_schedule(&every_second, PutMode::Create, Some(first_due)).await.unwrap();
        let runs = Runs::new();
        let node = |id: &str| WorkerConfig { id: id.into(), ..scheduling_config() };
        let a = start_worker(db.other_store().await, counting_registry(ACTOR, &runs), node("a"));
        let b = start_worker(db.other_store().await, counting_registry(ACTOR, &runs), node("b"));
        wait_for("three runs of the schedule", Duration::from_secs(30), || async {
            (history(&db, "every-second").await.len() >= 3).then_some(())
        })
        .await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();

        let fired = history(&db, "every-second").await;
        let mut due: Vec<DateTime<Utc>> = fired.iter().map(|t| t.run_at).collect();
        due.sort();
        due.dedup();
        assert_eq!(due.len(), fired.len(), "a due run was fired twice: {fired:#?}");
        // Each run is one due time: the first one, then whole seconds.
        for t in &fired {
            assert!(
                t.run_at == first_due || t.run_at.timestamp_subsec_micros() == 0,
                "run_at {} is not a due time",
                t.run_at
            );
        }
        assert_eq!(db.total().await, fired.len() as i64);
    }

    #[tokio::test]
    async fn the_queue_policy_waits_for_the_previous_run(db) {
        let q = def("q", "*/5 * * * *");
        let base = us(Utc::now() - minutes(60));
        let (d0, d1, d2) = (base, base + minutes(5), base + minutes(10));
        let far = us(Utc::now() + minutes(60));
        db.store.put_schedule(&q, PutMode::Create, Some(d0)).await.unwrap();
        let (t1, replaced) = enqueued(fire(&db, &due_run(&q, d0, d1)).await);
        assert_eq!(replaced, None);
        assert_eq!(db.task(t1).await.state, TaskState::Queued);

        // The previous run is still queued: the next due run waits and
        // changes nothing (it stays due, later runs collapse into it).
        let before = stored(&db, "q").await;
        assert_eq!(fire(&db, &due_run(&q, d1, d2)).await, FireOutcome::Waiting { behind: t1 });
        assert_eq!(stored(&db, "q").await, before);
        assert_eq!(due_names(&db).await, ["q"]);
        assert_eq!(db.total().await, 1);

        // A run by hand waits too, and is remembered.
        assert_eq!(fire(&db, &by_hand(&q, FireKind::Now)).await, FireOutcome::Waiting { behind: t1 });
        let requested = stored(&db, "q").await;
        assert!(requested.run_requested);
        assert_eq!(requested.next_run_at, Some(d1));
        assert_eq!(requested.last_task_id, Some(t1));
        assert_eq!(
            fire(&db, &by_hand(&q, FireKind::Requested)).await,
            FireOutcome::Waiting { behind: t1 }
        );
        assert!(stored(&db, "q").await.run_requested);
        assert_eq!(db.total().await, 1);

        // Once the previous run has finished, the pending request fires.
        run_to_success(&db, t1).await;
        let (t2, replaced) = enqueued(fire(&db, &by_hand(&q, FireKind::Requested)).await);
        assert_eq!(replaced, None);
        let after = stored(&db, "q").await;
        assert!(!after.run_requested);
        assert_eq!(after.last_task_id, Some(t2));
        assert_eq!(after.next_run_at, Some(d1), "a run by hand keeps the next due time");
        assert_eq!(db.task(t2).await.schedule.as_deref(), Some("q"));
        assert_eq!(fire(&db, &by_hand(&q, FireKind::Requested)).await, FireOutcome::Stale);

        // With nothing active, a run by hand goes at once; a due run that
        // goes ahead takes a pending request with it.
        run_to_success(&db, t2).await;
        let (t3, _) = enqueued(fire(&db, &by_hand(&q, FireKind::Now)).await);
        assert!(!stored(&db, "q").await.run_requested);
        assert_eq!(fire(&db, &by_hand(&q, FireKind::Now)).await, FireOutcome::Waiting { behind: t3 });
        assert!(stored(&db, "q").await.run_requested);
        run_to_success(&db, t3).await;
        let (t4, _) = enqueued(fire(&db, &due_run(&q, d1, far)).await);
        let last = stored(&db, "q").await;
        assert!(!last.run_requested, "the due run served the pending request");
        assert_eq!(last.next_run_at, Some(far));
        assert_eq!(last.last_task_id, Some(t4));
        assert!(due_names(&db).await.is_empty());
        assert_eq!(history(&db, "q").await.len(), 4);
    }

    #[tokio::test]
    async fn the_skip_policy_drops_and_counts_runs_while_the_previous_is_active(db) {
        let mut s = def("s", "*/5 * * * *");
        s.overlap = Overlap::Skip;
        let base = us(Utc::now() - minutes(60));
        let (d0, d1, d2) = (base, base + minutes(5), base + minutes(10));
        let far = us(Utc::now() + minutes(60));
        db.store.put_schedule(&s, PutMode::Create, Some(d0)).await.unwrap();
        let (t1, _) = enqueued(fire(&db, &due_run(&s, d0, d1)).await);

        assert_eq!(fire(&db, &due_run(&s, d1, d2)).await, FireOutcome::Skipped { behind: t1 });
        let skipped = stored(&db, "s").await;
        assert_eq!(skipped.skipped_runs, 1);
        assert!(skipped.last_skipped_at.is_some());
        assert_eq!(skipped.next_run_at, Some(d2), "a skipped run moves on to the next");
        assert_eq!(skipped.last_task_id, Some(t1));
        assert_eq!(fire(&db, &due_run(&s, d1, d2)).await, FireOutcome::Stale);

        // By hand: dropped and counted too, the next due time stays.
        assert_eq!(fire(&db, &by_hand(&s, FireKind::Now)).await, FireOutcome::Skipped { behind: t1 });
        let again = stored(&db, "s").await;
        assert_eq!(again.skipped_runs, 2);
        assert_eq!(again.next_run_at, Some(d2));
        assert!(!again.run_requested);
        assert_eq!(db.total().await, 1);

        // Once the previous run is finished, the next one goes ahead.
        assert_eq!(db.store.cancel(t1).await.unwrap(), longshore::core::CancelResult::Cancelled);
        let (t2, replaced) = enqueued(fire(&db, &due_run(&s, d2, far)).await);
        assert_eq!(replaced, None);
        let last = stored(&db, "s").await;
        assert_eq!((last.skipped_runs, last.last_task_id, last.next_run_at), (2, Some(t2), Some(far)));
    }

    #[tokio::test]
    async fn the_replace_policy_cancels_the_previous_run(db) {
        let mut r = def("r", "*/5 * * * *");
        r.overlap = Overlap::Replace;
        let base = us(Utc::now() - minutes(60));
        let (d0, d1, d2) = (base, base + minutes(5), base + minutes(10));
        db.store.put_schedule(&r, PutMode::Create, Some(d0)).await.unwrap();
        let (t1, _) = enqueued(fire(&db, &due_run(&r, d0, d1)).await);

        // A queued previous run is cancelled outright.
        let (t2, replaced) = enqueued(fire(&db, &due_run(&r, d1, d2)).await);
        assert_eq!(replaced, Some(t1));
        let old = db.task(t1).await;
        assert_eq!(old.state, TaskState::Cancelled);
        assert!(old.finished_at.is_some());
        assert_eq!(db.task(t2).await.state, TaskState::Queued);
        let s = stored(&db, "r").await;
        assert_eq!((s.last_task_id, s.next_run_at), (Some(t2), Some(d2)));

        // A running one is asked to stop, and its worker learns of it.
        assert_eq!(claim_one(&db, "w").await.id, t2);
        let (t3, replaced) = enqueued(fire(&db, &by_hand(&r, FireKind::Now)).await);
        assert_eq!(replaced, Some(t2));
        let running = db.task(t2).await;
        assert_eq!(running.state, TaskState::Running);
        assert!(running.cancel_requested);
        let beat = db
            .store
            .heartbeat("w", &[(t2, running.execution)], Duration::from_secs(60), &[])
            .await
            .unwrap();
        assert_eq!(beat.cancel_requested, [t2]);
        assert_eq!(db.task(t3).await.state, TaskState::Queued);
        let s = stored(&db, "r").await;
        assert_eq!((s.last_task_id, s.next_run_at), (Some(t3), Some(d2)));
        assert_eq!(history(&db, "r").await.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_paused_schedule_runs_only_by_hand_and_resumes_at_once(db) {
        let cron = hourly_half_an_hour_away();
        let spec = CronSpec::parse(&cron, "UTC").unwrap();
        let p = def("p", &cron);
        let past = us(Utc::now() - minutes(1));
        let far = us(Utc::now() + minutes(60));
        db.store.put_schedule(&p, PutMode::Create, Some(past)).await.unwrap();
        assert_eq!(due_names(&db).await, ["p"]);

        let paused = db.store.set_schedule_paused("p", true).await.unwrap();
        assert!(paused.paused);
        assert_eq!(paused.next_run_at, Some(past));
        assert!(due_names(&db).await.is_empty(), "a paused schedule is not due");
        assert_eq!(fire(&db, &due_run(&p, past, far)).await, FireOutcome::Stale);
        assert_eq!(stored(&db, "p").await, paused);
        assert_eq!(db.total().await, 0);

        // By hand, paused or not.
        let (t1, _) = enqueued(fire(&db, &by_hand(&p, FireKind::Now)).await);
        assert_eq!(db.task(t1).await.schedule.as_deref(), Some("p"));
        let still = stored(&db, "p").await;
        assert!(still.paused);
        assert_eq!(still.next_run_at, Some(past));

        // Resumed: due at once.
        let before = Utc::now();
        let resumed = db.store.set_schedule_paused("p", false).await.unwrap();
        let after = Utc::now();
        assert!(!resumed.paused);
        let due = resumed.next_run_at.expect("due at once");
        let slack = chrono::Duration::seconds(1);
        assert!(due >= before - slack && due <= after + slack, "{due} not about now ({before}..{after})");
        assert_eq!(due_names(&db).await, ["p"]);

        // A worker's scheduler fires it (once the run by hand is done),
        // then it follows its cron expression.
        let runs = Runs::new();
        let worker = db.worker(counting_registry(ACTOR, &runs), scheduling_config());
        let fired = wait_for("the resumed run", Duration::from_secs(20), || async {
            let h = history(&db, "p").await;
            (h.len() == 2 && h.iter().all(|t| t.state == TaskState::Succeeded)).then_some(h)
        })
        .await;
        worker.shutdown().await.unwrap();
        let resumed_run = fired.iter().find(|t| t.id != t1).expect("the resumed run");
        assert_eq!(resumed_run.run_at, due);
        let s = stored(&db, "p").await;
        assert_eq!(s.next_run_at, spec.next_after(Utc::now()));
        assert!(s.next_run_at.unwrap() > Utc::now());
        assert_eq!(history(&db, "p").await.len(), 2);

        assert!(matches!(
            db.store.set_schedule_paused("missing", true).await,
            Err(StoreError::ScheduleNotFound(name)) if name == "missing"
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn runs_missed_for_hours_collapse_into_one(db) {
        let cron = hourly_half_an_hour_away();
        let spec = CronSpec::parse(&cron, "UTC").unwrap();
        let missed = def("missed", &cron);
        let long_ago = us(Utc::now() - chrono::Duration::hours(3));
        db.store.put_schedule(&missed, PutMode::Create, Some(long_ago)).await.unwrap();
        // A clock: proof that the scheduler made more passes afterwards.
        db.store
            .put_schedule(&def("clock", "* * * * * *"), PutMode::Create, Some(us(Utc::now())))
            .await
            .unwrap();
        let runs = Runs::new();
        let worker = db.worker(counting_registry(ACTOR, &runs), scheduling_config());
        wait_for("the missed run", Duration::from_secs(20), || async {
            (!history(&db, "missed").await.is_empty()).then_some(())
        })
        .await;
        let ticks = history(&db, "clock").await.len();
        wait_for("two more scheduler passes that fired", Duration::from_secs(20), || async {
            (history(&db, "clock").await.len() >= ticks + 2).then_some(())
        })
        .await;
        worker.shutdown().await.unwrap();

        let fired = history(&db, "missed").await;
        assert_eq!(fired.len(), 1, "missed runs must collapse into one: {fired:#?}");
        assert_eq!(fired[0].run_at, long_ago);
        let s = stored(&db, "missed").await;
        assert_eq!(s.next_run_at, spec.next_after(Utc::now()), "the next run follows now, not the missed one");
        assert!(s.next_run_at.unwrap() > Utc::now());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_workers_own_schedules_are_upserted_at_start_and_keep_an_operators_pause(db) {
        let cron = hourly_half_an_hour_away();
        let spec = CronSpec::parse(&cron, "UTC").unwrap();
        let mut daily = def("in-code", &cron);
        daily.args = serde_json::json!({ "v": 1 });
        let runs = Runs::new();
        let config = |d: &ScheduleDef| WorkerConfig { schedules: vec![d.clone()], ..scheduling_config() };
        let first = db.worker(counting_registry(ACTOR, &runs), config(&daily));
        let defined = wait_for("the schedule to be defined", Duration::from_secs(20), || async {
            db.store.schedule("in-code").await.unwrap()
        })
        .await;
        first.shutdown().await.unwrap();
        assert_eq!(defined.def, daily);
        assert!(!defined.paused);
        let next = defined.next_run_at.expect("a next run");
        assert!(next > Utc::now());
        assert_eq!(Some(next), spec.next_after(Utc::now()));

        // An operator pauses it; a redeploy changes its arguments.
        db.store.set_schedule_paused("in-code", true).await.unwrap();
        daily.args = serde_json::json!({ "v": 2 });
        let again = db.worker(counting_registry(ACTOR, &runs), config(&daily));
        let redefined = wait_for("the new definition", Duration::from_secs(20), || async {
            let s = stored(&db, "in-code").await;
            (s.def.args == daily.args).then_some(s)
        })
        .await;
        again.shutdown().await.unwrap();
        assert!(redefined.paused, "a restart keeps the operator's pause");
        assert_eq!(redefined.next_run_at, Some(next));
        assert_eq!(redefined.created_at, defined.created_at);
        let user: Vec<Schedule> =
            db.store.schedules().await.unwrap().into_iter().filter(|s| !s.builtin).collect();
        assert_eq!(user.len(), 1, "defined once: {user:#?}");
        assert_eq!(runs.total(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_built_in_purge_runs_on_its_schedule_and_records_its_runs(db) {
        retime_builtin(&db, builtin::PURGE, "* * * * * *").await;
        assert_eq!(stored(&db, builtin::PURGE).await.last_run_at, None);
        let runs = Runs::new();
        let config = WorkerConfig {
            retention: longshore::Retention {
                succeeded: Duration::from_secs(1),
                ..longshore::Retention::default()
            },
            ..scheduling_config()
        };
        let worker = db.worker(counting_registry(ACTOR, &runs), config);
        let ids = db.enqueue(common::tasks(ACTOR, 3)).await;
        wait_for("the finished tasks to be purged", Duration::from_secs(20), || async {
            for id in &ids {
                if runs.of(*id) != 1 || db.store.task(*id).await.unwrap().is_some() {
                    return None;
                }
            }
            Some(())
        })
        .await;
        let purge = wait_for("the purge run to be recorded", Duration::from_secs(10), || async {
            let s = stored(&db, builtin::PURGE).await;
            s.last_run_at.is_some().then_some(s)
        })
        .await;
        worker.shutdown().await.unwrap();
        assert!(purge.builtin);
        assert_eq!(purge.def.cron, "* * * * * *");
        assert!(purge.next_run_at.is_some());
        assert!(purge.last_task_id.is_none(), "a built-in job enqueues no task");
        assert_eq!(db.total().await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_paused_built_in_runs_when_run_by_hand(db) {
        db.store.set_schedule_paused(builtin::PURGE, true).await.unwrap();
        assert_eq!(
            fire(&db, &builtin_run(builtin::PURGE, FireKind::Now, None)).await,
            FireOutcome::Waiting { behind: Uuid::nil() }
        );
        let worker = db.worker(Registry::new(), scheduling_config());
        let ran = wait_for("the requested purge", Duration::from_secs(20), || async {
            let s = stored(&db, builtin::PURGE).await;
            (!s.run_requested).then_some(s)
        })
        .await;
        worker.shutdown().await.unwrap();
        assert!(ran.last_run_at.is_some());
        assert!(ran.paused, "running it by hand does not resume it");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pausing_the_built_in_rescue_stops_rescues_until_resumed(db) {
        db.store.set_schedule_paused(builtin::RESCUE, true).await.unwrap();
        // The purge, every second, shows that maintenance passes happen:
        // each pass considers the rescue before the purge.
        retime_builtin(&db, builtin::PURGE, "* * * * * *").await;
        let id = db.enqueue_one(task(ACTOR)).await;
        assert_eq!(claim_one(&db, "ghost").await.id, id);
        db.set_lease(id, "ghost", Utc::now() - minutes(1)).await;

        let runs = Runs::new();
        let worker = db.worker(counting_registry(ACTOR, &runs), scheduling_config());
        let first = wait_for("a maintenance pass", Duration::from_secs(20), || async {
            stored(&db, builtin::PURGE).await.last_run_at
        })
        .await;
        wait_for("another maintenance pass", Duration::from_secs(20), || async {
            (stored(&db, builtin::PURGE).await.last_run_at > Some(first)).then_some(())
        })
        .await;
        let held = db.task(id).await;
        assert_eq!(held.state, TaskState::Running, "rescued while its schedule was paused");
        assert_eq!(held.lease_owner.as_deref(), Some("ghost"));
        assert_eq!(runs.of(id), 0);
        assert_eq!(stored(&db, builtin::RESCUE).await.last_run_at, None);

        db.store.set_schedule_paused(builtin::RESCUE, false).await.unwrap();
        common::wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 1);
        assert!(stored(&db, builtin::RESCUE).await.last_run_at.is_some());
    }
}
