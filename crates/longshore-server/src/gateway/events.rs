//! One event stream per gateway ([`Store::listen`]), fanned out to its
//! sessions: "tasks are due on queue q" wakes the sessions whose pool
//! serves q, "cancel task t" reaches the session running t. Without events
//! (poll-only), sessions look on their poll interval.

use std::sync::Arc;
use std::time::Duration;

use longshore::Store;
use longshore::core::StoreEvent;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The fan-out.
pub(crate) struct Events {
    sender: broadcast::Sender<StoreEvent>,
}

impl Events {
    /// Starts listening on `store` until `stop`.
    pub(crate) fn start(store: Arc<dyn Store>, stop: CancellationToken) -> Events {
        let (sender, _) = broadcast::channel(1024);
        let fan_out = sender.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listen(store, fan_out) => {}
                () = stop.cancelled() => {}
            }
        });
        Events { sender }
    }

    /// A session's own receiver.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.sender.subscribe()
    }
}

async fn listen(store: Arc<dyn Store>, fan_out: broadcast::Sender<StoreEvent>) {
    loop {
        match store.listen().await {
            Ok(Some(mut source)) => loop {
                match source.recv().await {
                    // No session listening is not an error.
                    Ok(event) => drop(fan_out.send(event)),
                    Err(e) => {
                        tracing::warn!(error = %e, "agents' gateway: event stream lost; sessions poll until it is back");
                        break;
                    }
                }
            },
            // Poll-only: the sessions' poll is all there is.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "agents' gateway: cannot listen for events; sessions poll meanwhile");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
