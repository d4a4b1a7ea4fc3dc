//! `longshore queues …`: list queues with their depth, pause and resume
//! them for every node, flush them.

use std::collections::BTreeMap;

use anyhow::bail;
use longshore::core::{QueueSettings, StatsKey};
use longshore::{Store, TaskState};
use serde::Serialize;

use super::Missing;
use crate::settings::Settings;
use crate::{bulk, output};

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

pub(crate) async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let store = super::connect(settings, Missing::Refuse).await?;
    match command {
        Command::Pause { queue } => {
            store.set_queue_paused(&queue, true).await?;
            println!(
                "queue {queue} paused: no node claims its tasks until `longshore queues resume {queue}`"
            );
        }
        Command::Resume { queue } => {
            store.set_queue_paused(&queue, false).await?;
            println!("queue {queue} resumed");
        }
        Command::List { json } => {
            let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
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
        } => flush(store.as_ref(), &queue, dry_run, yes, json).await?,
    }
    Ok(())
}

/// `longshore queues flush`.
async fn flush(
    store: &dyn Store,
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
    let selection = bulk::flushed_by(queue);
    let matched = bulk::per_state(&selection.states, &store.count_matching(&selection).await?);
    let count = |state: TaskState| {
        matched
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let waiting = count(TaskState::Scheduled) + count(TaskState::Queued);
    let flushed = if dry_run {
        bulk::Flushed::default()
    } else {
        bulk::flush(store, queue, |done| {
            eprintln!("deleted {done} of {waiting} waiting tasks of queue {queue}");
        })
        .await?
    };
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
