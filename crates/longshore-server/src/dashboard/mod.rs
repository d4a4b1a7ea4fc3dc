//! The web dashboard, served at `/` beside the API by `longshore serve`
//! and `longshore worker --http`: what an operator needs during an
//! incident, without the CLI.
//!
//! Pages are rendered on the server from templates compiled into the
//! binary (askama, `templates/`); a little JavaScript of our own
//! (`assets/app.js`) adds confirmations and a live refresh, and every page
//! works without it. Each page reads through the same store methods as the
//! API, so it costs what the API costs on a table of millions of tasks.
//!
//! - `session.rs`: signing in with an API token, sessions, CSRF, what a
//!   read session may not do.
//! - `view.rs`: the frame of every page and the formatting pages share.
//! - `pages/`: one module per page: overview, tasks, bulk actions and
//!   the operations they start, schedules, queues, workers, settings (with
//!   the API tokens).
//! - `audit.rs`: every change made from a page goes into the audit trail,
//!   which `/audit` lists for admins.

mod assets;
mod audit;
mod chart;
mod pages;
mod session;
mod view;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use longshore::Store;
use longshore::ops::ActorCatalog;

use crate::settings::Settings;

/// What every page handler shares.
#[derive(Clone)]
pub(crate) struct Dash {
    pub(crate) store: Arc<dyn Store>,
    /// The actors whose arguments are checked before a schedule is saved.
    pub(crate) actors: Arc<dyn ActorCatalog>,
    /// How long a session lasts (`dashboard.session_ttl`).
    pub(crate) session_ttl: Duration,
}

/// The dashboard's routes.
pub fn router(store: Arc<dyn Store>, settings: &Settings) -> Router {
    let dash = Dash {
        store,
        actors: Arc::new(longshore_actors::Builtin),
        session_ttl: settings.dashboard.session_ttl,
    };
    Router::new()
        .route("/", get(pages::overview::page))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/tasks", get(pages::tasks::list))
        .route(
            "/tasks/bulk",
            get(pages::bulk::confirm).post(pages::bulk::start),
        )
        .route("/operations", get(pages::bulk::list))
        .route("/operations/{id}", get(pages::bulk::show))
        .route("/operations/{id}/cancel", post(pages::bulk::cancel))
        .route("/tasks/{id}", get(pages::tasks::show))
        .route("/tasks/{id}/retry", post(pages::tasks::retry))
        .route("/tasks/{id}/cancel", post(pages::tasks::cancel))
        .route("/schedules", get(pages::schedules::list))
        .route("/schedules/{name}", get(pages::schedules::show))
        .route("/schedules/{name}/edit", post(pages::schedules::edit))
        .route("/schedules/{name}/{action}", post(pages::schedules::act))
        .route("/queues", get(pages::queues::list))
        .route("/queues/{name}/{action}", post(pages::queues::act))
        .route("/workers", get(pages::workers::page))
        .route("/agents/{id}/drain", post(pages::workers::drain))
        .route(
            "/settings",
            get(pages::settings::page).post(pages::settings::set_cap),
        )
        .route("/tokens", post(pages::settings::create_token))
        .route("/tokens/{name}/revoke", post(pages::settings::revoke_token))
        .route("/audit", get(audit::page))
        // Every change made from a page goes into the audit trail.
        .route_layer(axum::middleware::from_fn_with_state(
            dash.clone(),
            audit::record,
        ))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .route("/assets/icon.svg", get(assets::icon))
        .with_state(dash)
}

/// A rendered page, never cached (it shows live data and its CSRF token),
/// never framed by another site.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
                ),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard: a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}
