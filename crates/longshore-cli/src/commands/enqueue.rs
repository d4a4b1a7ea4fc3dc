//! `longshore enqueue`.

use std::time::Duration;

use anyhow::bail;
use longshore::{EnqueueOptions, NewTask};

use longshore::core::EnqueueResult;
use serde::Deserialize;

use longshore_server::settings::Settings;

use super::{Source, task_input};
use crate::remote::Remote;

/// Tasks per insert statement (or API request) for `--count`: at most
/// the API's bulk limit.
const CHUNK: usize = 1000;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The actor to run (built-in: noop, sleep, fail, http)
    actor: String,
    #[command(flatten)]
    pub(crate) connection: crate::connection::Connection,
    /// Arguments as a JSON object, or @FILE to read them from a file (@- for stdin)
    #[arg(long, default_value = "{}", value_name = "JSON")]
    args: String,
    /// Queue
    #[arg(long, default_value = NewTask::DEFAULT_QUEUE, value_name = "Q")]
    queue: String,
    /// Lower runs first
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_name = "P"
    )]
    priority: i16,
    /// Run no earlier than this long from now, e.g. 30s, 5m
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    delay: Option<Duration>,
    /// Executions allowed [default: setting retry.max_attempts]
    #[arg(long, value_name = "N")]
    max_attempts: Option<i32>,
    /// Time limit of each execution, e.g. 90s [default: the worker's worker.time_limit]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    time_limit: Option<Duration>,
    /// While an active task holds this key, no other is inserted
    #[arg(long, value_name = "KEY")]
    unique_key: Option<String>,
    /// The object the task works on, as TYPE:ID (e.g. user:42)
    #[arg(long, value_name = "TYPE:ID")]
    related: Option<String>,
    /// Labels an agent must offer to run it, comma-separated (for a queue of an agent pool)
    #[arg(long, value_delimiter = ',', value_name = "L,...")]
    requires: Vec<String>,
    /// Enqueue this many copies, in bulk
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: usize,
    /// Accept an actor that is not built in (one your own workers register)
    #[arg(long)]
    any_actor: bool,
    /// Print one JSON object a task: {"id": …, "duplicate": true|false}
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// Print only the number of tasks enqueued, not their ids
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) async fn run(
    settings: &Settings,
    args: Args,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    // Everything is checked before anything is written.
    let json = task_input::read_args(&args.args)?;
    task_input::check_actor(&args.actor, &json, args.any_actor)?;
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let related = args
        .related
        .as_deref()
        .map(task_input::parse_related)
        .transpose()?;
    let options = EnqueueOptions {
        queue: Some(args.queue.clone()),
        priority: Some(args.priority),
        delay: args.delay,
        max_attempts: Some(args.max_attempts.unwrap_or(settings.retry.max_attempts)),
        time_limit: args.time_limit,
        unique_key: args.unique_key.clone(),
        related,
        ..EnqueueOptions::default()
    };
    let template = {
        let mut task = NewTask::new(args.actor.clone(), json);
        options.apply(&mut task);
        task.requires = args.requires.clone();
        task.validate().map_err(anyhow::Error::msg)?;
        task
    };

    let source = Source::open(settings, remote).await?;
    // Through the API, a task that names no attempts gets the server's
    // default, as one enqueued by any other client does.
    let server_default_attempts = args.max_attempts.is_none();
    let mut inserted = 0usize;
    let mut remaining = args.count;
    while remaining > 0 {
        let n = remaining.min(CHUNK);
        let batch: Vec<NewTask> = (0..n)
            .map(|_| NewTask {
                id: uuid::Uuid::now_v7(),
                ..template.clone()
            })
            .collect();
        let results = source
            .enqueue(batch, args.any_actor, server_default_attempts)
            .await?;
        // A duplicate of an active unique key is no failure: its id is the
        // active task's, printed like any other, so that a script gets the
        // task to follow either way.
        for result in results {
            if result.inserted {
                inserted += 1;
            } else {
                eprintln!(
                    "unique key `{}` is held by active task {}: not inserted again; its id follows",
                    args.unique_key.as_deref().unwrap_or_default(),
                    result.id
                );
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "id": result.id, "duplicate": !result.inserted })
                );
            } else if !args.quiet {
                println!("{}", result.id);
            }
        }
        remaining -= n;
    }
    if args.quiet {
        println!("{inserted}");
    }
    Ok(())
}

/// An enqueue as the API answers it.
#[derive(Deserialize)]
struct ApiEnqueued {
    tasks: Vec<ApiResult>,
}

#[derive(Deserialize)]
struct ApiResult {
    id: uuid::Uuid,
    inserted: bool,
}

impl Source {
    /// Inserts `tasks` together, all or none; what happened to each. The
    /// API chooses the ids itself; `any_actor` and, with
    /// `server_default_attempts`, the server's `retry.max_attempts` apply
    /// there.
    async fn enqueue(
        &self,
        tasks: Vec<NewTask>,
        any_actor: bool,
        server_default_attempts: bool,
    ) -> anyhow::Result<Vec<EnqueueResult>> {
        let api = match self {
            Source::Db(store) => return Ok(store.enqueue(tasks).await?),
            Source::Api(api) => api,
        };
        let requests: Vec<serde_json::Value> = tasks
            .into_iter()
            .map(|task| {
                let mut request = serde_json::json!({
                    "actor": task.actor,
                    "args": task.args,
                    "queue": task.queue,
                    "priority": task.priority,
                    "run_at": task.run_at,
                    "time_limit_ms": task.time_limit_ms,
                    "unique_key": task.unique_key,
                    "related": task.related,
                    "requires": task.requires,
                    "any_actor": any_actor,
                });
                if !server_default_attempts {
                    request["max_attempts"] = task.max_attempts.into();
                }
                request
            })
            .collect();
        let answer: ApiEnqueued = api
            .post(&["tasks"], &serde_json::json!({ "tasks": requests }))
            .await?;
        Ok(answer
            .tasks
            .into_iter()
            .map(|r| EnqueueResult {
                id: r.id,
                inserted: r.inserted,
            })
            .collect())
    }
}
