//! Agent pools and agent tokens as every engine stores them: a queue
//! handed to a pool gives tasks only to that pool's claims (and none to
//! inline claims) until the pool is deleted; a queue belongs to one pool;
//! agent tokens are found by hash whatever their state, revoked, and
//! deleted once expired.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::Utc;
use longshore::StoreError;
use longshore::core::{
    AgentPresence, Claim, NewPool, PoolChange, PoolClaim, TokenSecret, WorkerPresence,
};

fn claim(pool: Option<&str>, queues: &[&str], capped: bool) -> Claim {
    labelled(pool, &[], queues, capped)
}

fn labelled(pool: Option<&str>, labels: &[&str], queues: &[&str], capped: bool) -> Claim {
    Claim {
        owner: "claimer".to_owned(),
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        limit: 10,
        lease: Duration::from_secs(60),
        capped,
        pool: pool.map(|name| PoolClaim {
            name: name.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }),
    }
}

fn pool(name: &str, queues: &[&str]) -> NewPool {
    NewPool {
        name: name.to_owned(),
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        labels: vec!["cuda".to_owned()],
        max_running: None,
    }
}

conformance! {
    #[tokio::test]
    async fn a_pools_queue_gives_tasks_only_to_the_pools_claims(db) {
        let store = &db.store;
        let mut tasks = Vec::new();
        for queue in ["render", "render", "plain"] {
            let mut task = common::task("noop");
            task.queue = queue.to_owned();
            tasks.push(task);
        }
        store.enqueue(tasks).await.unwrap();
        let created = store.create_pool(&pool("gpu", &["render"])).await.unwrap();
        assert_eq!(created.queues, ["render"]);
        assert_eq!(store.pools().await.unwrap(), vec![created.clone()]);

        for capped in [false, true] {
            // Inline claims skip the pool's queue, uncapped or capped.
            let inline = store.claim(&claim(None, &["render"], capped)).await.unwrap();
            assert!(inline.is_empty(), "capped {capped}: {inline:?}");
            // Another pool's claims find nothing there either, nor in a
            // queue that is no pool's.
            let other = store
                .claim(&claim(Some("cpu"), &["render", "plain"], capped))
                .await
                .unwrap();
            assert!(other.is_empty(), "capped {capped}: {other:?}");
        }
        // The pool's claim takes them; it takes nothing from a queue that
        // is not its own.
        let mine = store
            .claim(&claim(Some("gpu"), &["render", "plain"], false))
            .await
            .unwrap();
        assert_eq!(mine.len(), 2);
        assert!(mine.iter().all(|t| t.queue == "render"));

        // Deleted: the queue is inline workers' again.
        let mut later = common::task("noop");
        later.queue = "render".to_owned();
        store.enqueue(vec![later]).await.unwrap();
        store.delete_pool("gpu").await.unwrap();
        assert!(store.pools().await.unwrap().is_empty());
        let inline = store.claim(&claim(None, &["render", "plain"], false)).await.unwrap();
        assert_eq!(inline.len(), 2, "{inline:?}");
        assert!(matches!(
            store.delete_pool("gpu").await,
            Err(StoreError::PoolNotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_agent_gets_only_tasks_whose_required_labels_it_offers(db) {
        let store = &db.store;
        store.create_pool(&pool("gpu", &["render"])).await.unwrap();
        let mut tasks = Vec::new();
        for requires in [&[][..], &["cuda"][..], &["cuda", "linux"][..], &["rocm"][..]] {
            let mut task = common::task("noop");
            task.queue = "render".to_owned();
            task.requires = requires.iter().map(|l| (*l).to_owned()).collect();
            tasks.push(task);
        }
        let ids: Vec<_> = tasks.iter().map(|t| t.id).collect();
        store.enqueue(tasks).await.unwrap();
        assert_eq!(db.task(ids[2]).await.requires, ["cuda", "linux"]);
        for capped in [false, true] {
            let none = store
                .claim(&labelled(Some("gpu"), &["arm"], &["render"], capped))
                .await
                .unwrap();
            assert_eq!(none.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[0]]);
            let cuda = store
                .claim(&labelled(Some("gpu"), &["linux", "cuda"], &["render"], capped))
                .await
                .unwrap();
            let mut got: Vec<_> = cuda.iter().map(|t| t.id).collect();
            got.sort();
            assert_eq!(got, [ids[1], ids[2]], "capped {capped}");
            let rest = store
                .claim(&labelled(Some("gpu"), &["rocm"], &["render"], capped))
                .await
                .unwrap();
            assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[3]]);
            // Put them back for the capped round.
            if !capped {
                db.observer()
                    .execute("UPDATE longshore_tasks SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL")
                    .await;
            }
        }
        // A required label that cannot be a label is refused at enqueue.
        let mut bad = common::task("noop");
        bad.requires = vec!["a,b".to_owned()];
        assert!(matches!(
            store.enqueue(vec![bad]).await,
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn a_queue_belongs_to_one_pool_and_bad_pools_are_refused(db) {
        let store = &db.store;
        store.create_pool(&pool("gpu", &["render", "encode"])).await.unwrap();
        assert!(matches!(
            store.create_pool(&pool("gpu", &["other"])).await,
            Err(StoreError::PoolExists(_))
        ));
        let taken = store.create_pool(&pool("cpu", &["encode"])).await.unwrap_err();
        assert!(taken.to_string().contains("belongs to pool `gpu`"), "{taken}");
        for bad in [pool("", &["q"]), pool("a b", &["q"]), pool("ok", &[]), pool("ok", &["q", "q"])] {
            assert!(matches!(
                store.create_pool(&bad).await,
                Err(StoreError::InvalidInput(_))
            ));
        }
        // Nothing of the refused ones was written.
        let pools = store.pools().await.unwrap();
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].queues, ["encode", "render"]);
        assert_eq!(pools[0].labels, ["cuda"]);
    }

    #[tokio::test]
    async fn agent_tokens_are_found_by_hash_revoked_and_deleted_once_expired(db) {
        let store = &db.store;
        store.create_pool(&pool("gpu", &["render"])).await.unwrap();
        let secret = TokenSecret::generate().unwrap();
        let made = store
            .create_agent_token("gpu-1", "gpu", &secret.hash(), None)
            .await
            .unwrap();
        assert_eq!((made.pool.as_str(), made.expires_at), ("gpu", None));
        let found = store.agent_token_by_hash(&secret.hash()).await.unwrap();
        assert_eq!(found.as_ref(), Some(&made));
        // An agent token is no API token, and the other way round.
        assert!(store.token_by_hash(&secret.hash()).await.unwrap().is_none());

        assert!(matches!(
            store.create_agent_token("gpu-1", "gpu", &TokenSecret::generate().unwrap().hash(), None).await,
            Err(StoreError::AgentTokenExists(_))
        ));
        assert!(matches!(
            store.create_agent_token("x", "nope", &TokenSecret::generate().unwrap().hash(), None).await,
            Err(StoreError::PoolNotFound(_))
        ));

        let revoked = store.revoke_agent_token("gpu-1").await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(!revoked.is_valid_at(Utc::now()));
        let again = store.revoke_agent_token("gpu-1").await.unwrap();
        assert_eq!(again.revoked_at, revoked.revoked_at, "the first revocation stays");
        assert!(matches!(
            store.revoke_agent_token("nope").await,
            Err(StoreError::AgentTokenNotFound(_))
        ));

        let past = Utc::now() - chrono::Duration::seconds(10);
        let future = Utc::now() + chrono::Duration::days(1);
        let old = TokenSecret::generate().unwrap();
        store.create_agent_token("old", "gpu", &old.hash(), Some(past)).await.unwrap();
        store
            .create_agent_token("new", "gpu", &TokenSecret::generate().unwrap().hash(), Some(future))
            .await
            .unwrap();
        let expired = store.agent_token_by_hash(&old.hash()).await.unwrap().unwrap();
        assert!(!expired.is_valid_at(Utc::now()));
        assert_eq!(store.delete_expired_agent_tokens(Utc::now()).await.unwrap(), 1);
        let names: Vec<String> = store
            .agent_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["gpu-1", "new"]);
    }

    #[tokio::test]
    async fn a_pool_is_edited_and_its_cap_bounds_its_claims(db) {
        let store = &db.store;
        store.create_pool(&pool("gpu", &["render", "encode"])).await.unwrap();
        let mut tasks = Vec::new();
        for queue in ["render", "render", "render", "bake"] {
            let mut task = common::task("noop");
            task.queue = queue.to_owned();
            tasks.push(task);
        }
        store.enqueue(tasks).await.unwrap();
        // New queues, no labels, a cap of 2: `encode` goes back to inline
        // workers, `bake` joins.
        let change = PoolChange {
            queues: Some(vec!["render".to_owned(), "bake".to_owned()]),
            labels: Some(Vec::new()),
            max_running: Some(Some(2)),
        };
        let edited = store.update_pool("gpu", &change).await.unwrap();
        assert_eq!(edited.queues, ["bake", "render"]);
        assert!(edited.labels.is_empty());
        assert_eq!(edited.max_running, Some(2));
        assert_eq!(store.pools().await.unwrap(), vec![edited]);
        // The cap holds over the pool's queues together, capped claim or
        // not (the engine must notice the pool's cap by itself).
        for capped in [false, true] {
            let first = store.claim(&claim(Some("gpu"), &["render", "bake"], capped)).await.unwrap();
            assert_eq!(first.len(), 2, "capped {capped}");
            let more = store.claim(&claim(Some("gpu"), &["render", "bake"], capped)).await.unwrap();
            assert!(more.is_empty(), "capped {capped}: {} over the cap", more.len());
            db.observer()
                .execute("UPDATE longshore_tasks SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL")
                .await;
        }
        // The cap lifted, everything is claimed.
        let lifted = PoolChange { max_running: Some(None), ..PoolChange::default() };
        assert_eq!(store.update_pool("gpu", &lifted).await.unwrap().max_running, None);
        assert_eq!(store.claim(&claim(Some("gpu"), &["render", "bake"], true)).await.unwrap().len(), 4);
        // Refusals change nothing.
        store.create_pool(&pool("cpu", &["crunch"])).await.unwrap();
        let steal = PoolChange { queues: Some(vec!["crunch".to_owned()]), ..PoolChange::default() };
        let refused = store.update_pool("gpu", &steal).await.unwrap_err();
        assert!(refused.to_string().contains("belongs to pool `cpu`"), "{refused}");
        assert!(matches!(
            store.update_pool("nope", &lifted).await,
            Err(StoreError::PoolNotFound(_))
        ));
        let negative = PoolChange { max_running: Some(Some(-1)), ..PoolChange::default() };
        assert!(matches!(
            store.update_pool("gpu", &negative).await,
            Err(StoreError::InvalidInput(_))
        ));
        let gpu = store.pools().await.unwrap().into_iter().find(|p| p.name == "gpu").unwrap();
        assert_eq!(gpu.queues, ["bake", "render"]);
        assert_eq!(gpu.max_running, None);
    }

    #[tokio::test]
    async fn due_requirements_name_what_due_tasks_need_without_claiming(db) {
        let store = &db.store;
        let mut tasks = Vec::new();
        for (queue, requires) in [("render", &[][..]), ("render", &["cuda"][..]), ("held", &["x"][..])] {
            let mut task = common::task("noop");
            task.queue = queue.to_owned();
            task.requires = requires.iter().map(|l| (*l).to_owned()).collect();
            tasks.push(task);
        }
        let mut later = common::task("noop");
        later.queue = "render".to_owned();
        later.run_at = Some(Utc::now() + chrono::Duration::hours(1));
        tasks.push(later);
        store.enqueue(tasks).await.unwrap();
        store.set_queue_paused("held", true).await.unwrap();
        let queues = vec!["render".to_owned(), "held".to_owned()];
        let mut due = store.due_requirements(&queues, 10).await.unwrap();
        due.sort();
        // Not the paused queue's, not the one due in an hour.
        assert_eq!(due, vec![Vec::<String>::new(), vec!["cuda".to_owned()]]);
        assert_eq!(store.due_requirements(&queues, 1).await.unwrap().len(), 1);
        // Nothing was claimed.
        assert_eq!(db.count(longshore::TaskState::Queued).await, 3);
    }

    #[tokio::test]
    async fn agents_presence_is_recorded_in_one_call_and_drains_read_back(db) {
        let store = &db.store;
        let agent = |id: &str| WorkerPresence {
            id: id.to_owned(),
            host: longshore::core::pool::agent_host("rust"),
            version: "1".to_owned(),
            queues: vec!["render".to_owned()],
            concurrency: 4,
            running: 0,
            agent: Some(AgentPresence { pool: "gpu".to_owned(), labels: vec!["cuda".to_owned()] }),
        };
        assert!(store.workers_seen(&[]).await.unwrap().is_empty());
        assert!(store.workers_seen(&[agent("a"), agent("b")]).await.unwrap().is_empty());
        let listed = store.workers().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].presence, agent("a"));
        assert!(!listed[0].drain_requested);
        assert!(store.request_drain("b").await.unwrap());
        let mut again = agent("a");
        again.running = 3;
        assert_eq!(store.workers_seen(&[again.clone(), agent("b")]).await.unwrap(), ["b"]);
        let listed = store.workers().await.unwrap();
        // `running` is counted from the tasks held (none), not reported.
        assert_eq!(listed[0].presence.running, 0);
        assert!(listed[1].drain_requested);
        // A worker node has no agent part.
        let node = WorkerPresence { id: "node".to_owned(), agent: None, ..agent("node") };
        store.worker_seen(&node).await.unwrap();
        let listed = store.workers().await.unwrap();
        assert_eq!(listed[2].presence.agent, None);
    }
}
