//! Where a command gets its data: the flags naming the database, and those
//! naming a server whose API to work through instead. Each command takes
//! only the ones it can use, so its `--help` shows only those.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The database a command opens.
#[derive(Args, Default)]
pub(crate) struct DatabaseArgs {
    /// postgres://user@host:5432/db or sqlite://path/to/file.db [env: LONGSHORE_DATABASE_URL; default: the data directory's SQLite file]
    #[arg(long, global = true, value_name = "URL", help_heading = "Database")]
    pub(crate) database_url: Option<String>,

    /// Where the embedded SQLite database lives when no URL is given [env: LONGSHORE_DATA_DIR; default: ./longshore-data]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Database")]
    pub(crate) data_dir: Option<PathBuf>,
}

/// A server whose HTTP API a command works through instead of the database.
#[derive(Args, Default)]
pub(crate) struct ServerArgs {
    /// Work through this server's HTTP API instead of the database, e.g. http://10.0.0.5:8080 [env: LONGSHORE_SERVER]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Through a server"
    )]
    pub(crate) server: Option<String>,

    /// The API token for --server; prefer LONGSHORE_TOKEN, since a command line is visible to every user in `ps` [env: LONGSHORE_TOKEN]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        help_heading = "Through a server"
    )]
    pub(crate) token: Option<String>,
}

/// The database, or a server's API: for the commands that work either way.
#[derive(Args, Default)]
pub(crate) struct Connection {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// A group of commands that work either on the database or through a
/// server (`tasks`, `queues`…): the connection flags are taken before or
/// after the subcommand's name.
#[derive(Args)]
pub(crate) struct Group<C: Subcommand> {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(subcommand)]
    pub(crate) command: C,
}
