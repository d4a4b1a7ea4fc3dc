//! The listener: a dedicated LISTEN connection that wakes the claimer when
//! tasks become due on a served queue and forwards cancellation requests.
//!
//! Notifications are a speed-up, never a requirement: when the connection
//! breaks, or nothing arrives within the listen timeout, the claimer is
//! told to poll, and the claimer's own idle polling covers the rest.

use std::sync::Arc;
use std::time::Duration;

use longshore_core::StoreEvent;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::context::CancelReason;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let mut retry_in = Duration::from_millis(100);
    loop {
        let mut source = tokio::select! {
            result = shared.store.listen() => match result {
                Ok(Some(source)) => source,
                Ok(None) => {
                    tracing::info!(worker = %config.id, "poll-only mode: not listening for notifications");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for notifications; polling meanwhile");
                    tokio::select! {
                        () = tokio::time::sleep(retry_in) => {}
                        () = stop.cancelled() => return,
                    }
                    retry_in = retry_in.saturating_mul(2).min(Duration::from_secs(10));
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        retry_in = Duration::from_millis(100);
        // Anything sent while we were not listening is lost: look once.
        shared.wake.notify_one();
        loop {
            let event = tokio::select! {
                event = tokio::time::timeout(config.listen_timeout, source.recv()) => event,
                () = stop.cancelled() => return,
            };
            match event {
                Ok(Ok(StoreEvent::TaskAvailable { queue })) => {
                    if config.queues.contains(&queue) {
                        shared.wake.notify_one();
                    }
                }
                Ok(Ok(StoreEvent::CancelRequested { id })) => {
                    if let Some(execution) = shared.inflight_get(&id) {
                        execution.cancel(CancelReason::Operator);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "notification connection lost; reconnecting");
                    shared.wake.notify_one();
                    break;
                }
                Err(_quiet) => shared.wake.notify_one(),
            }
        }
    }
}
