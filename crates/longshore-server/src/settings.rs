//! Settings: built-in defaults, then a YAML file (`--config`), then
//! `LONGSHORE_*` environment variables (`LONGSHORE_WORKER__CONCURRENCY=32`
//! sets `worker.concurrency`), then command-line flags. Every setting and
//! its default is listed in docs/configuration.md, which says more of
//! each than the field docs here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use longshore::{RetryPolicy, WorkerConfig};
use serde::{Deserialize, Serialize};

/// A setting's value given by a flag: see [`Settings::load`].
pub use figment::value::Value;

/// Every setting.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the tasks live: `postgres://user@host:5432/db` or
    /// `sqlite://path/to/file.db`; when unset, a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Where the embedded SQLite database lives when no URL is given.
    pub data_dir: PathBuf,
    /// The connection (`database.*`).
    pub database: DatabaseSettings,
    /// The HTTP side of `serve` (`http.*`).
    pub http: HttpServerSettings,
    /// The agents' gRPC gateway.
    pub grpc: GrpcSettings,
    /// The node's worker (`worker.*`).
    pub worker: WorkerSettings,
    /// Retries of failed executions (`retry.*`).
    pub retry: RetrySettings,
    /// How long finished tasks are kept (`retention.*`).
    pub retention: RetentionSettings,
    /// The built-in actors (`actors.*`).
    pub actors: longshore_actors::Settings,
    /// The web dashboard (`dashboard.*`).
    pub dashboard: DashboardSettings,
    /// Secrets this node's worker fills into tasks' arguments where they
    /// say `{"$secret": "name"}` (`secrets.<name>`, or
    /// `LONGSHORE_SECRETS__<NAME>`). Shown by name only.
    pub secrets: longshore::Secrets,
}

/// The web dashboard.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// How long a signed-in session lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// How long finished tasks are kept, by state.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Succeeded tasks.
    #[serde(with = "humantime_serde")]
    pub succeeded: Duration,
    /// Failed tasks.
    #[serde(with = "humantime_serde")]
    pub failed: Duration,
    /// Cancelled tasks.
    #[serde(with = "humantime_serde")]
    pub cancelled: Duration,
    /// Audit entries.
    #[serde(with = "humantime_serde")]
    pub audit: Duration,
    /// Throughput per minute (the dashboard's charts).
    #[serde(with = "humantime_serde")]
    pub throughput: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        let d = longshore::Retention::default();
        RetentionSettings {
            succeeded: d.succeeded,
            failed: d.failed,
            cancelled: d.cancelled,
            audit: d.audit,
            throughput: d.throughput,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: None,
            data_dir: PathBuf::from("longshore-data"),
            database: DatabaseSettings::default(),
            http: HttpServerSettings::default(),
            grpc: GrpcSettings::default(),
            worker: WorkerSettings::default(),
            retry: RetrySettings::default(),
            retention: RetentionSettings::default(),
            actors: longshore_actors::Settings::default(),
            dashboard: DashboardSettings::default(),
            secrets: longshore::Secrets::default(),
        }
    }
}

/// The agents' gRPC gateway (see docs/agents.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSettings {
    /// Where `serve` accepts agents (`--grpc-listen`), or `off`.
    /// `longshore worker` serves the gateway only when given
    /// `--grpc-listen`.
    pub listen: String,
    /// A session that sends nothing for this long is closed and its tasks
    /// handed back; agents ping at a third of it.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// The certificate chain (PEM) the gateway presents: set with
    /// `tls_key`, the gateway speaks TLS (`https://` for agents); unset,
    /// plain HTTP/2.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            listen: "127.0.0.1:50051".to_owned(),
            session_timeout: Duration::from_secs(15),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl GrpcSettings {
    /// The gateway's settings, beside the worker's.
    pub fn gateway_config(&self, worker: &WorkerConfig) -> crate::gateway::GatewayConfig {
        crate::gateway::GatewayConfig {
            session_timeout: self.session_timeout,
            lease: worker.lease,
            heartbeat: worker.heartbeat.min(self.session_timeout / 3),
            default_time_limit: worker.default_time_limit,
            cancel_grace: worker.cancel_grace,
            retry: worker.retry,
            poll_interval: worker.idle_max,
        }
    }
}

/// The HTTP side of `longshore serve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerSettings {
    /// Where `serve` answers HTTP.
    pub listen: SocketAddr,
    /// The largest request body the API reads.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before its
    /// connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body before it is
    /// answered 408 and its connection closed.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
}

