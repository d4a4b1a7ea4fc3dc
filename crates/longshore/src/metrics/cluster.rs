//! The cluster's gauges (queue depths, running tasks, workers), read from
//! the store when `/metrics` is scraped, at most once per
//! [`CLUSTER_TTL`], so that scrapes from several collectors cost one read.

use super::*;

/// How long one reading of the cluster gauges is served: scrapes within
/// this time of the last reading read nothing from the database.
pub const CLUSTER_TTL: Duration = Duration::from_secs(5);

/// The longest a reading of the cluster gauges may take; past it the
/// scrape answers without them (and `longshore_cluster_read_ok` says 0).
const CLUSTER_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The states the depth gauges report, in life order.
const ACTIVE_STATES: [TaskState; 3] = [TaskState::Scheduled, TaskState::Queued, TaskState::Running];

/// The cluster gauges: read from the store at scrape time, kept for a TTL.
pub(super) struct Cluster {
    store: Arc<dyn Store>,
    ttl: Duration,
    /// Held while reading, so that concurrent scrapes share one reading.
    reading: tokio::sync::Mutex<()>,
    pub(super) latest: Mutex<Latest>,
}

#[derive(Default)]
pub(super) struct Latest {
    pub(super) at: Option<Instant>,
    /// `None`: the last reading failed.
    view: Option<ClusterView>,
    /// Every queue seen since start, so that a queue that empties shows
    /// zeros rather than vanishing.
    queues: BTreeSet<String>,
}

struct ClusterView {
    /// By queue, the counts of [`ACTIVE_STATES`] in their order.
    depths: BTreeMap<String, [i64; 3]>,
    paused: BTreeSet<String>,
    /// Live worker nodes (agents not counted).
    workers: i64,
    /// By pool: its connected agents and the running tasks of its queues.
    pools: BTreeMap<String, (i64, i64)>,
}

impl Cluster {
    pub(super) fn new(store: Arc<dyn Store>, ttl: Duration) -> Cluster {
        Cluster {
            store,
            ttl,
            reading: tokio::sync::Mutex::new(()),
            latest: Mutex::new(Latest::default()),
        }
    }

    fn fresh(&self) -> bool {
        self.latest
            .lock()
            .ok()
            .and_then(|latest| latest.at)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Reads the cluster gauges unless the last reading is fresh. A failed
    /// reading is kept for the TTL too: a database in trouble is not asked
    /// more often because it is slow.
    pub(super) async fn refresh(&self) {
        if self.fresh() {
            return;
        }
        let _reading = self.reading.lock().await;
        if self.fresh() {
            // Another scrape read while this one waited.
            return;
        }
        let store = &self.store;
        let read = async {
            tokio::try_join!(
                store.queue_depths(),
                store.queue_settings(),
                store.workers(),
                store.pools()
            )
        };
        let view = match tokio::time::timeout(CLUSTER_READ_TIMEOUT, read).await {
            Ok(Ok((rows, settings, workers, pools))) => {
                let pools = crate::ops::agents::pools_now(pools, &workers, &rows)
                    .into_iter()
                    .map(|now| (now.pool.name, (now.live_agents, now.running_now)))
                    .collect();
                let depths: BTreeMap<String, [i64; 3]> =
                    rows.into_iter().fold(BTreeMap::new(), |mut depths, row| {
                        if let Some(i) = ACTIVE_STATES.iter().position(|s| *s == row.state) {
                            depths.entry(row.key).or_insert([0; 3])[i] += row.count;
                        }
                        depths
                    });
                Some(ClusterView {
                    paused: settings
                        .into_iter()
                        .filter(|q| q.paused)
                        .map(|q| q.name)
                        .collect(),
                    workers: i64::try_from(
                        workers
                            .iter()
                            .filter(|w| w.presence.agent.is_none())
                            .count(),
                    )
                    .unwrap_or(i64::MAX),
                    depths,
                    pools,
                })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the cluster gauges for /metrics");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "reading the cluster gauges for /metrics timed out after {CLUSTER_READ_TIMEOUT:?}"
                );
                None
            }
        };
        if let Ok(mut latest) = self.latest.lock() {
            if let Some(view) = &view {
                latest.queues.extend(view.depths.keys().cloned());
                latest.queues.extend(view.paused.iter().cloned());
            }
            latest.view = view;
            latest.at = Some(Instant::now());
        }
    }
}

impl Collector for Cluster {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Ok(latest) = self.latest.lock() else {
            return Ok(());
        };
        let ok = ConstGauge::new(i64::from(latest.view.is_some()));
        ok.encode(encoder.encode_descriptor(
            "cluster_read_ok",
            "1 when the last reading of the cluster gauges (queue depth, paused queues, live workers) worked.",
            None,
            MetricType::Gauge,
        )?)?;
        let Some(view) = &latest.view else {
            return Ok(());
        };
        let mut depth = encoder.encode_descriptor(
            "queue_depth",
            "Active tasks of each queue by state (scheduled, queued, running), across the cluster.",
            None,
            MetricType::Gauge,
        )?;
        for queue in &latest.queues {
            let counts = view.depths.get(queue).copied().unwrap_or_default();
            for (state, count) in ACTIVE_STATES.iter().zip(counts) {
                let labels = [("queue", queue.as_str()), ("state", state.as_str())];
                ConstGauge::new(count).encode(depth.encode_family(&labels)?)?;
            }
        }
        let mut paused = encoder.encode_descriptor(
            "queue_paused",
            "1 while the queue is paused for every node.",
            None,
            MetricType::Gauge,
        )?;
        for queue in &latest.queues {
            let labels = [("queue", queue.as_str())];
            ConstGauge::new(i64::from(view.paused.contains(queue)))
                .encode(paused.encode_family(&labels)?)?;
        }
        ConstGauge::new(view.workers).encode(encoder.encode_descriptor(
            "workers_live",
            "Worker nodes of the cluster seen alive within a lease (agents are counted by longshore_pool_agents).",
            None,
            MetricType::Gauge,
        )?)?;
        let mut agents = encoder.encode_descriptor(
            "pool_agents",
            "Agents of each pool connected now, to any gateway of the cluster.",
            None,
            MetricType::Gauge,
        )?;
        for (pool, (count, _)) in &view.pools {
            ConstGauge::new(*count).encode(agents.encode_family(&[("pool", pool.as_str())])?)?;
        }
        let mut running = encoder.encode_descriptor(
            "pool_running",
            "Tasks of each pool's queues running now, across the cluster.",
            None,
            MetricType::Gauge,
        )?;
        for (pool, (_, count)) in &view.pools {
            ConstGauge::new(*count).encode(running.encode_family(&[("pool", pool.as_str())])?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("engine", &self.store.engine())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
