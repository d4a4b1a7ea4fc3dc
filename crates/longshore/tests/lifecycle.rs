//! A task's life: retries with backoff, fatal errors, panics, self-reported
//! warnings and errors, logs per attempt, time limits, bad arguments and
//! unknown actors, delayed tasks.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Runs, quick_config, registry_with, task, wait_for, wait_state};
use longshore::{
    CancelReason, Client, EnqueueOptions, LogLevel, NewTask, Registry, RetryPolicy, Status, Task,
    TaskContext, TaskError, TaskState, WorkerConfig,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// ---------------------------------------------------------------- retries

/// Logs "attempt N", fails the first `failures` attempts, then succeeds.
fn flaky(runs: &Runs, failures: i32) -> Registry {
    let runs = runs.clone();
    registry_with("flaky", move |_args, ctx: TaskContext| {
        runs.record(ctx.task_id());
        async move {
            ctx.info(format!("attempt {}", ctx.attempt()));
            if ctx.attempt() <= failures {
                Err(TaskError::retry(format!("failure {}", ctx.attempt())))
            } else {
                Ok(())
            }
        }
    })
}

// ---------------------------------------------------------------- time limits

/// What typed handlers saw, by task id (typed tasks have no instance state).
static OBSERVED: LazyLock<Mutex<HashMap<Uuid, Vec<&'static str>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn observe(id: Uuid, what: &'static str) {
    OBSERVED
        .lock()
        .expect("observations lock")
        .entry(id)
        .or_default()
        .push(what);
}

fn observed(id: Uuid) -> Vec<&'static str> {
    OBSERVED
        .lock()
        .expect("observations lock")
        .get(&id)
        .cloned()
        .unwrap_or_default()
}

/// Waits for cancellation and stops when asked. Its own limit is long, so
/// a shorter per-task limit must win.
#[derive(Serialize, Deserialize)]
struct Cooperative {}

impl Task for Cooperative {
    const ACTOR: &'static str = "cooperative";
    const TIME_LIMIT: Option<Duration> = Some(Duration::from_secs(60));

    async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
        observe(ctx.task_id(), "started");
        tokio::select! {
            () = ctx.cancelled() => {
                if ctx.cancel_reason() == Some(CancelReason::TimeLimit) {
                    observe(ctx.task_id(), "saw time limit");
                }
                Err(TaskError::retry("stopped as asked"))
            }
            () = tokio::time::sleep(Duration::from_secs(60)) => Ok(()),
        }
    }
}

/// Ignores cancellation entirely; only an abort stops it.
#[derive(Serialize, Deserialize)]
struct Stubborn {}

struct DropFlag(Uuid);

impl Drop for DropFlag {
    fn drop(&mut self) {
        observe(self.0, "dropped");
    }
}

impl Task for Stubborn {
    const ACTOR: &'static str = "stubborn";
    const TIME_LIMIT: Option<Duration> = Some(Duration::from_millis(300));

    async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
        let _flag = DropFlag(ctx.task_id());
        observe(ctx.task_id(), "started");
        std::future::pending::<()>().await;
        observe(ctx.task_id(), "returned");
        Ok(())
    }
}

fn time_limited() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Cooperative>().register::<Stubborn>();
    registry
}

// ---------------------------------------------------------------- bad tasks

#[derive(Serialize, Deserialize)]
struct Echo {
    text: String,
}

impl Task for Echo {
    const ACTOR: &'static str = "echo";
    async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
        observe(ctx.task_id(), "echo ran");
        Ok(())
    }
}

