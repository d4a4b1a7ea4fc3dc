//! `longshore serve`: the whole system in one process. An inline worker
//! runs the built-in actors, and the HTTP side answers health checks
//! (without a token) and the API under `/api/v1` (see `crate::api`); the
//! dashboard joins it when it is built. With no database
//! configured it keeps everything in the data directory's SQLite file.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use figment::value::Value;
use longshore::Store;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Database, Missing, worker};
use crate::settings::Settings;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the HTTP side listens [setting: http.listen, default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    worker: worker::Args,
}

impl Args {
    pub(crate) fn overrides(&self, out: &mut Vec<(&'static str, Value)>) {
        if let Some(addr) = self.listen {
            out.push(("http.listen", Value::from(addr.to_string())));
        }
        self.worker.overrides(out);
    }
}

pub(crate) async fn run(settings: &Settings) -> anyhow::Result<()> {
    // Before anything starts: a signal from now on means "drain".
    let mut signals = worker::StopSignals::install()?;
    let database = Database::from_settings(settings)?;
    let store = super::connect(settings, Missing::Create).await?;
    // Bound before the worker starts, so that a taken port stops start-up
    // before any task is claimed.
    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set another address with --listen)",
                settings.http.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    // Built once: an unset worker id is made up anew on every call.
    let config = settings.worker_config();
    let handle = worker::start(settings, store.clone(), config.clone()).await?;
    println!(
        "longshore serve: listening on http://{address}, using {}, worker {} on queue(s) {} with concurrency {}",
        database.describe(),
        config.id,
        config.queues.join(","),
        config.concurrency
    );

    let app = router(store.clone()).merge(crate::api::router(store, settings));
    let stop_http = CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop_http.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
    });

    signals.recv().await;
    let drained = worker::drain(handle, &mut signals).await;
    stop_http.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
    }
    drained
}

fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(store)
}

/// The process is up and serving HTTP.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers.
async fn ready(State(store): State<Arc<dyn Store>>) -> (StatusCode, Json<serde_json::Value>) {
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "engine": store.engine() })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "engine": store.engine(),
                "error": { "code": "database_unavailable", "message": e.to_string() },
            })),
        ),
    }
}
