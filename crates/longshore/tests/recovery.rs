//! Losing the database connections: the worker reconnects and nothing is
//! lost or left behind.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Runs, TestDb, quick_config, registry_with, tasks, wait_count, wait_for};
use longshore::{TaskContext, TaskState, WorkerConfig};
use uuid::Uuid;

/// The engine under test, except that its first claim that takes a task
/// commits and then reports a broken connection, as when the connection
/// dies after the commit and before the reply.
struct LostClaimReply {
    inner: std::sync::Arc<dyn longshore::Store>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl longshore::Store for LostClaimReply {
    fn engine(&self) -> &'static str {
        self.inner.engine()
    }

    async fn migrate(&self) -> Result<Vec<i32>, longshore::StoreError> {
        self.inner.migrate().await
    }

    fn schema_version(&self) -> i32 {
        self.inner.schema_version()
    }

    async fn ping(&self) -> Result<(), longshore::StoreError> {
        self.inner.ping().await
    }

    async fn listen(
        &self,
    ) -> Result<Option<Box<dyn longshore::core::EventSource>>, longshore::StoreError> {
        self.inner.listen().await
    }
}

#[async_trait::async_trait]
impl longshore::core::TaskStore for LostClaimReply {
    async fn due_requirements(
        &self,
        queues: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, longshore::StoreError> {
        self.inner.due_requirements(queues, limit).await
    }

    async fn enqueue(
        &self,
        tasks: Vec<longshore::NewTask>,
    ) -> Result<Vec<longshore::EnqueueResult>, longshore::StoreError> {
        self.inner.enqueue(tasks).await
    }

    async fn claim(
        &self,
        claim: &longshore::core::Claim,
    ) -> Result<Vec<longshore::TaskRow>, longshore::StoreError> {
        let claimed = self.inner.claim(claim).await?;
        if !claimed.is_empty() && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(longshore::StoreError::Unavailable(
                "connection reset after commit (injected)".into(),
            ));
        }
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        owner: &str,
        held: &[(Uuid, i32)],
        lease: Duration,
        logs: &[longshore::LogEntry],
    ) -> Result<longshore::core::Heartbeat, longshore::StoreError> {
        self.inner.heartbeat(owner, held, lease, logs).await
    }

    async fn complete(
        &self,
        owner: &str,
        completions: &[longshore::core::Completion],
    ) -> Result<Vec<Uuid>, longshore::StoreError> {
        self.inner.complete(owner, completions).await
    }

    async fn release_untracked(
        &self,
        owner: &str,
        tracked: &[Uuid],
    ) -> Result<u64, longshore::StoreError> {
        self.inner.release_untracked(owner, tracked).await
    }

    async fn rescue_expired(&self, limit: i64) -> Result<u64, longshore::StoreError> {
        self.inner.rescue_expired(limit).await
    }

    async fn promote_due(&self, limit: i64) -> Result<u64, longshore::StoreError> {
        self.inner.promote_due(limit).await
    }

    async fn task(&self, id: Uuid) -> Result<Option<longshore::TaskRow>, longshore::StoreError> {
        self.inner.task(id).await
    }

    async fn logs(&self, id: Uuid) -> Result<Vec<longshore::LogEntry>, longshore::StoreError> {
        self.inner.logs(id).await
    }

    async fn list(
        &self,
        filter: &longshore::core::TaskFilter,
    ) -> Result<Vec<longshore::TaskRow>, longshore::StoreError> {
        self.inner.list(filter).await
    }

    async fn retry(&self, id: Uuid) -> Result<longshore::TaskRow, longshore::StoreError> {
        self.inner.retry(id).await
    }

    async fn cancel(
        &self,
        id: Uuid,
    ) -> Result<longshore::core::CancelResult, longshore::StoreError> {
        self.inner.cancel(id).await
    }

    async fn purge_finished(
        &self,
        state: TaskState,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.purge_finished(state, older_than, limit).await
    }

    async fn count_matching(
        &self,
        selection: &longshore::core::TaskSelection,
    ) -> Result<Vec<(TaskState, i64)>, longshore::StoreError> {
        self.inner.count_matching(selection).await
    }

    async fn delete_tasks(&self, ids: &[uuid::Uuid]) -> Result<u64, longshore::StoreError> {
        self.inner.delete_tasks(ids).await
    }

    async fn delete_matching(
        &self,
        selection: &longshore::core::TaskSelection,
        limit: i64,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.delete_matching(selection, limit).await
    }

