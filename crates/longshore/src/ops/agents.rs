//! Agent pools, agent tokens and connected agents, as the CLI, the API
//! and the dashboard read and change them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use longshore_core::{
    AgentTokenInfo, Pool, StatsRow, Store, StoreError, TaskState, TokenSecret, WorkerInfo,
};

use super::OpError;

/// How long an agent token lasts unless told otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Creates an agent token for `pool` that expires after `lifetime`
/// (`None`: never); returns it with its secret, which is not stored.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    pool: &str,
    lifetime: Option<Duration>,
) -> Result<(AgentTokenInfo, TokenSecret), OpError> {
    let expires_at = match lifetime {
        None => None,
        Some(lifetime) => Some(
            chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|lifetime| Utc::now().checked_add_signed(lifetime))
                .ok_or_else(|| {
                    longshore_core::StoreError::InvalidInput(
                        "the token's lifetime is too long; use `never` for no expiry".into(),
                    )
                })?,
        ),
    };
    let secret = TokenSecret::generate()?;
    let token = store
        .create_agent_token(name, pool, &secret.hash(), expires_at)
        .await?;
    Ok((token, secret))
}

/// An agent connected now (to any gateway of the cluster), as operators
/// list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedAgent {
    /// Its id, the lease owner of its tasks.
    pub id: String,
    /// What it is written in, as it says (`rust`, `python`).
    pub kind: String,
    /// The pool it serves.
    pub pool: String,
    /// The labels it offers.
    pub labels: Vec<String>,
    /// Tasks it runs now (counted from the tasks it holds).
    pub running: i32,
    /// Its slots.
    pub slots: i32,
    /// The version of its SDK.
    pub version: String,
    /// An operator asked it to drain.
    pub draining: bool,
    /// When its session began.
    pub connected_at: DateTime<Utc>,
    /// When its gateway last recorded it as alive.
    pub last_seen: DateTime<Utc>,
}

impl ConnectedAgent {
    /// The agent a live node is, if it is one.
    pub fn from_worker(worker: WorkerInfo) -> Option<ConnectedAgent> {
        let agent = worker.presence.agent?;
        Some(ConnectedAgent {
            kind: longshore_core::pool::agent_language(&worker.presence.host)
                .unwrap_or("unknown")
                .to_owned(),
            id: worker.presence.id,
            pool: agent.pool,
            labels: agent.labels,
            running: worker.presence.running,
            slots: worker.presence.concurrency,
            version: worker.presence.version,
            draining: worker.drain_requested,
            connected_at: worker.started_at,
            last_seen: worker.last_seen_at,
        })
    }
}

/// The agents connected now, by id.
pub async fn connected(store: &dyn Store) -> Result<Vec<ConnectedAgent>, OpError> {
    Ok(store
        .workers()
        .await?
        .into_iter()
        .filter_map(ConnectedAgent::from_worker)
        .collect())
}

/// Asks the connected agent `id` to drain (its gateway tells it within a
/// heartbeat); returns it as it was. Refuses an id no agent has and a
/// worker node's id (a worker drains on SIGTERM).
pub async fn drain(store: &dyn Store, id: &str) -> Result<ConnectedAgent, OpError> {
    let node = store
        .workers()
        .await?
        .into_iter()
        .find(|w| w.presence.id == id)
        .ok_or_else(|| StoreError::AgentNotFound(id.to_owned()))?;
    let Some(mut agent) = ConnectedAgent::from_worker(node) else {
        return Err(OpError::Invalid(format!(
            "`{id}` is a worker node, not an agent: send its process SIGTERM to drain it"
        )));
    };
    if !store.request_drain(id).await? {
        // It disconnected between the two reads.
        return Err(StoreError::AgentNotFound(id.to_owned()).into());
    }
    agent.draining = true;
    Ok(agent)
}

/// A pool and what it does now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// The pool.
    pub pool: Pool,
    /// Its agents connected now.
    pub live_agents: i64,
    /// Tasks of its queues running now.
    pub running_now: i64,
    /// Tasks of its queues queued now.
    pub pending_now: i64,
}

/// Every pool with its live agents and its queues' running and queued
/// tasks, by name: three reads (pools, live nodes, queue depths), none of
/// which walks the tasks.
pub async fn pool_status(store: &dyn Store) -> Result<Vec<PoolStatus>, OpError> {
    let (pools, workers, depths) =
        tokio::try_join!(store.pools(), store.workers(), store.queue_depths())?;
    Ok(pools_now(pools, &workers, &depths))
}

/// Each pool with its live agents among `workers` and the running and
/// queued tasks of its queues in `depths` (as
/// [`CountStore::queue_depths`](longshore_core::store::CountStore::queue_depths)
/// reports them).
pub fn pools_now(pools: Vec<Pool>, workers: &[WorkerInfo], depths: &[StatsRow]) -> Vec<PoolStatus> {
    pools
        .into_iter()
        .map(|pool| {
            let depth = |state: TaskState| -> i64 {
                depths
                    .iter()
                    .filter(|row| row.state == state && pool.queues.contains(&row.key))
                    .map(|row| row.count)
                    .sum()
            };
            PoolStatus {
                live_agents: workers
                    .iter()
                    .filter(|w| {
                        w.presence
                            .agent
                            .as_ref()
                            .is_some_and(|a| a.pool == pool.name)
                    })
                    .count()
                    .try_into()
                    .unwrap_or(i64::MAX),
                running_now: depth(TaskState::Running),
                pending_now: depth(TaskState::Queued),
                pool,
            }
        })
        .collect()
}
