//! The runtime settings stored in the database, which every node follows
//! within a few seconds: the cap on running tasks across the cluster
//! (`max_running`) and each queue's (`queues.NAME.max_running`). What
//! `longshore settings get|set` and `/api/v1/settings` read and change.
//! (A node's own settings, from its YAML file and `LONGSHORE_*` variables,
//! are another thing.)

use std::collections::BTreeMap;

use longshore_core::{ClusterSettings, QueueSettings, Store, StoreError};

use super::OpError;

/// A runtime setting's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `max_running`: the cap on running tasks across the cluster.
    MaxRunning,
    /// `queues.NAME.max_running`: the cap on one queue's running tasks.
    QueueMaxRunning(String),
}

const GLOBAL: &str = "max_running";
const QUEUE_PREFIX: &str = "queues.";
const QUEUE_SUFFIX: &str = ".max_running";

impl Key {
    /// The key `text` names.
    pub fn parse(text: &str) -> Result<Key, OpError> {
        if text == GLOBAL {
            return Ok(Key::MaxRunning);
        }
        if let Some(queue) = text
            .strip_prefix(QUEUE_PREFIX)
            .and_then(|rest| rest.strip_suffix(QUEUE_SUFFIX))
        {
            if queue.trim().is_empty() {
                return Err(OpError::Invalid(format!(
                    "`{text}` names no queue: use queues.NAME.max_running, e.g. queues.mail.max_running"
                )));
            }
            longshore_core::task::check_printable("queue name", queue).map_err(OpError::Invalid)?;
            return Ok(Key::QueueMaxRunning(queue.to_owned()));
        }
        Err(OpError::Invalid(format!(
            "unknown runtime setting `{text}`: the keys are max_running and queues.NAME.max_running \
             (the binary's own settings live in its YAML file and LONGSHORE_* variables, not here)"
        )))
    }

    /// The key as people write it.
    pub fn name(&self) -> String {
        match self {
            Key::MaxRunning => GLOBAL.to_owned(),
            Key::QueueMaxRunning(queue) => format!("{QUEUE_PREFIX}{queue}{QUEUE_SUFFIX}"),
        }
    }
}

/// A cap as typed: a positive whole number, or `none`.
pub fn parse_cap(key: &Key, text: &str) -> Result<Option<i32>, OpError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let cap: i32 = text.parse().map_err(|_| {
        OpError::Invalid(format!(
            "{} must be a positive whole number or `none`, got `{text}`",
            key.name()
        ))
    })?;
    check_cap(key, Some(cap))?;
    Ok(Some(cap))
}

/// Whether `cap` is a valid value for `key`.
fn check_cap(key: &Key, cap: Option<i32>) -> Result<(), OpError> {
    ClusterSettings::check_cap(cap).map_err(|e| match e {
        StoreError::InvalidInput(message) => OpError::Invalid(format!("{}: {message}", key.name())),
        other => other.into(),
    })
}

/// The key `text` and the cap for it, both checked before anything is
/// written: what `settings set` and the API's change check.
pub fn checked(text: &str, cap: Option<i32>) -> Result<Key, OpError> {
    let key = Key::parse(text)?;
    check_cap(&key, cap)?;
    if let Key::QueueMaxRunning(queue) = &key {
        QueueSettings::check_name(queue)?;
    }
    Ok(key)
}

/// Stores a checked setting.
pub async fn apply(store: &dyn Store, key: &Key, cap: Option<i32>) -> Result<(), StoreError> {
    match key {
        Key::MaxRunning => store.set_max_running(cap).await,
        Key::QueueMaxRunning(queue) => store.set_queue_limit(queue, cap).await,
    }
}

/// Every runtime setting, by key: the cluster's cap and each queue's.
pub async fn all(store: &dyn Store) -> Result<BTreeMap<String, Option<i32>>, StoreError> {
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
        assert!(Key::parse("queues.a\nb.max_running").is_err());
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
