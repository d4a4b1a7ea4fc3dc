//! Gathered enqueues: concurrent single-task enqueues share one insert and
//! one commit.
//!
//! A web server whose requests each enqueue one task pays, without this, a
//! statement and a commit (an fsync on PostgreSQL) per request; the
//! database's log flush, not its work, bounds the rate. Here each caller
//! leaves its task in a waiting list and a writer takes everything waiting
//! at once into one [`longshore_core::TaskStore::enqueue`]. A writer starts
//! when a task arrives and fewer than [`WRITERS`] are busy, and keeps
//! taking what waits until nothing does: a lone caller is written at once
//! (no timer, no added latency), and under load each statement carries
//! what arrived while the previous ones were being written.
//!
//! Every caller is answered only after the statement that holds its task
//! has committed. One caller's task never fails the others: tasks are
//! checked before they wait, and when a gathered statement fails for
//! anything but a lost connection, each of its tasks is written again on
//! its own, so that the error reaches only the caller whose task caused it
//! (a failed statement wrote nothing, so nothing is written twice). A held
//! unique key is not an error: the statement reports the holder to the
//! caller whose task it refused, as it would alone, and two gathered tasks
//! with the same key behave as two tasks of one batch (the first is
//! inserted, the second told about it).
//!
//! Writers run as spawned tasks, so a caller that gives up waiting (its
//! future dropped) cancels nothing for the others gathered with it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use longshore_core::{EnqueueResult, NewTask, Store, StoreError};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Statements in flight at once. Each holds one pooled connection while it
/// runs; more than a few only queue behind the database's log flush.
pub(crate) const WRITERS: usize = 4;

/// The most tasks one statement carries.
pub(crate) const MAX_BATCH: usize = 1000;

type Reply = oneshot::Sender<Result<EnqueueResult, StoreError>>;

/// Gathers the single-task enqueues of every clone of one client.
pub(crate) struct Gatherer {
    store: Arc<dyn Store>,
    /// Where each insert's size is counted.
    metrics: Option<Metrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Tasks no writer has taken yet, oldest first.
    waiting: VecDeque<(NewTask, Reply)>,
    /// Writers running.
    writers: usize,
}

impl State {
    fn take(&mut self) -> Vec<(NewTask, Reply)> {
        let n = self.waiting.len().min(MAX_BATCH);
        self.waiting.drain(..n).collect()
    }
}

impl Gatherer {
    pub(crate) fn new(store: Arc<dyn Store>, metrics: Option<Metrics>) -> Gatherer {
        Gatherer {
            store,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// Enqueues `task` with whatever other tasks are waiting, and answers
    /// once it is stored (or refused).
    pub(crate) async fn enqueue(
        self: &Arc<Self>,
        task: NewTask,
    ) -> Result<EnqueueResult, StoreError> {
        // A refused value is the caller's own answer: it never joins a
        // statement it could fail.
        task.validate().map_err(StoreError::InvalidInput)?;
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut state = self.lock();
            state.waiting.push_back((task, reply));
            if state.writers < WRITERS {
                state.writers += 1;
                Some(state.take())
            } else {
                None
            }
        };
        if let Some(batch) = start {
            tokio::spawn(Arc::clone(self).write(batch));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the enqueue's writer stopped before it answered (its runtime shut down?)".into(),
            ))
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a list and a count, consistent after every line:
        // a panic elsewhere leaves nothing half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One writer: writes `batch`, then whatever waits, until nothing does.
    async fn write(self: Arc<Self>, mut batch: Vec<(NewTask, Reply)>) {
        let mut guard = Writer {
            gatherer: &self,
            armed: true,
        };
        loop {
            self.write_batch(batch).await;
            let mut state = self.lock();
            if state.waiting.is_empty() {
                // Leaving under the lock: a task added after this sees one
                // writer fewer and starts its own.
                state.writers -= 1;
                guard.armed = false;
                return;
            }
            batch = state.take();
        }
    }

    async fn write_batch(&self, batch: Vec<(NewTask, Reply)>) {
        let (tasks, replies): (Vec<NewTask>, Vec<Reply>) = batch.into_iter().unzip();
        if let Some(metrics) = &self.metrics {
            metrics.gathered(tasks.len());
        }
        if tasks.len() == 1 {
            let result = self.store.enqueue(tasks).await.and_then(only);
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(result);
            }
            return;
        }
        let n = tasks.len();
        match self.store.enqueue(tasks.clone()).await {
            Ok(results) if results.len() == n => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that stopped waiting has nobody to tell.
                    let _ = reply.send(Ok(result));
                }
            }
            Ok(results) => {
                let message = format!(
                    "the store answered {} results for {n} gathered tasks",
                    results.len()
                );
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Database(message.clone().into())));
                }
            }
            // The connection went: whether the statement committed is not
            // known, so it is not written again; each caller hears what a
            // lone enqueue would have heard.
            Err(StoreError::Unavailable(message)) => {
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
            // Some task failed the statement, and the statement wrote
            // nothing: each task on its own finds whose it was.
            Err(_) => {
                for (task, reply) in tasks.into_iter().zip(replies) {
                    let result = self.store.enqueue(vec![task]).await.and_then(only);
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Counts a writer out if it stops without finishing (a panic in the
/// store), so that the next task to arrive starts another.
struct Writer<'a> {
    gatherer: &'a Gatherer,
    armed: bool,
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gatherer.lock().writers -= 1;
        }
    }
}

/// The one result of a one-task enqueue.
fn only(results: Vec<EnqueueResult>) -> Result<EnqueueResult, StoreError> {
    match results.as_slice() {
        [one] => Ok(*one),
        _ => Err(StoreError::Database(
            format!("the store answered {} results for one task", results.len()).into(),
        )),
    }
}
