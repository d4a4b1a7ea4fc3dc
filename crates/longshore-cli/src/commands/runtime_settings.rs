//! `longshore settings get|set`: the runtime settings stored in the
//! database, which every node follows within a few seconds (see
//! [`longshore::ops::runtime_settings`]). The binary's own settings, from
//! its YAML file and `LONGSHORE_*` variables, are another thing: see
//! [`longshore_server::settings`].

use std::collections::BTreeMap;

use longshore::ops::runtime_settings::{Key, all, apply, checked, parse_cap};
use longshore_server::settings::Settings;

use super::Source;
use crate::output;
use crate::remote::Remote;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Print a runtime setting, or every one: the cluster-wide cap on
    /// running tasks (`max_running`) and each queue's
    /// (`queues.NAME.max_running`).
    Get {
        /// max_running or queues.NAME.max_running [default: every setting]
        key: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a runtime setting for every node.
    Set {
        /// max_running (running tasks across the cluster) or
        /// queues.NAME.max_running (running tasks of queue NAME)
        key: String,
        /// A positive whole number, or `none` to lift the cap
        #[arg(allow_negative_numbers = true)]
        value: String,
    },
}

fn cap_text(cap: Option<i32>) -> String {
    cap.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

/// Every runtime setting as the API answers them.
#[derive(serde::Deserialize)]
struct ApiSettings {
    settings: BTreeMap<String, Option<i32>>,
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    match command {
        Command::Set { key, value } => {
            // Both checked before anything is written.
            let key = Key::parse(&key)?;
            let cap = parse_cap(&key, &value)?;
            let key = checked(&key.name(), cap)?;
            match Source::open(settings, remote).await? {
                Source::Db(store) => apply(store.as_ref(), &key, cap).await?,
                Source::Api(api) => {
                    let _: serde_json::Value = api
                        .put(
                            &["settings", &key.name()],
                            &serde_json::json!({ "value": cap }),
                        )
                        .await?;
                }
            }
            let what = match (&key, cap) {
                (Key::MaxRunning, Some(n)) => {
                    format!("at most {n} tasks run at once across the cluster")
                }
                (Key::MaxRunning, None) => "no cap on running tasks across the cluster".to_owned(),
                (Key::QueueMaxRunning(q), Some(n)) => {
                    format!("at most {n} tasks of queue {q} run at once across the cluster")
                }
                (Key::QueueMaxRunning(q), None) => format!("no cap of its own on queue {q}"),
            };
            println!(
                "{} = {} ({what}; every node follows it within a few seconds)",
                key.name(),
                cap_text(cap)
            );
            Ok(())
        }
        Command::Get { key, json } => {
            let key = key.as_deref().map(Key::parse).transpose()?;
            let every = match Source::open(settings, remote).await? {
                Source::Db(store) => all(store.as_ref()).await?,
                Source::Api(api) => {
                    let answer: ApiSettings = api.get(&["settings"], &[]).await?;
                    answer.settings
                }
            };
            let values: BTreeMap<String, Option<i32>> = match &key {
                Some(key) => {
                    let name = key.name();
                    let value = every.get(&name).copied().flatten();
                    [(name, value)].into()
                }
                None => every,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&values)?);
            } else if key.is_some() {
                for value in values.values() {
                    println!("{}", cap_text(*value));
                }
            } else {
                let rows: Vec<Vec<String>> = values
                    .iter()
                    .map(|(key, value)| vec![key.clone(), cap_text(*value)])
                    .collect();
                output::table(&["KEY", "VALUE"], &rows);
            }
            Ok(())
        }
    }
}
