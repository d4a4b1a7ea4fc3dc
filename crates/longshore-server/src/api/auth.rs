//! Bearer-token authentication of every API route.
//!
//! The scope a request needs follows from its method, so that no route can
//! forget to ask for it: `GET`, `HEAD` and `OPTIONS` change nothing and need
//! a `read` token; every other method needs an `admin` one. The one
//! exception is by path: reading the token list needs `admin` too (see
//! [`ADMIN_ONLY_READS`]).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use longshore::core::token::hash_secret;
use longshore::core::{NewAuditEntry, TokenInfo, TokenScope, TokenSecret};

use super::error::{ApiError, ErrorCode};
use super::state::ApiState;

/// The routes that need an admin token even to read. The token list
/// changes nothing, but it names every credential and its scope: a read
/// token's holder would learn which admin tokens exist to go after (and
/// when new ones appear), which is more than "look at the tasks" should
/// grant. The audit trail names them too, with what each did.
const ADMIN_ONLY_READS: &[&str] = &["/api/v1/tokens", "/api/v1/audit"];

/// The scope a request with `method` on `path` needs.
pub(crate) fn needed_scope(method: &Method, path: &str) -> TokenScope {
    if reads(method) && !ADMIN_ONLY_READS.contains(&path) {
        TokenScope::Read
    } else {
        TokenScope::Admin
    }
}

/// Refuses a request without a valid token of the scope it needs (401,
/// 403); otherwise hands it on with the token in its extensions. Changes,
/// and changes refused for their scope, are logged with the token's name
/// and recorded in the audit trail.
pub(crate) async fn require_token(
    State(api): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let needed = needed_scope(request.method(), request.uri().path());
    let header = request.headers().get(header::AUTHORIZATION).cloned();
    let token = authenticate(&api, header).await?;
    let change = !reads(request.method());
    let action = format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| request.uri().path(), MatchedPath::as_str)
    );
    // With the query: a bulk deletion's filter is in it.
    let target = request.uri().to_string();
    if !token.scope.allows(needed) {
        if change {
            audit(&api, &token.name, &action, &target, StatusCode::FORBIDDEN).await;
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "token `{}` has {} scope; {} {} needs a token of {} scope",
                token.name,
                token.scope,
                request.method(),
                request.uri().path(),
                needed
            ),
        ));
    }
    let name = token.name.clone();
    request.extensions_mut().insert(token);
    let response = next.run(request).await;
    if change {
        let status = response.status();
        tracing::info!(token = %name, %action, %target, status = status.as_u16(), "API change");
        audit(&api, &name, &action, &target, status).await;
    }
    Ok(response)
}

/// Whether `method` only reads.
fn reads(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Records a change in the audit trail; a failure to record it is logged
/// and does not undo or refuse the change.
async fn audit(api: &ApiState, who: &str, action: &str, target: &str, status: StatusCode) {
    let entry = NewAuditEntry::new(who, "api", action, target, status.as_u16());
    if let Err(e) = api.store.record_audit(&entry).await {
        tracing::warn!(error = %e, %action, %target, "cannot record an API change in the audit trail");
    }
}

/// The token a request's `Authorization` header bears, if it is valid.
async fn authenticate(api: &ApiState, header: Option<HeaderValue>) -> Result<TokenInfo, ApiError> {
    let Some(value) = header else {
        return Err(ApiError::unauthorized(
            "no bearer token: send `Authorization: Bearer <token>` (create one with `longshore tokens create`)",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return Err(ApiError::unauthorized(
            "the Authorization header is not `Bearer <token>`",
        ));
    };
    let refused = || ApiError::unauthorized("the token is unknown or revoked");
    // Garbage never reaches the database.
    if !TokenSecret::looks_valid(presented) {
        return Err(refused());
    }
    api.store
        .token_by_hash(&hash_secret(presented))
        .await?
        .ok_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_methods_make_do_with_read() {
        let path = "/api/v1/tasks";
        assert_eq!(needed_scope(&Method::GET, path), TokenScope::Read);
        assert_eq!(needed_scope(&Method::HEAD, path), TokenScope::Read);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(needed_scope(&method, path), TokenScope::Admin);
        }
    }

    #[test]
    fn reading_the_token_list_needs_admin() {
        for method in [Method::GET, Method::HEAD, Method::POST] {
            assert_eq!(needed_scope(&method, "/api/v1/tokens"), TokenScope::Admin);
        }
    }
}
