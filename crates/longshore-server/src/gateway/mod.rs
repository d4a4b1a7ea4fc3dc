//! The agents' gRPC gateway: agents (processes without database
//! credentials, see `proto/longshore/agent/v1/agent.proto`) open one stream
//! each; the gateway claims tasks of their pool's queues for them under
//! leases owned by their ids, keeps those leases alive while the session
//! is, and records what they report, fenced like any worker's results.
//!
//! - `auth.rs`: the agent token in the stream's metadata, and why one is
//!   refused.
//! - `hello.rs`: a session's first message checked (protocol version,
//!   the token's pool, the agent's id, slots and labels).
//! - `session.rs`: one agent's session, from `Hello` to the hand-back of its
//!   tasks when the stream closes or goes silent; what it claims for an
//!   agent that queues ahead.
//! - `held.rs`: what a session holds for each task its agent runs or
//!   queues, and the completion it becomes.
//! - `events.rs`: one listener per gateway for "tasks are due" and "cancel
//!   this task", fanned out to the sessions and the dispatcher.
//! - `dispatch.rs`: the dispatcher, which looks for due work once per pool
//!   and wakes only the waiting sessions that can take it, and records
//!   every session's presence in one write: idle agents cost the database
//!   nothing per agent.

mod auth;
mod dispatch;
mod events;
mod held;
mod hello;
mod session;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use longshore::{RetryPolicy, Store};
use longshore_proto::v1::agent_gateway_server::{AgentGateway, AgentGatewayServer};
use longshore_proto::v1::{AgentMessage, ServerMessage};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::settings::GrpcSettings;

/// How the gateway treats sessions and the leases it holds for them.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// A session that sends nothing for this long is closed and its tasks
    /// handed back (`grpc.session_timeout`).
    pub session_timeout: Duration,
    /// The lease the gateway claims under and renews while a session lives.
    pub lease: Duration,
    /// How often leases are renewed and buffered log lines written.
    pub heartbeat: Duration,
    /// Time limit of a task that sets none.
    pub default_time_limit: Duration,
    /// How long past its time limit a task may run before the gateway
    /// takes it back from an agent that ignores the cancellation.
    pub cancel_grace: Duration,
    /// Backoff between retries.
    pub retry: RetryPolicy,
    /// How often the gateway looks for due tasks for its waiting agents
    /// when no notification came (notifications bring them sooner): one
    /// read per pool that has a waiting agent.
    pub poll_interval: Duration,
}

/// What every session of one gateway shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: GatewayConfig,
    /// The sessions, by agent id: a second session with the same id is
    /// refused while the first lives.
    pub(crate) board: Arc<dispatch::Board>,
    /// Whether a running-task cap exists, as the dispatcher last read it
    /// (true until then).
    pub(crate) capped: Arc<AtomicBool>,
    pub(crate) events: events::Events,
    /// Closed when the gateway stops: sessions hand their tasks back.
    pub(crate) stop: CancellationToken,
    /// The sessions' tasks: a gateway that stops waits for them to have
    /// handed their tasks back.
    pub(crate) sessions: TaskTracker,
}

/// The gateway service, as tonic serves it.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// A gateway over `store`.
    pub fn new(store: Arc<dyn Store>, config: GatewayConfig, stop: CancellationToken) -> Gateway {
        let events = events::Events::start(store.clone(), stop.clone());
        let board = Arc::new(dispatch::Board::default());
        let capped = Arc::new(AtomicBool::new(true));
        dispatch::start(
            store.clone(),
            board.clone(),
            capped.clone(),
            events.subscribe(),
            config.clone(),
            stop.clone(),
        );
        Gateway {
            shared: Arc::new(Shared {
                store,
                config,
                board,
                capped,
                events,
                stop,
                sessions: TaskTracker::new(),
            }),
        }
    }
}

type ServerStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentGateway for Gateway {
    type SessionStream = ServerStream;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<ServerStream>, Status> {
        let token = auth::authenticate(&*self.shared.store, request.metadata()).await?;
        let inbound = request.into_inner();
        let outbound = session::open(self.shared.clone(), token, inbound).await?;
        Ok(Response::new(outbound))
    }
}

/// The gateway's bound address, and the TLS it speaks there if any.
pub struct Bound {
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
}

impl Bound {
    /// Where agents connect, as a URL: `https://` when the gateway speaks
    /// TLS.
    pub fn url(&self) -> anyhow::Result<String> {
        let address = self
            .listener
            .local_addr()
            .context("reading the gateway's address")?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{address}"))
    }
}

/// Binds the gateway's address (`None` when `listen` is `off`) and reads
/// its certificate and key if `grpc` names them, before anything starts,
/// so that a taken port or an unreadable key stops start-up.
pub async fn bind(listen: &str, grpc: &GrpcSettings) -> anyhow::Result<Option<Bound>> {
    if listen == "off" {
        return Ok(None);
    }
    let address: SocketAddr = listen
        .parse()
        .with_context(|| format!("grpc.listen `{listen}` is not an address (or `off`)"))?;
    let tls = tls_config(grpc).await?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for agents on {address} (--grpc-listen)"))?;
    Ok(Some(Bound { listener, tls }))
}

/// The gateway's TLS from `grpc.tls_cert` and `grpc.tls_key`, checked
/// (a key that does not fit its certificate is refused here).
async fn tls_config(grpc: &GrpcSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&grpc.tls_cert, &grpc.tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, setting: &'static str| {
        let path = path.to_owned();
        async move {
            tokio::fs::read(&path)
                .await
                .with_context(|| format!("cannot read {setting} {}", path.display()))
        }
    };
    let identity = Identity::from_pem(
        read(cert, "grpc.tls_cert").await?,
        read(key, "grpc.tls_key").await?,
    );
    let config = ServerTlsConfig::new().identity(identity);
    Server::builder()
        .tls_config(config.clone())
        .with_context(|| {
            format!(
                "grpc.tls_cert {} and grpc.tls_key {} are not a PEM certificate chain and its key",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some(config))
}

/// Serves the gateway where it is bound until `stop` is cancelled.
pub fn serve(bound: Bound, gateway: Gateway, stop: CancellationToken) -> JoinHandle<()> {
    let sessions = gateway.shared.sessions.clone();
    tokio::spawn(async move {
        let mut server = Server::builder();
        if let Some(tls) = bound.tls {
            server = match server.tls_config(tls) {
                Ok(server) => server,
                // Checked by bind(): only a changed tonic could get here.
                Err(e) => {
                    tracing::error!(error = %e, "the agents' gateway cannot use its TLS settings");
                    return;
                }
            };
        }
        // Assignments and answers are small messages each awaited by the
        // other side: sent at once, not held back to be merged (Nagle).
        let incoming =
            tonic::transport::server::TcpIncoming::from(bound.listener).with_nodelay(Some(true));
        let result = server
            .add_service(AgentGatewayServer::new(gateway))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "the agents' gateway stopped");
        }
        // Each session ends at `stop`, giving its tasks back first.
        sessions.close();
        sessions.wait().await;
    })
}
