//! The SQLite engine's schedules and running-task caps, on a scratch file.
//! (The shared conformance tests in the `longshore` crate cover both
//! engines; these pin down this engine's own statements.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use longshore_core::schedule::builtin;
use longshore_core::store::prelude::*;
use longshore_core::{
    Claim, Completion, Fire, FireKind, FireOutcome, NewTask, Overlap, PutMode, ScheduleDef, Store,
    StoreError, StoreEvent, TaskFilter, TaskState, Transition,
};
use longshore_sqlite::{SqliteOptions, SqliteStore};
use uuid::Uuid;

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("scratch directory");
    let store = SqliteStore::open(dir.path().join("t.db"), &SqliteOptions::default())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    (dir, store)
}

fn claim(queues: &[&str], limit: usize) -> Claim {
    Claim {
        owner: "w".into(),
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        limit,
        lease: Duration::from_secs(30),
        capped: true,
        pool: None,
    }
}

fn on(queue: &str, n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|_| {
            let mut task = NewTask::new("a", serde_json::json!({}));
            task.queue = queue.to_owned();
            task
        })
        .collect()
}

fn succeeded(id: Uuid, queue: &str) -> Completion {
    Completion {
        id,
        queue: queue.to_owned(),
        execution: 1,
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

fn fire(name: &str, kind: FireKind, def: &ScheduleDef) -> Fire {
    Fire {
        name: name.to_owned(),
        kind,
        next_run_at: Some(Utc::now() + chrono::Duration::hours(1)),
        task: Some(def.task()),
    }
}

fn in_an_hour() -> Option<DateTime<Utc>> {
    Some(Utc::now() + chrono::Duration::hours(1))
}

#[tokio::test]
async fn queue_and_cluster_caps_bound_every_claim() {
    let (_dir, store) = store().await;
    store.enqueue(on("a", 10)).await.expect("enqueue");
    store.enqueue(on("b", 10)).await.expect("enqueue");

    store.set_queue_limit("a", Some(2)).await.expect("limit");
    let settings = store.queue_settings().await.expect("settings");
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].max_running, Some(2));
    assert!(!settings[0].paused);
    assert!(matches!(
        store.set_queue_limit("a", Some(0)).await,
        Err(StoreError::InvalidInput(_))
    ));

    let first = store.claim(&claim(&["a"], 10)).await.expect("claim");
    assert_eq!(first.len(), 2);
    assert!(
        store
            .claim(&claim(&["a"], 10))
            .await
            .expect("claim")
            .is_empty()
    );
    // b has no cap of its own.
    assert_eq!(
        store
            .claim(&claim(&["a", "b"], 5))
            .await
            .expect("claim")
            .len(),
        5
    );

    // A completion hands its place under the cap to the refill.
    let (rejected, refill) = store
        .complete_and_claim("w", &[succeeded(first[0].id, "a")], &claim(&["a"], 10))
        .await
        .expect("complete and claim");
    assert!(rejected.is_empty());
    assert_eq!(refill.len(), 1);
    assert_eq!(refill[0].queue, "a");

    // The cluster's cap: 7 run (2 of a, 5 of b).
    store.set_max_running(Some(8)).await.expect("cap");
    assert_eq!(
        store
            .cluster_settings()
            .await
            .expect("settings")
            .max_running,
        Some(8)
    );
    assert_eq!(
        store
            .claim(&claim(&["a", "b"], 10))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(
        store
            .claim(&claim(&["b"], 10))
            .await
            .expect("claim")
            .is_empty()
    );
    let running = store
        .list(&TaskFilter {
            states: vec![TaskState::Running],
            limit: 100,
            ..TaskFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(running.len(), 8);
    assert_eq!(running.iter().filter(|t| t.queue == "a").count(), 2);

    // Lifted: the rest of b, and a up to its own cap only.
    store.set_max_running(None).await.expect("lift");
    assert_eq!(
        store
            .cluster_settings()
            .await
            .expect("settings")
            .max_running,
        None
    );
    assert_eq!(
        store
            .claim(&claim(&["a", "b"], 20))
            .await
            .expect("claim")
            .len(),
        4
    );
    store.set_queue_limit("a", None).await.expect("lift a");
    assert_eq!(
        store.claim(&claim(&["a"], 20)).await.expect("claim").len(),
        7
    );
    let queued = store
        .list(&TaskFilter {
            states: vec![TaskState::Queued],
            limit: 100,
            ..TaskFilter::default()
        })
        .await
        .expect("list");
    assert!(queued.is_empty());
}

#[tokio::test]
async fn concurrent_claims_never_exceed_a_queue_cap() {
    let (_dir, store) = store().await;
    store.enqueue(on("a", 50)).await.expect("enqueue");
    store.set_queue_limit("a", Some(3)).await.expect("limit");
    let claims = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim(&claim(&["a"], 2)).await })
    });
    let mut total = 0;
    for handle in claims {
        total += handle.await.expect("join").expect("claim").len();
    }
    assert_eq!(total, 3);
}

