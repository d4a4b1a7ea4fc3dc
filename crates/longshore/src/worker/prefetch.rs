//! The automatic prefetch ([`crate::Prefetch::Auto`]): how many tasks the
//! worker claims ahead of its free slots, from what it measures.
//!
//! Without a prefetch a slot whose handler has ended waits for the next
//! claim's round trip before it runs again. Over that wait a worker of
//! `c` slots, whose handlers take `h` each, frees about `c × r / h` slots,
//! where `r` is the round trip: that many tasks claimed ahead keep every
//! slot busy. The worker keeps twice that (a round trip varies), at most
//! [`crate::Prefetch::AUTO_PER_SLOT`] per slot, so a prefetched task waits
//! about two round trips for its slot. Tasks that take far longer than a
//! round trip come to none at all.
//!
//! `h` and `r` are moving averages: `r` of every claim and every write of
//! results (a slot waits for one or the other), `h` of every handler run.
//! Until a handler has run, nothing is claimed ahead.
//!
//! The claim permits ([`super::shared::Shared::slots`]) are made for the
//! largest prefetch; the ones the current prefetch does not use are
//! parked here, taken from the claimer and the completer as they come by,
//! and handed back to the claimer when the prefetch grows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use crate::Prefetch;
use crate::metrics::{Metrics, Share};

/// Each new measurement moves an average by this fraction of the
/// difference: about the last dozen count.
const WEIGHT: u64 = 8;

/// How many round trips' worth of tasks are held ahead.
const ROUND_TRIPS: u64 = 2;

/// What a prefetch is chosen from: moving averages of a handler's run and
/// of a round trip to the database, for a number of slots. Used by a
/// worker with [`Prefetch::Auto`] and by the gateway, which chooses the
/// same way for an agent that lets it (see [`Pace::ahead`]).
#[derive(Debug)]
pub struct Pace {
    slots: usize,
    /// The most [`Pace::ahead`] returns.
    most: usize,
    /// Moving average of a handler run, in nanoseconds (0: none yet).
    handler_ns: AtomicU64,
    /// Moving average of a claim or a write of results, in nanoseconds.
    round_trip_ns: AtomicU64,
}

impl Pace {
    /// Nothing measured yet, for `slots` slots holding at most `most`
    /// tasks ahead.
    pub fn new(slots: usize, most: usize) -> Pace {
        Pace {
            slots,
            most,
            handler_ns: AtomicU64::new(0),
            round_trip_ns: AtomicU64::new(0),
        }
    }

    /// A handler ran this long.
    pub fn handler_took(&self, took: Duration) {
        average(&self.handler_ns, took);
    }

    /// A claim, or a write of results, took this long.
    pub fn round_trip_took(&self, took: Duration) {
        average(&self.round_trip_ns, took);
    }

    /// How many tasks to hold ahead of the free slots now: about two round
    /// trips' worth at the measured handler time, at most `most`, and none
    /// before a handler has been measured.
    pub fn ahead(&self) -> usize {
        prefetch_for(
            self.slots,
            self.most,
            self.handler_ns.load(Ordering::Relaxed),
            self.round_trip_ns.load(Ordering::Relaxed),
        )
    }
}

pub(crate) struct AutoPrefetch {
    concurrency: usize,
    /// The largest prefetch: the claim permits beyond the slots.
    most: usize,
    pace: Pace,
    /// How many claim permits should be parked now: `most` less the
    /// current prefetch.
    wanted: AtomicUsize,
    /// How many are (kept beside `parked` so the hot path reads it without
    /// the lock).
    held: AtomicUsize,
    parked: Mutex<Vec<OwnedSemaphorePermit>>,
    /// This worker's part of `longshore_worker_prefetch`.
    gauge: Option<Share>,
}

impl AutoPrefetch {
    pub(crate) fn new(concurrency: usize, metrics: Option<&Metrics>) -> AutoPrefetch {
        let most = concurrency.saturating_mul(Prefetch::AUTO_PER_SLOT);
        AutoPrefetch {
            concurrency,
            most,
            pace: Pace::new(concurrency, most),
            wanted: AtomicUsize::new(most),
            held: AtomicUsize::new(0),
            parked: Mutex::new(Vec::new()),
            gauge: metrics.map(|m| m.prefetch(0)),
        }
    }

    /// The claim permits to make: one per slot and one per task of the
    /// largest prefetch.
    pub(crate) fn permits(&self) -> usize {
        self.concurrency + self.most
    }

    /// The prefetch in force.
    #[cfg(test)]
    fn current(&self) -> usize {
        self.most - self.wanted.load(Ordering::Relaxed).min(self.most)
    }

    /// A handler ran this long.
    pub(crate) fn handler_took(&self, took: Duration) {
        self.pace.handler_took(took);
        self.retarget();
    }

    /// A claim, or a write of results, took this long.
    pub(crate) fn round_trip_took(&self, took: Duration) {
        self.pace.round_trip_took(took);
        self.retarget();
    }

    /// How many more permits are to be parked.
    pub(crate) fn shortfall(&self) -> usize {
        self.wanted
            .load(Ordering::Relaxed)
            .saturating_sub(self.held.load(Ordering::Relaxed))
    }

