//! API tokens: what `longshore tokens create` and `POST /api/v1/tokens`
//! both do. A token's secret is handed back once; only its hash is
//! stored.

use longshore_core::{Store, TokenInfo, TokenScope, TokenSecret};

use super::OpError;

/// Creates token `name` with a new secret, of which only the hash is
/// stored; the name is checked before the database is touched.
pub async fn create(
    store: &dyn Store,
    name: &str,
    scope: TokenScope,
) -> Result<(TokenInfo, TokenSecret), OpError> {
    TokenInfo::check_name(name)?;
    let secret = TokenSecret::generate()?;
    let token = store.create_token(name, scope, &secret.hash()).await?;
    Ok((token, secret))
}