    async fn cancel_running_in_queue(
        &self,
        queue: &str,
        limit: i64,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.cancel_running_in_queue(queue, limit).await
    }
}

#[async_trait::async_trait]
impl longshore::core::CountStore for LostClaimReply {
    async fn stats(
        &self,
        key: longshore::core::StatsKey,
    ) -> Result<Vec<longshore::core::StatsRow>, longshore::StoreError> {
        self.inner.stats(key).await
    }

    async fn queue_depths(&self) -> Result<Vec<longshore::core::StatsRow>, longshore::StoreError> {
        self.inner.queue_depths().await
    }

    async fn fold_counts(&self) -> Result<u64, longshore::StoreError> {
        self.inner.fold_counts().await
    }

    async fn throughput(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<longshore::core::MinuteRow>, longshore::StoreError> {
        self.inner.throughput(since).await
    }

    async fn purge_throughput(
        &self,
        older_than: std::time::Duration,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.purge_throughput(older_than).await
    }

    async fn recount(&self) -> Result<u64, longshore::StoreError> {
        self.inner.recount().await
    }
}

#[async_trait::async_trait]
impl longshore::core::QueueStore for LostClaimReply {
    async fn set_queue_paused(
        &self,
        queue: &str,
        paused: bool,
    ) -> Result<(), longshore::StoreError> {
        self.inner.set_queue_paused(queue, paused).await
    }

    async fn queue_settings(
        &self,
    ) -> Result<Vec<longshore::core::QueueSettings>, longshore::StoreError> {
        self.inner.queue_settings().await
    }

    async fn set_queue_limit(
        &self,
        queue: &str,
        max_running: Option<i32>,
    ) -> Result<(), longshore::StoreError> {
        self.inner.set_queue_limit(queue, max_running).await
    }

    async fn cluster_settings(
        &self,
    ) -> Result<longshore::core::ClusterSettings, longshore::StoreError> {
        self.inner.cluster_settings().await
    }

    async fn set_max_running(&self, max_running: Option<i32>) -> Result<(), longshore::StoreError> {
        self.inner.set_max_running(max_running).await
    }
}

#[async_trait::async_trait]
impl longshore::core::ClusterStore for LostClaimReply {
    async fn worker_seen(
        &self,
        worker: &longshore::core::WorkerPresence,
    ) -> Result<bool, longshore::StoreError> {
        self.inner.worker_seen(worker).await
    }

    async fn workers_seen(
        &self,
        workers: &[longshore::core::WorkerPresence],
    ) -> Result<Vec<String>, longshore::StoreError> {
        self.inner.workers_seen(workers).await
    }

    async fn request_drain(&self, id: &str) -> Result<bool, longshore::StoreError> {
        self.inner.request_drain(id).await
    }

    async fn worker_stopped(&self, id: &str) -> Result<(), longshore::StoreError> {
        self.inner.worker_stopped(id).await
    }

    async fn workers(&self) -> Result<Vec<longshore::core::WorkerInfo>, longshore::StoreError> {
        self.inner.workers().await
    }

    async fn forget_workers(&self, unseen_for: Duration) -> Result<u64, longshore::StoreError> {
        self.inner.forget_workers(unseen_for).await
    }

    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, longshore::StoreError> {
        self.inner.try_lead(name, holder, ttl).await
    }

    async fn resign(&self, name: &str, holder: &str) -> Result<(), longshore::StoreError> {
        self.inner.resign(name, holder).await
    }

