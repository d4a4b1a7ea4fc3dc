//! `longshore agents tokens …`: the tokens agents open the gateway with,
//! each bound to one pool, with an expiry; in the database. The secret is
//! printed once, when the token is created; only its hash is stored.

use std::time::Duration;

use anyhow::Context;
use longshore::ops;
use longshore_server::database::{Missing, connect};
use longshore_server::settings::Settings;

use crate::output;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Agent tokens: create, list, revoke.
    #[command(subcommand)]
    Tokens(Tokens),
    /// Drain a connected agent: it finishes what it runs and takes nothing more (within a heartbeat).
    Drain {
        /// The agent's id, as `longshore workers list` shows it
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
        Command::Drain { id } => {
            let node = store
                .workers()
                .await?
                .into_iter()
                .find(|w| w.presence.id == id);
            match node {
                None => {
                    anyhow::bail!("no connected agent has id `{id}` (see `longshore workers list`)")
                }
                Some(node) if !longshore::core::pool::is_agent_host(&node.presence.host) => {
                    anyhow::bail!(
                        "`{id}` is a worker node, not an agent: send it SIGTERM to drain it"
                    )
                }
                Some(_) => {}
            }
            if !store.request_drain(&id).await? {
                anyhow::bail!("agent `{id}` disconnected meanwhile");
            }
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