#[tokio::test]
async fn built_in_schedules_are_seeded_and_guarded() {
    let (_dir, store) = store().await;
    let all = store.schedules().await.expect("schedules");
    let names: Vec<&str> = all.iter().map(|s| s.def.name.as_str()).collect();
    assert_eq!(
        names,
        [
            builtin::AGENT_TOKENS,
            builtin::PURGE,
            builtin::RESCUE,
            builtin::WORKERS
        ]
    );
    assert!(
        all.iter()
            .all(|s| s.builtin && !s.paused && s.next_run_at.is_some())
    );
    assert!(store.due_schedules(10).await.expect("due").is_empty());

    let rescue = store
        .schedule(builtin::RESCUE)
        .await
        .expect("read")
        .expect("seeded");
    let mut def = rescue.def.clone();
    def.cron = "*/2 * * * * *".into();
    let changed = store
        .put_schedule(&def, PutMode::Update, in_an_hour())
        .await
        .expect("new timing");
    assert_eq!(changed.def.cron, "*/2 * * * * *");
    assert!(changed.builtin);
    def.actor = "other".into();
    assert!(matches!(
        store.put_schedule(&def, PutMode::Update, None).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.delete_schedule(builtin::RESCUE).await,
        Err(StoreError::InvalidInput(m)) if m.contains("pause it instead")
    ));

    // The leader records the run it did itself.
    let next = in_an_hour();
    let ran = store
        .fire_schedule(&Fire {
            name: builtin::RESCUE.into(),
            kind: FireKind::Due(changed.next_run_at.expect("due")),
            next_run_at: next,
            task: None,
        })
        .await
        .expect("fire");
    assert_eq!(
        ran,
        FireOutcome::Enqueued {
            task: Uuid::nil(),
            replaced: None
        }
    );
    let after = store
        .schedule(builtin::RESCUE)
        .await
        .expect("read")
        .expect("exists");
    assert!(after.last_run_at.is_some());
    assert_eq!(
        after.next_run_at.map(|t| t.timestamp_micros()),
        next.map(|t| t.timestamp_micros())
    );
}

#[tokio::test]
async fn put_pause_and_delete() {
    let (_dir, store) = store().await;
    let mut def = ScheduleDef::new("nightly", "sync", "0 3 * * *");
    def.related = Some(longshore_core::Related {
        kind: "user".into(),
        id: "7".into(),
    });
    def.time_limit_ms = Some(5_000);
    let first = in_an_hour();
    assert!(matches!(
        store.put_schedule(&def, PutMode::Update, first).await,
        Err(StoreError::ScheduleNotFound(_))
    ));
    let created = store
        .put_schedule(&def, PutMode::Create, first)
        .await
        .expect("create");
    assert_eq!(created.def, def);
    assert_eq!(
        created.next_run_at.map(|t| t.timestamp_micros()),
        first.map(|t| t.timestamp_micros())
    );
    assert!(matches!(
        store.put_schedule(&def, PutMode::Create, first).await,
        Err(StoreError::ScheduleExists(_))
    ));

    let paused = store
        .set_schedule_paused("nightly", true)
        .await
        .expect("pause");
    assert!(paused.paused);
    // Same timing: the next run stays, and so does the pause.
    def.priority = 3;
    let later = Some(Utc::now() + chrono::Duration::hours(5));
    let updated = store
        .put_schedule(&def, PutMode::Upsert, later)
        .await
        .expect("upsert");
    assert_eq!(updated.def.priority, 3);
    assert!(updated.paused);
    assert_eq!(updated.next_run_at, created.next_run_at);
    // New timing: the new next run.
    def.cron = "0 4 * * *".into();
    let retimed = store
        .put_schedule(&def, PutMode::Upsert, later)
        .await
        .expect("upsert");
    assert_eq!(
        retimed.next_run_at.map(|t| t.timestamp_micros()),
        later.map(|t| t.timestamp_micros())
    );

    // Resumed: due at once.
    let resumed = store
        .set_schedule_paused("nightly", false)
        .await
        .expect("resume");
    assert!(!resumed.paused);
    assert!(resumed.next_run_at.expect("due") <= Utc::now());
    let due = store.due_schedules(10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].def.name, "nightly");

    assert!(matches!(
        store.set_schedule_paused("nope", true).await,
        Err(StoreError::ScheduleNotFound(_))
    ));
    store.delete_schedule("nightly").await.expect("delete");
    assert!(matches!(
        store.delete_schedule("nightly").await,
        Err(StoreError::ScheduleNotFound(_))
    ));
    assert!(store.schedule("nightly").await.expect("read").is_none());
}

