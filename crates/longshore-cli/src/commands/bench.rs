//! `longshore bench`: the flags and the report's output; the workloads
//! are [`longshore_bench`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use longshore_bench::{Options, Workload};
use longshore_server::settings::Settings;

use crate::output;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Workloads to run: a (bulk), b (latency), c (steady state), d (memory), e (far backlog), f (history), g (a and b through an agent), h (idle agents), k (a at each of --concurrencies), m (many producers, gathered and not), p (a through a Python agent), s (a's backlog through more worker processes), u (a directory sync through the http actor, per --layouts), w (a and b before and after --churn-tasks pass through; runs alone)
    #[arg(long, value_delimiter = ',', default_value = "a,b,c", value_name = "W,...", value_parser = str::parse::<Workload>)]
    workloads: Vec<Workload>,
    /// A: tasks to insert and process
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    bulk_tasks: usize,
    /// Worker concurrency for every workload
    #[arg(long, default_value_t = 16, value_name = "N")]
    concurrency: usize,
    /// Tasks each worker and agent claims ahead of its free slots (worker.prefetch, agent --prefetch): auto, or a count
    #[arg(long, default_value_t = longshore::Prefetch::Auto, value_name = "auto|N")]
    prefetch: longshore::Prefetch,
    /// B: tasks to enqueue one at a time
    #[arg(long, default_value_t = 500, value_name = "N")]
    latency_tasks: usize,
    /// B: time between two enqueues
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "10ms")]
    latency_interval: Duration,
    /// C: how long the producer runs
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "20s")]
    steady_duration: Duration,
    /// D and E: backlog size
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    backlog_tasks: usize,
    /// D: how long the worker runs over the backlog
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "20s")]
    backlog_duration: Duration,
    /// F: finished tasks in the history
    #[arg(long, default_value_t = 5_000_000, value_name = "N")]
    history_finished: i64,
    /// F: queued tasks in the history
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    history_queued: i64,
    /// H: agents connected and idle
    #[arg(long, default_value_t = 100, value_name = "N")]
    idle_agents: usize,
    /// H: how long they are watched
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "30s")]
    idle_duration: Duration,
    /// S: worker process counts, each draining a backlog of --bulk-tasks
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4",
        value_name = "N,..."
    )]
    processes: Vec<usize>,
    /// S: also drain the backlog with this many `longshore agent` processes (each of --concurrency slots) through a gateway the bench serves, per count, e.g. 1,4; none by default
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    agents: Vec<usize>,
    /// K: the concurrencies to run A at, one after another
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,4,16,64",
        value_name = "N,..."
    )]
    concurrencies: Vec<usize>,
    /// U: users to sync, one http task each
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    users: usize,
    /// U: how long the stand-in directory takes to answer each request
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "20ms")]
    directory_latency: Duration,
    /// U: worker layouts, each PROCESSESxSLOTS, that drain the users one after another
    #[arg(long, value_delimiter = ',', default_value = "1x16,1x128,4x64", value_name = "PxC,...", value_parser = str::parse::<longshore_bench::Layout>)]
    layouts: Vec<longshore_bench::Layout>,
    /// W: tasks passed through the queue, with a purger at work, between the measurements
    #[arg(long, default_value_t = 5_000_000, value_name = "N")]
    churn_tasks: usize,
    /// M: concurrent producers, each enqueueing one task at a time
    #[arg(long, default_value_t = 64, value_name = "N")]
    producers: usize,
    /// M: how long each of its two runs (gathering off, then on) lasts
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "20s")]
    producers_duration: Duration,
    /// P: the Python interpreter that has the SDK installed (`pip install ./sdk/python`)
    #[arg(long, default_value = "python3", value_name = "PATH")]
    python: String,
    /// Run the workloads this many times, each on a fresh scratch database; the JSON is then a list of reports, one per run
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Also write the results as JSON to this file
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Run nothing: compare two `--json-out` files (each one report or a `--repeat` list) figure by figure, with each side's median and spread
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    compare: Option<Vec<PathBuf>>,
    /// Run nothing: draw the curves of workloads k (tasks/s by concurrency) and s (by worker processes) from these `--json-out` files as SVG, one line per file, into --chart-dir
    #[arg(long, num_args = 1.., value_name = "FILE")]
    chart: Option<Vec<PathBuf>>,
    /// Where --chart writes concurrency.svg and processes.svg; given with a run of k or s, that run's curves are drawn there too
    #[arg(long, value_name = "DIR")]
    chart_dir: Option<PathBuf>,
    /// Keep the scratch database (or SQLite file) afterwards
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    pub(crate) database: crate::connection::DatabaseArgs,
}