    async fn leaders(&self) -> Result<Vec<longshore::core::Leadership>, longshore::StoreError> {
        self.inner.leaders().await
    }
}

#[async_trait::async_trait]
impl longshore::core::ScheduleStore for LostClaimReply {
    async fn put_schedule(
        &self,
        def: &longshore::core::ScheduleDef,
        mode: longshore::core::PutMode,
        next_run_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<longshore::core::Schedule, longshore::StoreError> {
        self.inner.put_schedule(def, mode, next_run_at).await
    }

    async fn schedule(
        &self,
        name: &str,
    ) -> Result<Option<longshore::core::Schedule>, longshore::StoreError> {
        self.inner.schedule(name).await
    }

    async fn schedules(&self) -> Result<Vec<longshore::core::Schedule>, longshore::StoreError> {
        self.inner.schedules().await
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<longshore::core::Schedule, longshore::StoreError> {
        self.inner.set_schedule_paused(name, paused).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), longshore::StoreError> {
        self.inner.delete_schedule(name).await
    }

    async fn due_schedules(
        &self,
        limit: i64,
    ) -> Result<Vec<longshore::core::Schedule>, longshore::StoreError> {
        self.inner.due_schedules(limit).await
    }

    async fn fire_schedule(
        &self,
        fire: &longshore::core::Fire,
    ) -> Result<longshore::core::FireOutcome, longshore::StoreError> {
        self.inner.fire_schedule(fire).await
    }
}

#[async_trait::async_trait]
impl longshore::core::TokenStore for LostClaimReply {
    async fn create_token(
        &self,
        name: &str,
        scope: longshore::core::TokenScope,
        secret_hash: &str,
    ) -> Result<longshore::core::TokenInfo, longshore::StoreError> {
        self.inner.create_token(name, scope, secret_hash).await
    }

    async fn tokens(&self) -> Result<Vec<longshore::core::TokenInfo>, longshore::StoreError> {
        self.inner.tokens().await
    }

    async fn revoke_token(
        &self,
        name: &str,
    ) -> Result<longshore::core::TokenInfo, longshore::StoreError> {
        self.inner.revoke_token(name).await
    }

    async fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<longshore::core::TokenInfo>, longshore::StoreError> {
        self.inner.token_by_hash(secret_hash).await
    }

    async fn create_session(
        &self,
        token_id: Uuid,
        secret_hash: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), longshore::StoreError> {
        self.inner
            .create_session(token_id, secret_hash, csrf, ttl)
            .await
    }

    async fn session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<longshore::core::Session>, longshore::StoreError> {
        self.inner.session(secret_hash).await
    }

    async fn end_session(&self, secret_hash: &str) -> Result<(), longshore::StoreError> {
        self.inner.end_session(secret_hash).await
    }

    async fn purge_sessions(&self, limit: i64) -> Result<u64, longshore::StoreError> {
        self.inner.purge_sessions(limit).await
    }
}

#[async_trait::async_trait]
impl longshore::core::AgentStore for LostClaimReply {
    async fn create_pool(
        &self,
        pool: &longshore::core::NewPool,
    ) -> Result<longshore::core::Pool, longshore::StoreError> {
        self.inner.create_pool(pool).await
    }

    async fn pools(&self) -> Result<Vec<longshore::core::Pool>, longshore::StoreError> {
        self.inner.pools().await
    }

    async fn update_pool(
        &self,
        name: &str,
        change: &longshore::core::PoolChange,
    ) -> Result<longshore::core::Pool, longshore::StoreError> {
        self.inner.update_pool(name, change).await
    }

    async fn delete_pool(&self, name: &str) -> Result<(), longshore::StoreError> {
        self.inner.delete_pool(name).await
    }

    async fn create_agent_token(
        &self,
        name: &str,
        pool: &str,
        secret_hash: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<longshore::core::AgentTokenInfo, longshore::StoreError> {
        self.inner
            .create_agent_token(name, pool, secret_hash, expires_at)
            .await
    }

    async fn agent_tokens(
        &self,
    ) -> Result<Vec<longshore::core::AgentTokenInfo>, longshore::StoreError> {
        self.inner.agent_tokens().await
    }

    async fn revoke_agent_token(
        &self,
        name: &str,
    ) -> Result<longshore::core::AgentTokenInfo, longshore::StoreError> {
        self.inner.revoke_agent_token(name).await
    }

    async fn agent_token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<longshore::core::AgentTokenInfo>, longshore::StoreError> {
        self.inner.agent_token_by_hash(secret_hash).await
    }

    async fn delete_expired_agent_tokens(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.delete_expired_agent_tokens(before).await
    }
}

#[async_trait::async_trait]
impl longshore::core::AuditStore for LostClaimReply {
    async fn record_audit(
        &self,
        entry: &longshore::core::NewAuditEntry,
    ) -> Result<(), longshore::StoreError> {
        self.inner.record_audit(entry).await
    }

    async fn audit_entries(
        &self,
        limit: i64,
        before: Option<Uuid>,
    ) -> Result<Vec<longshore::core::AuditEntry>, longshore::StoreError> {
        self.inner.audit_entries(limit, before).await
    }

    async fn purge_audit(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.purge_audit(older_than, limit).await
    }
}

conformance! {
    #[tokio::test]
    async fn a_log_line_with_a_nul_byte_is_stored_and_blocks_nothing(db) {
        let id = db.enqueue_one(common::task("binary")).await;
        let registry = registry_with("binary", |_args, ctx: TaskContext| {
            ctx.info("body: \u{0}\u{1}PNG");
            async { Ok(()) }
        });
        let worker = db.worker(registry, quick_config());
        common::wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        let logs = db.store.logs(id).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "body: \u{FFFD}\u{1}PNG");
    }

    #[tokio::test]
    async fn a_running_task_deleted_by_hand_blocks_nothing(db) {
        let doomed = db.enqueue_one(common::task("slow")).await;
        let (release, released) = tokio::sync::watch::channel(false);
        let registry = registry_with("slow", move |_args, ctx: TaskContext| {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|go| *go).await;
                ctx.info("finishing after the row is gone");
                Ok(())
            }
        });
        let worker = db.worker(registry, quick_config());
        common::wait_state(&db, doomed, TaskState::Running).await;
        db.delete_task(doomed).await;
        release.send(true).unwrap();
        // Later tasks still run and are recorded.
        let later = db.enqueue(tasks("slow", 5)).await;
        for id in later {
            common::wait_state(&db, id, TaskState::Succeeded).await;
        }
        worker.shutdown().await.unwrap();
        assert_eq!(db.total().await, 5);
    }

