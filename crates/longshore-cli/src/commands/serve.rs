//! `longshore serve`: the whole system in one process. An inline worker
//! runs the built-in actors, and the HTTP side answers health checks and
//! `/metrics` (without a token, see `crate::probes`) and the API under
//! `/api/v1` (see `crate::api`); the dashboard joins it when it is built.
//! With no database configured it keeps everything in the data
//! directory's SQLite file.

use std::net::SocketAddr;

use anyhow::Context;
use figment::value::Value;

use super::{Database, Missing, worker};
use crate::probes;
use crate::settings::Settings;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the HTTP side listens [setting: http.listen, default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    worker: worker::NodeArgs,
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
    let listener = probes::bind_for(settings.http.listen, "", "--listen").await?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    // The probes beside the API, and again on a port of their own when
    // asked for.
    let listeners = worker::Listeners::bind(settings, Some(listener), true).await?;
    let extra = listeners.probes_address()?;
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
    let node = worker::Node::start(settings, store, config, listeners).await?;
    println!("{line}");
    node.run(&mut signals).await
}
