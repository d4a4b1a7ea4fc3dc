//! The HTTP API under `/api/v1`, served by `longshore serve`.
//!
//! Every route needs a bearer token (see [`auth`]); reading needs a `read`
//! token, changing anything an `admin` one. Bodies and answers are JSON;
//! every error is `{"error": {"code", "message"}}` (see [`error`]). The
//! OpenAPI document at `/api/v1/openapi.json` is generated from the
//! handlers' annotations here, and a test checks it against the running
//! server.

mod auth;
mod cluster;
mod error;
mod model;
mod queues;
mod schedules;
mod settings;
mod tasks;

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};
use longshore::Store;
use longshore::metrics::Metrics;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::settings::Settings;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    store: Arc<dyn Store>,
    /// Attempts of an enqueued task that names none (`retry.max_attempts`).
    default_max_attempts: i32,
    /// Counts the tasks enqueued through the API.
    metrics: Metrics,
}

/// The API's routes, with their authentication and body limit, and JSON
/// answers for unknown routes and methods.
pub(crate) fn router(store: Arc<dyn Store>, settings: &Settings, metrics: Metrics) -> Router {
    let state = ApiState {
        store,
        default_max_attempts: settings.retry.max_attempts,
        metrics,
    };
    Router::new()
        .route(
            "/api/v1/tasks",
            get(tasks::list).post(tasks::enqueue).delete(tasks::delete),
        )
        .route("/api/v1/tasks/{id}", get(tasks::show))
        .route("/api/v1/tasks/{id}/retry", post(tasks::retry))
        .route("/api/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/v1/stats", get(queues::stats))
        .route("/api/v1/queues", get(queues::list))
        .route("/api/v1/queues/{name}/pause", post(queues::pause))
        .route("/api/v1/queues/{name}/resume", post(queues::resume))
        .route("/api/v1/queues/{name}/flush", post(queues::flush))
        .route("/api/v1/workers", get(cluster::workers))
        .route(
            "/api/v1/schedules",
            get(cluster::schedules).post(schedules::create),
        )
        .route(
            "/api/v1/schedules/{name}",
            get(schedules::show)
                .patch(schedules::change)
                .delete(schedules::delete),
        )
        .route("/api/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/api/v1/schedules/{name}/run", post(schedules::run))
        .route("/api/v1/settings", get(settings::list))
        .route("/api/v1/settings/{key}", put(settings::set))
        .route("/api/v1/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(settings.http.max_body_bytes))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

/// The API's OpenAPI document, from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Longshore API",
        description = "Inspect and steer a Longshore cluster: tasks, queues, workers, schedules, runtime settings. \
            Every route needs `Authorization: Bearer <token>` (create one with \
            `longshore tokens create`): a `read` token for GET, an `admin` token for \
            anything that changes something. Every error is \
            `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}` with a stable code."
    ),
    paths(
        tasks::list,
        tasks::enqueue,
        tasks::show,
        tasks::retry,
        tasks::cancel,
        tasks::delete,
        queues::stats,
        queues::list,
        queues::pause,
        queues::resume,
        queues::flush,
        cluster::workers,
        cluster::schedules,
        schedules::create,
        schedules::show,
        schedules::change,
        schedules::pause,
        schedules::resume,
        schedules::run,
        schedules::delete,
        settings::list,
        settings::set,
        openapi,
    ),
    modifiers(&BearerToken),
    security(("bearer_token" = [])),
    tags(
        (name = "tasks", description = "List, show, enqueue, retry, cancel and delete tasks"),
        (name = "stats", description = "Task counts"),
        (name = "queues", description = "Queues: depth by state, pause, resume, flush"),
        (name = "workers", description = "Live worker nodes and capacity"),
        (name = "schedules", description = "Cron schedules: list, show, create, change, pause, resume, run by hand, delete"),
        (name = "settings", description = "Runtime settings every node follows: caps on running tasks"),
        (name = "meta", description = "This document"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the bearer-token scheme every route uses.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("ls_<43 base64url characters>")
                        .description(Some(
                            "A token from `longshore tokens create --scope read|admin`",
                        ))
                        .build(),
                ),
            );
    }
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document", body = serde_json::Value),
        (status = 401, description = "No valid token", body = error::ErrorBody),
    )
)]
async fn openapi() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(ApiDoc::openapi))
}
