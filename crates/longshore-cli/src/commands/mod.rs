//! One module per command.

pub(crate) mod agent;
pub(crate) mod agents;
pub(crate) mod bench;
pub(crate) mod enqueue;
pub(crate) mod pools;
pub(crate) mod queues;
pub(crate) mod runtime_settings;
pub(crate) mod schedules;
pub(crate) mod serve;
pub(crate) mod task_input;
pub(crate) mod tasks;
pub(crate) mod tokens;
pub(crate) mod worker;
pub(crate) mod workers;

use std::sync::Arc;

use longshore::Store;
use longshore_server::database::{Missing, connect};
use longshore_server::settings::Settings;

use crate::remote::Remote;

/// `longshore migrate`.
pub(crate) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = connect(settings, Missing::Create).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        println!("schema up to date (version {})", store.schema_version());
    } else {
        let list: Vec<String> = applied.iter().map(i32::to_string).collect();
        println!(
            "applied migration(s) {}; schema at version {}",
            list.join(", "),
            store.schema_version()
        );
    }
    Ok(())
}

/// Where a command that works either way gets its data: the database
/// directly, or a server's API (`--server`). Each such command asks its
/// source for the same values either way and prints them with one piece of
/// code.
pub(crate) enum Source {
    /// The database, as the settings name it.
    Db(Arc<dyn Store>),
    /// A server's HTTP API.
    Api(Remote),
}

impl Source {
    /// The server given with `--server`, or else the configured database
    /// (which must exist).
    pub(crate) async fn open(
        settings: &Settings,
        remote: Option<Remote>,
    ) -> anyhow::Result<Source> {
        match remote {
            Some(remote) => Ok(Source::Api(remote)),
            None => Ok(Source::Db(connect(settings, Missing::Refuse).await?)),
        }
    }
}