impl HttpServerSettings {
    /// The smallest body limit allowed: below it, even a small request
    /// would be refused.
    pub const MIN_BODY_BYTES: usize = 1024;
}

impl Default for HttpServerSettings {
    fn default() -> Self {
        HttpServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The database connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Connections in the pool (PostgreSQL).
    pub max_connections: u32,
    /// How long a statement waits for a pooled connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long a SQLite write waits for another process's lock.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// No LISTEN/NOTIFY: poll only (PgBouncer in transaction mode).
    pub poll_only: bool,
    /// Claims and completions wait for their commit to reach the disk.
    pub durable_hot_path: bool,
    /// `serve` and `worker` apply pending migrations at start.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            poll_only: false,
            durable_hot_path: false,
            migrate_on_start: true,
        }
    }
}

/// A node's worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// The worker's id, its name as lease owner (unset: host-pid-random).
    pub id: Option<String>,
    /// The queues it claims from.
    pub queues: Vec<String>,
    /// Tasks it runs at once.
    pub concurrency: usize,
    /// Tasks claimed ahead of free slots, started as slots free: `auto`
    /// (from measured handler and claim times) or a count.
    pub prefetch: longshore::Prefetch,
    /// How long a claim holds a task without a heartbeat.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often leases are renewed.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// The first wait between polls when idle.
    #[serde(with = "humantime_serde")]
    pub idle_min: Duration,
    /// The longest wait between polls when idle.
    #[serde(with = "humantime_serde")]
    pub idle_max: Duration,
    /// How long a wake-up is waited for before polling anyway.
    #[serde(with = "humantime_serde")]
    pub listen_timeout: Duration,
    /// How long running tasks may finish at a stop.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// How long a cancelled handler may take to stop before it is aborted.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// Time limit of an execution that names none.
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
    /// The most results written per statement.
    pub completer_batch: usize,
    /// How often maintenance passes run.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// How often due schedules are looked for.
    #[serde(with = "humantime_serde")]
    pub scheduler_interval: Duration,
    /// Where `/metrics` and the health checks are also served, on a port
    /// of their own (`longshore worker --metrics-addr`); unset: not served
    /// (serve answers them on `http.listen` anyway).
    pub metrics_addr: Option<SocketAddr>,
    /// Where `longshore worker --http` serves the API under `/api/v1`
    /// (with a token, as `serve` does), `/metrics` and the health checks;
    /// unset: not served. `serve` answers on `http.listen` instead.
    pub http_addr: Option<SocketAddr>,
    /// Where `longshore worker --grpc-listen` accepts agents; unset: not
    /// served. `serve` uses `grpc.listen` instead.
    pub grpc_addr: Option<SocketAddr>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        let d = WorkerConfig::default();
        WorkerSettings {
            id: None,
            queues: d.queues,
            concurrency: d.concurrency,
            prefetch: d.prefetch,
            lease: d.lease,
            heartbeat: d.heartbeat,
            idle_min: d.idle_min,
            idle_max: d.idle_max,
            listen_timeout: d.listen_timeout,
            drain_timeout: d.drain_timeout,
            cancel_grace: d.cancel_grace,
            time_limit: d.default_time_limit,
            completer_batch: d.completer_batch,
            maintenance_interval: d.maintenance_interval,
            scheduler_interval: d.scheduler_interval,
            metrics_addr: None,
            http_addr: None,
            grpc_addr: None,
        }
    }
}