conformance! {
    // ---------------------------------------------------------------- retries

    #[tokio::test]
    async fn a_task_failing_twice_then_succeeding_ends_succeeded_on_attempt_three(db) {
        let runs = Runs::new();
        let worker = db.worker(flaky(&runs, 2), quick_config());
        let id = db.enqueue_one(task("flaky")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 3);
        assert_eq!(runs.of(id), 3);
        assert_eq!(done.status(), Status::Successful);
    }

    #[tokio::test]
    async fn every_attempts_log_lines_are_kept_under_their_attempt_number(db) {
        let runs = Runs::new();
        let worker = db.worker(flaky(&runs, 2), quick_config());
        let id = db.enqueue_one(task("flaky")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();

        let logs = db.store.logs(id).await.unwrap();
        assert!(logs.iter().all(|l| l.task_id == id));
        // The handler's own lines, each under the execution that wrote it.
        let lines: Vec<(i32, &str)> = logs
            .iter()
            .filter(|l| l.level == LogLevel::Info)
            .map(|l| (l.execution, l.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            [(1, "attempt 1"), (2, "attempt 2"), (3, "attempt 3")]
        );
        // Each failed execution's log says why it failed.
        for attempt in 1..=2 {
            assert!(
                logs.iter().any(|l| l.execution == attempt
                    && l.level == LogLevel::Error
                    && l.message.contains(&format!("failure {attempt}"))),
                "{logs:?}"
            );
        }
        // The current execution is the last attempt; the previous ones stay
        // retrievable beside it.
        let current: Vec<_> = logs.iter().filter(|l| l.execution == done.execution).collect();
        assert_eq!(current.len(), 1, "{current:?}");
        assert_eq!(current[0].message, "attempt 3");
    }

    #[tokio::test]
    async fn a_fatal_error_fails_the_task_at_once(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("doomed", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async { Err(TaskError::fatal("the input can never work")) }
        });
        let worker = db.worker(registry, quick_config());
        let mut t = task("doomed");
        t.max_attempts = 5;
        let id = db.enqueue_one(t).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        assert_eq!(failed.attempt, 1);
        assert_eq!(runs.of(id), 1);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("the input can never work")
        );
        assert_eq!(failed.status(), Status::Error);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_retried_and_its_panic_message_recorded(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("panicky", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async move {
                let attempt = ctx.attempt();
                if attempt > 0 {
                    panic!("kaboom on attempt {attempt}");
                }
                Ok(())
            }
        });
        let worker = db.worker(registry, quick_config());
        let mut t = task("panicky");
        t.max_attempts = 2;
        let id = db.enqueue_one(t).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        // Retried like a returned error: both attempts ran.
        assert_eq!(failed.attempt, 2);
        assert_eq!(runs.of(id), 2);
        let error = failed.last_error.unwrap_or_default();
        assert!(error.contains("kaboom on attempt 2"), "{error}");
    }

    #[tokio::test]
    async fn a_task_out_of_attempts_fails_with_its_last_error(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("hopeless", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            async move { Err(TaskError::retry(format!("nope {}", ctx.attempt()))) }
        });
        let worker = db.worker(registry, quick_config());
        let mut t = task("hopeless");
        t.max_attempts = 3;
        let id = db.enqueue_one(t).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        assert_eq!(failed.attempt, 3);
        assert_eq!(runs.of(id), 3);
        assert_eq!(failed.last_error.as_deref(), Some("nope 3"));
        assert!(failed.finished_at.is_some());
        assert!(failed.lease_owner.is_none());
        assert_eq!(failed.status(), Status::Error);
    }

    #[tokio::test]
    async fn a_failed_attempt_waits_out_its_backoff_as_scheduled(db) {
        let runs = Runs::new();
        let config = WorkerConfig {
            retry: RetryPolicy {
                base: Duration::from_secs(1),
                max: Duration::from_secs(2),
            },
            ..quick_config()
        };
        let worker = db.worker(flaky(&runs, 1), config);
        let id = db.enqueue_one(task("flaky")).await;
        let waiting = wait_for(
            "the failed task to be scheduled",
            Duration::from_secs(20),
            || async {
                let row = db.task(id).await;
                (row.state == TaskState::Scheduled && row.attempt == 1).then_some(row)
            },
        )
        .await;
        // Both times come from the database's clock in one statement.
        let backoff = (waiting.run_at - waiting.modified_at).to_std().unwrap();
        assert!(
            backoff >= Duration::from_secs(1) && backoff <= Duration::from_secs(2),
            "backoff {backoff:?}"
        );
        assert_eq!(waiting.status_at(waiting.modified_at), Status::Scheduled);
        assert_eq!(waiting.last_error.as_deref(), Some("failure 1"));

        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 2);
        assert!(done.started_at.unwrap() >= waiting.run_at);
    }

    // ---------------------------------------------------------------- status

    #[tokio::test]
    async fn a_handler_reporting_a_warning_succeeds_once_with_status_warning(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("warns", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            ctx.warn("disk nearly full");
            async { Ok(()) }
        });
        let worker = db.worker(registry, quick_config());
        let id = db.enqueue_one(task("warns")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
        assert_eq!(runs.of(id), 1);
        assert_eq!(done.status(), Status::Warning);
        let logs = db.store.logs(id).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].level, LogLevel::Warning);
    }

    #[tokio::test]
    async fn a_handler_reporting_an_error_succeeds_once_with_status_error(db) {
        let runs = Runs::new();
        let seen = runs.clone();
        let registry = registry_with("complains", move |_args, ctx: TaskContext| {
            seen.record(ctx.task_id());
            ctx.error("upstream returned garbage; skipped");
            async { Ok(()) }
        });
        let worker = db.worker(registry, quick_config());
        let id = db.enqueue_one(task("complains")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 1);
        assert_eq!(runs.of(id), 1);
        assert!(done.last_error.is_none());
        assert_eq!(done.status(), Status::Error);
    }

    #[tokio::test]
    async fn the_status_follows_the_current_execution_not_earlier_ones(db) {
        let registry = registry_with("recovers", move |_args, ctx: TaskContext| async move {
            if ctx.attempt() == 1 {
                ctx.warn("first try looked odd");
                return Err(TaskError::retry("failed first"));
            }
            Ok(())
        });
        let worker = db.worker(registry, quick_config());
        let id = db.enqueue_one(task("recovers")).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(done.attempt, 2);
        assert_eq!(done.status(), Status::Successful);
    }

    // ---------------------------------------------------------------- time limits

    #[tokio::test]
    async fn a_task_time_limit_stops_a_cooperative_handler_and_fails_the_attempt(db) {
        let worker = db.worker(time_limited(), quick_config());
        let client = Client::new(db.store());
        let options = EnqueueOptions {
            time_limit: Some(Duration::from_millis(300)),
            max_attempts: Some(1),
            ..EnqueueOptions::default()
        };
        let id = client
            .enqueue_with(Cooperative {}, &options)
            .await
            .unwrap()
            .id;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        assert_eq!(observed(id), ["started", "saw time limit"]);
        assert_eq!(failed.attempt, 1);
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains("time limit") && error.contains("300ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_actor_time_limit_aborts_a_handler_that_ignores_cancellation(db) {
        let config = WorkerConfig {
            cancel_grace: Duration::from_millis(500),
            ..quick_config()
        };
        let worker = db.worker(time_limited(), config);
        let client = Client::new(db.store());
        let options = EnqueueOptions {
            max_attempts: Some(1),
            ..EnqueueOptions::default()
        };
        let id = client.enqueue_with(Stubborn {}, &options).await.unwrap().id;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        // Never returned by itself: it was dropped, i.e. aborted.
        assert_eq!(observed(id), ["started", "dropped"]);
        assert_eq!(failed.attempt, 1);
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains("time limit") && error.contains("300ms"),
            "{error}"
        );
        // It was given the limit and then the grace period before the abort.
        let ran = failed.finished_at.unwrap() - failed.started_at.unwrap();
        assert!(ran >= chrono::Duration::milliseconds(800), "ran {ran}");
    }

    #[tokio::test]
    async fn an_attempt_stopped_by_its_time_limit_is_retried_while_attempts_remain(db) {
        let worker = db.worker(time_limited(), quick_config());
        let client = Client::new(db.store());
        let options = EnqueueOptions {
            time_limit: Some(Duration::from_millis(200)),
            max_attempts: Some(2),
            ..EnqueueOptions::default()
        };
        let id = client
            .enqueue_with(Cooperative {}, &options)
            .await
            .unwrap()
            .id;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        assert_eq!(failed.attempt, 2);
        assert_eq!(
            observed(id),
            ["started", "saw time limit", "started", "saw time limit"]
        );
        // Each attempt's log says why it was stopped.
        let logs = db.store.logs(id).await.unwrap();
        for attempt in 1..=2 {
            assert!(
                logs.iter()
                    .any(|l| l.execution == attempt && l.message.contains("time limit")),
                "{logs:?}"
            );
        }
    }

    // ---------------------------------------------------------------- bad tasks

    #[tokio::test]
    async fn arguments_that_do_not_match_the_task_type_fail_at_once_naming_the_actor(db) {
        let mut registry = Registry::new();
        registry.register::<Echo>();
        let worker = db.worker(registry, quick_config());
        let mut bad = NewTask::new("echo", serde_json::json!({ "wrong": 1 }));
        bad.max_attempts = 5;
        let id = db.enqueue_one(bad).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        assert_eq!(failed.attempt, 1);
        assert!(observed(id).is_empty());
        let error = failed.last_error.unwrap_or_default();
        assert!(error.contains("echo"), "{error}");
    }

    #[tokio::test]
    async fn a_task_for_an_unregistered_actor_fails_naming_it_and_is_retried(db) {
        let mut registry = Registry::new();
        registry.register::<Echo>();
        let worker = db.worker(registry, quick_config());
        let mut orphan = task("nobody_home");
        orphan.max_attempts = 2;
        let id = db.enqueue_one(orphan).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        // Not fatal: the second attempt ran too.
        assert_eq!(failed.attempt, 2);
        let error = failed.last_error.unwrap_or_default();
        assert!(error.contains("nobody_home"), "{error}");
    }

    // ---------------------------------------------------------------- delayed

    #[tokio::test]
    async fn a_delayed_task_is_scheduled_and_does_not_start_before_its_run_at(db) {
        let starts: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>> = Arc::default();
        let seen = starts.clone();
        let registry = registry_with("stamp", move |_args, ctx: TaskContext| {
            seen.lock().unwrap().insert(ctx.task_id(), Utc::now());
            async { Ok(()) }
        });
        let worker = db.worker(registry, quick_config());
        let mut t = task("stamp");
        EnqueueOptions {
            delay: Some(Duration::from_secs(1)),
            ..EnqueueOptions::default()
        }
        .apply(&mut t);
        let id = db.enqueue_one(t).await;
        let waiting = db.task(id).await;
        assert_eq!(waiting.state, TaskState::Scheduled);
        assert_eq!(waiting.status_at(waiting.created_at), Status::Scheduled);

        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        let started = starts.lock().unwrap()[&id];
        assert!(
            started >= waiting.run_at,
            "started at {started}, due at {}",
            waiting.run_at
        );
        assert!(done.started_at.unwrap() >= waiting.run_at);
        assert_eq!(done.attempt, 1);
    }

    #[tokio::test]
    async fn the_worker_default_time_limit_applies_when_neither_task_nor_actor_sets_one(db) {
        let registry = registry_with("unbounded", move |_args, ctx: TaskContext| async move {
            ctx.cancelled().await;
            Err(TaskError::retry("stopped as asked"))
        });
        let config = WorkerConfig {
            default_time_limit: Duration::from_millis(300),
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let mut t = task("unbounded");
        t.max_attempts = 1;
        let id = db.enqueue_one(t).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains("time limit") && error.contains("300ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_running_tasks_log_lines_are_visible_before_it_finishes_and_stored_once(db) {
        let release = Arc::new(tokio::sync::Notify::new());
        let go = release.clone();
        let registry = registry_with("chatty", move |_args, ctx: TaskContext| {
            let go = go.clone();
            async move {
                ctx.info("step 1 of 2");
                go.notified().await;
                ctx.info("step 2 of 2");
                Ok(())
            }
        });
        let worker = db.worker(registry, quick_config());
        let id = db.enqueue_one(task("chatty")).await;
        // The heartbeat writes it while the handler is still waiting.
        let logs = wait_for(
            "the first line to be stored",
            Duration::from_secs(10),
            || async {
                let logs = db.store.logs(id).await.unwrap();
                (!logs.is_empty()).then_some(logs)
            },
        )
        .await;
        assert_eq!(db.task(id).await.state, TaskState::Running);
        assert_eq!(logs[0].message, "step 1 of 2");
        assert_eq!(logs[0].execution, 1);

        release.notify_one();
        wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        let messages: Vec<String> = db
            .store
            .logs(id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(messages, ["step 1 of 2", "step 2 of 2"]);
    }
}
