//! Agent pools and agent tokens: who may run the tasks of which queues
//! outside the server's own workers.
//!
//! A pool is a named group of agents serving named queues: once a queue
//! belongs to a pool, only the pool's agents (through a gateway) claim its
//! tasks; inline workers skip it. An agent token opens the gateway for one
//! pool and nothing else: it is kept apart from API tokens (its own table),
//! so an API token cannot open the gateway and an agent token cannot call
//! the API. Its secret has the same form and hashing as an API token's
//! ([`crate::TokenSecret`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::token::TokenInfo;

/// An agent pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// The queues its agents serve (and inline workers no longer claim).
    pub queues: Vec<String>,
    /// The labels its agents are expected to offer (informational: routing
    /// is by each agent's own labels).
    pub labels: Vec<String>,
    /// At most this many of its tasks run at once, across its agents.
    pub max_running: Option<i32>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// What a pool is made with ([`crate::store::AgentStore::create_pool`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPool {
    /// Its name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Its queues; each may belong to one pool only.
    pub queues: Vec<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Its cap on running tasks, if any.
    #[serde(default)]
    pub max_running: Option<i32>,
}

impl NewPool {
    /// The longest pool name, queue list and label list accepted.
    pub const MAX_NAME_CHARS: usize = 100;
    /// At most this many queues per pool.
    pub const MAX_QUEUES: usize = 50;
    /// At most this many labels per pool (and per agent).
    pub const MAX_LABELS: usize = 50;

    /// Refuses what no pool may be made with.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_word("pool name", &self.name)?;
        if self.queues.is_empty() {
            return Err(StoreError::InvalidInput(
                "a pool needs at least one queue".into(),
            ));
        }
        if self.queues.len() > Self::MAX_QUEUES {
            return Err(StoreError::InvalidInput(format!(
                "a pool serves at most {} queues",
                Self::MAX_QUEUES
            )));
        }
        for queue in &self.queues {
            if queue.trim().is_empty() || queue.len() > crate::NewTask::MAX_NAME_BYTES {
                return Err(StoreError::InvalidInput(format!(
                    "queue name `{queue}` must be 1 to {} bytes",
                    crate::NewTask::MAX_NAME_BYTES
                )));
            }
            crate::task::check_printable("a queue name", queue)
                .map_err(StoreError::InvalidInput)?;
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self.queues.iter().find(|q| !seen.insert(q.as_str())) {
            return Err(StoreError::InvalidInput(format!(
                "queue `{twice}` is listed twice"
            )));
        }
        check_labels(&self.labels)?;
        if self.max_running.is_some_and(|n| n < 0) {
            return Err(StoreError::InvalidInput(
                "a pool's max_running must be 0 or more".into(),
            ));
        }
        Ok(())
    }
}

/// The host an agent is listed with among the worker nodes (its gateway
/// records it): `agent (LANGUAGE)`.
pub fn agent_host(language: &str) -> String {
    format!("agent ({language})")
}

/// The language an agent's host names ([`agent_host`]), if it is one.
pub fn agent_language(host: &str) -> Option<&str> {
    host.strip_prefix("agent (")?.strip_suffix(')')
}

/// What `longshore pools edit` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolChange {
    /// Its queues, in place of the ones it has: queues it loses go back to
    /// inline workers.
    pub queues: Option<Vec<String>>,
    /// Its labels.
    pub labels: Option<Vec<String>>,
    /// Its cap on running tasks (`Some(None)`: no cap).
    pub max_running: Option<Option<i32>>,
}

impl PoolChange {
    /// Refuses what no pool may be changed to, as [`NewPool::validate`]
    /// does for a new one.
    pub fn validate(&self, name: &str) -> Result<(), StoreError> {
        let as_new = NewPool {
            name: name.to_owned(),
            queues: self.queues.clone().unwrap_or_else(|| vec!["-".into()]),
            labels: self.labels.clone().unwrap_or_default(),
            max_running: self.max_running.flatten(),
        };
        as_new.validate()
    }

    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.queues.is_none() && self.labels.is_none() && self.max_running.is_none()
    }
}

/// Refuses a label list an agent or a pool cannot have.
pub fn check_labels(labels: &[String]) -> Result<(), StoreError> {
    if labels.len() > NewPool::MAX_LABELS {
        return Err(StoreError::InvalidInput(format!(
            "at most {} labels",
            NewPool::MAX_LABELS
        )));
    }
    for label in labels {
        check_word("label", label)?;
    }
    Ok(())
}

fn check_word(what: &str, word: &str) -> Result<(), StoreError> {
    if word.is_empty() {
        return Err(StoreError::InvalidInput(format!("{what} is empty")));
    }
    if word.chars().count() > NewPool::MAX_NAME_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "{what} is longer than {} characters",
            NewPool::MAX_NAME_CHARS
        )));
    }
    if let Some(c) = word
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(StoreError::InvalidInput(format!(
            "{what} `{word}` contains `{c}`: use letters, digits, `-`, `_` and `.`"
        )));
    }
    Ok(())
}

/// A stored agent token, without its secret (never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTokenInfo {
    /// Its id.
    pub id: Uuid,
    /// What operators call it; unique, revoked ones included.
    pub name: String,
    /// The one pool it opens the gateway for.
    pub pool: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// When it stops opening the gateway (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: not revoked).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AgentTokenInfo {
    /// Refuses what no agent token may be created with.
    pub fn check_new(name: &str, pool: &str, secret_hash: &str) -> Result<(), StoreError> {
        TokenInfo::check_name(name)?;
        check_word("pool name", pool)?;
        crate::token::check_hash(secret_hash)
    }

    /// True while it opens the gateway at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, queues: &[&str], labels: &[&str]) -> NewPool {
        NewPool {
            name: name.into(),
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            max_running: None,
        }
    }

    #[test]
    fn pools_need_a_typable_name_and_a_queue() {
        assert!(pool("gpu", &["render"], &["cuda"]).validate().is_ok());
        assert!(pool("", &["render"], &[]).validate().is_err());
        assert!(pool("g p u", &["render"], &[]).validate().is_err());
        assert!(pool("gpu", &[], &[]).validate().is_err());
        assert!(pool("gpu", &["render"], &["a,b"]).validate().is_err());
        let mut negative = pool("gpu", &["render"], &[]);
        negative.max_running = Some(-1);
        assert!(negative.validate().is_err());
    }

    #[test]
    fn an_agent_token_is_valid_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        let mut token = AgentTokenInfo {
            id: Uuid::now_v7(),
            name: "a".into(),
            pool: "p".into(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        assert!(token.is_valid_at(now));
        token.expires_at = Some(now);
        assert!(!token.is_valid_at(now));
        token.expires_at = Some(now + chrono::Duration::seconds(1));
        assert!(token.is_valid_at(now));
        token.revoked_at = Some(now);
        assert!(!token.is_valid_at(now));
    }
}
