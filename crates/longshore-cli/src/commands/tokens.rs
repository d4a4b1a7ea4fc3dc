//! `longshore tokens …`: the bearer tokens of the HTTP API, in the
//! database or through a server's API (`--server`, with an admin token).
//! A token's secret is printed once, when it is created; only its hash is
//! stored.

use anyhow::Context;
use longshore::core::{TokenInfo, TokenScope};
use longshore::ops;
use longshore_server::settings::Settings;
use serde::{Deserialize, Serialize};

use super::Source;
use crate::output;
use crate::remote::Remote;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a token and print its secret (shown this once only).
    Create {
        /// What to call it, e.g. `ci` or `dashboard` (letters, digits, - _ . @)
        #[arg(long, value_name = "NAME")]
        name: String,
        /// read: look at everything, change nothing; admin: also retry,
        /// cancel, enqueue, pause and resume
        #[arg(long, value_parser = scope_parser())]
        scope: TokenScope,
    },
    /// Every token, revoked ones too (never their secrets).
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests bearing it are refused from now on.
    Revoke {
        /// The token's name
        name: String,
    },
}

/// `--scope`: the scopes by name, listed in the help.
fn scope_parser() -> impl clap::builder::TypedValueParser<Value = TokenScope> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(
        [TokenScope::Read, TokenScope::Admin].map(TokenScope::as_str),
    )
    .try_map(|name| name.parse::<TokenScope>())
}

/// The API's answer to a creation: the token and its secret.
#[derive(Deserialize)]
struct Created {
    #[serde(flatten)]
    token: TokenInfo,
    secret: String,
}

/// The API's token list.
#[derive(Deserialize)]
struct ApiTokens {
    tokens: Vec<TokenInfo>,
}

/// One token as `list --json` prints it.
#[derive(Serialize)]
struct TokenJson<'a> {
    #[serde(flatten)]
    token: &'a TokenInfo,
    active: bool,
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    match command {
        Command::Create { name, scope } => {
            // The name is checked before the database or server is asked.
            TokenInfo::check_name(&name)?;
            let refused = || format!("cannot create token {name}");
            let (token, secret) = match Source::open(settings, remote).await? {
                Source::Db(store) => {
                    let (token, secret) = ops::tokens::create(store.as_ref(), &name, scope)
                        .await
                        .with_context(refused)?;
                    (token, secret.expose().to_owned())
                }
                Source::Api(api) => {
                    let body = serde_json::json!({ "name": name, "scope": scope });
                    let created: Created =
                        api.post(&["tokens"], &body).await.with_context(refused)?;
                    (created.token, created.secret)
                }
            };
            println!("{secret}");
            // Captured by `$(…)` or a pipe, the secret is not "above".
            let where_ = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                "the line above is its secret"
            } else {
                "its secret went to standard output"
            };
            eprintln!(
                "created {} token {}: {where_}, shown this once only; \
                 store it now (send it as `Authorization: Bearer <secret>`)",
                token.scope, token.name
            );
        }
        Command::List { json } => {
            let tokens = match Source::open(settings, remote).await? {
                Source::Db(store) => store.tokens().await?,
                Source::Api(api) => api.get::<ApiTokens>(&["tokens"], &[]).await?.tokens,
            };
            if json {
                let list: Vec<TokenJson<'_>> = tokens
                    .iter()
                    .map(|token| TokenJson {
                        token,
                        active: token.is_active(),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.scope.to_string(),
                        output::time(t.created_at),
                        output::maybe_time(t.last_used_at),
                        output::maybe_time(t.revoked_at),
                    ]
                })
                .collect();
            output::table(&["NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"], &rows);
        }
        Command::Revoke { name } => {
            let token = match Source::open(settings, remote).await? {
                Source::Db(store) => store.revoke_token(&name).await?,
                Source::Api(api) => {
                    api.post(&["tokens", &name, "revoke"], &serde_json::json!({}))
                        .await?
                }
            };
            // The first revocation's time: an earlier one shows as such.
            println!(
                "token {} ({}) revoked at {}",
                token.name,
                token.scope,
                output::maybe_time(token.revoked_at)
            );
        }
    }
    Ok(())
}
