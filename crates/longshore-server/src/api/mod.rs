//! The HTTP API under `/api/v1`, served by `longshore serve` and by
//! `longshore worker --http`.
//!
//! Every route but the OpenAPI document needs a bearer token (see
//! `auth.rs`); reading needs a `read`
//! token, changing anything (or reading the token list) an `admin` one. Bodies and answers are JSON;
//! every error is `{"error": {"code", "message"}}` (see `error.rs`). The
//! OpenAPI document at `/api/v1/openapi.json` is generated from the
//! handlers' annotations here, and a test checks it against the running
//! server. The query parameters it lists for a route are the only ones
//! the route takes: any other is refused before the handler runs.

mod agents;
mod audit;
mod auth;
pub(crate) mod error;
mod extract;
mod model;
mod openapi;
mod operations;
mod pools;
mod queues;
mod schedules;
mod settings;
mod state;
mod tasks;
mod tokens;
mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post, put};
use longshore::metrics::Metrics;
use longshore::{Client, Store};

use crate::probes::{self, Probes};
use crate::settings::Settings;
use state::ApiState;

/// The API beside the probes, on one address: what `longshore serve`
/// answers on `http.listen` and `longshore worker --http` on its own.
pub fn with_probes(probes: Probes, settings: &Settings) -> Router {
    let api = router(probes.store.clone(), settings, probes.metrics.clone());
    probes::router(probes).merge(api)
}

/// The API's routes, with their authentication, query check and body
/// limit, and JSON answers for unknown routes and methods.
pub fn router(store: Arc<dyn Store>, settings: &Settings, metrics: Metrics) -> Router {
    let state = ApiState {
        client: Client::new(store.clone()).with_metrics(metrics.clone()),
        store,
        default_max_attempts: settings.retry.max_attempts,
        metrics,
        actors: Arc::new(longshore_actors::Builtin),
    };
    let routes: [(&'static str, MethodRouter<ApiState>); 27] = [
        (
            "/api/v1/tasks",
            get(tasks::list).post(tasks::enqueue).delete(tasks::delete),
        ),
        ("/api/v1/tasks/{id}", get(tasks::show)),
        ("/api/v1/tasks/{id}/retry", post(tasks::retry)),
        ("/api/v1/tasks/{id}/cancel", post(tasks::cancel)),
        ("/api/v1/stats", get(queues::stats)),
        ("/api/v1/stats/recount", post(queues::recount)),
        ("/api/v1/queues", get(queues::list)),
        ("/api/v1/queues/{name}/pause", post(queues::pause)),
        ("/api/v1/queues/{name}/resume", post(queues::resume)),
        ("/api/v1/queues/{name}/flush", post(queues::flush)),
        ("/api/v1/workers", get(workers::list)),
        ("/api/v1/agents", get(agents::list)),
        ("/api/v1/agents/{id}/drain", post(agents::drain)),
        ("/api/v1/pools", get(pools::list).post(pools::create)),
        (
            "/api/v1/schedules",
            get(schedules::list).post(schedules::create),
        ),
        (
            "/api/v1/schedules/{name}",
            get(schedules::show)
                .patch(schedules::change)
                .delete(schedules::delete),
        ),
        ("/api/v1/schedules/{name}/pause", post(schedules::pause)),
        ("/api/v1/schedules/{name}/resume", post(schedules::resume)),
        ("/api/v1/schedules/{name}/run", post(schedules::run)),
        (
            "/api/v1/settings",
            get(settings::list).put(settings::set_keyed),
        ),
        ("/api/v1/settings/{key}", put(settings::set)),
        ("/api/v1/tokens", get(tokens::list).post(tokens::create)),
        ("/api/v1/tokens/{name}/revoke", post(tokens::revoke)),
        ("/api/v1/audit", get(audit::list)),
        ("/api/v1/operations", get(operations::list)),
        ("/api/v1/operations/{id}", get(operations::show)),
        ("/api/v1/operations/{id}/cancel", post(operations::cancel)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            // Inside the token check (the router's layer, added below): a
            // request without a token is refused as such, whatever its
            // query.
            router.route(
                path,
                methods.route_layer(middleware::from_fn(move |request, next| {
                    openapi::known_query_parameters_only(path, request, next)
                })),
            )
        })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        // After the token check, so outside it: the document describes the
        // API and reveals nothing, and tools (generated clients, Swagger UI)
        // load it before they have a token.
        .route(
            openapi::PATH,
            get(openapi::openapi).route_layer(middleware::from_fn(|request, next| {
                openapi::known_query_parameters_only(openapi::PATH, request, next)
            })),
        )
        // Before the layers below, so that they wrap the fallbacks too.
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.http.max_body_bytes))
        // Outermost, so that refusals (401, 403, 400, 404, 413) are counted
        // too.
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
}

/// Counts each request in the process's metrics
/// (`longshore_http_requests_total`, `longshore_http_request_duration_seconds`)
/// by its route's template; requests no route matched count as
/// `unmatched`.
async fn count_request(
    axum::extract::State(api): axum::extract::State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    api.metrics.http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
