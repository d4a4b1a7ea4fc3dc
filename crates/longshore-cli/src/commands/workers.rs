//! `longshore workers list`: the live worker nodes.

use chrono::Utc;
use serde::Serialize;

use longshore::core::{WorkerInfo, WorkerPresence};
use serde::Deserialize;

use longshore_server::settings::Settings;

use super::Source;
use crate::output;
use crate::remote::Remote;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// The worker nodes that are alive: id, host, version, queues, running
    /// tasks of their slots, the cluster-wide roles they hold, when they
    /// started and were last seen.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// One worker as `list --json` prints it.
#[derive(Serialize)]
struct WorkerJson<'a> {
    id: &'a str,
    host: &'a str,
    version: &'a str,
    queues: &'a [String],
    concurrency: i32,
    running: i32,
    /// Cluster-wide roles it holds, e.g. `maintenance`.
    leads: Vec<&'a str>,
    started_at: chrono::DateTime<Utc>,
    last_seen_at: chrono::DateTime<Utc>,
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    let source = Source::open(settings, remote).await?;
    let Command::List { json } = command;
    let (workers, leaders) = source.workers().await?;
    let leads = |id: &str| -> Vec<&str> {
        leaders
            .iter()
            .filter(|(_, holder)| holder == id)
            .map(|(role, _)| role.as_str())
            .collect()
    };
    if json {
        let list: Vec<WorkerJson<'_>> = workers
            .iter()
            .map(|w| WorkerJson {
                id: &w.presence.id,
                host: &w.presence.host,
                version: &w.presence.version,
                queues: &w.presence.queues,
                concurrency: w.presence.concurrency,
                running: w.presence.running,
                leads: leads(&w.presence.id),
                started_at: w.started_at,
                last_seen_at: w.last_seen_at,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let seen = (now - w.last_seen_at).num_milliseconds().max(0) as f64 / 1000.0;
            vec![
                w.presence.id.clone(),
                w.presence.host.clone(),
                w.presence.version.clone(),
                w.presence.queues.join(","),
                format!("{}/{}", w.presence.running, w.presence.concurrency),
                leads(&w.presence.id).join(","),
                output::time(w.started_at),
                format!("{seen:.1}s ago"),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "HOST",
            "VERSION",
            "QUEUES",
            "RUNNING",
            "LEADS",
            "STARTED",
            "LAST SEEN",
        ],
        &rows,
    );
    Ok(())
}

/// The workers as the API lists them.
#[derive(Deserialize)]
struct ApiWorkers {
    workers: Vec<ApiWorker>,
    leaders: Vec<ApiLeader>,
}

#[derive(Deserialize)]
struct ApiWorker {
    id: String,
    host: String,
    version: String,
    queues: Vec<String>,
    concurrency: i32,
    running: i32,
    started_at: chrono::DateTime<Utc>,
    last_seen_at: chrono::DateTime<Utc>,
}

#[derive(Deserialize)]
struct ApiLeader {
    role: String,
    holder: String,
}

impl Source {
    /// The live workers, and each cluster role with its holder.
    async fn workers(&self) -> anyhow::Result<(Vec<WorkerInfo>, Vec<(String, String)>)> {
        match self {
            Source::Db(store) => {
                let workers = store.workers().await?;
                let leaders = store.leaders().await?;
                Ok((
                    workers,
                    leaders.into_iter().map(|l| (l.name, l.holder)).collect(),
                ))
            }
            Source::Api(api) => {
                let answer: ApiWorkers = api.get(&["workers"], &[]).await?;
                let workers = answer
                    .workers
                    .into_iter()
                    .map(|w| WorkerInfo {
                        presence: WorkerPresence {
                            id: w.id,
                            host: w.host,
                            version: w.version,
                            queues: w.queues,
                            concurrency: w.concurrency,
                            running: w.running,
                            // The API lists agents apart (`agents list`).
                            agent: None,
                        },
                        drain_requested: false,
                        started_at: w.started_at,
                        last_seen_at: w.last_seen_at,
                    })
                    .collect();
                let leaders = answer
                    .leaders
                    .into_iter()
                    .map(|l| (l.role, l.holder))
                    .collect();
                Ok((workers, leaders))
            }
        }
    }
}
