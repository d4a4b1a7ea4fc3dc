//! Longshore's built-in actors, so that the `longshore` binary is useful
//! without writing Rust: `noop`, `sleep`, `fail`, `http` and `shell`.
//!
//! # Brief overview
//!
//! - [`registry`] gives a worker every built-in actor.
//! - [`validate`] is each actor's check of a task's arguments, made at
//!   enqueue time too, so that a bad enqueue is refused before anything is
//!   written; [`Builtin`] offers it to the operations that check actors
//!   ([`longshore::ops::ActorCatalog`]).
//! - [`HttpSettings`] configures the `http` webhook actor ([`HttpActor`]);
//!   [`ShellSettings`] the `shell` actor ([`ShellActor`]), which runs only
//!   the commands a node's configuration names; [`Settings`] holds both.
//!
//! This crate needs no storage engine and no HTTP server: a worker node,
//! an agent or a test can take the actors alone.

#![warn(missing_docs)]

mod http;
mod shell;

use std::time::Duration;

use async_trait::async_trait;
use longshore::ops::ActorCatalog;
use longshore::{Actor, Registry, TaskContext, TaskError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use http::HttpActor;
pub use shell::{ShellActor, ShellSettings};

/// The names of the built-in actors.
pub const NAMES: &[&str] = &["noop", "sleep", "fail", "http", "shell"];

/// The built-in actors' settings (`actors.*`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The `http` webhook actor.
    pub http: HttpSettings,
    /// The `shell` actor.
    pub shell: ShellSettings,
}

impl Settings {
    /// Checks what can be checked without this node's files; the error
    /// names the setting at fault.
    pub fn check(&self) -> Result<(), String> {
        if self.http.timeout.is_zero() {
            return Err("invalid setting: actors.http.timeout must be above zero".into());
        }
        self.shell.check()
    }
}

/// The `http` actor's settings (`actors.http.*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// How long one request may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The most bytes of a response body copied into the task's log.
    pub max_excerpt_bytes: usize,
    /// Which redirects are followed.
    pub redirects: Redirects,
    /// The hosts a task may call (`example.com`, or `*.example.com` for
    /// its subdomains); empty: any host.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            max_excerpt_bytes: 1024,
            redirects: Redirects::SameHost,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Which redirects the `http` actor follows (up to ten in a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redirects {
    /// Only to the host the task named: a webhook's credentials (headers,
    /// a password in the URL) never travel to a host the task did not
    /// name.
    SameHost,
    /// To any host (that `allowed_hosts` allows).
    Any,
    /// None: a redirect is an answer like any other.
    None,
}

/// The built-in actors as a catalog: what a node checks a task for a
/// built-in actor against before writing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Builtin;

impl ActorCatalog for Builtin {
    fn check(&self, actor: &str, args: &serde_json::Value) -> Result<(), String> {
        validate(actor, args)
    }
}

/// Which kind of node runs the registry: it decides when `shell` is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsOn {
    /// A worker inside `serve` or `worker`, next to the database and the
    /// API: `shell` runs only when `actors.shell.enabled` is true.
    Inline,
    /// `longshore agent`, a process of its own on a machine chosen for the
    /// work, holding no database credentials: `shell` runs whenever
    /// `actors.shell.commands` names a command (`enabled` also turns it
    /// on, with an empty list that runs nothing).
    Agent,
}

/// A registry with every built-in actor; `shell` only where `runs_on`'s
/// rule turns it on.
pub fn registry(settings: &Settings, runs_on: RunsOn) -> Result<Registry, String> {
    let mut registry = Registry::new();
    registry
        .register_actor("noop", Noop)
        .register_actor("sleep", Sleep)
        .register_actor("fail", Fail)
        .register_actor("http", HttpActor::new(&settings.http)?);
    let shell_on =
        settings.shell.enabled || (runs_on == RunsOn::Agent && !settings.shell.commands.is_empty());
    if shell_on {
        registry.register_actor("shell", ShellActor::new(&settings.shell)?);
    } else {
        registry.register_actor("shell", ShellDisabled(runs_on));
    }
    Ok(registry)
}

/// Checks `args` for built-in actor `actor`; the error says what is wrong.
pub fn validate(actor: &str, args: &serde_json::Value) -> Result<(), String> {
    match actor {
        "noop" => Ok(()),
        "sleep" => parse::<SleepArgs>(actor, args).map(|_| ()),
        "fail" => parse::<FailArgs>(actor, args).map(|_| ()),
        "http" => http::validate(args),
        "shell" => shell::validate(args),
        other => Err(format!(
            "unknown actor `{other}`: the built-in actors are {}",
            NAMES.join(", ")
        )),
    }
}

fn parse<T: DeserializeOwned>(actor: &str, args: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(args.clone())
        .map_err(|e| format!("invalid arguments for actor `{actor}`: {e}"))
}

fn parse_task<T: DeserializeOwned>(actor: &str, args: serde_json::Value) -> Result<T, TaskError> {
    parse(actor, &args).map_err(TaskError::fatal)
}

/// Stands for `shell` on a node that does not enable it, so that a task
/// sent there says why it did not run (and is retried: another node may
/// enable it).
struct ShellDisabled(RunsOn);

#[async_trait]
impl Actor for ShellDisabled {
    async fn run(&self, _args: serde_json::Value, _ctx: TaskContext) -> Result<(), TaskError> {
        Err(TaskError::retry(match self.0 {
            RunsOn::Inline => {
                "the shell actor is off on this worker (actors.shell.enabled is false); \
                 send shell tasks to a queue that only enabled workers serve"
            }
            RunsOn::Agent => {
                "this agent has no shell commands (actors.shell.commands is empty in its \
                 configuration); send shell tasks to a pool whose agents name them"
            }
        }))
    }
}

/// Does nothing; for benchmarks and smoke tests.
struct Noop;

#[async_trait]
impl Actor for Noop {
    async fn run(&self, _args: serde_json::Value, _ctx: TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

/// `{"ms": N}`: waits N milliseconds, stopping early if cancelled.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepArgs {
    ms: u64,
}

struct Sleep;

#[async_trait]
impl Actor for Sleep {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let args: SleepArgs = parse_task("sleep", args)?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(()),
            () = ctx.cancelled() => Err(TaskError::retry("cancelled while sleeping")),
        }
    }
}

/// `{"times": N, "message": "…"}`: fails its first N attempts, then
/// succeeds; for trying out retries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailArgs {
    #[serde(default = "one")]
    times: i32,
    #[serde(default)]
    message: Option<String>,
}

fn one() -> i32 {
    1
}

struct Fail;

#[async_trait]
impl Actor for Fail {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let args: FailArgs = parse_task("fail", args)?;
        if ctx.attempt() <= args.times {
            let message = args.message.unwrap_or_else(|| {
                format!(
                    "failing on purpose (attempt {} of {} failures)",
                    ctx.attempt(),
                    args.times
                )
            });
            return Err(TaskError::retry(message));
        }
        ctx.info(format!("succeeded after {} failures", args.times));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked_at_enqueue() {
        assert!(validate("noop", &json!({})).is_ok());
        assert!(validate("sleep", &json!({"ms": 5})).is_ok());
        let err = validate("sleep", &json!({"ms": "five"})).unwrap_err();
        assert!(err.contains("sleep"), "{err}");
        assert!(validate("sleep", &json!({})).is_err());
        assert!(validate("fail", &json!({"times": 2})).is_ok());
        assert!(validate("fail", &json!({"tims": 2})).is_err());
        let err = validate("mail", &json!({})).unwrap_err();
        assert!(err.contains("unknown actor `mail`"), "{err}");
    }
}
