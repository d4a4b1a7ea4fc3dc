//! `longshore serve`: the whole system in one process. An inline worker
//! runs the built-in actors, and the HTTP side answers health checks and
//! `/metrics` (without a token, see [`crate::probes`]) and the API under
//! `/api/v1` (see [`crate::api`]); the dashboard joins it when it is built.
//! With no database configured it keeps everything in the data
//! directory's SQLite file.

use anyhow::Context;

use crate::database::{self, Database, Missing};
use crate::node::{Listeners, Node};
use crate::probes;
use crate::settings::Settings;
use crate::signals::StopSignals;

/// Runs the whole system until SIGTERM or SIGINT, then drains it.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    // Before anything starts: a signal from now on means "drain".
    let mut signals = StopSignals::install()?;
    let database = Database::from_settings(settings)?;
    let store = database::connect(settings, Missing::Create).await?;
    let listener = probes::bind_for(settings.http.listen, "", "--listen").await?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    // The probes beside the API, and again on a port of their own when
    // asked for.
    let listeners = Listeners::bind(settings, Some(listener), true)
        .await?
        .with_gateway(settings, &settings.grpc.listen)
        .await?;
    let extra = listeners.probes_address()?;
    let gateway = listeners.gateway_url()?;
    // Built once: an unset worker id is made up anew on every call.
    let config = settings.worker_config();
    let mut line = format!(
        "longshore serve: listening on http://{address}, using {}, worker {} on queue(s) {} with concurrency {}",
        database.describe(),
        config.id,
        config.queues.join(","),
        config.concurrency
    );
    if let Some(extra) = extra {
        line.push_str(&format!(
            ", metrics and health checks also on http://{extra}"
        ));
    }
    match gateway {
        Some(gateway) => line.push_str(&format!(", agents' gateway on {gateway}")),
        None => line.push_str(", agents' gateway off"),
    }
    let node = Node::start(settings, store, config, listeners).await?;
    println!("{line}");
    node.run(&mut signals).await
}
