//! End to end: enqueue, run, record.

#[macro_use]
mod common;

use common::{quick_config, wait_state};
use longshore::{Client, Registry, Task, TaskContext, TaskError, TaskState};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Hello {
    name: String,
}

impl Task for Hello {
    const ACTOR: &'static str = "hello";
    async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
        ctx.info(format!("hello, {}", self.name));
        Ok(())
    }
}

conformance! {
    #[tokio::test]
    async fn an_enqueued_task_runs_and_its_log_is_kept(db) {
        let client = Client::new(db.store());
        let id = client
            .enqueue(Hello {
                name: "world".into(),
            })
            .await
            .unwrap()
            .id;
        let mut registry = Registry::new();
        registry.register::<Hello>();
        let worker = db.worker(registry, quick_config());
        let task = wait_state(&db, id, TaskState::Succeeded).await;
        assert_eq!(task.attempt, 1);
        assert!(task.finished_at.is_some());
        assert!(task.lease_owner.is_none());
        worker.shutdown().await.unwrap();
        let logs = db.store.logs(id).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "hello, world");
    }
}
