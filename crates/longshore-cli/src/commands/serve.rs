//! `longshore serve`: the whole system in one process. An inline worker
//! runs the built-in actors, and the HTTP side answers health checks and
//! `/metrics` (without a token, see `crate::probes`) and the API under
//! `/api/v1` (see `crate::api`); the dashboard joins it when it is built.
//! With no database configured it keeps everything in the data
//! directory's SQLite file.

use std::net::SocketAddr;

use anyhow::Context;
use figment::value::Value;
use longshore::WorkerConfig;
use longshore::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use super::{Database, Missing, worker};
use crate::probes::{self, Probes};
use crate::settings::Settings;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the HTTP side listens [setting: http.listen, default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    worker: worker::Args,
}

impl Args {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        if let Some(addr) = self.listen {
            out.push(("http.listen", Value::from(addr.to_string())));
        }
        self.worker.overrides(out);
    }
}

pub(crate) async fn run(settings: &Settings) -> anyhow::Result<()> {
    // Before anything starts: a signal from now on means "drain".
    let mut signals = worker::StopSignals::install()?;
    let database = Database::from_settings(settings)?;
    let store = super::connect(settings, Missing::Create).await?;
    // Bound before the worker starts, so that a taken port stops start-up
    // before any task is claimed.
    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set another address with --listen)",
                settings.http.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    // The probes again on a port of their own, when asked for.
    let probes_listener = match settings.worker.metrics_addr {
        Some(addr) => Some(probes::bind(addr).await?),
        None => None,
    };
    let metrics = Metrics::with_cluster(store.clone());
    // Built once: an unset worker id is made up anew on every call.
    let config = WorkerConfig {
        metrics: Some(metrics.clone()),
        ..settings.worker_config()
    };
    let handle = worker::start(settings, store.clone(), config.clone()).await?;
    let mut line = format!(
        "longshore serve: listening on http://{address}, using {}, worker {} on queue(s) {} with concurrency {}",
        database.describe(),
        config.id,
        config.queues.join(","),
        config.concurrency
    );
    if let Some(extra) = &probes_listener {
        let extra = extra.local_addr().context("reading the metrics address")?;
        line.push_str(&format!(
            ", metrics and health checks also on http://{extra}"
        ));
    }
    println!("{line}");

    let probes = Probes {
        store: store.clone(),
        worker: handle.health(),
        metrics: metrics.clone(),
    };
    let app = probes::router(probes.clone()).merge(crate::api::router(store, settings, metrics));
    let stop_http = CancellationToken::new();
    let server = probes::spawn(listener, app, stop_http.clone());
    let probes_server = probes_listener
        .map(|listener| probes::spawn(listener, probes::router(probes), stop_http.clone()));

    signals.recv().await;
    let drained = worker::drain(handle, &mut signals).await;
    stop_http.cancel();
    probes::join(server).await;
    if let Some(server) = probes_server {
        probes::join(server).await;
    }
    drained
}