/// Retries of failed executions: backoff with jitter between `base` and
/// `max`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// The first backoff.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// The longest backoff.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Executions a task may have unless it says otherwise.
    pub max_attempts: i32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let d = RetryPolicy::default();
        RetrySettings {
            base: d.base,
            max: d.max,
            max_attempts: longshore::NewTask::DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// The top-level keys, so that unrelated `LONGSHORE_*` variables (such as
/// the test suite's `LONGSHORE_TEST_DATABASE_URL`) are not read as settings.
const SECTIONS: &[&str] = &[
    "database_url",
    "data_dir",
    "database",
    "http",
    "grpc",
    "worker",
    "retry",
    "retention",
    "actors",
    "dashboard",
    "secrets",
];

/// Environment variables that each set one secret (`secrets.<name>`).
const SECRETS_PREFIX: &str = "LONGSHORE_SECRETS__";

impl Settings {
    /// Loads settings from the layers, with `overrides` (from flags) last.
    pub fn load(file: Option<&Path>, overrides: &[(&str, Value)]) -> Result<Settings, String> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("LONGSHORE_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    let top = key.split("__").next().unwrap_or_default().to_owned();
                    SECTIONS.contains(&top.as_str()) && top != "secrets"
                })
                .split("__"),
        );
        // Secrets from the environment are taken as they are: figment would
        // read `0012345` as a number and `[a]` as a list.
        for (key, value) in std::env::vars_os() {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
                continue;
            };
            let Some(name) = key
                .get(..SECRETS_PREFIX.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(SECRETS_PREFIX))
                .map(|_| key[SECRETS_PREFIX.len()..].to_ascii_lowercase())
            else {
                continue;
            };
            if let Err(e) = longshore::core::secret::check_name(&name) {
                return Err(format!("invalid setting: {key}: {e}"));
            }
            figment = figment.merge(Serialized::default(&format!("secrets.{name}"), value));
        }
        for (key, value) in overrides {
            figment = figment.merge(Serialized::default(key, value.clone()));
        }
        let settings: Settings = figment.extract().map_err(|e| {
            // One line per problem, each naming the setting and where it came from.
            e.into_iter()
                .map(|e| format!("invalid setting: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        if self.database.max_connections < 2 {
            return Err(format!(
                "invalid setting: database.max_connections must be at least 2 (a worker listens on one connection), got {}",
                self.database.max_connections
            ));
        }
        if self.retry.max_attempts < 1 {
            return Err(format!(
                "invalid setting: retry.max_attempts must be at least 1, got {}",
                self.retry.max_attempts
            ));
        }
        if self.http.max_body_bytes < HttpServerSettings::MIN_BODY_BYTES {
            return Err(format!(
                "invalid setting: http.max_body_bytes must be at least {}, got {}",
                HttpServerSettings::MIN_BODY_BYTES,
                self.http.max_body_bytes
            ));
        }
        if self.grpc.listen != "off" && self.grpc.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "invalid setting: grpc.listen must be an address such as 127.0.0.1:50051, or off; got `{}`",
                self.grpc.listen
            ));
        }
        if self.grpc.tls_cert.is_some() != self.grpc.tls_key.is_some() {
            return Err(
                "invalid setting: grpc.tls_cert and grpc.tls_key go together: set both, or neither"
                    .to_owned(),
            );
        }
        for (name, value) in [
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.body_read_timeout", self.http.body_read_timeout),
            ("grpc.session_timeout", self.grpc.session_timeout),
        ] {
            if value < Duration::from_secs(1) || value > Duration::from_secs(600) {
                return Err(format!(
                    "invalid setting: {name} must be between 1s and 10m, got {}",
                    humantime::format_duration(value)
                ));
            }
        }
        if self.dashboard.session_ttl < Duration::from_secs(60)
            || self.dashboard.session_ttl > longshore::Session::MAX_TTL
        {
            return Err(format!(
                "invalid setting: dashboard.session_ttl must be between 1m and {}, got {}",
                humantime::format_duration(longshore::Session::MAX_TTL),
                humantime::format_duration(self.dashboard.session_ttl)
            ));
        }
        self.secrets
            .check()
            .map_err(|e| format!("invalid setting: secrets: {e}"))?;
        self.actors.check()?;
        self.worker_config().validate().map_err(|e| e.to_string())
    }

    /// The worker configuration these settings make (an unset worker id
    /// is made up anew on every call).
    pub fn worker_config(&self) -> WorkerConfig {
        let w = &self.worker;
        WorkerConfig {
            id: w.id.clone().unwrap_or_else(longshore::default_worker_id),
            queues: w.queues.clone(),
            concurrency: w.concurrency,
            prefetch: w.prefetch,
            lease: w.lease,
            heartbeat: w.heartbeat,
            idle_min: w.idle_min,
            idle_max: w.idle_max,
            listen_timeout: w.listen_timeout,
            drain_timeout: w.drain_timeout,
            cancel_grace: w.cancel_grace,
            default_time_limit: w.time_limit,
            retry: RetryPolicy {
                base: self.retry.base,
                max: self.retry.max,
            },
            completer_batch: w.completer_batch,
            maintenance_interval: w.maintenance_interval,
            retention: longshore::Retention {
                succeeded: self.retention.succeeded,
                failed: self.retention.failed,
                cancelled: self.retention.cancelled,
                audit: self.retention.audit,
                throughput: self.retention.throughput,
            },
            scheduler_interval: w.scheduler_interval,
            schedules: Vec::new(),
            // The commands that expose metrics set it.
            metrics: None,
            secrets: self.secrets.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_are_valid() {
        let settings = Settings::load(None, &[]).unwrap();
        assert_eq!(settings.worker.concurrency, 16);
        assert_eq!(settings.worker.lease, Duration::from_secs(30));
        assert_eq!(settings.retry.max, Duration::from_secs(120));
    }

    #[test]
    fn every_section_can_be_set_from_the_environment() {
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let mut sections: Vec<&str> = defaults
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut known = SECTIONS.to_vec();
        sections.sort_unstable();
        known.sort_unstable();
        assert_eq!(sections, known);
    }

    #[test]
    fn a_yaml_file_and_flags_layer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("longshore.yaml");
        std::fs::write(
            &path,
            "worker:\n  concurrency: 8\n  lease: 45s\nretry:\n  base: 2s\n",
        )
        .unwrap();
        let flags = [("worker.concurrency", Value::from(3u32))];
        let settings = Settings::load(Some(&path), &flags).unwrap();
        assert_eq!(settings.worker.concurrency, 3);
        assert_eq!(settings.worker.lease, Duration::from_secs(45));
        assert_eq!(settings.retry.base, Duration::from_secs(2));
    }

    #[test]
    fn an_unknown_or_malformed_setting_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "worker:\n  concurency: 8\n").unwrap();
        let err = Settings::load(Some(&path), &[]).unwrap_err();
        assert!(err.contains("concurency"), "{err}");

        std::fs::write(&path, "worker:\n  lease: soon\n").unwrap();
        let err = Settings::load(Some(&path), &[]).unwrap_err();
        assert!(err.contains("lease"), "{err}");

        let flags = [("worker.concurrency", Value::from(0u32))];
        let err = Settings::load(None, &flags).unwrap_err();
        assert!(err.contains("worker.concurrency"), "{err}");
    }

    #[test]
    fn retention_is_set_per_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("longshore.yaml");
        std::fs::write(
            &path,
            "retention:\n  succeeded: 7d\nworker:\n  scheduler_interval: 5s\n",
        )
        .unwrap();
        let config = Settings::load(Some(&path), &[]).unwrap().worker_config();
        assert_eq!(
            config.retention.succeeded,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(config.retention.failed, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(config.scheduler_interval, Duration::from_secs(5));
    }

    #[test]
    fn the_http_read_deadlines_are_bounded() {
        let http = Settings::load(None, &[]).unwrap().http;
        assert_eq!(http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(http.body_read_timeout, Duration::from_secs(30));
        for (key, value) in [
            ("http.header_read_timeout", "0s"),
            ("http.body_read_timeout", "500ms"),
            ("http.body_read_timeout", "1h"),
        ] {
            let flags = [(key, Value::from(value))];
            let err = Settings::load(None, &flags).unwrap_err();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn the_api_body_limit_has_a_floor() {
        assert_eq!(
            Settings::load(None, &[]).unwrap().http.max_body_bytes,
            1024 * 1024
        );
        let flags = [("http.max_body_bytes", Value::from(10u32))];
        let err = Settings::load(None, &flags).unwrap_err();
        assert!(err.contains("http.max_body_bytes"), "{err}");
    }

    #[test]
    fn the_worker_addresses_are_off_unless_set_and_must_be_addresses() {
        type Field = fn(&WorkerSettings) -> Option<SocketAddr>;
        let fields: [(&str, Field); 2] = [
            ("metrics_addr", |w| w.metrics_addr),
            ("http_addr", |w| w.http_addr),
        ];
        for (field, get) in fields {
            let key = format!("worker.{field}");
            assert_eq!(get(&Settings::load(None, &[]).unwrap().worker), None);
            let flags = [(key.as_str(), Value::from("127.0.0.1:9187"))];
            assert_eq!(
                get(&Settings::load(None, &flags).unwrap().worker),
                Some(SocketAddr::from(([127, 0, 0, 1], 9187)))
            );
            for bad in ["somewhere", "127.0.0.1"] {
                let flags = [(key.as_str(), Value::from(bad))];
                let err = Settings::load(None, &flags).unwrap_err();
                assert!(err.contains(field), "{err}");
            }
        }
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/longshore.yaml")), &[]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
