//! `longshore settings get|set`: the runtime settings stored in the
//! database, which every node follows within a few seconds. (The binary's
//! own settings, from its YAML file and `LONGSHORE_*` variables, are
//! another thing: see `crate::settings`.)

use std::collections::BTreeMap;

use anyhow::bail;
use longshore::core::{ClusterSettings, QueueSettings};
use longshore::{Store, StoreError};

use super::Source;
use crate::output;
use crate::remote::Remote;
use crate::settings::Settings;

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

/// A runtime setting's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// `max_running`: the cap on running tasks across the cluster.
    MaxRunning,
    /// `queues.NAME.max_running`: the cap on one queue's running tasks.
    QueueMaxRunning(String),
}

const GLOBAL: &str = "max_running";
const QUEUE_PREFIX: &str = "queues.";
const QUEUE_SUFFIX: &str = ".max_running";

impl Key {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Key> {
        if text == GLOBAL {
            return Ok(Key::MaxRunning);
        }
        if let Some(queue) = text
            .strip_prefix(QUEUE_PREFIX)
            .and_then(|rest| rest.strip_suffix(QUEUE_SUFFIX))
        {
            if queue.trim().is_empty() {
                bail!(
                    "`{text}` names no queue: use queues.NAME.max_running, e.g. queues.mail.max_running"
                );
            }
            return Ok(Key::QueueMaxRunning(queue.to_owned()));
        }
        bail!(
            "unknown runtime setting `{text}`: the keys are max_running and queues.NAME.max_running \
             (the binary's own settings live in its YAML file and LONGSHORE_* variables, not here)"
        )
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Key::MaxRunning => GLOBAL.to_owned(),
            Key::QueueMaxRunning(queue) => format!("{QUEUE_PREFIX}{queue}{QUEUE_SUFFIX}"),
        }
    }
}

/// A cap as typed: a positive whole number, or `none`.
fn parse_cap(key: &Key, text: &str) -> anyhow::Result<Option<i32>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let cap: i32 = text.parse().map_err(|_| {
        anyhow::anyhow!(
            "{} must be a positive whole number or `none`, got `{text}`",
            key.name()
        )
    })?;
    check_cap(key, Some(cap))?;
    Ok(Some(cap))
}

/// Whether `cap` is a valid value for `key`.
fn check_cap(key: &Key, cap: Option<i32>) -> anyhow::Result<()> {
    ClusterSettings::check_cap(cap).map_err(|e| match e {
        StoreError::InvalidInput(message) => anyhow::anyhow!("{}: {message}", key.name()),
        other => other.into(),
    })
}

/// The key `text` and the cap for it, both checked before anything is
/// written: what `settings set` and the API's change check.
pub(crate) fn checked(text: &str, cap: Option<i32>) -> anyhow::Result<Key> {
    let key = Key::parse(text)?;
    check_cap(&key, cap)?;
    if let Key::QueueMaxRunning(queue) = &key {
        QueueSettings::check_name(queue)?;
    }
    Ok(key)
}

/// Stores a checked setting.
pub(crate) async fn apply(
    store: &dyn Store,
    key: &Key,
    cap: Option<i32>,
) -> Result<(), StoreError> {
    match key {
        Key::MaxRunning => store.set_max_running(cap).await,
        Key::QueueMaxRunning(queue) => store.set_queue_limit(queue, cap).await,
    }
}

/// Every runtime setting, by key: the cluster's cap and each queue's.
pub(crate) async fn all(store: &dyn Store) -> Result<BTreeMap<String, Option<i32>>, StoreError> {
    let global = store.cluster_settings().await?.max_running;
    let queues = store.queue_settings().await?;
    Ok(std::iter::once((GLOBAL.to_owned(), global))
        .chain(
            queues
                .into_iter()
                .map(|q| (Key::QueueMaxRunning(q.name).name(), q.max_running)),
        )
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_cap_and_each_queues() {
        assert_eq!(Key::parse("max_running").expect("global"), Key::MaxRunning);
        assert_eq!(
            Key::parse("queues.mail.max_running").expect("queue"),
            Key::QueueMaxRunning("mail".into())
        );
        // A queue name may itself contain dots.
        assert_eq!(
            Key::parse("queues.a.b.max_running").expect("dotted queue"),
            Key::QueueMaxRunning("a.b".into())
        );
        assert!(Key::parse("queues..max_running").is_err());
        assert!(Key::parse("queues.mail").is_err());
        let err = Key::parse("worker.concurrency")
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("unknown runtime setting"), "{err}");
        assert_eq!(
            Key::QueueMaxRunning("mail".into()).name(),
            "queues.mail.max_running"
        );
    }

    #[test]
    fn caps_are_positive_or_none() {
        let key = Key::MaxRunning;
        assert_eq!(parse_cap(&key, "3").expect("3"), Some(3));
        assert_eq!(parse_cap(&key, "none").expect("none"), None);
        assert!(parse_cap(&key, "0").is_err());
        assert!(parse_cap(&key, "-2").is_err());
        assert!(parse_cap(&key, "many").is_err());
        assert!(parse_cap(&key, "99999999999").is_err());
    }
}
