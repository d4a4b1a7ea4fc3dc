//! What idle agents cost: nothing per agent. A session whose agent has
//! free slots and found nothing to claim waits here instead of polling;
//! one dispatcher per gateway looks for due work once per pool (on its
//! poll interval, and when a notification says a pool's queue has tasks)
//! and wakes only as many waiting sessions as there are tasks they can
//! take. It also records every session's presence in one write per
//! heartbeat, hands each session the drain requests operators made, and
//! reads whether any running-task cap exists (then sessions claim under
//! the cluster-wide claim lock, as capped workers do).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use longshore::Store;
use longshore::core::{StoreEvent, WorkerPresence};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::GatewayConfig;

/// The most due tasks per queue one look reads: enough to wake every
/// waiting agent of a busy pool, few enough to cost one index walk.
const LOOK_LIMIT: usize = 256;

/// What a session shares with the dispatcher.
pub(crate) struct Seat {
    /// Slots the session would fill if woken (0 while it is busy claiming
    /// on its own, or draining).
    waiting: usize,
    /// Of those, slots with nothing to run (the rest is room in the
    /// queue of an agent that claims ahead): due tasks go to idle slots
    /// first.
    idle: usize,
    presence: WorkerPresence,
    signal: Arc<Signal>,
}

impl Seat {
    /// The agent's pool (its presence always names one).
    fn pool(&self) -> &str {
        self.presence.agent.as_ref().map_or("", |a| a.pool.as_str())
    }

    fn offers(&self, label: &String) -> bool {
        self.presence
            .agent
            .as_ref()
            .is_some_and(|a| a.labels.contains(label))
    }
}

/// How the dispatcher reaches one session.
#[derive(Default)]
pub(crate) struct Signal {
    /// Due tasks may be there for it: claim.
    pub(crate) wake: Notify,
    /// An operator asked its agent to drain.
    pub(crate) drain: AtomicBool,
}

/// The sessions of one gateway, by agent id.
#[derive(Default)]
pub(crate) struct Board {
    seats: Mutex<HashMap<String, Seat>>,
}

impl Board {
    fn seats(&self) -> MutexGuard<'_, HashMap<String, Seat>> {
        // A panic while holding the lock leaves plain data behind: go on
        // with it.
        self.seats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seats a new session (its presence names its pool, queues and
    /// labels); `None` when an agent with its id is seated already (a
    /// second live session with one id is refused).
    pub(crate) fn sit(&self, presence: WorkerPresence) -> Option<Arc<Signal>> {
        let mut seats = self.seats();
        if seats.contains_key(&presence.id) {
            return None;
        }
        let signal = Arc::new(Signal::default());
        seats.insert(
            presence.id.clone(),
            Seat {
                waiting: 0,
                idle: 0,
                presence,
                signal: signal.clone(),
            },
        );
        Some(signal)
    }

    /// The session of `agent` ended.
    pub(crate) fn leave(&self, agent: &str) {
        self.seats().remove(agent);
    }

    /// The session of `agent` waits for work with `free` places (0: it
    /// does not wait), `idle` of them slots with nothing to run, holding
    /// `running` tasks.
    pub(crate) fn update(&self, agent: &str, free: usize, idle: usize, running: usize) {
        if let Some(seat) = self.seats().get_mut(agent) {
            seat.waiting = free;
            seat.idle = idle.min(free);
            seat.presence.running = i32::try_from(running).unwrap_or(i32::MAX);
        }
    }

    /// Wakes the waiting sessions of `pool` that can take the tasks whose
    /// required labels are `due`, as many as those tasks fill.
    fn wake_for(&self, pool: &str, due: &[Vec<String>]) -> usize {
        let seats = self.seats();
        let mut room: Vec<(&Seat, usize)> = seats
            .values()
            .filter(|seat| seat.pool() == pool && seat.waiting > 0)
            .map(|seat| (seat, seat.waiting))
            .collect();
        // An idle slot before a place in a busy agent's queue.
        room.sort_by_key(|(seat, _)| std::cmp::Reverse(seat.idle));
        let mut woken = 0;
        for requires in due {
            let taker = room
                .iter_mut()
                .find(|(seat, free)| *free > 0 && requires.iter().all(|label| seat.offers(label)));
            if let Some((seat, free)) = taker {
                if *free == seat.waiting {
                    // First task for this session: wake it once; it claims
                    // all it has room for.
                    seat.signal.wake.notify_one();
                    woken += 1;
                }
                *free -= 1;
            }
        }
        if woken == 0 && due.len() >= LOOK_LIMIT {
            // A full page of due tasks none of the waiting agents can take:
            // tasks they can take may lie beyond it. Let each claim (its
            // claim steps over what it cannot take).
            for (seat, _) in &room {
                seat.signal.wake.notify_one();
                woken += 1;
            }
        }
        woken
    }

    /// The pools that have a waiting session, each with its queues.
    fn waiting_pools(&self) -> BTreeMap<String, Vec<String>> {
        self.seats()
            .values()
            .filter(|seat| seat.waiting > 0)
            .map(|seat| (seat.pool().to_owned(), seat.presence.queues.clone()))
            .collect()
    }

    fn presences(&self) -> Vec<WorkerPresence> {
        self.seats()
            .values()
            .map(|seat| seat.presence.clone())
            .collect()
    }

    fn drain(&self, ids: &[String]) {
        let seats = self.seats();
        for id in ids {
            if let Some(seat) = seats.get(id)
                && !seat.signal.drain.swap(true, Ordering::SeqCst)
            {
                seat.signal.wake.notify_one();
            }
        }
    }
}

/// Runs the gateway's dispatcher until `stop`.
pub(crate) fn start(
    store: Arc<dyn Store>,
    board: Arc<Board>,
    capped: Arc<AtomicBool>,
    mut events: broadcast::Receiver<StoreEvent>,
    config: GatewayConfig,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(config.poll_interval);
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        // Pools whose queues were named by a notification since the last
        // look (`None`: look at every pool).
        let mut named: Option<Vec<String>> = Some(Vec::new());
        loop {
            tokio::select! {
                _ = poll.tick() => named = None,
                _ = heartbeat.tick() => {
                    record_presence(store.as_ref(), &board).await;
                    read_caps(store.as_ref(), &board, &capped).await;
                    continue;
                }
                event = events.recv() => match event {
                    Ok(StoreEvent::TaskAvailable { queue }) => {
                        if let Some(queues) = &mut named {
                            queues.push(queue);
                        }
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => named = None,
                    Err(broadcast::error::RecvError::Closed) => {
                        stop.cancelled().await;
                        return;
                    }
                },
                () = stop.cancelled() => return,
            }
            // Notifications that arrived meanwhile join this look.
            while let Ok(event) = events.try_recv() {
                if let (StoreEvent::TaskAvailable { queue }, Some(queues)) = (event, &mut named) {
                    queues.push(queue);
                }
            }
            look(store.as_ref(), &board, named.take()).await;
            named = Some(Vec::new());
        }
    });
}