#[tokio::test]
async fn firing_fences_and_overlap_policies() {
    let (_dir, store) = store().await;
    let mut events = store.listen().await.expect("listen").expect("events");
    let def = ScheduleDef::new("every", "sync", "* * * * *");
    let created = store
        .put_schedule(&def, PutMode::Create, Some(Utc::now()))
        .await
        .expect("create");
    let due_at = created.next_run_at.expect("due");

    // A wrong due time, or a missing schedule: nothing happens.
    let wrong = fire(
        "every",
        FireKind::Due(due_at + chrono::Duration::seconds(1)),
        &def,
    );
    assert_eq!(
        store.fire_schedule(&wrong).await.expect("fire"),
        FireOutcome::Stale
    );
    assert_eq!(
        store
            .fire_schedule(&fire("gone", FireKind::Due(due_at), &def))
            .await
            .expect("fire"),
        FireOutcome::Stale
    );
    assert!(matches!(
        store
            .fire_schedule(&fire("gone", FireKind::Now, &def))
            .await,
        Err(StoreError::ScheduleNotFound(_))
    ));

    // The due run: a task carrying the schedule's name; the fence moved.
    let run = fire("every", FireKind::Due(due_at), &def);
    let FireOutcome::Enqueued {
        task,
        replaced: None,
    } = store.fire_schedule(&run).await.expect("fire")
    else {
        panic!("enqueued");
    };
    assert_eq!(
        store.fire_schedule(&run).await.expect("again"),
        FireOutcome::Stale
    );
    let row = store.task(task).await.expect("read").expect("exists");
    assert_eq!(row.schedule.as_deref(), Some("every"));
    assert_eq!(row.state, TaskState::Queued);
    let listed = store
        .list(&TaskFilter {
            schedule: Some("every".into()),
            limit: 10,
            ..TaskFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [task]);
    assert!(
        store
            .list(&TaskFilter {
                schedule: Some("other".into()),
                limit: 10,
                ..TaskFilter::default()
            })
            .await
            .expect("list")
            .is_empty()
    );
    let after = store
        .schedule("every")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after.last_task_id, Some(task));
    assert!(after.last_run_at.is_some());
    assert_eq!(
        after.next_run_at.map(|t| t.timestamp_micros()),
        run.next_run_at.map(|t| t.timestamp_micros())
    );

    // `queue`: a run by hand waits behind the active run, then goes.
    assert_eq!(
        store
            .fire_schedule(&fire("every", FireKind::Now, &def))
            .await
            .expect("now"),
        FireOutcome::Waiting { behind: task }
    );
    let waiting = store
        .schedule("every")
        .await
        .expect("read")
        .expect("exists");
    assert!(waiting.run_requested);
    assert_eq!(store.due_schedules(10).await.expect("due").len(), 1);
    assert_eq!(
        store
            .fire_schedule(&fire("every", FireKind::Requested, &def))
            .await
            .expect("requested"),
        FireOutcome::Waiting { behind: task }
    );
    store.cancel(task).await.expect("cancel");
    let FireOutcome::Enqueued { task: second, .. } = store
        .fire_schedule(&fire("every", FireKind::Requested, &def))
        .await
        .expect("requested")
    else {
        panic!("enqueued");
    };
    assert!(
        !store
            .schedule("every")
            .await
            .expect("read")
            .expect("exists")
            .run_requested
    );
    assert_eq!(
        store
            .fire_schedule(&fire("every", FireKind::Requested, &def))
            .await
            .expect("requested"),
        FireOutcome::Stale
    );

    // `skip`: counted, the next run moves on.
    let mut skip = def.clone();
    skip.overlap = Overlap::Skip;
    let now_due = store
        .put_schedule(&skip, PutMode::Update, None)
        .await
        .expect("update")
        .next_run_at
        .expect("due");
    assert_eq!(
        store
            .fire_schedule(&fire("every", FireKind::Due(now_due), &skip))
            .await
            .expect("skip"),
        FireOutcome::Skipped { behind: second }
    );
    let skipped = store
        .schedule("every")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(skipped.skipped_runs, 1);
    assert!(skipped.last_skipped_at.is_some());
    assert_ne!(skipped.next_run_at, Some(now_due));

    // `replace`: the running previous run is asked to cancel.
    let mut replace = def.clone();
    replace.overlap = Overlap::Replace;
    store
        .put_schedule(&replace, PutMode::Update, None)
        .await
        .expect("update");
    let claimed = store.claim(&claim(&["default"], 1)).await.expect("claim");
    assert_eq!(claimed[0].id, second);
    let FireOutcome::Enqueued {
        task: third,
        replaced,
    } = store
        .fire_schedule(&fire("every", FireKind::Now, &replace))
        .await
        .expect("replace")
    else {
        panic!("enqueued");
    };
    assert_eq!(replaced, Some(second));
    assert!(
        store
            .task(second)
            .await
            .expect("read")
            .expect("exists")
            .cancel_requested
    );
    let mut heard_cancel = false;
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(100), events.recv()).await
    {
        heard_cancel |= event == StoreEvent::CancelRequested { id: second };
    }
    assert!(heard_cancel);
    // And a waiting one is cancelled outright.
    let FireOutcome::Enqueued { replaced, .. } = store
        .fire_schedule(&fire("every", FireKind::Now, &replace))
        .await
        .expect("replace")
    else {
        panic!("enqueued");
    };
    assert_eq!(replaced, Some(third));
    assert_eq!(
        store
            .task(third)
            .await
            .expect("read")
            .expect("exists")
            .state,
        TaskState::Cancelled
    );

    // Paused: only runs by hand.
    store
        .set_schedule_paused("every", true)
        .await
        .expect("pause");
    let paused = store
        .schedule("every")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        store
            .fire_schedule(&fire(
                "every",
                FireKind::Due(paused.next_run_at.expect("due")),
                &replace
            ))
            .await
            .expect("due"),
        FireOutcome::Stale
    );
    assert!(matches!(
        store
            .fire_schedule(&fire("every", FireKind::Now, &replace))
            .await
            .expect("now"),
        FireOutcome::Enqueued { .. }
    ));

    // A task for a built-in schedule, or none for another, is refused.
    assert!(matches!(
        store
            .fire_schedule(&fire(builtin::PURGE, FireKind::Now, &def))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut bare = fire("every", FireKind::Now, &def);
    bare.task = None;
    assert!(matches!(
        store.fire_schedule(&bare).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn a_capped_claim_reads_as_many_queues_as_an_uncapped_one() {
    let (_dir, store) = store().await;
    let names: Vec<String> = (0..200).map(|i| format!("q{i}")).collect();
    let tasks: Vec<NewTask> = names.iter().flat_map(|q| on(q, 2)).collect();
    store.enqueue(tasks).await.expect("enqueue");
    store.set_queue_limit("q7", Some(1)).await.expect("limit");
    let queues: Vec<&str> = names.iter().map(String::as_str).collect();
    let claimed = store.claim(&claim(&queues, 400)).await.expect("claim");
    assert_eq!(claimed.len(), 399);
    assert_eq!(claimed.iter().filter(|t| t.queue == "q7").count(), 1);
}
