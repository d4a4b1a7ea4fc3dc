//! The claimer: waits for free slots, claims that many due tasks in one
//! statement, and hands them to [`super::dispatch`]. Memory does not grow with the backlog: it
//! never holds more tasks than free slots and the prefetch.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use longshore_core::Claim;
use tokio_util::sync::CancellationToken;

use super::dispatch;
use super::shared::Shared;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let mut idle = config.idle_min;
    let mut claim = Claim {
        owner: config.id.clone(),
        queues: config.queues.clone(),
        limit: 0,
        lease: config.lease,
        capped: false,
        pool: None,
    };
    loop {
        // Wait for one free slot, then take every other free one.
        let first = tokio::select! {
            permit = shared.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        let mut permits = vec![first];
        while let Ok(permit) = shared.slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if let Some(auto) = &shared.auto_prefetch {
            // Permits beyond the prefetch in force are set aside.
            auto.park(&mut permits);
            if permits.is_empty() {
                continue;
            }
        }
        claim.limit = permits.len();
        claim.capped = shared.caps.any();

        // Not raced against `stop`: once sent, the claim may commit, and its
        // tasks must then be started (and drained or released) like any other.
        // The gate is held until they are started (see `release_untracked`).
        let gate = shared.claim_gate.read().await;
        let began = Instant::now();
        match shared.store.claim(&claim).await {
            Ok(tasks) => {
                if let Some(auto) = &shared.auto_prefetch {
                    auto.round_trip_took(began.elapsed());
                }
                let full = tasks.len() == claim.limit;
                shared.backlog.store(full, Ordering::Relaxed);
                if !tasks.is_empty() {
                    idle = config.idle_min;
                }
                dispatch::start(&shared, tasks, &mut permits);
                drop(gate);
                if full {
                    // More may be due: look again as soon as a slot frees.
                    continue;
                }
                // Short: the queue is drained for now. Wait for a wake-up
                // (one that arrived meanwhile is kept by `Notify`) or a poll.
            }
            Err(e) => {
                tracing::warn!(worker = %config.id, error = %e, "claim failed; retrying");
                idle = config.idle_max;
                drop(gate);
                // It may have failed after committing.
                shared.release_untracked().await;
            }
        }
        drop(permits);

        // Sleep until woken or until the next poll.
        tokio::select! {
            () = shared.wake.notified() => idle = config.idle_min,
            () = tokio::time::sleep(idle) => idle = next_idle(idle, config.idle_max),
            () = stop.cancelled() => return,
        }
    }
}

fn next_idle(idle: Duration, max: Duration) -> Duration {
    idle.saturating_mul(2).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_backoff_doubles_up_to_max() {
        let max = Duration::from_secs(1);
        let mut idle = Duration::from_millis(50);
        let mut seen = Vec::new();
        for _ in 0..8 {
            idle = next_idle(idle, max);
            seen.push(idle.as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
    }
}
