//! The workloads that go through the agents' gateway, all in this process
//! and over loopback TCP, so that only the gateway and the protocol differ
//! from the inline workloads:
//!
//! - G: A and B again, each through one agent of concurrency
//!   `--concurrency` (A's tasks inserted first, then the agent started and
//!   timed until all are recorded; B's agent proven connected by one
//!   warm-up task first).
//! - H: `--idle-agents` agents connected and idle for `--idle-duration`:
//!   what they cost together — the database's transactions per second
//!   (PostgreSQL's own count for the scratch database), and this process's
//!   CPU and resident memory, which hold the gateway *and* the agents, so
//!   they bound the gateway's share from above.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use longshore::core::NewPool;
use longshore::{Prefetch, Registry, Store, WorkerConfig};
use longshore_agent::{Agent, AgentConfig};
use longshore_server::gateway::{self, Gateway};
use longshore_server::settings::GrpcSettings;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::history::Filler;

/// A gateway on a free loopback port, with a pool of the given queues and
/// a token for it.
pub(crate) struct BenchGateway {
    url: String,
    pool: String,
    token: String,
    stop: CancellationToken,
    serving: JoinHandle<()>,
}

impl BenchGateway {
    pub(crate) async fn start(
        store: &Arc<dyn Store>,
        pool: &str,
        queues: &[&str],
    ) -> anyhow::Result<BenchGateway> {
        store
            .create_pool(&NewPool {
                name: pool.to_owned(),
                queues: queues.iter().map(|q| (*q).to_owned()).collect(),
                ..NewPool::default()
            })
            .await?;
        let (_, secret) = longshore::ops::agents::create_token(store.as_ref(), pool, pool, None)
            .await
            .context("creating the bench pool's agent token")?;
        let grpc = GrpcSettings::default();
        let bound = gateway::bind("127.0.0.1:0", &grpc)
            .await?
            .context("the gateway was not bound")?;
        let url = bound.url()?;
        let stop = CancellationToken::new();
        let config = grpc.gateway_config(&WorkerConfig::default());
        let service = Gateway::new(store.clone(), config, stop.clone());
        let serving = gateway::serve(bound, service, stop.clone());
        Ok(BenchGateway {
            url,
            pool: pool.to_owned(),
            token: secret.expose().to_owned(),
            stop,
            serving,
        })
    }

    /// Starts an agent of this gateway's pool running `registry`.
    pub(crate) fn agent(
        &self,
        id: &str,
        concurrency: usize,
        prefetch: Prefetch,
        registry: Registry,
    ) -> RunningAgent {
        let mut config = AgentConfig::new(&self.url, &self.pool, &self.token);
        config.id = id.to_owned();
        config.concurrency = concurrency;
        config.prefetch = prefetch;
        let stop = CancellationToken::new();
        let agent = Agent::new(config, registry, WorkerConfig::default());
        let running = tokio::spawn(agent.run(stop.clone()));
        RunningAgent { stop, running }
    }

    /// The command that runs `program agent` (this binary's built-in
    /// actors) as agent `id` of this gateway's pool, `concurrency` slots.
    pub(crate) fn agent_process(
        &self,
        program: &std::path::Path,
        id: &str,
        concurrency: usize,
        prefetch: Prefetch,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command
            .args(["agent", "--gateway", &self.url, "--pool", &self.pool])
            .args(["--id", id, "--concurrency", &concurrency.to_string()])
            .args(["--prefetch", &prefetch.to_string()])
            .env("LONGSHORE_AGENT_TOKEN", &self.token);
        command
    }

    /// Starts a Python agent of this gateway's pool: `python -m
    /// longshore_agent.bench`, whose actor `bench` does nothing.
    pub(crate) fn python_agent(
        &self,
        python: &str,
        concurrency: usize,
        prefetch: Prefetch,
    ) -> anyhow::Result<tokio::process::Child> {
        tokio::process::Command::new(python)
            .args(["-m", "longshore_agent.bench", "--gateway", &self.url])
            .args(["--pool", &self.pool, "--id", "bench-python"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--prefetch", &prefetch.to_string()])
            .env("LONGSHORE_AGENT_TOKEN", &self.token)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting `{python} -m longshore_agent.bench` (install the SDK with \
                     `pip install ./sdk/python` and pass that interpreter as --python)"
                )
            })
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.serving
            .await
            .context("the gateway's task panicked while stopping")
    }
}

