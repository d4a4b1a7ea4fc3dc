//! `/api/v1/settings`: the runtime settings every node follows, as
//! `longshore settings get|set` reads and changes them (see
//! [`longshore::ops::runtime_settings`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::state::ApiState;
use longshore::ops::runtime_settings;

/// Every runtime setting.
#[derive(Serialize, ToSchema)]
pub(crate) struct RuntimeSettings {
    /// By key: `max_running` (the cap on running tasks across the
    /// cluster) and `queues.NAME.max_running` (each queue's); `null`: no
    /// cap.
    settings: BTreeMap<String, Option<i32>>,
}

/// A setting's new value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingValue {
    /// A positive whole number, or `null` to lift the cap. Required.
    #[serde(deserialize_with = "required_nullable")]
    #[schema(minimum = 1)]
    value: Option<i32>,
}

/// A field that must be present but may be `null`.
fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    Option::<i32>::deserialize(d)
}

/// A setting and its new value, in one body (the seeds' form of
/// `PUT /api/v1/settings/{key}`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyedSettingValue {
    /// `max_running` or `queues.NAME.max_running`.
    key: String,
    /// A positive whole number, or `null` to lift the cap. Required.
    #[serde(deserialize_with = "required_nullable")]
    #[schema(minimum = 1)]
    value: Option<i32>,
}

/// A setting as it is now.
#[derive(Serialize, ToSchema)]
pub(crate) struct Setting {
    key: String,
    value: Option<i32>,
}

/// Every runtime setting.
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    operation_id = "list_settings",
    tag = "settings",
    responses(
        (status = 200, description = "The settings", body = RuntimeSettings),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<RuntimeSettings>, ApiError> {
    Ok(Json(RuntimeSettings {
        settings: runtime_settings::all(api.store.as_ref()).await?,
    }))
}

/// Change a runtime setting for every node (each follows it within a few
/// seconds): `max_running` or `queues.NAME.max_running`, to a positive
/// whole number or `null`.
#[utoipa::path(
    put,
    path = "/api/v1/settings/{key}",
    operation_id = "set_setting",
    tag = "settings",
    params(("key" = String, Path, description = "`max_running` or `queues.NAME.max_running`", pattern = "^(max_running|queues\\.[^\\u0000-\\u001f\\u007f-\\u009f]+\\.max_running)$")),
    request_body = SettingValue,
    responses(
        (status = 200, description = "Set", body = Setting),
        (status = 400, description = "An unknown key, a value that is not a positive whole number nor null, malformed JSON or an unknown field; nothing was changed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn set(
    State(api): State<ApiState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(request): ApiJson<SettingValue>,
) -> Result<Json<Setting>, ApiError> {
    apply(&api, &key, request.value).await
}

/// Checks and applies one setting.
async fn apply(api: &ApiState, key: &str, value: Option<i32>) -> Result<Json<Setting>, ApiError> {
    let parsed = runtime_settings::checked(key, value)?;
    runtime_settings::apply(api.store.as_ref(), &parsed, value).await?;
    Ok(Json(Setting {
        key: parsed.name(),
        value,
    }))
}

/// Change a runtime setting named in the body, as
/// `PUT /api/v1/settings/{key}` does: `{"key": "max_running", "value": 50}`.
#[utoipa::path(
    put,
    path = "/api/v1/settings",
    operation_id = "set_setting_by_key",
    tag = "settings",
    request_body = KeyedSettingValue,
    responses(
        (status = 200, description = "Set", body = Setting),
        (status = 400, description = "An unknown key, a value that is not a positive whole number nor null, malformed JSON, a missing or unknown field; nothing was changed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
    )
)]
pub(crate) async fn set_keyed(
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<KeyedSettingValue>,
) -> Result<Json<Setting>, ApiError> {
    apply(&api, &request.key, request.value).await
}
