//! `longshore`: the command-line face of Longshore. It parses arguments,
//! calls the libraries (`longshore` and its `ops`, `longshore-server` for
//! the nodes, `longshore-bench`) or a server's API (`--server`), and
//! formats what they answer; the logic lives in those crates.

mod commands;
mod connection;
mod output;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connection::{Connection, DatabaseArgs, Group, ServerArgs};

use commands::{
    agent, agents, bench, enqueue, pools, queues, runtime_settings, schedules, serve, tasks,
    tokens, worker, workers,
};

#[derive(Parser)]
#[command(
    name = "longshore",
    version,
    about = "Durable background tasks: run workers, enqueue, inspect and steer tasks.",
    long_about = None,
)]
struct Cli {
    /// YAML settings file (see docs/configuration.md) [env: LONGSHORE_CONFIG]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LONGSHORE_CONFIG",
        hide_env = true,
        help_heading = "Global options"
    )]
    config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `longshore=debug` [env: LONGSHORE_LOG; default: info for serve, worker, migrate and bench; warn otherwise]
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        env = "LONGSHORE_LOG",
        hide_env = true,
        help_heading = "Global options"
    )]
    log: Option<String>,

    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json` (one object a line, for log shippers) [env: LONGSHORE_LOG_FORMAT; default: text]
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        value_enum,
        env = "LONGSHORE_LOG_FORMAT",
        hide_env = true,
        hide_possible_values = true,
        help_heading = "Global options"
    )]
    log_format: Option<LogFormat>,

    /// How times are printed: `utc` (marked `UTC`) or `local` (this machine's zone, marked with its offset); JSON output is always UTC [env: LONGSHORE_TIME_ZONE; default: utc]
    #[arg(
        long,
        global = true,
        value_name = "ZONE",
        value_enum,
        env = "LONGSHORE_TIME_ZONE",
        ignore_case = true,
        hide_env = true,
        hide_possible_values = true,
        help_heading = "Global options"
    )]
    time_zone: Option<output::Zone>,

    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// The flags naming the database, and those naming a server when the
    /// command can work through one.
    fn connection(&self) -> (&DatabaseArgs, Option<&ServerArgs>) {
        fn both(c: &Connection) -> (&DatabaseArgs, Option<&ServerArgs>) {
            (&c.database, Some(&c.server))
        }
        match self {
            Command::Serve(args) => (&args.database, None),
            Command::Migrate(database) => (database, None),
            Command::Worker(args) => (&args.database, None),
            Command::Bench(args) => (&args.database, None),
            Command::Pools(args) => (&args.database, None),
            Command::Agents(args) => (&args.database, None),
            Command::Agent(args) => (&args.database, None),
            Command::Enqueue(args) => both(&args.connection),
            Command::Tasks(group) => both(&group.connection),
            Command::Queues(group) => both(&group.connection),
            Command::Workers(group) => both(&group.connection),
            Command::Schedules(group) => both(&group.connection),
            Command::Settings(group) => both(&group.connection),
            Command::Tokens(group) => both(&group.connection),
        }
    }

    /// The command's name, for messages.
    fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Migrate(_) => "migrate",
            Command::Worker(_) => "worker",
            Command::Bench(_) => "bench",
            Command::Pools(_) => "pools",
            Command::Agents(_) => "agents",
            Command::Agent(_) => "agent",
            Command::Enqueue(_) => "enqueue",
            Command::Tasks(_) => "tasks",
            Command::Queues(_) => "queues",
            Command::Workers(_) => "workers",
            Command::Schedules(_) => "schedules",
            Command::Settings(_) => "settings",
            Command::Tokens(_) => "tokens",
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: an inline worker with the built-in
    /// actors and the HTTP side, on the data directory's SQLite file unless
    /// a database URL is given. Stops gracefully on SIGTERM or SIGINT.
    Serve(serve::Args),
    /// Apply the database migrations embedded in this binary (safe to run
    /// from several nodes at once).
    Migrate(DatabaseArgs),
    /// Run a worker node with the built-in actors until SIGTERM or SIGINT.
    Worker(worker::Args),
    /// Enqueue tasks for an actor; prints the new task ids.
    Enqueue(enqueue::Args),
    /// Inspect and steer tasks.
    Tasks(Group<tasks::Command>),
    /// List queues; pause and resume them for every node; flush them.
    Queues(Group<queues::Command>),
    /// The live worker nodes.
    Workers(Group<workers::Command>),
    /// Cron schedules: add, edit, list, show, pause, resume, run by hand,
    /// delete.
    Schedules(Group<schedules::Command>),
    /// Runtime settings stored in the database (caps on running tasks),
    /// taking effect on every node within a few seconds. Not the binary's
    /// own settings (YAML file, LONGSHORE_* variables).
    Settings(Group<runtime_settings::Command>),
    /// Bearer tokens for the HTTP API: create (the secret is shown once),
    /// list, revoke.
    Tokens(Group<tokens::Command>),
    /// Agent pools: the queues that agents run instead of inline workers.
    Pools(PoolsArgs),
    /// Agents: the tokens they open the gateway with.
    Agents(AgentsArgs),
    /// Run an agent: take a pool's tasks from a server's gRPC gateway and
    /// run them with the built-in actors, without database credentials.
    /// Stops gracefully on SIGTERM or SIGINT.
    Agent(agent::Args),
    /// Measure throughput and latency (bulk, latency, steady state) on a
    /// scratch database it creates and drops.
    Bench(bench::Args),
}

/// `longshore pools`: works on the database.
#[derive(clap::Args)]
struct PoolsArgs {
    #[command(subcommand)]
    command: pools::Command,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// `longshore agents`: works on the database.
#[derive(clap::Args)]
struct AgentsArgs {
    #[command(subcommand)]
    command: agents::Command,
    #[command(flatten)]
    database: DatabaseArgs,
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Serve(_)
        | Command::Worker(_)
        | Command::Agent(_)
        | Command::Bench(_)
        | Command::Migrate(_) => "info",
        _ => "warn",
    };
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_log.to_owned());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    if cli.log_format == Some(LogFormat::Json) {
        logs.json().init();
    } else {
        // Colours only for a person at a terminal: a file or a pipe gets
        // plain text.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    // One TLS implementation for every client in the process (PostgreSQL and
    // the http actor): ring, which builds without a C toolchain beyond cc.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `longshore tasks list | head` closes stdout early; Rust's `println!`
/// then panics. End quietly instead, with the status a shell gives a
/// command stopped by SIGPIPE (128 + 13); any other panic is reported as
/// usual.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    output::set_zone(cli.time_zone);
    let (database, server) = cli.command.connection();
    let mut overrides = Vec::new();
    if let Some(url) = &database.database_url {
        overrides.push(("database_url", url.clone().into()));
    }
    if let Some(dir) = &database.data_dir {
        overrides.push(("data_dir", dir.display().to_string().into()));
    }
    match &cli.command {
        Command::Worker(args) => args.overrides(&mut overrides),
        Command::Serve(args) => args.overrides(&mut overrides),
        _ => {}
    }
    let settings = longshore_server::settings::Settings::load(cli.config.as_deref(), &overrides)
        .map_err(anyhow::Error::msg)?;
    let from_env = || {
        std::env::var("LONGSHORE_SERVER")
            .ok()
            .filter(|s| !s.trim().is_empty())
    };
    let remote = match server {
        Some(flags) => match flags.server.clone().or_else(from_env) {
            Some(url) => {
                let token = flags
                    .token
                    .clone()
                    .or_else(|| std::env::var("LONGSHORE_TOKEN").ok());
                Some(remote::Remote::new(&url, token)?)
            }
            None => None,
        },
        // A command that cannot work through a server, while the
        // environment says to: refuse rather than quietly use a local
        // database the person did not mean.
        None if from_env().is_some() => anyhow::bail!(
            "`longshore {}` needs the database and does not work through a server: \
             unset LONGSHORE_SERVER and give --database-url",
            cli.command.name()
        ),
        None => None,
    };
    match cli.command {
        Command::Serve(_) => longshore_server::serve::run(&settings).await,
        Command::Migrate(_) => commands::migrate(&settings).await,
        Command::Worker(_) => longshore_server::worker::run(&settings).await,
        Command::Enqueue(args) => enqueue::run(&settings, args, remote).await,
        Command::Tasks(group) => tasks::run(&settings, group.command, remote).await,
        Command::Queues(group) => queues::run(&settings, group.command, remote).await,
        Command::Workers(group) => workers::run(&settings, group.command, remote).await,
        Command::Schedules(group) => schedules::run(&settings, group.command, remote).await,
        Command::Settings(group) => runtime_settings::run(&settings, group.command, remote).await,
        Command::Tokens(group) => tokens::run(&settings, group.command, remote).await,
        Command::Pools(args) => pools::run(&settings, args.command).await,
        Command::Agents(args) => agents::run(&settings, args.command).await,
        Command::Agent(args) => longshore_server::agent::run(&settings, args.config()?).await,
        Command::Bench(args) => bench::run(&settings, args).await,
    }
}