/// An agent running in this process.
pub(crate) struct RunningAgent {
    stop: CancellationToken,
    running: JoinHandle<Result<(), longshore_agent::AgentError>>,
}

impl RunningAgent {
    /// Asks it to stop, and waits until it has drained.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(self.running.await.context("an agent's task panicked")??)
    }
}

/// What H measured.
#[derive(Serialize)]
pub(crate) struct IdleReport {
    agents: usize,
    seconds: f64,
    /// PostgreSQL only: commits and rollbacks in the scratch database,
    /// per second (each statement outside a transaction is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    db_transactions_per_sec: Option<f64>,
    /// This process's CPU time over the window, as a share of one core.
    cpu_percent_of_one_core: f64,
    rss_mib: f64,
}

impl IdleReport {
    pub(crate) fn rows(&self, row: &mut dyn FnMut(&str, &str, String)) {
        let what = format!("{} idle agents, {:.0} s", self.agents, self.seconds);
        match self.db_transactions_per_sec {
            Some(rate) => row(
                "H idle agents",
                &what,
                format!("{rate:.2} db transactions/s"),
            ),
            None => row(
                "H idle agents",
                &what,
                "db transactions: PostgreSQL only".into(),
            ),
        }
        row(
            "H idle agents",
            "CPU (gateway and agents)",
            format!("{:.2} % of one core", self.cpu_percent_of_one_core),
        );
        row(
            "H idle agents",
            "RSS (gateway and agents)",
            format!("{:.1} MiB", self.rss_mib),
        );
    }
}

/// Transactions committed or rolled back in the scratch database so far,
/// where the engine counts them (PostgreSQL).
async fn transactions(scratch: &Filler) -> anyhow::Result<Option<i64>> {
    let Filler::Postgres(pool) = scratch else {
        return Ok(None);
    };
    // Backends report their counts to the statistics system within a few
    // seconds, idle ones included: the window is long enough for that lag
    // to be small beside it.
    let count = sqlx::query_scalar::<_, i64>(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .context("reading pg_stat_database")?;
    Ok(Some(count))
}

/// H: `agents` agents connect and stay idle for `window`.
pub(crate) async fn idle(
    store: &Arc<dyn Store>,
    scratch: &Filler,
    agents: usize,
    window: Duration,
) -> anyhow::Result<IdleReport> {
    let gateway = BenchGateway::start(store, "bench_h", &["bench_h"]).await?;
    tracing::info!(agents, "H: connecting the agents");
    let running: Vec<RunningAgent> = (0..agents)
        .map(|i| {
            gateway.agent(
                &format!("bench-h-{i}"),
                4,
                Prefetch::Auto,
                super::probe_registry(None),
            )
        })
        .collect();
    // Connected once each shows among the cluster's agents (written at
    // the gateway's heartbeat).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let connected = longshore::ops::agents::connected(store.as_ref()).await?;
        if connected.len() >= agents {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "H: {} of {agents} agents connected after 2 minutes",
                connected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the connection burst settle before the window opens.
    tokio::time::sleep(Duration::from_secs(5)).await;
    tracing::info!(
        seconds = window.as_secs_f64(),
        "H: all connected; measuring"
    );
    let before = transactions(scratch).await?;
    let cpu_before = cpu_seconds()?;
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let cpu_after = cpu_seconds()?;
    let after = transactions(scratch).await?;
    let seconds = start.elapsed().as_secs_f64();
    let rss_mib = super::rss_mib("VmRSS");
    for agent in running {
        agent.shutdown().await?;
    }
    gateway.stop().await?;
    Ok(IdleReport {
        agents,
        seconds,
        // Less the one read that opened the window.
        db_transactions_per_sec: before
            .zip(after)
            .map(|(b, a)| (a - b - 1).max(0) as f64 / seconds),
        cpu_percent_of_one_core: (cpu_after - cpu_before) / seconds * 100.0,
        rss_mib,
    })
}

/// CPU time this process has used, user and system, in seconds.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are the 12th and 13th of them.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc/self/stat has no command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("/proc/self/stat has no field {i}"))
    };
    // /proc counts in USER_HZ, which Linux fixes at 100 per second.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
