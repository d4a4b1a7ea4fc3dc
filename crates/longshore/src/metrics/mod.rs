//! Prometheus metrics, in the OpenMetrics text format (prometheus-client).
//!
//! One [`Metrics`] handle per process, cheap to clone, owns the registry.
//! Hand it to the worker ([`WorkerConfig::metrics`]) and to the client
//! ([`Client::with_metrics`]): they count what *this process* does —
//! tasks enqueued, started, and how each execution ended, by actor and
//! queue; execution durations; running tasks; slots; lease rescues and the
//! cluster roles it holds. [`Metrics::with_cluster`] adds gauges that
//! describe the whole cluster, read from the database when scraped — the
//! active tasks of each queue by state, paused queues, live workers —
//! through [`CountStore::queue_depths`](crate::CountStore::queue_depths) (partial indexes only, never a scan of
//! the table), and cached for [`CLUSTER_TTL`] so that frequent scrapes
//! cost nothing more. Finished tasks are not gauged from the table at all:
//! the counters cover them, per process.
//!
//! Serve [`Metrics::encode`] with [`Metrics::CONTENT_TYPE`]; `longshore
//! serve` does at `/metrics` (and `longshore worker --metrics-addr`).
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn longshore::Store>) -> Result<(), longshore::Error> {
//! use longshore::{Client, Registry, Worker, WorkerConfig};
//! use longshore::metrics::Metrics;
//!
//! let metrics = Metrics::with_cluster(store.clone());
//! let client = Client::new(store.clone()).with_metrics(metrics.clone());
//! let config = WorkerConfig { metrics: Some(metrics.clone()), ..WorkerConfig::default() };
//! let worker = Worker::new(store, Registry::new(), config)?.start();
//! // In the application's HTTP handler for GET /metrics:
//! let text = metrics.encode().await.expect("metrics encode");
//! # Ok(()) }
//! ```
//!
//! [`WorkerConfig::metrics`]: crate::WorkerConfig::metrics
//! [`Client::with_metrics`]: crate::Client::with_metrics

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longshore_core::{EnqueueResult, NewTask, Store, TaskState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
mod cluster;

pub use cluster::CLUSTER_TTL;
use cluster::Cluster;
use tokio::time::Instant;

/// Upper bounds of the execution duration buckets, in seconds: from a few
/// milliseconds (a no-op) to the default time limit and past it.
const DURATION_BUCKETS: [f64; 17] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0,
];

/// The series of one actor in one queue. Its strings are shared: the
/// executor builds them once per execution, for the handler's context too.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TaskLabels {
    pub(crate) actor: Arc<str>,
    pub(crate) queue: Arc<str>,
}

