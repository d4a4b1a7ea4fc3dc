//! What monitoring asks a node, without a token: `/health/live`,
//! `/health/ready` and `/metrics`. `longshore serve` and `longshore worker
//! --http` (setting `worker.http_addr`) answer them beside the API;
//! `--metrics-addr` (setting `worker.metrics_addr`) answers them on a port
//! of their own.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use longshore::metrics::Metrics;
use longshore::{Store, WorkerHealth, WorkerState};
use serde_json::json;
use tokio::net::TcpListener;

/// What the probes look at.
#[derive(Clone)]
pub struct Probes {
    /// The node's store: ready only while it answers.
    pub store: Arc<dyn Store>,
    /// The node's worker: ready only while it runs.
    pub worker: WorkerHealth,
    /// What `/metrics` encodes.
    pub metrics: Metrics,
}

/// The probes' routes.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

/// Binds `addr` for the probes, naming the setting when it cannot.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    bind_for(addr, " for metrics and health checks", "--metrics-addr").await
}

/// Binds `addr`; when it cannot, says what it was for (`purpose`, e.g.
/// `" for the API"`, or empty) and which flag sets another.
pub async fn bind_for(addr: SocketAddr, purpose: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}{purpose} (set another address with {flag})")
    })
}

/// The process is up and serving HTTP.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The worker runs and the database answers.
pub async fn ready(State(probes): State<Probes>) -> (StatusCode, Json<serde_json::Value>) {
    let engine = probes.store.engine();
    let unavailable = |code: &str, message: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "engine": engine,
                "error": { "code": code, "message": message },
            })),
        )
    };
    match probes.worker.state() {
        WorkerState::Running => {}
        WorkerState::Stopping => {
            return unavailable(
                "worker_stopping",
                "the worker is stopping: it claims no new tasks".into(),
            );
        }
        WorkerState::Stopped => {
            return unavailable("worker_stopped", "the worker has stopped".into());
        }
        WorkerState::Failed(part) => {
            return unavailable(
                "worker_failed",
                format!("the worker's {part} loop has ended; restart the process"),
            );
        }
    }
    match probes.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "engine": engine })),
        ),
        Err(e) => unavailable("database_unavailable", e.to_string()),
    }
}

/// Every metric, in the OpenMetrics text format.
async fn metrics(State(probes): State<Probes>) -> Response {
    match probes.metrics.encode().await {
        Ok(text) => ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "error": { "code": "internal", "message": "cannot encode the metrics" },
                })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use longshore::sqlite::{SqliteOptions, SqliteStore};
    use longshore::{Registry, Worker, WorkerConfig};

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let store = SqliteStore::open(&dir.path().join("probes.db"), &SqliteOptions::default())
            .await
            .expect("open a scratch SQLite file");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    }

    #[tokio::test]
    async fn ready_fails_once_the_worker_has_stopped_and_says_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(&dir).await;
        let handle = Worker::new(store.clone(), Registry::new(), WorkerConfig::default())
            .expect("worker")
            .start();
        let probes = Probes {
            store: store.clone(),
            worker: handle.health(),
            metrics: Metrics::new(),
        };
        let (status, body) = ready(State(probes.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(body["engine"], "sqlite");

        // The supervisor ends with the worker; the probe outlives both.
        handle.shutdown().await.expect("shutdown");
        let (status, body) = ready(State(probes)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["error"]["code"], "worker_stopped");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("stopped")),
            "{body:?}"
        );
    }
}
