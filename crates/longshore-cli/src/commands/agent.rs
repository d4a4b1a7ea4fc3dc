//! `longshore agent`'s flags; the agent itself is
//! [`longshore_server::agent`].

use std::path::PathBuf;

use anyhow::Context;

/// `longshore agent`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server's gRPC gateway, e.g. http://10.0.0.5:50051, or https:// when it speaks TLS [env: LONGSHORE_GATEWAY]
    #[arg(long, value_name = "URL", env = "LONGSHORE_GATEWAY", hide_env = true)]
    gateway: String,
    /// The pool this agent serves
    #[arg(long, value_name = "POOL")]
    pool: String,
    /// Labels this agent offers, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "L,...")]
    labels: Vec<String>,
    /// Tasks run at once
    #[arg(long, value_name = "N", default_value_t = 10)]
    concurrency: usize,
    /// Tasks held queued beyond the free slots, started as slots free: auto (the server chooses, up to 3 per slot, none for long tasks), or a count (0: none)
    #[arg(long, value_name = "auto|N", default_value_t = longshore::Prefetch::Auto)]
    prefetch: longshore::Prefetch,
    /// This agent's id, the owner of its leases [default: host-pid-random]
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// A file holding the agent token (else LONGSHORE_AGENT_TOKEN)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// For an https:// gateway: trust the CA certificates (PEM) in this file instead of the system's [env: LONGSHORE_GATEWAY_CA]
    #[arg(
        long,
        value_name = "FILE",
        env = "LONGSHORE_GATEWAY_CA",
        hide_env = true
    )]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) database: crate::connection::DatabaseArgs,
}

impl Args {
    /// The agent's settings, with its token read.
    pub(crate) fn config(&self) -> anyhow::Result<longshore_agent::AgentConfig> {
        let token = match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the agent token from {}", path.display()))?
                .trim()
                .to_owned(),
            None => std::env::var("LONGSHORE_AGENT_TOKEN")
                .ok()
                .filter(|token| !token.trim().is_empty())
                .context("no agent token: set LONGSHORE_AGENT_TOKEN or give --token-file")?,
        };
        let mut config = longshore_agent::AgentConfig::new(&self.gateway, &self.pool, token);
        config.labels = self.labels.clone();
        config.concurrency = self.concurrency;
        config.prefetch = self.prefetch;
        if let Some(id) = &self.id {
            config.id = id.clone();
        }
        if let Some(path) = &self.ca_file {
            config.ca_certificate = Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read the CA file {}", path.display()))?,
            );
        }
        Ok(config)
    }
}
