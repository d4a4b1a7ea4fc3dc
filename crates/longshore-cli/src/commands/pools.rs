//! `longshore pools …`: agent pools, in the database. A queue handed to a
//! pool is run only by that pool's agents (through a gateway); inline
//! workers skip it.

use anyhow::Context;
use longshore::core::{NewPool, PoolChange};
use longshore::ops::agents::PoolStatus;
use longshore_server::database::{Missing, connect};
use longshore_server::settings::Settings;

use crate::output;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Make a pool and hand it its queues.
    Add {
        /// Its name (letters, digits, - _ .)
        name: String,
        /// The queues its agents serve, comma-separated
        #[arg(long, value_delimiter = ',', value_name = "Q,...", required = true)]
        queues: Vec<String>,
        /// Labels its agents offer, comma-separated
        #[arg(long, value_delimiter = ',', value_name = "L,...")]
        labels: Vec<String>,
        /// At most this many of its tasks run at once, across its agents
        #[arg(long, value_name = "N")]
        max_running: Option<i32>,
    },
    /// One pool: its queues, labels, cap, and its agents and tasks now.
    Show {
        /// The pool's name
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a pool: what is not given stays as it is.
    Edit {
        /// The pool's name
        name: String,
        /// Its queues, in place of the ones it has (those it loses go back to inline workers)
        #[arg(long, value_delimiter = ',', value_name = "Q,...")]
        queues: Option<Vec<String>>,
        /// Its labels, in place of the ones it has (`--labels ''` for none)
        #[arg(long, value_delimiter = ',', value_name = "L,...")]
        labels: Option<Vec<String>>,
        /// Its cap on running tasks, or `none` to lift it
        #[arg(long, value_name = "N|none", value_parser = parse_cap)]
        max_running: Option<Cap>,
    },
    /// Every pool with its queues.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a pool: its queues go back to inline workers.
    Delete {
        /// The pool's name
        name: String,
    },
}

/// `--max-running`: a number, or none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap(Option<i32>);

fn parse_cap(text: &str) -> Result<Cap, String> {
    if text == "none" {
        return Ok(Cap(None));
    }
    text.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| Cap(Some(n)))
        .ok_or_else(|| format!("`{text}` is neither a whole number of 0 or more nor `none`"))
}

pub(crate) async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let store = connect(settings, Missing::Refuse).await?;
    match command {
        Command::Add {
            name,
            queues,
            labels,
            max_running,
        } => {
            let pool = NewPool {
                name: name.clone(),
                queues,
                labels,
                max_running,
            };
            pool.validate()?;
            let pool = store
                .create_pool(&pool)
                .await
                .with_context(|| format!("cannot add pool {name}"))?;
            println!(
                "added pool {} serving {}; inline workers no longer claim from these queues",
                pool.name,
                pool.queues.join(",")
            );
        }
        Command::List { json } => {
            let pools = store.pools().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pools)?);
            } else {
                let rows: Vec<Vec<String>> = pools
                    .iter()
                    .map(|pool| {
                        vec![
                            pool.name.clone(),
                            pool.queues.join(","),
                            pool.labels.join(","),
                            pool.max_running
                                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                            output::time(pool.created_at),
                        ]
                    })
                    .collect();
                output::table(
                    &["POOL", "QUEUES", "LABELS", "MAX RUNNING", "CREATED"],
                    &rows,
                );
            }
        }
        Command::Show { name, json } => {
            let status = longshore::ops::agents::pool_status(store.as_ref())
                .await?
                .into_iter()
                .find(|status| status.pool.name == name)
                .ok_or_else(|| longshore::StoreError::PoolNotFound(name.clone()))?;
            let agents: Vec<_> = longshore::ops::agents::connected(store.as_ref())
                .await?
                .into_iter()
                .filter(|agent| agent.pool == name)
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "pool": status.pool,
                        "live_agents": status.live_agents,
                        "running_now": status.running_now,
                        "pending_now": status.pending_now,
                        "agents": agents.iter().map(|a| &a.id).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                show(&status, &agents);
            }
        }
        Command::Edit {
            name,
            queues,
            labels,
            max_running,
        } => {
            // `--labels ''` reads as one empty label: it means none.
            let labels = labels.map(|labels| {
                labels
                    .into_iter()
                    .filter(|label| !label.is_empty())
                    .collect()
            });
            let change = PoolChange {
                queues,
                labels,
                max_running: max_running.map(|cap| cap.0),
            };
            if change.is_empty() {
                anyhow::bail!(
                    "nothing to change: give --queues, --labels or --max-running (see `longshore pools edit --help`)"
                );
            }
            let pool = store
                .update_pool(&name, &change)
                .await
                .with_context(|| format!("cannot edit pool {name}"))?;
            println!(
                "pool {} now serves {} (labels: {}; max running: {})",
                pool.name,
                pool.queues.join(","),
                if pool.labels.is_empty() {
                    "none".to_owned()
                } else {
                    pool.labels.join(",")
                },
                pool.max_running
                    .map_or_else(|| "none".to_owned(), |n| n.to_string())
            );
        }
        Command::Delete { name } => {
            store
                .delete_pool(&name)
                .await
                .with_context(|| format!("cannot delete pool {name}"))?;
            println!("deleted pool {name}; its queues are run by inline workers again");
        }
    }
    Ok(())
}

fn show(status: &PoolStatus, agents: &[longshore::ops::agents::ConnectedAgent]) {
    let pool = &status.pool;
    let none = || "none".to_owned();
    output::field(12, "pool", &pool.name);
    output::field(12, "queues", &pool.queues.join(", "));
    output::field(
        12,
        "labels",
        &if pool.labels.is_empty() {
            none()
        } else {
            pool.labels.join(", ")
        },
    );
    output::field(
        12,
        "max running",
        &pool.max_running.map_or_else(none, |n| n.to_string()),
    );
    output::field(12, "created", &output::time(pool.created_at));
    output::field(12, "agents", &status.live_agents.to_string());
    output::field(12, "running", &status.running_now.to_string());
    output::field(12, "queued", &status.pending_now.to_string());
    if !agents.is_empty() {
        println!();
        super::agents::table(agents);
    }
}