    /// Parks what `permits` can give of the shortfall (from the end).
    pub(crate) fn park(&self, permits: &mut Vec<OwnedSemaphorePermit>) {
        if self.shortfall() == 0 || permits.is_empty() {
            return;
        }
        let Ok(mut parked) = self.parked.lock() else {
            return;
        };
        let short = self
            .wanted
            .load(Ordering::Relaxed)
            .saturating_sub(parked.len());
        let keep = permits.len().saturating_sub(short);
        parked.extend(permits.drain(keep..));
        self.held.store(parked.len(), Ordering::Relaxed);
    }

    /// Sets the prefetch from the averages; when it grew, hands parked
    /// permits back to the claimer.
    fn retarget(&self) {
        let prefetch = self.pace.ahead();
        let wanted = self.most - prefetch;
        if self.wanted.swap(wanted, Ordering::Relaxed) != wanted {
            tracing::debug!(prefetch, "automatic prefetch changed");
            if let Some(gauge) = &self.gauge {
                gauge.set(prefetch);
            }
        }
        if self.held.load(Ordering::Relaxed) > wanted
            && let Ok(mut parked) = self.parked.lock()
        {
            parked.truncate(wanted);
            self.held.store(parked.len(), Ordering::Relaxed);
        }
    }
}

/// Folds `took` into the moving average `into`. Updates that race may lose
/// one of the two measurements, which an average can spare.
fn average(into: &AtomicU64, took: Duration) {
    let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
    let old = into.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else if sample >= old {
        old + (sample - old) / WEIGHT
    } else {
        old - (old - sample) / WEIGHT
    };
    into.store(new, Ordering::Relaxed);
}

/// Tasks to hold ahead for `concurrency` slots whose handlers take
/// `handler_ns` each while a round trip takes `round_trip_ns`; at most
/// `most`, and none before a handler has been measured.
fn prefetch_for(concurrency: usize, most: usize, handler_ns: u64, round_trip_ns: u64) -> usize {
    if handler_ns == 0 {
        return 0;
    }
    let slots = u64::try_from(concurrency).unwrap_or(u64::MAX);
    let ahead = u128::from(ROUND_TRIPS) * u128::from(slots) * u128::from(round_trip_ns)
        / u128::from(handler_ns);
    usize::try_from(ahead).unwrap_or(usize::MAX).min(most)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_prefetch_follows_the_ratio_of_round_trip_to_handler() {
        // Nothing measured yet: nothing ahead.
        assert_eq!(prefetch_for(16, 48, 0, 2 * MS), 0);
        // Handlers far shorter than a claim: the most.
        assert_eq!(prefetch_for(16, 48, MS / 100, 2 * MS), 48);
        // 20 ms handlers, 3 ms round trips: 16 slots free 2.4 per round
        // trip; twice that is held.
        assert_eq!(prefetch_for(16, 48, 20 * MS, 3 * MS), 4);
        // A second-long handler: none, the slots hardly wait.
        assert_eq!(prefetch_for(16, 48, 1_000 * MS, 2 * MS), 0);
    }

    #[test]
    fn an_average_moves_by_an_eighth_of_each_difference() {
        let avg = AtomicU64::new(0);
        average(&avg, Duration::from_millis(8));
        assert_eq!(avg.load(Ordering::Relaxed), 8 * MS);
        average(&avg, Duration::from_millis(16));
        assert_eq!(avg.load(Ordering::Relaxed), 9 * MS);
        average(&avg, Duration::from_millis(1));
        assert_eq!(avg.load(Ordering::Relaxed), 8 * MS);
    }

    #[test]
    fn permits_are_parked_while_tasks_are_long_and_handed_back_when_short() {
        let auto = AutoPrefetch::new(4, None);
        let semaphore = Arc::new(Semaphore::new(auto.permits()));
        assert_eq!(auto.permits(), 16);
        let take = |n: usize| -> Vec<OwnedSemaphorePermit> {
            (0..n)
                .map_while(|_| semaphore.clone().try_acquire_owned().ok())
                .collect()
        };

        // Before any handler ran, only the slots' permits stay in use.
        let mut claim = take(16);
        auto.park(&mut claim);
        assert_eq!((claim.len(), auto.current()), (4, 0));
        drop(claim);

        // Short handlers: the prefetch grows to the most, and the parked
        // permits come back.
        auto.round_trip_took(Duration::from_millis(2));
        auto.handler_took(Duration::from_micros(10));
        assert_eq!(auto.current(), 12);
        let mut claim = take(16);
        auto.park(&mut claim);
        assert_eq!(claim.len(), 16);

        // Long handlers: the permits in use are parked as they come by.
        for _ in 0..200 {
            auto.handler_took(Duration::from_secs(1));
        }
        assert_eq!(auto.current(), 0);
        assert_eq!(auto.shortfall(), 12);
        let mut done: Vec<_> = claim.drain(..5).collect();
        auto.park(&mut done);
        assert_eq!((done.len(), auto.shortfall()), (0, 7));
        auto.park(&mut claim);
        assert_eq!((claim.len(), auto.shortfall()), (4, 0));
    }
}
