//! Accepting HTTP connections with deadlines: a client that sends its
//! headers or its body too slowly is cut off, so that hundreds of
//! half-sent requests cannot hold the node's connections (and its file
//! descriptors) for minutes and starve `/health/live`.
//!
//! - Headers: hyper closes a connection whose request headers have not
//!   all arrived within `http.header_read_timeout`.
//! - Body: a middleware reads every request body whole before the
//!   route sees it, refusing a declared `Content-Length` over
//!   `http.max_body_bytes` with 413 before reading a byte of it, and a body
//!   that takes longer than `http.body_read_timeout` with 408 (the
//!   connection is then closed). The API's and the dashboard's bodies are
//!   small JSON or forms, so reading them whole first costs nothing.
//! - Accept errors (out of file descriptors) pause accepting briefly
//!   instead of spinning, and [`raise_open_file_limit`] lifts the soft
//!   limit on descriptors (often 1,024) to the hard one before a node
//!   listens.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::error::{ApiError, ErrorCode};
use crate::settings::HttpServerSettings;

/// The limits a listener holds its clients to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `http.max_body_bytes`.
    pub max_body_bytes: usize,
    /// `http.header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `http.body_read_timeout`.
    pub body_read_timeout: Duration,
}

impl From<&HttpServerSettings> for Limits {
    fn from(http: &HttpServerSettings) -> Limits {
        Limits {
            max_body_bytes: http.max_body_bytes,
            header_read_timeout: http.header_read_timeout,
            body_read_timeout: http.body_read_timeout,
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit:
/// every connection holds a descriptor, and the usual soft limit of 1,024
/// is what a crowd of slow clients would use up first.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit raised"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the
/// requests in flight finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: CancellationToken) {
    let app = app.layer(middleware::from_fn_with_state(limits, read_body_in_time));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, mostly: connections close
                    // (the deadlines see to it), then accepting resumes.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection; pausing for a moment");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "an HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Reads the request's body whole, within the deadline and the size
/// limit, before the route sees it.
async fn read_body_in_time(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) if is_length_limit(&e) => too_large(),
        Ok(Err(e)) => closing(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidBody,
            format!("cannot read the request body: {e}"),
        )),
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} (setting http.body_read_timeout)",
                humantime::format_duration(limits.body_read_timeout)
            ),
        )),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

fn too_large() -> Response {
    // The unread body stays on the connection: close it.
    closing(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "the request body is larger than this server accepts (setting http.max_body_bytes)",
    ))
}

/// `error`, with the connection closed after it.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
