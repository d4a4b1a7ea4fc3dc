//! The first message of an agent's session: `Hello` checked against the
//! protocol version, the agent token's pool and the pools that exist,
//! before the session starts.

use longshore::core::{AgentTokenInfo, Pool, pool::check_labels};
use longshore_proto::v1::{Hello, PROTOCOL_VERSION};
use tonic::Status;

use super::Shared;
use super::auth::unavailable;

/// The pool `hello` may serve with `token`, or the status that refuses it.
pub(super) async fn check_hello(
    shared: &Shared,
    token: &AgentTokenInfo,
    hello: &Hello,
) -> Result<Pool, Status> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "this agent speaks protocol version {}; this server speaks version {PROTOCOL_VERSION}: \
             upgrade the one that is behind",
            hello.protocol_version
        )));
    }
    if hello.agent_id.is_empty() || hello.agent_id.len() > 200 {
        return Err(Status::invalid_argument(
            "the agent id must be 1 to 200 bytes",
        ));
    }
    for (what, text) in [
        ("the agent id", &hello.agent_id),
        ("the agent's version", &hello.version),
        ("the agent's language", &hello.language),
    ] {
        longshore::core::task::check_printable(what, text).map_err(Status::invalid_argument)?;
    }
    if hello.version.len() > 100 || hello.language.len() > 100 {
        return Err(Status::invalid_argument(
            "the agent's version and language must be at most 100 bytes each",
        ));
    }
    if hello.slots == 0 {
        return Err(Status::invalid_argument("an agent needs at least one slot"));
    }
    check_labels(&hello.labels).map_err(|e| Status::invalid_argument(e.to_string()))?;
    if hello.pool != token.pool {
        return Err(Status::permission_denied(format!(
            "agent token `{}` is for pool `{}`, not `{}`",
            token.name, token.pool, hello.pool
        )));
    }
    let pools = shared.store.pools().await.map_err(unavailable)?;
    pools
        .into_iter()
        .find(|pool| pool.name == hello.pool)
        .ok_or_else(|| {
            Status::not_found(format!(
                "pool `{}` does not exist (make it with `longshore pools add`)",
                hello.pool
            ))
        })
}
