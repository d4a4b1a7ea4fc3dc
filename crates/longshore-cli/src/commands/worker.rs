//! `longshore worker`: a worker node running the built-in actors; with
//! `--metrics-addr`, it also answers `/metrics` and the health checks.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use figment::value::Value;
use longshore::metrics::Metrics;
use longshore::{Store, Worker, WorkerConfig, WorkerHandle};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::actors;
use crate::probes::{self, Probes};
use crate::settings::Settings;

#[derive(clap::Args)]
#[group(skip)]
pub(crate) struct Args {
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

impl Args {
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
    // Before any task is claimed: a signal from now on means "drain".
    let mut signals = StopSignals::install()?;
    let store = super::connect(settings, super::Missing::Create).await?;
    let Some(addr) = settings.worker.metrics_addr else {
        let handle = start(settings, store, settings.worker_config()).await?;
        signals.recv().await;
        return drain(handle, &mut signals).await;
    };
    // Bound before the worker starts, so that a taken port stops start-up
    // before any task is claimed.
    let listener = probes::bind(addr).await?;
    let address = listener
        .local_addr()
        .context("reading the metrics address")?;
    let metrics = Metrics::with_cluster(store.clone());
    let config = WorkerConfig {
        metrics: Some(metrics.clone()),
        ..settings.worker_config()
    };
    let handle = start(settings, store.clone(), config).await?;
    let app = probes::router(Probes {
        store,
        worker: handle.health(),
        metrics,
    });
    let stop_http = CancellationToken::new();
    let server = probes::spawn(listener, app, stop_http.clone());
    println!("longshore worker: metrics and health checks on http://{address}");
    signals.recv().await;
    // The probes answer through the drain (ready says 503 meanwhile).
    let drained = drain(handle, &mut signals).await;
    stop_http.cancel();
    probes::join(server).await;
    drained
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
