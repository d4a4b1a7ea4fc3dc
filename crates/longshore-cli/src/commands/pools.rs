//! `longshore pools …`: agent pools, in the database. A queue handed to a
//! pool is run only by that pool's agents (through a gateway); inline
//! workers skip it.

use anyhow::Context;
use longshore::core::NewPool;
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
        /// At most this many of its tasks run at once (not enforced yet: see docs/agents.md)
        #[arg(long, value_name = "N")]
        max_running: Option<i32>,
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
