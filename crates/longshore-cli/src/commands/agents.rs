//! `longshore agents …`: the agents connected now, draining one, and the
//! tokens agents open the gateway with (each bound to one pool, with an
//! expiry; the secret is printed once, when the token is created; only its
//! hash is stored). All in the database.

use std::time::Duration;

use anyhow::Context;
use longshore::ops;
use longshore::ops::agents::ConnectedAgent;
use longshore_server::database::{Missing, connect};
use longshore_server::settings::Settings;

use crate::output;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// The agents connected now, to any gateway of the cluster.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Agent tokens: create, list, revoke.
    #[command(subcommand)]
    Tokens(Tokens),
    /// Drain a connected agent: it finishes what it runs and takes nothing more (within a heartbeat).
    Drain {
        /// The agent's id, as `longshore agents list` shows it
        id: String,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum Tokens {
    /// Create an agent token for a pool and print its secret (shown this once only).
    Create {
        /// What to call it (letters, digits, - _ . @)
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The pool it opens the gateway for
        #[arg(long, value_name = "POOL")]
        pool: String,
        /// When it stops working: a duration such as 30d or 12h, or `never`
        #[arg(long, value_name = "DURATION|never", default_value = "30d", value_parser = parse_lifetime)]
        expires: Lifetime,
    },
    /// Every agent token, revoked and expired ones too (never their secrets).
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke an agent token: it opens no new session from now on.
    Revoke {
        /// The token's name
        name: String,
    },
}

/// `--expires`: a duration, or never.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime(Option<Duration>);

fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text == "never" {
        return Ok(Lifetime(None));
    }
    let lifetime = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is neither a duration (30d, 12h) nor `never`: {e}"))?;
    if lifetime.is_zero() {
        return Err("a token that expires at once opens nothing: give a longer duration".into());
    }
    Ok(Lifetime(Some(lifetime)))
}

pub(crate) async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let store = connect(settings, Missing::Refuse).await?;
    let command = match command {
        Command::Tokens(command) => command,
        Command::List { json } => {
            let agents = ops::agents::connected(store.as_ref()).await?;
            if json {
                let agents: Vec<serde_json::Value> = agents
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "id": a.id,
                            "type": a.kind,
                            "pool": a.pool,
                            "labels": a.labels,
                            "active_count": a.running,
                            "slots": a.slots,
                            "version": a.version,
                            "draining": a.draining,
                            "connected_at": a.connected_at,
                            "last_seen": a.last_seen,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&agents)?);
            } else if agents.is_empty() {
                eprintln!("no agent is connected (see `longshore agent --help` to start one)");
            } else {
                table(&agents);
            }
            return Ok(());
        }
        Command::Drain { id } => {
            ops::agents::drain(store.as_ref(), &id).await?;
            println!("asked agent {id} to drain: it finishes what it runs and takes nothing more");
            return Ok(());
        }
    };
    match command {
        Tokens::Create {
            name,
            pool,
            expires,
        } => {
            let (token, secret) =
                ops::agents::create_token(store.as_ref(), &name, &pool, expires.0)
                    .await
                    .with_context(|| format!("cannot create agent token {name}"))?;
            println!("{}", secret.expose());
            let expiry = token.expires_at.map_or_else(
                || "never expires".to_owned(),
                |at| format!("expires {}", output::time(at)),
            );
            eprintln!(
                "created agent token {} for pool {} ({expiry}): its secret is on standard output, shown this once only; \
                 give it to the pool's agents as LONGSHORE_AGENT_TOKEN",
                token.name, token.pool
            );
        }
        Tokens::List { json } => {
            let tokens = store.agent_tokens().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let now = chrono::Utc::now();
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|token| {
                        let state = if token.revoked_at.is_some() {
                            "revoked"
                        } else if token.is_valid_at(now) {
                            "active"
                        } else {
                            "expired"
                        };
                        vec![
                            token.name.clone(),
                            token.pool.clone(),
                            state.to_owned(),
                            output::time(token.created_at),
                            token
                                .expires_at
                                .map_or_else(|| "never".to_owned(), output::time),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "POOL", "STATE", "CREATED", "EXPIRES"], &rows);
            }
        }
        Tokens::Revoke { name } => {
            let token = store
                .revoke_agent_token(&name)
                .await
                .with_context(|| format!("cannot revoke agent token {name}"))?;
            println!("revoked agent token {} (pool {})", token.name, token.pool);
        }
    }
    Ok(())
}

/// The agents as a table.
pub(crate) fn table(agents: &[ConnectedAgent]) {
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.kind.clone(),
                a.pool.clone(),
                if a.labels.is_empty() {
                    "-".to_owned()
                } else {
                    a.labels.join(",")
                },
                format!("{}/{}", a.running, a.slots),
                if a.draining { "draining" } else { "active" }.to_owned(),
                output::time(a.connected_at),
                format!("{}s ago", (now - a.last_seen).num_seconds().max(0)),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "TYPE",
            "POOL",
            "LABELS",
            "RUNNING",
            "STATE",
            "CONNECTED",
            "LAST SEEN",
        ],
        &rows,
    );
}
