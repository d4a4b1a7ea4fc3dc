//! `longshore queues …`: list queues with their depth, pause and resume
//! them for every node.

use std::collections::BTreeMap;

use longshore::TaskState;
use longshore::core::StatsKey;
use serde::Serialize;

use super::Missing;
use crate::output;
use crate::settings::Settings;

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
    }
    Ok(())
}
