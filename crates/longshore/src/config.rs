//! A worker's settings.

use std::time::Duration;

use longshore_core::RetryPolicy;

use crate::error::Error;

/// How a worker runs. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Identifies the worker as lease owner; unique per process
    /// (default: host name, process id and a random suffix).
    pub id: String,
    /// Queues served (default `["default"]`).
    pub queues: Vec<String>,
    /// Executions at once (default 16).
    pub concurrency: usize,
    /// Tasks claimed ahead of free slots (default [`Prefetch::Auto`]). Each
    /// is held in memory under its lease, which the heartbeat renews, and
    /// starts the moment a slot frees, without a round trip to the
    /// database; the database shows it running, leased to this worker, so
    /// it counts for every cap. A stop hands the ones not started back at
    /// once. With short tasks this keeps the slots busy while results are
    /// written.
    pub prefetch: Prefetch,
    /// Lease length (default 30 s).
    pub lease: Duration,
    /// Lease renewal interval (default 10 s); must be under the lease.
    pub heartbeat: Duration,
    /// First poll interval after an empty claim (default 50 ms).
    pub idle_min: Duration,
    /// Longest poll interval while idle (default 1 s).
    pub idle_max: Duration,
    /// Longest wait on the LISTEN connection before polling anyway (default 30 s).
    pub listen_timeout: Duration,
    /// On stop, how long in-flight tasks may finish before they are
    /// cancelled and returned to the queue (default 20 s).
    pub drain_timeout: Duration,
    /// After a cancellation, how long a handler has to stop before it is
    /// aborted (default 5 s).
    pub cancel_grace: Duration,
    /// Time limit of an execution whose task and actor set none (default 10 min).
    pub default_time_limit: Duration,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// Most completions written per statement (default 1,000).
    pub completer_batch: usize,
    /// How often the maintenance leader runs: promotes delayed tasks and
    /// runs the built-in maintenance schedules that are due (default 1 s).
    pub maintenance_interval: Duration,
    /// How long finished tasks are kept, by state, before the maintenance
    /// leader purges them with their logs.
    pub retention: Retention,
    /// How often the scheduler leader looks for due schedules (default 1 s).
    pub scheduler_interval: Duration,
    /// Schedules this application defines in code, created or updated by
    /// name when the worker starts (so a redeploy does not duplicate them;
    /// an operator's pause stays). Each must be valid and name an actor of
    /// the worker's registry, or the worker does not start.
    pub schedules: Vec<longshore_core::ScheduleDef>,
    /// Where the worker counts what it does (executions started and how
    /// they ended, durations, running tasks, slots, rescues, roles held);
    /// default none. Share one handle with the application's [`Client`]
    /// and serve [`Metrics::encode`] at `/metrics`.
    ///
    /// [`Client`]: crate::Client
    /// [`Metrics::encode`]: crate::metrics::Metrics::encode
    pub metrics: Option<crate::metrics::Metrics>,
    /// The secrets this worker fills into its tasks' arguments where they
    /// say `{"$secret": "name"}` (see [`longshore_core::secret`]); default
    /// none.
    pub secrets: longshore_core::Secrets,
}

/// How many tasks a worker claims ahead of its free slots
/// ([`WorkerConfig::prefetch`]); written `auto` or a count in settings.
///
/// ```
/// use longshore::Prefetch;
///
/// assert_eq!("auto".parse::<Prefetch>(), Ok(Prefetch::Auto));
/// assert_eq!("48".parse::<Prefetch>(), Ok(Prefetch::Tasks(48)));
/// assert!("many".parse::<Prefetch>().is_err());
/// assert_eq!(Prefetch::Tasks(0).to_string(), "0");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prefetch {
    /// As many as the tasks call for, from what the worker measures: enough
    /// to keep its slots busy for about two claim round trips (the time
    /// a slot would otherwise wait for its next task), at most three per
    /// slot. Tasks that take far longer than a claim get none, so they are
    /// not held back from idle workers.
    #[default]
    Auto,
    /// Always this many; 0 claims only for free slots.
    Tasks(usize),
}

impl Prefetch {
    /// The largest count allowed.
    pub const MOST: usize = 10_000;

    /// How many prefetched tasks per slot [`Prefetch::Auto`] holds at most.
    pub const AUTO_PER_SLOT: usize = 3;
}

impl std::fmt::Display for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prefetch::Auto => f.write_str("auto"),
            Prefetch::Tasks(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for Prefetch {
    type Err = String;

    fn from_str(s: &str) -> Result<Prefetch, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Prefetch::Auto);
        }
        s.parse()
            .map(Prefetch::Tasks)
            .map_err(|_| format!("expected `auto` or a count of tasks, got `{s}`"))
    }
}

