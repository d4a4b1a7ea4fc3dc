//! `longshore serve`'s flags, which become settings; the node itself is
//! [`longshore_server::serve`].

use std::net::SocketAddr;

use longshore_server::settings::Value;

use super::worker;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the HTTP side listens [setting: http.listen, default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where agents connect to the gRPC gateway, or `off` (port 0: any free port) [setting: grpc.listen, default: 127.0.0.1:50051]
    #[arg(long, value_name = "ADDR|off")]
    grpc_listen: Option<String>,
    #[command(flatten)]
    worker: worker::NodeArgs,
    #[command(flatten)]
    pub(crate) database: crate::connection::DatabaseArgs,
}

impl Args {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        if let Some(addr) = self.listen {
            out.push(("http.listen", Value::from(addr.to_string())));
        }
        if let Some(listen) = &self.grpc_listen {
            out.push(("grpc.listen", Value::from(listen.clone())));
        }
        self.worker.overrides(out);
    }
}
