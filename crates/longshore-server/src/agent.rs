//! `longshore agent`: the built-in actors run through a server's gRPC
//! gateway by the Rust agent SDK (`longshore-agent`), with the node's
//! actor settings (`actors.*`), secrets and time limits. It needs no
//! database.

use longshore_agent::{Agent, AgentConfig};
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;
use crate::signals::StopSignals;

/// Runs an agent until SIGTERM or SIGINT (then drains it; a second signal
/// stops it at once) or until the gateway refuses it for good.
pub async fn run(settings: &Settings, config: AgentConfig) -> anyhow::Result<()> {
    let mut signals = StopSignals::install()?;
    let registry = longshore_actors::registry(&settings.actors, longshore_actors::RunsOn::Agent)
        .map_err(anyhow::Error::msg)?;
    let execution = settings.worker_config();
    let config = AgentConfig {
        drain_timeout: execution.drain_timeout,
        ..config
    };
    config.check()?;
    println!(
        "longshore agent: {} serving pool {} through {} with concurrency {} and prefetch {}",
        config.id, config.pool, config.gateway, config.concurrency, config.prefetch
    );
    let stop = CancellationToken::new();
    let agent = tokio::spawn(Agent::new(config, registry, execution).run(stop.clone()));
    tokio::pin!(agent);
    tokio::select! {
        finished = &mut agent => return Ok(finished??),
        () = signals.recv() => {}
    }
    tracing::info!("stop signal received; draining (send it again to stop at once)");
    stop.cancel();
    tokio::select! {
        finished = &mut agent => Ok(finished??),
        () = signals.recv() => {
            tracing::warn!("second stop signal: exiting now; the gateway hands back what was running");
            Ok(())
        }
    }
}
