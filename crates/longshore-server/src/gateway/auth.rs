//! Who opened the stream: the agent token in its `authorization` metadata
//! (`Bearer <secret>`), looked up by the hash of its secret. An agent token
//! opens the gateway for its own pool only; an API token opens nothing
//! here (and an agent token nothing in the API).

use chrono::Utc;
use longshore::Store;
use longshore::core::AgentTokenInfo;
use longshore::core::token::hash_secret;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The valid agent token the request bears, or why it is refused.
pub(super) async fn authenticate(
    store: &dyn Store,
    metadata: &MetadataMap,
) -> Result<AgentTokenInfo, Status> {
    let secret = metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| {
            Status::unauthenticated(
                "no agent token: send `authorization: Bearer <token>` \
                 (longshore agent reads LONGSHORE_AGENT_TOKEN or --token-file)",
            )
        })?;
    let hash = hash_secret(secret);
    let found = store
        .agent_token_by_hash(&hash)
        .await
        .map_err(unavailable)?;
    let Some(token) = found else {
        // Say so when an API token was sent by mistake: the two kinds are
        // kept apart on purpose.
        let api = store.token_by_hash(&hash).await.map_err(unavailable)?;
        return Err(Status::unauthenticated(if api.is_some() {
            "this is an API token; the agents' gateway takes agent tokens only \
             (make one with `longshore agents tokens create --pool NAME`)"
        } else {
            "unknown agent token"
        }));
    };
    if let Some(at) = token.revoked_at {
        return Err(Status::unauthenticated(format!(
            "agent token `{}` was revoked at {}",
            token.name,
            at.to_rfc3339()
        )));
    }
    if !token.is_valid_at(Utc::now()) {
        let expired = token
            .expires_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default();
        return Err(Status::unauthenticated(format!(
            "agent token `{}` expired at {expired}",
            token.name
        )));
    }
    Ok(token)
}

/// A store error as the agent sees it: the database's own words stay in
/// the server's log.
pub(super) fn unavailable(error: longshore::StoreError) -> Status {
    tracing::warn!(error = %error, "agents' gateway: database error");
    Status::unavailable("the server cannot reach its database; try again")
}
