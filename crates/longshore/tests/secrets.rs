//! Secrets named in arguments (`{"$secret": "name"}`): the worker that runs
//! a task fills them in from its own configuration; the database and the
//! task's log never hold the value.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use common::{quick_config, registry_with, task, wait_state};
use longshore::{NewTask, Secrets, TaskContext, TaskError, TaskState, WorkerConfig};

const VALUE: &str = "s3cret-value-9f2c";

/// Records the arguments its handler receives, and logs that it ran.
fn recording(seen: &Arc<Mutex<Vec<serde_json::Value>>>) -> longshore::Registry {
    let seen = seen.clone();
    registry_with("call", move |args, ctx: TaskContext| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(args);
        }
        async move {
            ctx.info("called");
            Ok::<(), TaskError>(())
        }
    })
}

fn with_secrets(secrets: Secrets) -> WorkerConfig {
    WorkerConfig {
        secrets,
        ..quick_config()
    }
}

fn referring_task() -> NewTask {
    let mut t = task("call");
    t.args = serde_json::json!({
        "url": "https://example.com/sync",
        "headers": {"Authorization": {"$secret": "api_token"}},
    });
    t
}

conformance! {
    #[tokio::test]
    async fn a_handler_gets_the_secrets_value_and_the_database_never_holds_it(db) {
        let seen = Arc::default();
        let secrets = Secrets::new([("api_token", VALUE)]).unwrap();
        let worker = db.worker(recording(&seen), with_secrets(secrets));
        let id = db.enqueue_one(referring_task()).await;
        let done = wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();

        assert_eq!(
            seen.lock().unwrap().clone(),
            [serde_json::json!({
                "url": "https://example.com/sync",
                "headers": {"Authorization": VALUE},
            })]
        );
        // Stored as it was given: the reference, not the value.
        assert_eq!(
            done.args["headers"]["Authorization"],
            serde_json::json!({"$secret": "api_token"})
        );
        let logs = db.store.logs(id).await.unwrap();
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|l| !l.message.contains(VALUE)), "{logs:?}");
    }

    #[tokio::test]
    async fn an_unknown_secret_fails_the_execution_naming_it_and_the_handler_never_runs(db) {
        let seen = Arc::default();
        let worker = db.worker(recording(&seen), with_secrets(Secrets::default()));
        let mut t = referring_task();
        t.max_attempts = 1;
        let id = db.enqueue_one(t).await;
        let failed = wait_state(&db, id, TaskState::Failed).await;
        worker.shutdown().await.unwrap();

        assert!(seen.lock().unwrap().is_empty(), "the handler ran");
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains("`api_token`") && error.contains("LONGSHORE_SECRETS__API_TOKEN"),
            "{error}"
        );
        let logs = db.store.logs(id).await.unwrap();
        assert!(logs.iter().any(|l| l.message.contains("`api_token`")), "{logs:?}");
    }
}
