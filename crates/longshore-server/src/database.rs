//! Which database a node works on, and connecting to it: PostgreSQL from a
//! `postgres://` URL, or a SQLite file from a `sqlite://` URL or, with no
//! URL at all, the data directory's `longshore.db`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use longshore::Store;
use longshore::postgres::{PgOptions, PgStore};
use longshore::sqlite::{SqliteOptions, SqliteStore};

use crate::settings::Settings;

/// The database the settings name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// A PostgreSQL server, from `database_url`.
    Postgres {
        /// Its URL.
        url: String,
    },
    /// A SQLite file: from a `sqlite:` `database_url`, or else the data
    /// directory's `longshore.db`.
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Whether no URL was given, so the data directory's file is used.
        from_data_dir: bool,
    },
}

/// The SQLite file's name inside the data directory.
pub const DATA_FILE: &str = "longshore.db";

impl Database {
    /// Which database the settings name. With none configured, the data
    /// directory's SQLite file.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Database> {
        let Some(url) = settings.database_url.as_deref() else {
            return Ok(Database::Sqlite {
                path: settings.data_dir.join(DATA_FILE),
                from_data_dir: true,
            });
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres {
                url: url.to_owned(),
            });
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                bail!(
                    "database URL `{url}` names no file: use sqlite://PATH (a file that several processes can share)"
                );
            }
            return Ok(Database::Sqlite {
                path: PathBuf::from(path),
                from_data_dir: false,
            });
        }
        bail!(
            "database URL `{}` is neither postgres://… nor sqlite://…",
            redact(url)
        )
    }

    /// A line for people: which engine, where.
    pub fn describe(&self) -> String {
        match self {
            Database::Postgres { url } => format!("PostgreSQL at {}", redact(url)),
            Database::Sqlite { path, .. } => format!("SQLite at {}", path.display()),
        }
    }
}

/// How to treat a SQLite file that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Create it (and the data directory): commands that run the system.
    Create,
    /// Refuse, naming the path: commands that only look at or add to an
    /// existing one, so that a wrong directory is not silently a new, empty
    /// database.
    Refuse,
}

/// Connects to the configured database.
pub async fn connect(settings: &Settings, missing: Missing) -> anyhow::Result<Arc<dyn Store>> {
    let database = Database::from_settings(settings)?;
    match &database {
        Database::Postgres { url } => {
            let options = PgOptions {
                max_connections: settings.database.max_connections,
                acquire_timeout: settings.database.acquire_timeout,
                poll_only: settings.database.poll_only,
                durable_hot_path: settings.database.durable_hot_path,
            };
            let store = PgStore::connect(url, &options)
                .await
                .with_context(|| format!("cannot connect to {}", redact(url)))?;
            Ok(Arc::new(store))
        }
        Database::Sqlite {
            path,
            from_data_dir,
        } => {
            if !path.exists() {
                match missing {
                    Missing::Refuse if *from_data_dir => bail!(
                        "no database at {}: no database is configured, so the data directory's is used; \
                         start `longshore serve` there first, or pass --data-dir or --database-url",
                        path.display()
                    ),
                    Missing::Refuse => bail!("no SQLite database at {}", path.display()),
                    Missing::Create => {
                        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                            std::fs::create_dir_all(dir).with_context(|| {
                                format!("cannot create the data directory {}", dir.display())
                            })?;
                        }
                    }
                }
            }
            let options = SqliteOptions {
                busy_timeout: settings.database.busy_timeout,
                poll_only: settings.database.poll_only,
                durable_hot_path: settings.database.durable_hot_path,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open(path, &options)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

/// A URL fit for an error message: the password replaced by `***`,
/// whether it is given as `user:password@` or as a query parameter
/// (`?password=…`, `sslpassword=…`).
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &base[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
        assert_eq!(
            redact("postgres://app@db/app?password=s3cret&sslmode=require"),
            "postgres://app@db/app?password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://app:a@db/app?sslpassword=k3y"),
            "postgres://app:***@db/app?sslpassword=***"
        );
    }
}