    #[tokio::test]
    async fn a_claim_whose_reply_is_lost_goes_back_to_the_queue_at_once(db) {
        let mut one_try = common::task("once");
        one_try.max_attempts = 1;
        let id = db.enqueue_one(one_try).await;
        let runs = Runs::new();
        let store = std::sync::Arc::new(LostClaimReply {
            inner: db.store.clone(),
            armed: std::sync::atomic::AtomicBool::new(true),
        });
        let config = WorkerConfig {
            // Long enough that a lease expiry cannot explain a success.
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(20),
            ..quick_config()
        };
        let worker = common::start_worker(store, common::counting_registry("once", &runs), config);
        let done = common::wait_state(&db, id, TaskState::Succeeded).await;
        worker.shutdown().await.unwrap();
        assert_eq!(runs.of(id), 1, "it ran exactly once");
        // The lost claim's execution did not count as an attempt, and
        // max_attempts did not change.
        assert_eq!(
            (done.attempt, done.max_attempts, done.execution),
            (1, 1, 2)
        );
    }

    #[tokio::test]
    async fn release_untracked_touches_only_the_owners_untracked_tasks(db) {
        db.enqueue(tasks("t", 3)).await;
        let claim = |owner: &str, limit| longshore::core::Claim {
            owner: owner.to_owned(),
            queues: vec!["default".to_owned()],
            limit,
            lease: Duration::from_secs(60),
            capped: false,
            pool: None,
        };
        let mine = db.store.claim(&claim("me", 2)).await.unwrap();
        let theirs = db.store.claim(&claim("them", 1)).await.unwrap();
        let (tracked, lost) = (mine[0].id, mine[1].id);

        let released = db.store.release_untracked("me", &[tracked]).await.unwrap();
        assert_eq!(released, 1);
        let lost = db.task(lost).await;
        assert_eq!(lost.state, TaskState::Queued);
        assert_eq!(lost.lease_owner, None);
        assert_eq!(
            (lost.attempt, lost.max_attempts, lost.execution),
            (0, 20, 1)
        );
        assert_eq!(db.task(tracked).await.state, TaskState::Running);
        assert_eq!(
            db.task(theirs[0].id).await.lease_owner.as_deref(),
            Some("them")
        );
    }

