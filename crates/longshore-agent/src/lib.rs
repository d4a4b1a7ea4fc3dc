//! The Rust agent SDK: runs the tasks of one pool, handed over by a
//! Longshore server's gRPC gateway, with the same [`Task`](longshore::Task)
//! and [`Actor`](longshore::Actor) traits and
//! [`TaskContext`](longshore::TaskContext) as inline workers. An agent
//! holds no database credentials: only an agent token for its pool.
//!
//! ```no_run
//! use longshore::{Registry, Task, TaskContext, TaskError, WorkerConfig};
//! use longshore_agent::{Agent, AgentConfig};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Render { frame: u32 }
//!
//! impl Task for Render {
//!     const ACTOR: &'static str = "render";
//!     async fn run(self, ctx: TaskContext) -> Result<(), TaskError> {
//!         ctx.info(format!("rendering frame {}", self.frame));
//!         Ok(())
//!     }
//! }
//!
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! registry.register::<Render>();
//! let config = AgentConfig::new("http://127.0.0.1:50051", "gpu", std::env::var("LONGSHORE_AGENT_TOKEN")?);
//! let stop = tokio_util::sync::CancellationToken::new();
//! Agent::new(config, registry, WorkerConfig::default()).run(stop).await?;
//! # Ok(()) }
//! ```

mod session;

use std::time::Duration;

use longshore::remote::Runner;
use longshore::{Prefetch, Registry, WorkerConfig};
use tokio_util::sync::CancellationToken;

/// How an agent connects and how much it runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The gateway's address, e.g. `http://127.0.0.1:50051`, or
    /// `https://…` when the gateway speaks TLS.
    pub gateway: String,
    /// For an `https://` gateway: the CA certificates (PEM) to trust
    /// instead of the system's.
    pub ca_certificate: Option<Vec<u8>>,
    /// The pool it serves (its token must be for this pool).
    pub pool: String,
    /// The agent token's secret.
    pub token: String,
    /// The labels it offers.
    pub labels: Vec<String>,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Tasks held queued beyond the free slots (default
    /// [`Prefetch::Auto`]), so that a slot that frees starts its next task
    /// without waiting for the gateway's round trip to the database. A
    /// queued task is leased to this agent (the database shows it running
    /// and it counts for every cap), starts in the order it came, and is
    /// handed back unrun at a stop. With `Auto` the gateway chooses how
    /// many, up to three per slot, from the handler and database times it
    /// measures; long handlers get none.
    pub prefetch: Prefetch,
    /// Its id, the owner of its leases; unique among connected agents.
    pub id: String,
    /// How long a stop waits for running tasks before cancelling them.
    pub drain_timeout: Duration,
    /// The longest wait between two connection attempts.
    pub max_backoff: Duration,
}

impl AgentConfig {
    /// Defaults for the rest: concurrency 10, automatic prefetch, an id
    /// from the host name and process id, 30 s drain.
    pub fn new(
        gateway: impl Into<String>,
        pool: impl Into<String>,
        token: impl Into<String>,
    ) -> AgentConfig {
        AgentConfig {
            gateway: gateway.into(),
            ca_certificate: None,
            pool: pool.into(),
            token: token.into(),
            labels: Vec::new(),
            concurrency: 10,
            prefetch: Prefetch::Auto,
            id: longshore::default_worker_id(),
            drain_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// Refuses settings no agent can run with: no slots, or a prefetch
    /// above [`Prefetch::MOST`]. [`Agent::run`] checks them too; a caller
    /// that prints the settings first can check them before it does.
    ///
    /// ```
    /// let mut config = longshore_agent::AgentConfig::new("http://127.0.0.1:50051", "builds", "token");
    /// assert!(config.check().is_ok());
    /// config.concurrency = 0;
    /// assert!(config.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), AgentError> {
        if self.concurrency == 0 {
            return Err(AgentError::Invalid("concurrency must be at least 1".into()));
        }
        if let Prefetch::Tasks(n) = self.prefetch
            && n > Prefetch::MOST
        {
            return Err(AgentError::Invalid(format!(
                "prefetch must be at most {}",
                Prefetch::MOST
            )));
        }
        Ok(())
    }
}

/// Why an agent stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The gateway refused the agent for a reason that trying again will
    /// not change (bad token, wrong pool, protocol version).
    #[error("the gateway refused this agent: {0}")]
    Refused(String),
    /// The settings are unusable.
    #[error("invalid agent settings: {0}")]
    Invalid(String),
}

/// An agent: connects, runs what it is given, reconnects with backoff.
pub struct Agent {
    config: AgentConfig,
    runner: Runner,
}

impl Agent {
    /// An agent running `registry`'s actors; `execution` gives the
    /// defaults of a handler's run (time limit, cancel grace, secrets).
    pub fn new(config: AgentConfig, registry: Registry, execution: WorkerConfig) -> Agent {
        let execution = WorkerConfig {
            id: config.id.clone(),
            ..execution
        };
        Agent {
            runner: Runner::new(registry, execution),
            config,
        }
    }

    /// Runs until `stop` (then drains: running tasks finish within
    /// `drain_timeout`, the rest are handed back) or until the gateway
    /// refuses it for good.
    pub async fn run(self, stop: CancellationToken) -> Result<(), AgentError> {
        self.config.check()?;
        let mut backoff = Duration::from_millis(200);
        // Results sent on a stream that broke before the gateway answered:
        // sent again on the next session, which records those still
        // fenced in and refuses the rest, saying so.
        let mut unanswered = session::Unanswered::default();
        loop {
            match session::run(&self.config, &self.runner, &stop, &mut unanswered).await {
                Ok(session::Ended::Stopped) => return Ok(()),
                Ok(session::Ended::Lost(why)) => {
                    tracing::warn!(reason = %why, "lost the gateway; reconnecting");
                    backoff = Duration::from_millis(200);
                }
                Err(session::Failure::Refused(why)) => return Err(AgentError::Refused(why)),
                Err(session::Failure::Retry(why)) => {
                    tracing::warn!(reason = %why, retry_in = ?backoff, "cannot open a session");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.cancelled() => return Ok(()),
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }
}