impl TaskLabels {
    pub(crate) fn new(actor: &str, queue: &str) -> TaskLabels {
        TaskLabels {
            actor: Arc::from(actor),
            queue: Arc::from(queue),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

/// An HTTP API request: its method, its route's template (not the path:
/// `/api/v1/tasks/{id}`, so that ids do not make series) and the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// Upper bounds of the API request duration buckets, in seconds.
const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Upper bounds of the gathered enqueue buckets, in tasks per statement
/// (the most a statement carries is 1000).
const GATHERED_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

type TaskCounters = Family<TaskLabels, Counter>;

/// The metrics of one process. Cheap to clone: every clone counts into the
/// same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    enqueued: TaskCounters,
    started: TaskCounters,
    succeeded: TaskCounters,
    failed: TaskCounters,
    retried: TaskCounters,
    cancelled: TaskCounters,
    released: TaskCounters,
    running: Family<TaskLabels, Gauge>,
    duration: Family<TaskLabels, Histogram>,
    rescued: Counter,
    slots: Gauge,
    prefetch: Gauge,
    leader: Family<RoleLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram>,
    gathered: Histogram,
    cluster: Option<Arc<Cluster>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("cluster", &self.inner.cluster.is_some())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The content type of [`Metrics::encode`]'s text, for the `/metrics`
    /// answer.
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// This process's counters and gauges only.
    pub fn new() -> Metrics {
        Metrics::build(None)
    }

    /// This process's metrics and the cluster gauges read from `store`
    /// when scraped (at most once per [`CLUSTER_TTL`]).
    pub fn with_cluster(store: Arc<dyn Store>) -> Metrics {
        Metrics::with_cluster_ttl(store, CLUSTER_TTL)
    }

    pub(crate) fn with_cluster_ttl(store: Arc<dyn Store>, ttl: Duration) -> Metrics {
        Metrics::build(Some(Arc::new(Cluster::new(store, ttl))))
    }

    fn build(cluster: Option<Arc<Cluster>>) -> Metrics {
        let mut registry = Registry::with_prefix("longshore");
        let mut counters = |name: &str, help: &str| {
            let family = TaskCounters::default();
            registry.register(name, help, family.clone());
            family
        };
        let enqueued = counters(
            "tasks_enqueued",
            "Tasks this process enqueued (inserted; refused duplicates are not counted)",
        );
        let started = counters("tasks_started", "Executions this process started");
        let succeeded = counters(
            "tasks_succeeded",
            "Executions this process recorded as succeeded",
        );
        let failed = counters(
            "tasks_failed",
            "Executions this process recorded as failed for good (attempts spent or a fatal error)",
        );
        let retried = counters(
            "tasks_retried",
            "Executions this process recorded as failed with a retry to come",
        );
        let cancelled = counters(
            "tasks_cancelled",
            "Executions this process recorded as cancelled by an operator",
        );
        let released = counters(
            "tasks_released",
            "Executions interrupted by this process's shutdown, their tasks returned to the queue",
        );
        let running = Family::<TaskLabels, Gauge>::default();
        registry.register(
            "tasks_running",
            "Executions running in this process now",
            running.clone(),
        );
        let duration = Family::<TaskLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "task_duration_seconds",
            "How long executions in this process ran, from start to result",
            duration.clone(),
        );
        let rescued = Counter::default();
        registry.register(
            "lease_rescues",
            "Running tasks whose lease expired that this process, as maintenance leader, returned to the queue (or failed, attempts spent)",
            rescued.clone(),
        );
        let slots = Gauge::default();
        registry.register(
            "worker_slots",
            "Execution slots (concurrency) of the workers running in this process",
            slots.clone(),
        );
        let prefetch = Gauge::default();
        registry.register(
            "worker_prefetch",
            "Tasks the workers running in this process may claim ahead of their free slots now (with prefetch auto, as last measured)",
            prefetch.clone(),
        );
        let leader = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "leader",
            "1 while a worker of this process holds the cluster role (maintenance, scheduler)",
            leader.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP API requests this process answered, by method, route and status",
            requests.clone(),
        );
        let request_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(REQUEST_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "How long this process took to answer HTTP API requests, by method and route",
            request_duration.clone(),
        );
        let gathered = Histogram::new(GATHERED_BUCKETS);
        registry.register(
            "enqueue_gathered_tasks",
            "Tasks per insert that this process's clients wrote for concurrent single-task enqueues (1: nobody else was waiting)",
            gathered.clone(),
        );
        if let Some(cluster) = &cluster {
            registry.register_collector(Box::new(cluster.clone()));
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                enqueued,
                started,
                succeeded,
                failed,
                retried,
                cancelled,
                released,
                running,
                duration,
                rescued,
                slots,
                prefetch,
                leader,
                requests,
                request_duration,
                gathered,
                cluster,
            }),
        }
    }

    /// Counts one HTTP API request answered with `status` after
    /// `elapsed`. `route` is the matched route's template (`unmatched`
    /// when none matched); methods other than the usual ones are counted
    /// as `other`, so that neither can make series without bound.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.inner
            .request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`.
    /// With cluster gauges, reads them first unless the last reading is
    /// younger than [`CLUSTER_TTL`]; concurrent scrapes share one reading.
    pub async fn encode(&self) -> Result<String, fmt::Error> {
        if let Some(cluster) = &self.inner.cluster {
            cluster.refresh().await;
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }

    /// Resolves the enqueue counters of `tasks` before they are handed to
    /// [`TaskStore::enqueue`](crate::TaskStore::enqueue) (which takes them); [`EnqueueTally::record`]
    /// then counts those the store inserted. One label lookup per run of
    /// tasks with the same actor and queue, not one per task.
    pub fn enqueue_tally(&self, tasks: &[NewTask]) -> EnqueueTally {
        let mut runs: Vec<(Counter, usize)> = Vec::new();
        let mut last: Option<(&str, &str)> = None;
        for task in tasks {
            let key = (task.actor.as_str(), task.queue.as_str());
            match runs.last_mut() {
                Some((_, n)) if last == Some(key) => *n += 1,
                _ => {
                    let labels = TaskLabels::new(key.0, key.1);
                    runs.push((self.inner.enqueued.get_or_create_owned(&labels), 1));
                    last = Some(key);
                }
            }
        }
        EnqueueTally { runs }
    }

    /// Counts one insert of gathered enqueues, carrying `tasks` tasks.
    pub(crate) fn gathered(&self, tasks: usize) {
        self.inner.gathered.observe(tasks as f64);
    }

    /// Counts one enqueued task.
    pub(crate) fn enqueued_one(&self, actor: &str, queue: &str) {
        self.inner
            .enqueued
            .get_or_create(&TaskLabels::new(actor, queue))
            .inc();
    }

    /// Counts a started execution: it is running until the returned guard
    /// is dropped, which observes its duration.
    pub(crate) fn execution(&self, labels: &TaskLabels) -> Running {
        self.inner.started.get_or_create(labels).inc();
        let running = self.inner.running.get_or_create_owned(labels);
        running.inc();
        Running {
            running,
            duration: self.inner.duration.get_or_create_owned(labels),
            since: Instant::now(),
        }
    }

    /// Counts an execution whose result the store recorded, by the state
    /// the result moved its task to.
    pub(crate) fn recorded(&self, labels: &TaskLabels, state: TaskState) {
        let family = match state {
            TaskState::Succeeded => &self.inner.succeeded,
            TaskState::Failed => &self.inner.failed,
            // Only a failure with attempts left goes back to `scheduled`.
            TaskState::Scheduled => &self.inner.retried,
            TaskState::Cancelled => &self.inner.cancelled,
            // Only a release at shutdown goes back to `queued`.
            TaskState::Queued => &self.inner.released,
            TaskState::Running => return,
        };
        family.get_or_create(labels).inc();
    }

    /// Counts tasks rescued from expired leases.
    pub(crate) fn rescued(&self, n: u64) {
        self.inner.rescued.inc_by(n);
    }

    /// Adds a worker's slots until the returned guard is dropped.
    pub(crate) fn slots(&self, n: usize) -> Share {
        Share::new(&self.inner.slots, n)
    }

    /// Adds a worker's prefetch until the returned guard is dropped;
    /// [`Share::set`] moves it.
    pub(crate) fn prefetch(&self, n: usize) -> Share {
        Share::new(&self.inner.prefetch, n)
    }

    /// The gauge of cluster role `role` (shown as 0 from now on).
    pub(crate) fn role(&self, role: &'static str) -> Gauge {
        self.inner.leader.get_or_create_owned(&RoleLabels { role })
    }
}

/// The counters of tasks about to be enqueued (see
/// [`Metrics::enqueue_tally`]).
#[derive(Debug)]
#[must_use = "a tally counts nothing until recorded"]
pub struct EnqueueTally {
    runs: Vec<(Counter, usize)>,
}

impl EnqueueTally {
    /// Counts the inserted ones of `results`, which the store returned for
    /// the tallied tasks, in their order.
    pub fn record(self, results: &[EnqueueResult]) {
        let mut results = results.iter();
        for (counter, n) in self.runs {
            let inserted = results.by_ref().take(n).filter(|r| r.inserted).count();
            if inserted > 0 {
                counter.inc_by(inserted as u64);
            }
        }
    }
}

/// One execution counted as running (see [`Metrics::execution`]).
pub(crate) struct Running {
    running: Gauge,
    duration: Histogram,
    since: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.running.dec();
        self.duration.observe(self.since.elapsed().as_secs_f64());
    }
}

/// One worker's part of a gauge that adds up the workers of a process
/// (`longshore_worker_slots`, `longshore_worker_prefetch`): counted until
/// dropped.
pub(crate) struct Share {
    gauge: Gauge,
    n: AtomicI64,
}

impl Share {
    fn new(gauge: &Gauge, n: usize) -> Share {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        gauge.inc_by(n);
        Share {
            gauge: gauge.clone(),
            n: AtomicI64::new(n),
        }
    }

    /// This worker's part is `n` from now on.
    pub(crate) fn set(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let old = self.n.swap(n, Ordering::Relaxed);
        self.gauge.inc_by(n - old);
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.gauge.dec_by(self.n.load(Ordering::Relaxed));
    }
}

/// Whether this worker holds a cluster role, as `longshore_leader` shows
/// it; its share of the gauge goes when it is dropped.
pub(crate) struct RoleGauge {
    gauge: Option<Gauge>,
    held: bool,
}

impl RoleGauge {
    pub(crate) fn new(metrics: Option<&Metrics>, role: &'static str) -> RoleGauge {
        RoleGauge {
            gauge: metrics.map(|m| m.role(role)),
            held: false,
        }
    }

    pub(crate) fn set(&mut self, held: bool) {
        if held == self.held {
            return;
        }
        self.held = held;
        if let Some(gauge) = &self.gauge {
            if held {
                gauge.inc();
            } else {
                gauge.dec();
            }
        }
    }
}

impl Drop for RoleGauge {
    fn drop(&mut self) {
        self.set(false);
    }
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use super::*;

    use longshore_core::Claim;
    use longshore_sqlite::{SqliteOptions, SqliteStore};

    /// The value of the one sample `series` (name and labels as printed).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().expect("a number"))
    }

    fn task_series(name: &str, actor: &str, queue: &str) -> String {
        format!("longshore_{name}{{actor=\"{actor}\",queue=\"{queue}\"}}")
    }

    fn new_task(actor: &str, queue: &str) -> NewTask {
        let mut task = NewTask::new(actor, serde_json::json!({}));
        task.queue = queue.to_owned();
        task
    }

    #[tokio::test]
    async fn executions_are_counted_by_actor_and_queue_and_by_outcome() {
        let metrics = Metrics::new();
        let mail = TaskLabels::new("send", "mail");
        let reports = TaskLabels::new("build", "reports");
        let running = metrics.execution(&mail);
        let _other = metrics.execution(&reports);
        let text = metrics.encode().await.unwrap();
        assert_eq!(
            sample(&text, &task_series("tasks_started_total", "send", "mail")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &task_series("tasks_running", "send", "mail")),
            Some(1.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");

        drop(running);
        for state in [
            TaskState::Succeeded,
            TaskState::Scheduled,
            TaskState::Scheduled,
            TaskState::Failed,
            TaskState::Cancelled,
            TaskState::Queued,
        ] {
            metrics.recorded(&mail, state);
        }
        metrics.recorded(&reports, TaskState::Running);
        let text = metrics.encode().await.unwrap();
        for (name, want) in [
            ("tasks_running", 0.0),
            ("tasks_succeeded_total", 1.0),
            ("tasks_retried_total", 2.0),
            ("tasks_failed_total", 1.0),
            ("tasks_cancelled_total", 1.0),
            ("tasks_released_total", 1.0),
            ("task_duration_seconds_count", 1.0),
        ] {
            assert_eq!(
                sample(&text, &task_series(name, "send", "mail")),
                Some(want),
                "{name}: {text}"
            );
        }
        // The other series is apart, and `running` is no outcome.
        assert_eq!(
            sample(&text, &task_series("tasks_running", "build", "reports")),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                &task_series("tasks_succeeded_total", "build", "reports")
            ),
            None
        );
    }

    #[tokio::test]
    async fn enqueues_count_only_inserted_tasks_per_actor_and_queue() {
        let metrics = Metrics::new();
        let tasks = vec![
            new_task("a", "q"),
            new_task("a", "q"),
            new_task("b", "q"),
            new_task("a", "q"),
            new_task("a", "other"),
        ];
        let tally = metrics.enqueue_tally(&tasks);
        let results: Vec<EnqueueResult> = tasks
            .iter()
            .zip([true, false, true, true, false])
            .map(|(t, inserted)| EnqueueResult { id: t.id, inserted })
            .collect();
        tally.record(&results);
        metrics.enqueued_one("b", "q");
        let text = metrics.encode().await.unwrap();
        let enqueued =
            |actor, queue| sample(&text, &task_series("tasks_enqueued_total", actor, queue));
        assert_eq!(enqueued("a", "q"), Some(2.0));
        assert_eq!(enqueued("b", "q"), Some(2.0));
        // A refused duplicate counts nothing (its series reads 0).
        assert_eq!(enqueued("a", "other"), Some(0.0));
    }

    #[tokio::test]
    async fn slots_and_roles_add_up_over_the_workers_of_a_process_and_go_with_them() {
        let metrics = Metrics::new();
        let one = metrics.slots(4);
        let two = metrics.slots(16);
        let mut first = RoleGauge::new(Some(&metrics), "maintenance");
        let mut second = RoleGauge::new(Some(&metrics), "maintenance");
        let _scheduler = RoleGauge::new(Some(&metrics), "scheduler");
        first.set(true);
        first.set(true);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_slots"), Some(20.0));
        assert_eq!(
            sample(&text, "longshore_leader{role=\"maintenance\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "longshore_leader{role=\"scheduler\"}"),
            Some(0.0)
        );

        first.set(false);
        second.set(true);
        drop(one);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_slots"), Some(16.0));
        assert_eq!(
            sample(&text, "longshore_leader{role=\"maintenance\"}"),
            Some(1.0)
        );
        drop(second);
        drop(two);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_slots"), Some(0.0));

        // A prefetch adds up the same way, and moves while counted.
        let fixed = metrics.prefetch(48);
        let auto = metrics.prefetch(0);
        auto.set(12);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_prefetch"), Some(60.0));
        auto.set(3);
        drop(fixed);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_prefetch"), Some(3.0));
        drop(auto);
        let text = metrics.encode().await.unwrap();
        assert_eq!(sample(&text, "longshore_worker_prefetch"), Some(0.0));
        assert_eq!(
            sample(&text, "longshore_leader{role=\"maintenance\"}"),
            Some(0.0)
        );
        // Without metrics the gauge is a no-op.
        RoleGauge::new(None, "maintenance").set(true);
    }

    async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db"), &SqliteOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (dir, Arc::new(store))
    }

    fn depth(text: &str, queue: &str, state: &str) -> Option<f64> {
        sample(
            text,
            &format!("longshore_queue_depth{{queue=\"{queue}\",state=\"{state}\"}}"),
        )
    }

    #[tokio::test]
    async fn cluster_gauges_come_from_the_store_and_are_cached() {
        let (_dir, store) = sqlite().await;
        let mut later = new_task("noop", "mail");
        later.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        store
            .enqueue(vec![
                new_task("noop", "mail"),
                new_task("noop", "mail"),
                later,
            ])
            .await
            .unwrap();
        store
            .enqueue(vec![new_task("noop", "reports")])
            .await
            .unwrap();
        let claim = Claim {
            owner: "w".into(),
            queues: vec!["reports".into()],
            limit: 1,
            lease: Duration::from_secs(30),
            capped: false,
            pool: None,
        };
        assert_eq!(store.claim(&claim).await.unwrap().len(), 1);
        store.set_queue_paused("held", true).await.unwrap();

        let metrics = Metrics::with_cluster_ttl(store.clone(), Duration::from_secs(3600));
        let text = metrics.encode().await.unwrap();
        assert_eq!(
            sample(&text, "longshore_cluster_read_ok"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(depth(&text, "mail", "queued"), Some(2.0), "{text}");
        assert_eq!(depth(&text, "mail", "scheduled"), Some(1.0), "{text}");
        assert_eq!(depth(&text, "mail", "running"), Some(0.0), "{text}");
        assert_eq!(depth(&text, "reports", "running"), Some(1.0), "{text}");
        assert_eq!(depth(&text, "held", "queued"), Some(0.0), "{text}");
        assert_eq!(
            sample(&text, "longshore_queue_paused{queue=\"held\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "longshore_queue_paused{queue=\"mail\"}"),
            Some(0.0)
        );
        assert_eq!(sample(&text, "longshore_workers_live"), Some(0.0));

        // Within the TTL, a scrape reads nothing: the new task is not seen.
        store.enqueue(vec![new_task("noop", "mail")]).await.unwrap();
        let text = metrics.encode().await.unwrap();
        assert_eq!(depth(&text, "mail", "queued"), Some(2.0), "{text}");

        // Past it, the next scrape reads again; a queue that emptied
        // stays, at zero.
        let fresh = Metrics::with_cluster_ttl(store.clone(), Duration::ZERO);
        let text = fresh.encode().await.unwrap();
        assert_eq!(depth(&text, "mail", "queued"), Some(3.0), "{text}");
        let claim = Claim {
            queues: vec!["mail".into()],
            limit: 10,
            ..claim
        };
        assert_eq!(store.claim(&claim).await.unwrap().len(), 3);
        let text = fresh.encode().await.unwrap();
        assert_eq!(depth(&text, "mail", "queued"), Some(0.0), "{text}");
        assert_eq!(depth(&text, "mail", "running"), Some(3.0), "{text}");
    }

    #[tokio::test]
    async fn concurrent_scrapes_share_one_reading() {
        let (_dir, store) = sqlite().await;
        let metrics = Metrics::with_cluster_ttl(store.clone(), Duration::from_secs(3600));
        let scrapes = futures::future::join_all((0..8).map(|_| metrics.encode())).await;
        let at = |m: &Metrics| {
            m.inner
                .cluster
                .as_ref()
                .and_then(|c| c.latest.lock().ok().and_then(|l| l.at))
        };
        let first = at(&metrics);
        assert!(first.is_some());
        assert!(scrapes.iter().all(|s| {
            s.as_ref()
                .is_ok_and(|t| t.contains("longshore_cluster_read_ok 1"))
        }));
        metrics.encode().await.unwrap();
        assert_eq!(at(&metrics), first, "a fresh reading is not read again");
    }
}
