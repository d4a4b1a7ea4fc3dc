//! Agent pools and agent tokens, as the CLI (and later the API) change
//! them.

use std::time::Duration;

use chrono::Utc;
use longshore_core::{AgentTokenInfo, Store, TokenSecret};

use super::OpError;

/// How long an agent token lasts unless told otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Creates an agent token for `pool` that expires after `lifetime`
/// (`None`: never); returns it with its secret, which is not stored.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    pool: &str,
    lifetime: Option<Duration>,
) -> Result<(AgentTokenInfo, TokenSecret), OpError> {
    let expires_at = match lifetime {
        None => None,
        Some(lifetime) => Some(
            chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|lifetime| Utc::now().checked_add_signed(lifetime))
                .ok_or_else(|| {
                    longshore_core::StoreError::InvalidInput(
                        "the token's lifetime is too long; use `never` for no expiry".into(),
                    )
                })?,
        ),
    };
    let secret = TokenSecret::generate()?;
    let token = store
        .create_agent_token(name, pool, &secret.hash(), expires_at)
        .await?;
    Ok((token, secret))
}
