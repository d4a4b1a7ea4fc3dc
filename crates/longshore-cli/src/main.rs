//! `longshore`: the command-line face of Longshore. It parses arguments,
//! calls the libraries (`longshore` and its `ops`, `longshore-server` for
//! the nodes, `longshore-bench`) or a server's API (`--server`), and
//! formats what they answer; the logic lives in those crates.

mod commands;
mod output;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{
    bench, enqueue, queues, runtime_settings, schedules, serve, tasks, tokens, worker, workers,
};

#[derive(Parser)]
#[command(
    name = "longshore",
    version,
    about = "Durable background tasks: run workers, enqueue, inspect and steer tasks.",
    long_about = None,
)]
struct Cli {
    /// postgres://user@host:5432/db or sqlite://path/to/file.db [env: LONGSHORE_DATABASE_URL; default: the data directory's SQLite file]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// Where the embedded SQLite database lives when no URL is given [env: LONGSHORE_DATA_DIR; default: ./longshore-data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// YAML settings file (see docs/configuration.md)
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LONGSHORE_CONFIG",
        hide_env_values = true
    )]
    config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `longshore=debug` [default: info for serve, worker, migrate and bench; warn otherwise]
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        env = "LONGSHORE_LOG",
        hide_env_values = true
    )]
    log: Option<String>,

    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json` (one object a line, for log shippers) [env: LONGSHORE_LOG_FORMAT; default: text]
    #[arg(long, global = true, value_name = "FORMAT", value_enum)]
    log_format: Option<LogFormat>,

    /// Work through this server's HTTP API instead of the database, e.g. http://10.0.0.5:8080 (tasks, enqueue, queues, workers list, schedules, settings, tokens) [env: LONGSHORE_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,

    /// The API token for --server; prefer LONGSHORE_TOKEN, since a command line is visible to every user in `ps` [env: LONGSHORE_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,

    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// The words naming the command, when it cannot work through `--server`.
    fn needs_database(&self) -> Option<&'static str> {
        match self {
            Command::Serve(_) => Some("serve"),
            Command::Migrate => Some("migrate"),
            Command::Worker(_) => Some("worker"),
            Command::Bench(_) => Some("bench"),
            Command::Tasks(tasks::Command::Recount) => Some("tasks recount"),
            _ => None,
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
    Migrate,
    /// Run a worker node with the built-in actors until SIGTERM or SIGINT.
    Worker(worker::Args),
    /// Enqueue tasks for an actor; prints the new task ids.
    Enqueue(enqueue::Args),
    /// Inspect and steer tasks.
    #[command(subcommand)]
    Tasks(tasks::Command),
    /// List queues; pause and resume them for every node; flush them.
    #[command(subcommand)]
    Queues(queues::Command),
    /// The live worker nodes.
    #[command(subcommand)]
    Workers(workers::Command),
    /// Cron schedules: add, edit, list, show, pause, resume, run by hand,
    /// delete.
    #[command(subcommand)]
    Schedules(schedules::Command),
    /// Runtime settings stored in the database (caps on running tasks),
    /// taking effect on every node within a few seconds. Not the binary's
    /// own settings (YAML file, LONGSHORE_* variables).
    #[command(subcommand)]
    Settings(runtime_settings::Command),
    /// Bearer tokens for the HTTP API: create (the secret is shown once),
    /// list, revoke.
    #[command(subcommand)]
    Tokens(tokens::Command),
    /// Measure throughput and latency (bulk, latency, steady state) on a
    /// scratch database it creates and drops.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Serve(_) | Command::Worker(_) | Command::Bench(_) | Command::Migrate => "info",
        _ => "warn",
    };
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_log.to_owned());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let format =
        cli.log_format.or_else(
            || match std::env::var("LONGSHORE_LOG_FORMAT").ok()?.trim() {
                "json" => Some(LogFormat::Json),
                "text" => Some(LogFormat::Text),
                _ => None,
            },
        );
    let logs = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    if format == Some(LogFormat::Json) {
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
    let mut overrides = Vec::new();
    if let Some(url) = &cli.database_url {
        overrides.push(("database_url", url.clone().into()));
    }
    if let Some(dir) = &cli.data_dir {
        overrides.push(("data_dir", dir.display().to_string().into()));
    }
    match &cli.command {
        Command::Worker(args) => args.overrides(&mut overrides),
        Command::Serve(args) => args.overrides(&mut overrides),
        _ => {}
    }
    let settings = longshore_server::settings::Settings::load(cli.config.as_deref(), &overrides)
        .map_err(anyhow::Error::msg)?;
    let server = cli
        .server
        .clone()
        .or_else(|| std::env::var("LONGSHORE_SERVER").ok())
        .filter(|s| !s.trim().is_empty());
    let remote = match server {
        None => None,
        Some(server) => {
            if let Some(name) = cli.command.needs_database() {
                let only_list = if name == "schedules" {
                    " (only `schedules list` does)"
                } else {
                    ""
                };
                anyhow::bail!(
                    "`longshore {name}` needs the database and does not work through --server{only_list}: \
                     drop --server (or unset LONGSHORE_SERVER) and give --database-url"
                );
            }
            let token = cli
                .token
                .clone()
                .or_else(|| std::env::var("LONGSHORE_TOKEN").ok());
            Some(remote::Remote::new(&server, token)?)
        }
    };
    match cli.command {
        Command::Serve(_) => longshore_server::serve::run(&settings).await,
        Command::Migrate => commands::migrate(&settings).await,
        Command::Worker(_) => longshore_server::worker::run(&settings).await,
        Command::Enqueue(args) => enqueue::run(&settings, args, remote).await,
        Command::Tasks(command) => tasks::run(&settings, command, remote).await,
        Command::Queues(command) => queues::run(&settings, command, remote).await,
        Command::Workers(command) => workers::run(&settings, command, remote).await,
        Command::Schedules(command) => schedules::run(&settings, command, remote).await,
        Command::Settings(command) => runtime_settings::run(&settings, command, remote).await,
        Command::Tokens(command) => tokens::run(&settings, command, remote).await,
        Command::Bench(args) => bench::run(&settings, args).await,
    }
}
