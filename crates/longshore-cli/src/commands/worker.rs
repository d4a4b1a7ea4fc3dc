//! `longshore worker`: a worker node running the built-in actors; with
//! `--http`, it also answers the API under `/api/v1` (with a token, as
//! `serve` does), and `/metrics` and the health checks unless
//! `--metrics-addr` gives them an address of their own.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use figment::value::Value;
use longshore::metrics::Metrics;
use longshore::{Store, Worker, WorkerConfig, WorkerHandle};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::actors;
use crate::probes::{self, Probes, Servers};
use crate::settings::Settings;

/// `longshore worker`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Also serve the API (/api/v1, with a token, as `serve` does) on this address, and /metrics and /health/{live,ready} unless --metrics-addr is given (port 0: any free port) [setting: worker.http_addr, default: off]
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
}

impl Args {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        self.node.overrides(out);
        if let Some(addr) = self.http {
            out.push(("worker.http_addr", Value::from(addr.to_string())));
        }
    }
}

/// The worker's flags that `serve` takes too.
#[derive(clap::Args)]
#[group(skip)]
pub(crate) struct NodeArgs {
    /// Queues to serve, comma-separated [setting: worker.queues, default: default]
    #[arg(long, value_delimiter = ',', value_name = "Q,...")]
    queues: Option<Vec<String>>,
    /// Tasks run at once [setting: worker.concurrency, default: 16]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// This worker's id, its name as lease owner [setting: worker.id, default: host-pid-random]
    #[arg(long, value_name = "ID")]
    worker_id: Option<String>,
    /// Rely on polling only, for PgBouncer in transaction mode [setting: database.poll_only]
    #[arg(long)]
    poll_only: bool,
    /// Also serve /metrics and /health/{live,ready}, without a token, on this address (port 0: any free port) [setting: worker.metrics_addr, default: off]
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
}

impl NodeArgs {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        if let Some(queues) = &self.queues {
            out.push(("worker.queues", Value::from(queues.clone())));
        }
        if let Some(n) = self.concurrency {
            out.push(("worker.concurrency", Value::from(n)));
        }
        if let Some(id) = &self.worker_id {
            out.push(("worker.id", Value::from(id.clone())));
        }
        if self.poll_only {
            out.push(("database.poll_only", Value::from(true)));
        }
        if let Some(addr) = self.metrics_addr {
            out.push(("worker.metrics_addr", Value::from(addr.to_string())));
        }
    }
}

pub(crate) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let (http_addr, metrics_addr) = (settings.worker.http_addr, settings.worker.metrics_addr);
    // Port 0 twice is two free ports; any other address once only.
    if let (Some(http), Some(metrics)) = (http_addr, metrics_addr)
        && http == metrics
        && http.port() != 0
    {
        bail!(
            "--http and --metrics-addr (worker.http_addr, worker.metrics_addr) are both {http}: \
             give them different addresses, or drop --metrics-addr (--http alone answers /metrics and the health checks too)"
        );
    }
    // Before any task is claimed: a signal from now on means "drain".
    let mut signals = StopSignals::install()?;
    let store = super::connect(settings, super::Missing::Create).await?;
    if http_addr.is_none() && metrics_addr.is_none() {
        let handle = start(settings, store, settings.worker_config()).await?;
        signals.recv().await;
        return drain(handle, &mut signals).await;
    }
    let api = match http_addr {
        Some(addr) => Some(probes::bind_for(addr, " for the API", "--http").await?),
        None => None,
    };
    // The probes on one address only: --metrics-addr's if given.
    let listeners = Listeners::bind(settings, api, metrics_addr.is_none()).await?;
    let mut parts = Vec::new();
    if let Some(api) = &listeners.api {
        let address = api.local_addr().context("reading the API address")?;
        let what = if listeners.probes_with_api {
            "API, metrics and health checks"
        } else {
            "API"
        };
        parts.push(format!("{what} on http://{address}"));
    }
    if let Some(address) = listeners.probes_address()? {
        parts.push(format!("metrics and health checks on http://{address}"));
    }
    let node = Node::start(settings, store, settings.worker_config(), listeners).await?;
    println!("longshore worker: {}", parts.join(", "));
    node.run(&mut signals).await
}

