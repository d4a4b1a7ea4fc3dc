//! `longshore queues …`: list queues with their depth, pause and resume
//! them for every node, flush them.

use std::collections::BTreeMap;

use anyhow::bail;
use longshore::TaskState;
use longshore::core::{QueueSettings, StatsKey};
use serde::{Deserialize, Serialize};

use longshore_server::settings::Settings;

use super::Source;
use crate::output;
use crate::remote::Remote;
use longshore::ops::bulk;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Every queue with tasks or settings: paused or not, its cap on running
    /// tasks (`longshore settings set queues.NAME.max_running N`), tasks by
    /// state.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop every node from claiming the queue's tasks (running ones finish).
    Pause {
        /// Queue name
        queue: String,
    },
    /// Let nodes claim the queue's tasks again.
    Resume {
        /// Queue name
        queue: String,
    },
    /// Delete every waiting (scheduled and queued) task of the queue, in
    /// batches, and ask its running tasks to cancel, as `tasks cancel`
    /// does. Needs --dry-run (count them) or --yes.
    Flush {
        /// Queue name
        queue: String,
        /// Count what would be deleted and asked to cancel; change nothing
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Really flush it
        #[arg(long)]
        yes: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// A queue's settings and its tasks by state.
#[derive(Default)]
struct Queue {
    paused: bool,
    max_running: Option<i32>,
    counts: BTreeMap<TaskState, i64>,
}

/// One queue as `list --json` prints it.
#[derive(Serialize)]
struct QueueJson<'a> {
    name: &'a str,
    paused: bool,
    /// At most this many of its tasks run at once across the cluster.
    max_running: Option<i32>,
    tasks: BTreeMap<&'static str, i64>,
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    let source = Source::open(settings, remote).await?;
    match command {
        Command::Pause { queue } => {
            source.set_paused(&queue, true).await?;
            println!(
                "queue {queue} paused: no node claims its tasks until `longshore queues resume {queue}`"
            );
        }
        Command::Resume { queue } => {
            source.set_paused(&queue, false).await?;
            println!("queue {queue} resumed");
        }
        Command::List { json } => {
            let queues = source.queues().await?;
            if json {
                let list: Vec<QueueJson<'_>> = queues
                    .iter()
                    .map(|(name, queue)| QueueJson {
                        name,
                        paused: queue.paused,
                        max_running: queue.max_running,
                        tasks: TaskState::ALL
                            .iter()
                            .map(|s| (s.as_str(), queue.counts.get(s).copied().unwrap_or(0)))
                            .collect(),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let mut headers = vec!["QUEUE", "PAUSED", "MAX RUNNING"];
            headers.extend(TaskState::ALL.iter().map(|s| s.as_str()));
            let rows: Vec<Vec<String>> = queues
                .iter()
                .map(|(name, queue)| {
                    let mut row = vec![
                        name.clone(),
                        if queue.paused { "yes" } else { "no" }.into(),
                        queue
                            .max_running
                            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    ];
                    row.extend(
                        TaskState::ALL
                            .iter()
                            .map(|s| queue.counts.get(s).copied().unwrap_or(0).to_string()),
                    );
                    row
                })
                .collect();
            output::table(&headers, &rows);
        }
        Command::Flush {
            queue,
            dry_run,
            yes,
            json,
        } => flush(&source, &queue, dry_run, yes, json).await?,
    }
    Ok(())
}

/// `longshore queues flush`.
async fn flush(
    source: &Source,
    queue: &str,
    dry_run: bool,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    QueueSettings::check_name(queue)?;
    if !dry_run && !yes {
        bail!(
            "not flushing queue {queue} without --yes: run it with --dry-run first to count its tasks, then with --yes"
        );
    }
    let (counts, flushed) = source.flush(queue, dry_run).await?;
    let matched = bulk::per_state(&bulk::flushed_by(queue).states, &counts);
    let count = |state: TaskState| {
        matched
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let waiting = count(TaskState::Scheduled) + count(TaskState::Queued);
    if json {
        #[derive(Serialize)]
        struct Flush<'a> {
            queue: &'a str,
            dry_run: bool,
            matched: BTreeMap<&'static str, i64>,
            deleted: u64,
            signalled: u64,
        }
        let flush = Flush {
            queue,
            dry_run,
            matched: matched.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            deleted: flushed.deleted,
            signalled: flushed.signalled,
        };
        println!("{}", serde_json::to_string_pretty(&flush)?);
        return Ok(());
    }
    if waiting == 0 && count(TaskState::Running) == 0 && !source.queues().await?.contains_key(queue)
    {
        eprintln!(
            "note: no queue named {queue} has tasks or settings (`longshore queues list` lists the queues)"
        );
    }
    if dry_run {
        println!(
            "queue {queue}: {waiting} waiting tasks would be deleted (scheduled {}, queued {}) and {} running tasks asked to cancel",
            count(TaskState::Scheduled),
            count(TaskState::Queued),
            count(TaskState::Running)
        );
        println!(
            "dry run: nothing was changed; run it again with --yes instead of --dry-run to flush the queue"
        );
    } else {
        println!(
            "queue {queue} flushed: deleted {} waiting tasks; asked {} running tasks to cancel",
            flushed.deleted, flushed.signalled
        );
    }
    Ok(())
}

/// The queues as the API lists them.
#[derive(Deserialize)]
struct ApiQueues {
    queues: Vec<ApiQueue>,
}

#[derive(Deserialize)]
struct ApiQueue {
    name: String,
    paused: bool,
    max_running: Option<i32>,
    counts: BTreeMap<TaskState, i64>,
}

/// A flush as the API answers it.
#[derive(Deserialize)]
struct ApiFlush {
    matched: BTreeMap<TaskState, i64>,
    deleted: u64,
    signalled: u64,
}

/// The same values from the database or from the API.
impl Source {
    /// Every queue with tasks or settings, by name.
    async fn queues(&self) -> anyhow::Result<BTreeMap<String, Queue>> {
        let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
        match self {
            Source::Db(store) => {
                for setting in store.queue_settings().await? {
                    let queue = queues.entry(setting.name).or_default();
                    queue.paused = setting.paused;
                    queue.max_running = setting.max_running;
                }
                for row in store.stats(StatsKey::Queue).await? {
                    queues
                        .entry(row.key)
                        .or_default()
                        .counts
                        .insert(row.state, row.count);
                }
            }
            Source::Api(api) => {
                let list: ApiQueues = api.get(&["queues"], &[]).await?;
                for queue in list.queues {
                    queues.insert(
                        queue.name,
                        Queue {
                            paused: queue.paused,
                            max_running: queue.max_running,
                            counts: queue.counts.into_iter().filter(|(_, n)| *n != 0).collect(),
                        },
                    );
                }
            }
        }
        Ok(queues)
    }

    /// Pauses or resumes `queue` for every node.
    async fn set_paused(&self, queue: &str, paused: bool) -> anyhow::Result<()> {
        match self {
            Source::Db(store) => Ok(store.set_queue_paused(queue, paused).await?),
            Source::Api(api) => {
                let action = if paused { "pause" } else { "resume" };
                let _: serde_json::Value = api
                    .post(&["queues", queue, action], &serde_json::json!({}))
                    .await?;
                Ok(())
            }
        }
    }

    /// Counts what flushing `queue` takes (its waiting and running tasks,
    /// not zero) and, unless `dry_run`, flushes it.
    async fn flush(
        &self,
        queue: &str,
        dry_run: bool,
    ) -> anyhow::Result<(Vec<(TaskState, i64)>, bulk::Flushed)> {
        match self {
            Source::Db(store) => {
                let selection = bulk::flushed_by(queue);
                let counts = store.count_matching(&selection).await?;
                let waiting: i64 = counts
                    .iter()
                    .filter(|(s, _)| bulk::WAITING.contains(s))
                    .map(|(_, n)| n)
                    .sum();
                let flushed = if dry_run {
                    bulk::Flushed::default()
                } else {
                    bulk::flush(store.as_ref(), queue, |done| {
                        eprintln!("deleted {done} of {waiting} waiting tasks of queue {queue}");
                    })
                    .await?
                };
                Ok((counts, flushed))
            }
            Source::Api(api) => {
                let body = if dry_run {
                    serde_json::json!({ "dry_run": true })
                } else {
                    serde_json::json!({ "confirm": true })
                };
                let answer: ApiFlush = api.post(&["queues", queue, "flush"], &body).await?;
                let counts = answer
                    .matched
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .collect();
                Ok((
                    counts,
                    bulk::Flushed {
                        deleted: answer.deleted,
                        signalled: answer.signalled,
                    },
                ))
            }
        }
    }
}