/// Looks for due work in the pools with waiting sessions (those whose
/// queues are in `named`, or all when `None`), one read per pool, and
/// wakes who can take it.
async fn look(store: &dyn Store, board: &Board, named: Option<Vec<String>>) {
    for (pool, queues) in board.waiting_pools() {
        if let Some(named) = &named
            && !queues.iter().any(|queue| named.contains(queue))
        {
            continue;
        }
        match store.due_requirements(&queues, LOOK_LIMIT).await {
            Ok(due) if !due.is_empty() => {
                let woken = board.wake_for(&pool, &due);
                tracing::trace!(%pool, due = due.len(), woken, "agents' gateway: woke waiting agents");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%pool, error = %e, "agents' gateway: cannot look for due tasks; trying again at the next poll");
            }
        }
    }
}

/// Records every session's agent as alive in one write, and passes on
/// the drain requests it reads back.
async fn record_presence(store: &dyn Store, board: &Board) {
    let presences = board.presences();
    if presences.is_empty() {
        return;
    }
    match store.workers_seen(&presences).await {
        Ok(draining) => board.drain(&draining),
        Err(e) => {
            tracing::warn!(error = %e, agents = presences.len(), "agents' gateway: cannot record its agents as alive; trying again at the next heartbeat");
        }
    }
}

/// Reads whether a running-task cap exists anywhere (the cluster's, a
/// queue's, a pool's) into `capped`, while any session is open. Claims
/// apply the caps whatever this says; under a cap they also take the
/// cluster-wide claim lock, so that concurrent claims cannot overshoot
/// it. On failure the last answer stands.
async fn read_caps(store: &dyn Store, board: &Board, capped: &AtomicBool) {
    if board.seats().is_empty() {
        return;
    }
    let read = async {
        Ok::<_, longshore::core::StoreError>(
            store.cluster_settings().await?.max_running.is_some()
                || store
                    .queue_settings()
                    .await?
                    .iter()
                    .any(|queue| queue.max_running.is_some())
                || store
                    .pools()
                    .await?
                    .iter()
                    .any(|pool| pool.max_running.is_some()),
        )
    };
    match read.await {
        Ok(any) => capped.store(any, Ordering::Relaxed),
        Err(e) => {
            tracing::warn!(error = %e, "agents' gateway: cannot read the running-task caps; the last reading stands");
        }
    }
}
