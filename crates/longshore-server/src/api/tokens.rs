//! `/api/v1/tokens/…`: list, create and revoke the API's own bearer
//! tokens, as `longshore tokens list|create|revoke` does (see
//! [`longshore::ops::tokens`]). Every route here needs an admin token,
//! reading too (see [`super::auth::needed_scope`]). A secret is answered
//! once, to its creation; only its hash is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use longshore::core::TokenInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::model::Scope;
use super::state::ApiState;
use longshore::ops;

/// A token, without its secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct Token {
    id: Uuid,
    /// Unique among all tokens, revoked ones too.
    name: String,
    scope: Scope,
    created_at: DateTime<Utc>,
    /// When it last authenticated a request, to within a minute (`null`:
    /// never).
    last_used_at: Option<DateTime<Utc>>,
    /// `null`: it is valid.
    revoked_at: Option<DateTime<Utc>>,
    /// True while it authenticates requests (not revoked).
    active: bool,
}

impl From<TokenInfo> for Token {
    fn from(token: TokenInfo) -> Token {
        Token {
            active: token.is_active(),
            id: token.id,
            name: token.name,
            scope: token.scope.into(),
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// Every token.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// By name, revoked ones too.
    tokens: Vec<Token>,
}

/// A token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Letters, digits, `-`, `_`, `.` and `@`; at most 100 characters;
    /// never used before (by a revoked token either).
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._@-]+$")]
    name: String,
    scope: Scope,
}

/// A token just created: the token, with its secret (the only time it is
/// answered).
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    token: Token,
    /// `ls_` and 43 base64url characters: send it as
    /// `Authorization: Bearer <secret>`. Store it now: it is not kept.
    secret: String,
}

/// Every token, revoked ones too, never their secrets. Needs an admin
/// token, though it changes nothing: the list names every credential and
/// what it may do, which tells a read token's holder which admin tokens
/// exist to go after, and lets no reader watch new ones appear.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = TokenList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read (listing tokens needs an admin token)", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = api.store.tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(Token::from).collect(),
    }))
}

/// Create a token, as `longshore tokens create` does: its secret is in
/// this answer only; the server keeps its SHA-256.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; the answer holds its secret, shown this once only", body = CreatedToken),
        (status = 400, description = "Malformed JSON, an unknown field, a scope other than `read` or `admin`, or a malformed name; nothing was written", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 409, description = "A token of this name exists, perhaps revoked (code `conflict`); nothing was written", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (token, secret) =
        ops::tokens::create(api.store.as_ref(), &request.name, request.scope.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revoke a token, as `longshore tokens revoke` does: requests bearing it
/// are refused from now on. Revoking a revoked token changes nothing (it
/// keeps its first revocation time).
#[utoipa::path(
    post,
    path = "/api/v1/tokens/{name}/revoke",
    operation_id = "revoke_token",
    tag = "tokens",
    params(("name" = String, Path, description = "The token", min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._@-]+$")),
    responses(
        (status = 200, description = "Revoked (or revoked already)", body = Token),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, description = "No such token (code `token_not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(api): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Token>, ApiError> {
    Ok(Json(api.store.revoke_token(&name).await?.into()))
}