impl serde::Serialize for Prefetch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Prefetch::Auto => serializer.serialize_str("auto"),
            Prefetch::Tasks(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Prefetch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Prefetch, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Prefetch;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`auto` or a count of tasks")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Prefetch, E> {
                usize::try_from(n)
                    .map(Prefetch::Tasks)
                    .map_err(|_| E::custom(format!("{n} tasks is too many")))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Prefetch, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("expected `auto` or a count of tasks, got {n}")))
                    .and_then(|n| self.visit_u64(n))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Prefetch, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// How long finished tasks are kept, by state (default 30 days each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Tasks that succeeded.
    pub succeeded: Duration,
    /// Tasks that failed.
    pub failed: Duration,
    /// Tasks that were cancelled.
    pub cancelled: Duration,
    /// Entries of the audit trail (changes made through the API and the
    /// dashboard).
    pub audit: Duration,
    /// Throughput per minute (the dashboard's charts of the day).
    pub throughput: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        let month = Duration::from_secs(30 * 24 * 3600);
        Retention {
            succeeded: month,
            failed: month,
            cancelled: month,
            audit: 3 * month,
            throughput: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: default_worker_id(),
            queues: vec![longshore_core::NewTask::DEFAULT_QUEUE.to_owned()],
            concurrency: 16,
            prefetch: Prefetch::Auto,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            idle_min: Duration::from_millis(50),
            idle_max: Duration::from_secs(1),
            listen_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(20),
            cancel_grace: Duration::from_secs(5),
            default_time_limit: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            completer_batch: 1000,
            retention: Retention::default(),
            scheduler_interval: Duration::from_secs(1),
            schedules: Vec::new(),
            maintenance_interval: Duration::from_secs(1),
            metrics: None,
            secrets: longshore_core::Secrets::default(),
        }
    }
}

impl WorkerConfig {
    /// Checks the settings together; the error names the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |msg: String| Err(Error::Config(msg));
        if self.id.trim().is_empty() {
            return fail("worker.id must not be empty".into());
        }
        if self.queues.is_empty() || self.queues.iter().any(|q| q.trim().is_empty()) {
            return fail("worker.queues must name at least one queue, none empty".into());
        }
        if self.concurrency == 0 {
            return fail("worker.concurrency must be at least 1".into());
        }
        if let Prefetch::Tasks(n) = self.prefetch
            && n > Prefetch::MOST
        {
            return fail(format!(
                "worker.prefetch must be `auto` or a count of at most {}, got {n}",
                Prefetch::MOST
            ));
        }
        if self.lease < Duration::from_secs(1) {
            return fail(format!(
                "worker.lease must be at least 1s, got {:?}",
                self.lease
            ));
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return fail(format!(
                "worker.heartbeat ({:?}) must be above zero and below worker.lease ({:?})",
                self.heartbeat, self.lease
            ));
        }
        if self.idle_min.is_zero() || self.idle_min > self.idle_max {
            return fail(format!(
                "worker.idle_min ({:?}) must be above zero and at most worker.idle_max ({:?})",
                self.idle_min, self.idle_max
            ));
        }
        if self.listen_timeout.is_zero() {
            return fail("worker.listen_timeout must be above zero".into());
        }
        if self.default_time_limit.is_zero() {
            return fail("worker.time_limit must be above zero".into());
        }
        if self.retry.base.is_zero() || self.retry.base > self.retry.max {
            return fail(format!(
                "retry.base ({:?}) must be above zero and at most retry.max ({:?})",
                self.retry.base, self.retry.max
            ));
        }
        if self.completer_batch == 0 {
            return fail("worker.completer_batch must be at least 1".into());
        }
        if self.scheduler_interval.is_zero() || self.scheduler_interval > self.lease / 2 {
            return fail(format!(
                "worker.scheduler_interval ({:?}) must be above zero and at most half of worker.lease ({:?})",
                self.scheduler_interval, self.lease
            ));
        }
        for (state, keep) in [
            ("succeeded", self.retention.succeeded),
            ("failed", self.retention.failed),
            ("cancelled", self.retention.cancelled),
        ] {
            if keep < Duration::from_secs(1) {
                return fail(format!(
                    "retention.{state} must be at least 1s, got {keep:?}"
                ));
            }
        }
        if self.maintenance_interval * 2 > self.lease {
            return fail(format!(
                "worker.maintenance_interval ({:?}) must be at most half of worker.lease ({:?}): the maintenance leader renews its role at every pass",
                self.maintenance_interval, self.lease
            ));
        }
        if self.maintenance_interval.is_zero() {
            return fail("worker.maintenance_interval must be above zero".into());
        }
        Ok(())
    }
}

/// `host-pid-xxxx`: readable in `tasks show`, unique across restarts.
pub fn default_worker_id() -> String {
    format!(
        "{}-{}-{:04x}",
        host_name(),
        std::process::id(),
        fastrand::u16(..)
    )
}

/// This machine's name, as workers report it.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_and_the_maintenance_pace_are_checked() {
        let no_retention = WorkerConfig {
            retention: Retention {
                failed: Duration::ZERO,
                ..Retention::default()
            },
            ..WorkerConfig::default()
        };
        let err = no_retention.validate().unwrap_err().to_string();
        assert!(err.contains("retention.failed"), "{err}");
        let slow = WorkerConfig {
            maintenance_interval: Duration::from_secs(20),
            ..WorkerConfig::default()
        };
        let err = slow.validate().unwrap_err().to_string();
        assert!(err.contains("worker.maintenance_interval"), "{err}");
    }

    #[test]
    fn a_prefetch_past_the_most_is_refused() {
        let config = WorkerConfig {
            prefetch: Prefetch::Tasks(Prefetch::MOST + 1),
            ..WorkerConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("worker.prefetch"), "{err}");
        assert_eq!(
            "-1".parse::<Prefetch>().unwrap_err(),
            "expected `auto` or a count of tasks, got `-1`"
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert!(WorkerConfig::default().validate().is_ok());
    }

    #[test]
    fn invalid_settings_are_named() {
        let bad = WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("worker.concurrency")
        );
        let bad = WorkerConfig {
            heartbeat: Duration::from_secs(30),
            ..WorkerConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("worker.heartbeat")
        );
        let bad = WorkerConfig {
            idle_min: Duration::from_secs(5),
            ..WorkerConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("worker.idle_min")
        );
    }
}
