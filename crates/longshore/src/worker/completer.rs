//! The completer: records finished executions many per statement.
//!
//! While one batch is being written, the next accumulates, so the batch
//! size follows the load by itself. A batch whose write fails is kept and
//! written again: nothing finished is forgotten. Results whose fence did not
//! hold (the lease was lost) are discarded by the store and logged here.

use std::sync::Arc;
use std::time::Duration;

use longshore_core::Completion;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// How long a shutdown keeps retrying a batch while the database is away;
/// after that the tasks come back through lease expiry.
const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(10);

pub(super) async fn run(
    shared: Arc<Shared>,
    mut incoming: mpsc::Receiver<Completion>,
    stop: CancellationToken,
) {
    let max = shared.config.completer_batch;
    let mut batch: Vec<Completion> = Vec::with_capacity(max);
    loop {
        if batch.is_empty() {
            tokio::select! {
                received = incoming.recv() => match received {
                    Some(completion) => batch.push(completion),
                    None => return,
                },
                () = stop.cancelled() => break,
            }
        }
        while batch.len() < max {
            match incoming.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        if !flush(&shared, &mut batch).await {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => break,
            }
        }
    }
    // Stopping: every execution has ended, so whatever is queued is final.
    incoming.close();
    while let Ok(completion) = incoming.try_recv() {
        batch.push(completion);
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_FLUSH_LIMIT;
    while !batch.is_empty() {
        let chunk_len = batch.len().min(max);
        let mut chunk: Vec<Completion> = batch.drain(..chunk_len).collect();
        while !flush(&shared, &mut chunk).await {
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(
                    left = chunk.len() + batch.len(),
                    "could not record finished tasks before stopping; they will be rescued when their leases expire"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Writes `batch`; on success empties it and returns true.
async fn flush(shared: &Shared, batch: &mut Vec<Completion>) -> bool {
    match shared.store.complete(&shared.config.id, batch).await {
        Ok(rejected) => {
            for id in &rejected {
                tracing::warn!(
                    task = %id,
                    worker = %shared.config.id,
                    "result discarded: this worker no longer held the task's lease"
                );
            }
            for completion in batch.drain(..) {
                shared.forget(completion.id, completion.attempt);
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, pending = batch.len(), "recording finished tasks failed; retrying");
            false
        }
    }
}
