//! `longshore worker`'s flags, which become settings; the node itself is
//! [`longshore_server::worker`].

use std::net::SocketAddr;

use longshore_server::settings::Value;

/// `longshore worker`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Also serve the API (/api/v1, with a token, as `serve` does) on this address, and /metrics and /health/{live,ready} unless --metrics-addr is given (port 0: any free port) [setting: worker.http_addr, default: off]
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// Also accept agents on this address (the gRPC gateway; port 0: any free port) [setting: worker.grpc_addr, default: off]
    #[arg(long, value_name = "HOST:PORT")]
    grpc_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub(crate) database: crate::connection::DatabaseArgs,
}

impl Args {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        self.node.overrides(out);
        if let Some(addr) = self.http {
            out.push(("worker.http_addr", Value::from(addr.to_string())));
        }
        if let Some(addr) = self.grpc_listen {
            out.push(("worker.grpc_addr", Value::from(addr.to_string())));
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