/// Where a node answers HTTP, bound before its worker starts, so that a
/// taken port stops start-up before any task is claimed.
pub(crate) struct Listeners {
    /// The API (`serve`'s `http.listen`, `worker --http`).
    api: Option<TcpListener>,
    /// Whether the API's address answers the probes too.
    probes_with_api: bool,
    /// The probes alone (`worker.metrics_addr`).
    probes: Option<TcpListener>,
}

impl Listeners {
    /// `api`, bound by the caller, answering the probes too if
    /// `probes_with_api`; and `worker.metrics_addr` if set.
    pub(crate) async fn bind(
        settings: &Settings,
        api: Option<TcpListener>,
        probes_with_api: bool,
    ) -> anyhow::Result<Listeners> {
        let probes = match settings.worker.metrics_addr {
            Some(addr) => Some(probes::bind(addr).await?),
            None => None,
        };
        Ok(Listeners {
            api,
            probes_with_api,
            probes,
        })
    }

    /// Where the probes alone are answered, if anywhere.
    pub(crate) fn probes_address(&self) -> anyhow::Result<Option<SocketAddr>> {
        self.probes
            .as_ref()
            .map(|listener| listener.local_addr().context("reading the metrics address"))
            .transpose()
    }
}

/// A running node: its worker, counting into the metrics it serves, and
/// its HTTP servers.
pub(crate) struct Node {
    handle: WorkerHandle,
    servers: Servers,
}

impl Node {
    /// Starts a worker with `config` (its metrics replaced) and serves
    /// `listeners`.
    pub(crate) async fn start(
        settings: &Settings,
        store: Arc<dyn Store>,
        config: WorkerConfig,
        listeners: Listeners,
    ) -> anyhow::Result<Node> {
        let metrics = Metrics::with_cluster(store.clone());
        let config = WorkerConfig {
            metrics: Some(metrics.clone()),
            ..config
        };
        let handle = start(settings, store.clone(), config).await?;
        let probes = Probes {
            store,
            worker: handle.health(),
            metrics,
        };
        let mut servers = Servers::default();
        if let Some(listener) = listeners.api {
            let app = if listeners.probes_with_api {
                crate::api::with_probes(probes.clone(), settings)
            } else {
                crate::api::router(probes.store.clone(), settings, probes.metrics.clone())
            };
            servers.serve(listener, app);
        }
        if let Some(listener) = listeners.probes {
            servers.serve(listener, probes::router(probes));
        }
        Ok(Node { handle, servers })
    }

    /// Runs until a stop signal, drains the worker while the servers
    /// still answer (ready says 503 meanwhile), then stops them.
    pub(crate) async fn run(self, signals: &mut StopSignals) -> anyhow::Result<()> {
        signals.recv().await;
        let drained = drain(self.handle, signals).await;
        self.servers.stop().await;
        drained
    }
}

/// Migrates (unless turned off) and starts a worker with the built-in
/// actors on `store`.
pub(crate) async fn start(
    settings: &Settings,
    store: Arc<dyn Store>,
    config: WorkerConfig,
) -> anyhow::Result<WorkerHandle> {
    if settings.database.migrate_on_start {
        store.migrate().await.context("migrating the database")?;
    }
    let registry = actors::registry(&settings.actors.http).map_err(anyhow::Error::msg)?;
    Ok(Worker::new(store, registry, config)?.start())
}

/// Stops the worker gracefully after a stop signal; a second signal stops
/// it at once.
pub(crate) async fn drain(handle: WorkerHandle, signals: &mut StopSignals) -> anyhow::Result<()> {
    tracing::info!("stop signal received; draining (send it again to stop at once)");
    let stopping = handle.shutdown();
    tokio::pin!(stopping);
    tokio::select! {
        result = &mut stopping => result?,
        () = signals.recv() => {
            tracing::warn!("second stop signal: exiting now; unfinished tasks return when their leases expire");
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment this is made (until then
/// they would kill the process without a drain).
pub(crate) struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    pub(crate) fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
