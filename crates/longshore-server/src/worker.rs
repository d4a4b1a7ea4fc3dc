//! `longshore worker`: a worker node running the built-in actors; with
//! `worker.http_addr` (`--http`), it also answers the API under `/api/v1`
//! (with a token, as `serve` does), and `/metrics` and the health checks
//! unless `worker.metrics_addr` (`--metrics-addr`) gives them an address
//! of their own.

use anyhow::{Context, bail};

use crate::database::{self, Missing};
use crate::node::{self, Listeners, Node};
use crate::probes;
use crate::settings::Settings;
use crate::signals::StopSignals;

/// Runs a worker node until SIGTERM or SIGINT, then drains it.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
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
    let store = database::connect(settings, Missing::Create).await?;
    let grpc_addr = settings.worker.grpc_addr;
    if http_addr.is_none() && metrics_addr.is_none() && grpc_addr.is_none() {
        let handle = node::start_worker(settings, store, settings.worker_config()).await?;
        signals.recv().await;
        return node::drain(handle, &mut signals).await;
    }
    let api = match http_addr {
        Some(addr) => Some(probes::bind_for(addr, " for the API", "--http").await?),
        None => None,
    };
    // The probes on one address only: --metrics-addr's if given.
    let mut listeners = Listeners::bind(settings, api, metrics_addr.is_none()).await?;
    if let Some(addr) = grpc_addr {
        listeners = listeners.with_gateway(settings, &addr.to_string()).await?;
    }
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
    if let Some(url) = listeners.gateway_url()? {
        parts.push(format!("agents' gateway on {url}"));
    }
    let node = Node::start(settings, store, settings.worker_config(), listeners).await?;
    println!("longshore worker: {}", parts.join(", "));
    node.run(&mut signals).await
}
