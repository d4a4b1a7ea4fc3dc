//! Every error the API returns: a status and a JSON body
//! `{"error": {"code": "…", "message": "…"}}`, whose code is stable (clients
//! match on it) and whose message is for people. Bad input of any kind is a
//! 4xx; only the server's own failures are 5xx.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use longshore::StoreError;
use longshore::ops::OpError;
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong, for programs. New codes may be added; existing ones
/// keep their meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    /// 401: no bearer token, or one that is unknown or revoked.
    Unauthorized,
    /// 403: the token's scope does not allow the request (a read token on
    /// a request that changes something).
    Forbidden,
    /// 404: no such route.
    NotFound,
    /// 405: the route does not answer this method.
    MethodNotAllowed,
    /// 404: no task has this id.
    TaskNotFound,
    /// 404: no schedule has this name.
    ScheduleNotFound,
    /// 404: no API token has this name.
    TokenNotFound,
    /// 404: no agent with this id is connected.
    AgentNotFound,
    /// 404: no bulk operation has this id (or it was purged).
    OperationNotFound,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the body is JSON of the wrong shape (an unknown or missing
    /// field, a value of the wrong type).
    InvalidBody,
    /// 400: a query parameter is unknown or its value malformed.
    InvalidQuery,
    /// 400: a part of the path is malformed (e.g. a task id that is not a
    /// UUID).
    InvalidPath,
    /// 400: the request is well-formed but asks for something invalid
    /// (an unknown actor, bad arguments, an empty queue name).
    InvalidInput,
    /// 400: a destructive request came without its confirmation (nor a
    /// dry run): nothing was changed.
    ConfirmationRequired,
    /// 413: the body is larger than the server's `http.max_body_bytes`.
    PayloadTooLarge,
    /// 415: a body was sent without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 408: the body did not arrive within the server's
    /// `http.body_read_timeout`.
    RequestTimeout,
    /// 409: the task is in a state the action does not apply to.
    InvalidState,
    /// 409: an active task holds the unique key.
    UniqueConflict,
    /// 409: something of this name exists already.
    Conflict,
    /// 503: the database cannot be reached; worth retrying.
    DatabaseUnavailable,
    /// 503: the database schema is older than this server.
    SchemaOutOfDate,
    /// 500: the server failed; the details are in its log.
    Internal,
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// One error.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, for programs.
    pub(crate) code: ErrorCode,
    /// For people.
    pub(crate) message: String,
}

/// An error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, message)
    }

    pub(crate) fn invalid_query(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidQuery, message)
    }

    pub(crate) fn invalid_body(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, message)
    }

    pub(crate) fn confirmation_required(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ConfirmationRequired,
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"longshore\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        use StatusCode as S;
        let (status, code) = match &error {
            StoreError::NotFound(_) => (S::NOT_FOUND, ErrorCode::TaskNotFound),
            StoreError::InvalidState { .. } => (S::CONFLICT, ErrorCode::InvalidState),
            StoreError::UniqueConflict { .. } => (S::CONFLICT, ErrorCode::UniqueConflict),
            StoreError::ScheduleNotFound(_) => (S::NOT_FOUND, ErrorCode::ScheduleNotFound),
            StoreError::TokenNotFound(_) => (S::NOT_FOUND, ErrorCode::TokenNotFound),
            StoreError::AgentNotFound(_) => (S::NOT_FOUND, ErrorCode::AgentNotFound),
            StoreError::PoolNotFound(_) | StoreError::AgentTokenNotFound(_) => {
                (S::NOT_FOUND, ErrorCode::NotFound)
            }
            StoreError::ScheduleExists(_)
            | StoreError::TokenExists(_)
            | StoreError::PoolExists(_)
            | StoreError::AgentTokenExists(_) => (S::CONFLICT, ErrorCode::Conflict),
            StoreError::InvalidInput(_) => (S::BAD_REQUEST, ErrorCode::InvalidInput),
            // Also answered before a token is checked: the database's own
            // words go to the log only.
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %error, "API request: database unavailable");
                return ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::DatabaseUnavailable,
                    "the database is unavailable; try again (the server's log has the details)",
                );
            }
            StoreError::Migration(_) => {
                tracing::error!(error = %error, "API request: schema out of date");
                return ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::SchemaOutOfDate,
                    "the database schema is missing or out of date: run `longshore migrate`",
                );
            }
            _ => {
                // The database's own words may name tables and values: they
                // go to the log, not to the client.
                tracing::error!(error = %error, "API request failed in the database");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the server failed to answer; its log has the details",
                );
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<longshore::Error> for ApiError {
    /// The client's errors: a store error keeps its status; any other
    /// is the server's fault.
    fn from(error: longshore::Error) -> Self {
        match error {
            longshore::Error::Store(store) => ApiError::from(store),
            other => {
                tracing::error!(error = %other, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the server failed to answer; its log has the details",
                )
            }
        }
    }
}

impl From<OpError> for ApiError {
    /// A refusal of the checks the CLI shares with the API: a store error
    /// keeps its status; any other is a message about the input.
    fn from(error: OpError) -> Self {
        match error {
            OpError::Store(store) | OpError::Partial { source: store, .. } => ApiError::from(store),
            OpError::NoRandomness(e) => {
                tracing::error!(error = %e, "API request: no random bytes");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the server failed to answer; its log has the details",
                )
            }
            other => ApiError::invalid_input(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidJson,
                e.body_text(),
            ),
            JsonRejection::JsonDataError(e) => ApiError::invalid_body(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON, with `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than this server accepts (setting http.max_body_bytes)",
                )
            }
            other => ApiError::invalid_body(format!(
                "cannot read the request body: {}",
                other.body_text()
            )),
        }
    }
}

/// Any route the API does not have.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route; GET /api/v1/openapi.json lists them",
    )
}

/// A route asked with a method it does not answer.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this route does not answer this method; GET /api/v1/openapi.json lists them",
    )
}
