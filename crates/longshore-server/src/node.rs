//! A running node: its worker, counting into the metrics it serves, and
//! its HTTP servers, bound before the worker starts and stopped after it
//! has drained.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use longshore::metrics::Metrics;
use longshore::{Store, Worker, WorkerConfig, WorkerHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;
use crate::listener::Limits;
use crate::probes::{self, Probes};
use crate::settings::Settings;
use crate::signals::StopSignals;

/// Where a node answers HTTP, bound before its worker starts, so that a
/// taken port stops start-up before any task is claimed.
pub struct Listeners {
    /// The API (`serve`'s `http.listen`, `worker --http`).
    pub(crate) api: Option<TcpListener>,
    /// Whether the API's address answers the probes too.
    pub(crate) probes_with_api: bool,
    /// The probes alone (`worker.metrics_addr`).
    pub(crate) probes: Option<TcpListener>,
    /// The agents' gateway (`grpc.listen`, `worker --grpc-listen`).
    pub(crate) gateway: Option<crate::gateway::Bound>,
}

impl Listeners {
    /// `api`, bound by the caller, answering the probes too if
    /// `probes_with_api`; and `worker.metrics_addr` if set.
    pub async fn bind(
        settings: &Settings,
        api: Option<TcpListener>,
        probes_with_api: bool,
    ) -> anyhow::Result<Listeners> {
        crate::listener::raise_open_file_limit();
        let probes = match settings.worker.metrics_addr {
            Some(addr) => Some(probes::bind(addr).await?),
            None => None,
        };
        Ok(Listeners {
            api,
            probes_with_api,
            probes,
            gateway: None,
        })
    }

    /// Accepts agents on `listen` (an address, or `off`), with TLS if
    /// `settings.grpc` names a certificate.
    pub async fn with_gateway(
        mut self,
        settings: &Settings,
        listen: &str,
    ) -> anyhow::Result<Listeners> {
        self.gateway = crate::gateway::bind(listen, &settings.grpc).await?;
        Ok(self)
    }

    /// Where agents connect (`http://` or `https://`), if anywhere.
    pub fn gateway_url(&self) -> anyhow::Result<Option<String>> {
        self.gateway
            .as_ref()
            .map(crate::gateway::Bound::url)
            .transpose()
    }

    /// Where the probes alone are answered, if anywhere.
    pub fn probes_address(&self) -> anyhow::Result<Option<SocketAddr>> {
        self.probes
            .as_ref()
            .map(|listener| listener.local_addr().context("reading the metrics address"))
            .transpose()
    }
}

/// A running node: its worker, counting into the metrics it serves, and
/// its HTTP servers.
pub struct Node {
    handle: WorkerHandle,
    servers: Servers,
}

impl Node {
    /// Starts a worker with `config` (its metrics replaced) and serves
    /// `listeners`.
    pub async fn start(
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
        let gateway_config = settings.grpc.gateway_config(&config);
        let handle = start_worker(settings, store.clone(), config).await?;
        let gateway_store = store.clone();
        let probes = Probes {
            store,
            worker: handle.health(),
            metrics,
        };
        let mut servers = Servers::default();
        if let Some(listener) = listeners.api {
            let api = if listeners.probes_with_api {
                crate::api::with_probes(probes.clone(), settings)
            } else {
                crate::api::router(probes.store.clone(), settings, probes.metrics.clone())
            };
            // The dashboard beside the API, on the same address.
            let app = crate::dashboard::router(probes.store.clone(), settings).merge(api);
            servers.serve(listener, app, Limits::from(&settings.http));
        }
        if let Some(listener) = listeners.probes {
            servers.serve(
                listener,
                probes::router(probes),
                Limits::from(&settings.http),
            );
        }
        if let Some(bound) = listeners.gateway {
            let gateway = Gateway::new(gateway_store, gateway_config, servers.stop.clone());
            servers
                .running
                .push(crate::gateway::serve(bound, gateway, servers.stop.clone()));
        }
        Ok(Node { handle, servers })
    }

    /// Runs until a stop signal, drains the worker while the servers
    /// still answer (ready says 503 meanwhile), then stops them.
    pub async fn run(self, signals: &mut StopSignals) -> anyhow::Result<()> {
        signals.recv().await;
        let drained = drain(self.handle, signals).await;
        self.servers.stop().await;
        drained
    }
}

/// Migrates (unless turned off) and starts a worker with the built-in
/// actors on `store`.
pub async fn start_worker(
    settings: &Settings,
    store: Arc<dyn Store>,
    config: WorkerConfig,
) -> anyhow::Result<WorkerHandle> {
    // The actors and the worker's settings first: a node that cannot
    // start says so in one line and leaves the database as it found it.
    let registry = longshore_actors::registry(&settings.actors, longshore_actors::RunsOn::Inline)
        .map_err(anyhow::Error::msg)?;
    let worker = Worker::new(store.clone(), registry, config)?;
    if settings.database.migrate_on_start {
        store.migrate().await.context("migrating the database")?;
    }
    Ok(worker.start())
}

/// Stops the worker gracefully after a stop signal; a second signal stops
/// it at once.
pub async fn drain(handle: WorkerHandle, signals: &mut StopSignals) -> anyhow::Result<()> {
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

/// A node's HTTP servers, which stop together.
#[derive(Default)]
pub struct Servers {
    stop: CancellationToken,
    running: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Serves `app` on `listener` until [`Servers::stop`], holding clients
    /// to `limits`.
    pub fn serve(&mut self, listener: TcpListener, app: Router, limits: Limits) {
        let stop = self.stop.clone();
        self.running.push(tokio::spawn(crate::listener::serve(
            listener, app, limits, stop,
        )));
    }

    /// Stops every server gracefully: each finishes the requests it has.
    pub async fn stop(self) {
        self.stop.cancel();
        for server in self.running {
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "the HTTP server task failed");
            }
        }
    }
}