    #[tokio::test]
    async fn a_released_claim_an_operator_cancelled_meanwhile_is_cancelled_not_queued(db) {
        let id = db.enqueue_one(common::task("t")).await;
        let claim = longshore::core::Claim {
            owner: "me".to_owned(),
            queues: vec!["default".to_owned()],
            limit: 1,
            lease: Duration::from_secs(60),
            capped: false,
            pool: None,
        };
        assert_eq!(db.store.claim(&claim).await.unwrap().len(), 1);
        assert_eq!(
            db.store.cancel(id).await.unwrap(),
            longshore::core::CancelResult::Signalled
        );
        assert_eq!(db.store.release_untracked("me", &[]).await.unwrap(), 1);
        let task = db.task(id).await;
        assert_eq!(task.state, TaskState::Cancelled);
        assert!(task.finished_at.is_some());
    }
}

// ---------------------------------------------------------------- PostgreSQL only
//
// Tests of behaviour that only exists on PostgreSQL; not part of the
// conformance suite.

// PostgreSQL only: cuts the store's connections (pg_terminate_backend).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_recovers_when_its_database_connections_are_cut() {
    let db = TestDb::postgres().await;
    let ids: HashSet<Uuid> = db.enqueue(tasks("short", 300)).await.into_iter().collect();
    let runs = Runs::new();
    let seen = runs.clone();
    let registry = registry_with("short", move |_args, ctx: TaskContext| {
        seen.record(ctx.task_id());
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        }
    });
    let config = WorkerConfig {
        concurrency: 4,
        ..quick_config()
    };
    let worker = db.worker(registry, config);

    // Cut every connection, several times, while the worker is in the
    // middle of the backlog; each cut after the worker made progress again.
    let mut ended = 0;
    for cut in 1..=5_i64 {
        wait_for(
            "the worker to make progress",
            Duration::from_secs(20),
            || async { (db.count(TaskState::Succeeded).await >= 30 * cut).then_some(()) },
        )
        .await;
        ended += db.pg().terminate_other_backends().await;
    }
    assert!(ended > 0, "no backend was terminated");
    assert!(
        db.count(TaskState::Succeeded).await < 300,
        "the cuts came too late to test anything"
    );

    wait_count(&db, TaskState::Succeeded, 300, Duration::from_secs(30)).await;
    worker.shutdown().await.unwrap();

    assert_eq!(db.total().await, 300, "a task was lost");
    assert_eq!(db.count(TaskState::Running).await, 0);
    let ran = runs.snapshot();
    for id in &ids {
        assert!(
            ran.get(id).copied().unwrap_or(0) >= 1,
            "task {id} never ran"
        );
    }
    // Every recorded success belongs to an execution that ran here.
    let stored: Vec<(Uuid, i32)> = db.attempts().await;
    for (id, attempt) in stored {
        assert!(attempt >= 1, "task {id} succeeded without an execution");
    }
}

// PostgreSQL only: a PL/pgSQL trigger makes the database refuse a write.
#[tokio::test]
async fn a_result_the_database_refuses_does_not_hold_back_the_others() {
    let db = TestDb::postgres().await;
    // Make recording the success of `poison` tasks fail, every time.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON longshore_tasks FOR EACH ROW
         WHEN (OLD.actor = 'poison' AND NEW.state = 'succeeded') EXECUTE FUNCTION refuse();",
    )
    .execute(&db.pg().observer)
    .await
    .unwrap();
    let runs = Runs::new();
    let mut registry = common::counting_registry("fine", &runs);
    registry.register_actor(
        "poison",
        common::FnActor(|_args, _ctx: TaskContext| async { Ok(()) }),
    );
    let poison = db.enqueue_one(common::task("poison")).await;
    let fine = db.enqueue(tasks("fine", 40)).await;
    let worker = db.worker(registry, quick_config());
    wait_count(&db, TaskState::Succeeded, 40, Duration::from_secs(30)).await;
    worker.shutdown().await.unwrap();
    assert!(fine.iter().all(|id| runs.of(*id) >= 1));
    // The refused result was not recorded: the task is still active, to be
    // rescued when its lease expires.
    assert!(!db.task(poison).await.state.is_terminal());
}

#[async_trait::async_trait]
impl longshore::core::OperationStore for LostClaimReply {
    async fn create_operation(
        &self,
        operation: &longshore::core::NewOperation,
    ) -> Result<(), longshore::StoreError> {
        self.inner.create_operation(operation).await
    }

    async fn operation(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<longshore::core::Operation>, longshore::StoreError> {
        self.inner.operation(id).await
    }

    async fn operations(
        &self,
        limit: i64,
    ) -> Result<Vec<longshore::core::Operation>, longshore::StoreError> {
        self.inner.operations(limit).await
    }

    async fn operation_progress(
        &self,
        id: uuid::Uuid,
        seen: i64,
        done: i64,
    ) -> Result<bool, longshore::StoreError> {
        self.inner.operation_progress(id, seen, done).await
    }

    async fn finish_operation(
        &self,
        id: uuid::Uuid,
        state: longshore::core::OperationState,
        error: Option<&str>,
    ) -> Result<(), longshore::StoreError> {
        self.inner.finish_operation(id, state, error).await
    }

    async fn cancel_operation(&self, id: uuid::Uuid) -> Result<bool, longshore::StoreError> {
        self.inner.cancel_operation(id).await
    }

    async fn purge_operations(
        &self,
        older_than: std::time::Duration,
    ) -> Result<u64, longshore::StoreError> {
        self.inner.purge_operations(older_than).await
    }
}
