//! The live worker nodes: each records itself at start and on every
//! heartbeat, leaves when it stops, and is forgotten once unseen for a lease.

#[macro_use]
mod common;

use std::time::Duration;

use common::{FnActor, quick_config, task, wait_for};
use longshore::core::WorkerPresence;
use longshore::{Registry, TaskContext, WorkerConfig};

conformance! {
    #[tokio::test]
    async fn a_worker_is_listed_with_what_it_runs_until_it_stops(db) {
        let mut registry = Registry::new();
        registry.register_actor(
            "hold",
            FnActor(|_args, ctx: TaskContext| async move {
                ctx.cancelled().await;
                Ok(())
            }),
        );
        let config = WorkerConfig {
            id: "node-a".into(),
            queues: vec!["default".into(), "mail".into()],
            concurrency: 3,
            // The held tasks are cancelled at once when it stops.
            drain_timeout: Duration::from_millis(100),
            ..quick_config()
        };
        let worker = db.worker(registry, config);
        let listed = wait_for("the worker to be listed", Duration::from_secs(10), || async {
            db.store.workers().await.unwrap().into_iter().find(|w| w.presence.id == "node-a")
        })
        .await;
        assert_eq!(listed.presence.queues, vec!["default".to_owned(), "mail".to_owned()]);
        assert_eq!(listed.presence.concurrency, 3);
        assert_eq!(listed.presence.version, env!("CARGO_PKG_VERSION"));
        assert!(!listed.presence.host.is_empty());
        assert!(listed.started_at <= listed.last_seen_at);

        // Its running count is the database's, as soon as the tasks run.
        db.enqueue(vec![task("hold"), task("hold")]).await;
        wait_for("two running tasks to be listed", Duration::from_secs(10), || async {
            let workers = db.store.workers().await.unwrap();
            workers
                .iter()
                .any(|w| w.presence.id == "node-a" && w.presence.running == 2)
                .then_some(())
        })
        .await;
        // Its next heartbeat moves the last-seen time and keeps the start.
        let again = wait_for("a heartbeat", Duration::from_secs(10), || async {
            db.store
                .workers()
                .await
                .unwrap()
                .into_iter()
                .find(|w| w.presence.id == "node-a" && w.last_seen_at > listed.last_seen_at)
        })
        .await;
        assert_eq!(again.started_at, listed.started_at, "a heartbeat keeps the start time");
        assert_eq!(again.presence.running, 2);

        worker.shutdown().await.unwrap();
        assert!(db.store.workers().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_worker_that_died_is_forgotten_after_a_lease(db) {
        // A node that said it was alive once and then died without a word.
        let ghost = WorkerPresence {
            id: "ghost".into(),
            host: "gone".into(),
            version: "0.0.1".into(),
            queues: vec!["default".into()],
            concurrency: 1,
            running: 0,
            agent: None,
        };
        db.store.worker_seen(&ghost).await.unwrap();
        // A live node's maintenance forgets it once unseen for a lease (2 s).
        let worker = db.worker(Registry::new(), WorkerConfig { id: "alive".into(), ..quick_config() });
        wait_for("the dead worker to be forgotten", Duration::from_secs(20), || async {
            let ids: Vec<String> =
                db.store.workers().await.unwrap().into_iter().map(|w| w.presence.id).collect();
            (ids == vec!["alive".to_owned()]).then_some(())
        })
        .await;
        worker.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn forget_workers_keeps_those_seen_recently(db) {
        let node = |id: &str| WorkerPresence {
            id: id.into(),
            host: "h".into(),
            version: "v".into(),
            queues: vec![],
            concurrency: 1,
            running: 0,
            agent: None,
        };
        db.store.worker_seen(&node("a")).await.unwrap();
        db.store.worker_seen(&node("b")).await.unwrap();
        assert_eq!(db.store.forget_workers(Duration::from_secs(3600)).await.unwrap(), 0);
        assert_eq!(db.store.workers().await.unwrap().len(), 2);
        db.store.worker_stopped("a").await.unwrap();
        let left: Vec<String> =
            db.store.workers().await.unwrap().into_iter().map(|w| w.presence.id).collect();
        assert_eq!(left, vec!["b".to_owned()]);
    }
}
