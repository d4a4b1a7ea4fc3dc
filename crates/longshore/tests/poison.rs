//! One task whose row cannot be decoded never stalls its queue: it fails
//! alone, without running, with a reason an operator can read, and the
//! tasks beside it run. And what PostgreSQL hands back of a number in
//! full (309 digits for 1.8e308) reads back as the same number.

#[macro_use]
mod common;

use common::{Engine, Runs, counting_registry, quick_config, tasks, wait_count, wait_state};
use longshore::core::{Claim, TaskFilter};
use longshore::{NewTask, TaskState};
use serde_json::json;
use std::time::Duration;

conformance! {
    #[tokio::test]
    async fn an_undecodable_task_fails_alone_and_its_queue_keeps_flowing(db) {
        let ids = db.enqueue(tasks("work", 5)).await;
        let poisoned = ids[2];
        // What an engine may hold that its decoder refuses: on PostgreSQL
        // a number beyond f64 (jsonb takes it), on SQLite text that is not
        // JSON (a hand edit).
        let statement = match db.engine() {
            Engine::Postgres => format!(
                "UPDATE longshore_tasks SET args = '{{\"v\": 1e400}}'::jsonb WHERE id = '{poisoned}'"
            ),
            Engine::Sqlite => {
                format!("UPDATE longshore_tasks SET args = 'not json' WHERE id = '{poisoned}'")
            }
        };
        db.observer().execute(&statement).await;

        // An operator's reads show it, with a note in place of its arguments.
        let listed = db
            .store
            .list(&TaskFilter { limit: 10, ..TaskFilter::default() })
            .await
            .unwrap();
        let shown = listed.iter().find(|t| t.id == poisoned).expect("listed");
        assert!(
            shown.args.as_str().is_some_and(|a| a.contains("cannot be decoded")),
            "{:?}",
            shown.args
        );

        let runs = Runs::new();
        let worker = db.worker(counting_registry("work", &runs), quick_config());
        wait_count(&db, TaskState::Succeeded, 4, Duration::from_secs(20)).await;
        let failed = wait_state(&db, poisoned, TaskState::Failed).await;
        worker.shutdown().await.unwrap();

        assert_eq!(runs.of(poisoned), 0, "the undecodable task ran");
        assert_eq!(failed.attempt, 1, "it was claimed again and again");
        let error = failed.last_error.unwrap_or_default();
        assert!(error.contains("cannot be read back from the database"), "{error}");
        let logs = db.store.logs(poisoned).await.unwrap();
        assert!(logs.iter().any(|l| l.message.contains("fix its row or delete it")), "{logs:?}");
        for id in ids.iter().filter(|id| **id != poisoned) {
            assert_eq!(runs.of(*id), 1);
        }
    }

    #[tokio::test]
    async fn numbers_at_the_ends_of_f64_read_back_unchanged(db) {
        let args = json!({
            "max": f64::MAX,
            "min": f64::MIN,
            "tiny": 5e-324,
            "third": 1.0 / 3.0,
            "big_int": u64::MAX,
            "neg_int": i64::MIN,
        });
        let id = db.enqueue_one(NewTask::new("work", args.clone())).await;
        assert_eq!(db.task(id).await.args, args);
        let claimed = db
            .store
            .claim(&Claim {
                owner: "w".into(),
                queues: vec!["default".into()],
                limit: 1,
                lease: Duration::from_secs(30),
                capped: false,
                pool: None,
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].args, args);
    }
}
