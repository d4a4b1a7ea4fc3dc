//! One module per command.

pub(crate) mod bench;
pub(crate) mod enqueue;
pub(crate) mod tasks;
pub(crate) mod worker;

use anyhow::Context;
use longshore::postgres::{PgOptions, PgStore};

use crate::settings::Settings;

/// Connects to the configured database.
pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<PgStore> {
    let url = settings.database_url().map_err(anyhow::Error::msg)?;
    let options = PgOptions {
        max_connections: settings.database.max_connections,
        acquire_timeout: settings.database.acquire_timeout,
        poll_only: settings.database.poll_only,
        durable_hot_path: settings.database.durable_hot_path,
    };
    PgStore::connect(url, &options)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

/// `longshore migrate`.
pub(crate) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    let applied = store.migrate_verbose().await?;
    if applied.is_empty() {
        println!(
            "schema up to date (version {})",
            longshore::postgres::latest_version()
        );
    } else {
        let list: Vec<String> = applied.iter().map(i32::to_string).collect();
        println!(
            "applied migration(s) {}; schema at version {}",
            list.join(", "),
            longshore::postgres::latest_version()
        );
    }
    Ok(())
}

/// A URL fit for an error message: the password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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
    }
}
