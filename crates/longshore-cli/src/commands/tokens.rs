//! `longshore tokens …`: the bearer tokens of the HTTP API. A token's
//! secret is printed once, when it is created; only its hash is stored.

use anyhow::Context;
use longshore::core::{TokenInfo, TokenScope, TokenSecret};
use serde::Serialize;

use super::Missing;
use crate::output;
use crate::settings::Settings;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a token and print its secret (shown this once only).
    Create {
        /// What to call it, e.g. `ci` or `dashboard` (letters, digits, - _ . @)
        #[arg(long, value_name = "NAME")]
        name: String,
        /// read: look at everything, change nothing; admin: also retry,
        /// cancel, enqueue, pause and resume
        #[arg(long, value_enum)]
        scope: Scope,
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

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Scope {
    Read,
    Admin,
}

impl From<Scope> for TokenScope {
    fn from(scope: Scope) -> TokenScope {
        match scope {
            Scope::Read => TokenScope::Read,
            Scope::Admin => TokenScope::Admin,
        }
    }
}

/// One token as `list --json` prints it.
#[derive(Serialize)]
struct TokenJson<'a> {
    #[serde(flatten)]
    token: &'a TokenInfo,
    active: bool,
}

pub(crate) async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Create { name, scope } => {
            // The name is checked before the database is touched.
            TokenInfo::check_name(&name)?;
            let secret = TokenSecret::generate()?;
            let store = super::connect(settings, Missing::Refuse).await?;
            let token = store
                .create_token(&name, scope.into(), &secret.hash())
                .await
                .with_context(|| format!("cannot create token {name}"))?;
            println!("{}", secret.expose());
            eprintln!(
                "created {} token {}: the line above is its secret, shown this once only; \
                 store it now (send it as `Authorization: Bearer <secret>`)",
                token.scope, token.name
            );
        }
        Command::List { json } => {
            let store = super::connect(settings, Missing::Refuse).await?;
            let tokens = store.tokens().await?;
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
            let store = super::connect(settings, Missing::Refuse).await?;
            let token = store.revoke_token(&name).await?;
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