/// Runs the workloads and prints what they measured: a table, then the
/// whole report as one JSON line (also written to `--json-out`).
pub(crate) async fn run(settings: &Settings, args: Args) -> anyhow::Result<()> {
    if let Some(sides) = &args.compare {
        return compare(sides);
    }
    let chart_dir = args.chart_dir.clone();
    if let Some(files) = &args.chart {
        let series = files
            .iter()
            .map(|f| longshore_bench::chart::Series::read(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return draw(&series, chart_dir.as_deref());
    }
    if chart_dir.is_some()
        && !args
            .workloads
            .iter()
            .any(|w| matches!(w, Workload::K | Workload::S))
    {
        anyhow::bail!(
            "--chart-dir draws the curves of workloads k and s: run one of them, or give --chart FILE..."
        );
    }
    let json_out = args.json_out.clone();
    let repeat = args.repeat;
    let options: Options = args.into();
    let mut reports = Vec::new();
    for _ in 0..repeat {
        let report = longshore_bench::run(settings, options.clone()).await?;
        println!("{}", report.title());
        output::table(&["WORKLOAD", "METRIC", "VALUE"], &report.rows());
        reports.push(serde_json::to_value(&report)?);
    }
    let json = match <[serde_json::Value; 1]>::try_from(reports) {
        Ok([one]) => one,
        Err(many) => serde_json::Value::Array(many),
    };
    if let Some(path) = &json_out {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    if chart_dir.is_some() {
        let reports = match json {
            serde_json::Value::Array(reports) => reports,
            one => vec![one],
        };
        let series = [longshore_bench::chart::Series {
            name: "this run".into(),
            reports,
        }];
        draw(&series, chart_dir.as_deref())?;
    }
    Ok(())
}

/// Draws the curves `series` hold into `dir` (the current directory when
/// unset) and names the files written.
fn draw(series: &[longshore_bench::chart::Series], dir: Option<&Path>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or(Path::new("."));
    for path in longshore_bench::chart::draw(series, dir)? {
        println!("chart written: {}", path.display());
    }
    Ok(())
}

/// `--compare OLD NEW`: the figures both name, side by side.
fn compare(sides: &[PathBuf]) -> anyhow::Result<()> {
    let [old, new] = sides else {
        anyhow::bail!("--compare takes two files: OLD and NEW");
    };
    let figures = longshore_bench::compare::compare(
        &longshore_bench::compare::read(old)?,
        &longshore_bench::compare::read(new)?,
    );
    if figures.is_empty() {
        anyhow::bail!(
            "{} and {} have no figure in common: compare runs of the same workloads",
            old.display(),
            new.display()
        );
    }
    let rows: Vec<Vec<String>> = figures.iter().map(|f| f.row()).collect();
    output::table(&longshore_bench::compare::HEADERS, &rows);
    Ok(())
}

impl From<Args> for Options {
    fn from(args: Args) -> Options {
        Options {
            workloads: args.workloads,
            bulk_tasks: args.bulk_tasks,
            concurrency: args.concurrency,
            prefetch: args.prefetch,
            latency_tasks: args.latency_tasks,
            latency_interval: args.latency_interval,
            steady_duration: args.steady_duration,
            backlog_tasks: args.backlog_tasks,
            backlog_duration: args.backlog_duration,
            history_finished: args.history_finished,
            history_queued: args.history_queued,
            idle_agents: args.idle_agents,
            idle_duration: args.idle_duration,
            processes: args.processes,
            agents: args.agents,
            concurrencies: args.concurrencies,
            users: args.users,
            directory_latency: args.directory_latency,
            layouts: args.layouts,
            churn_tasks: args.churn_tasks,
            producers: args.producers,
            producers_duration: args.producers_duration,
            python: args.python,
            keep: args.keep,
        }
    }
}
