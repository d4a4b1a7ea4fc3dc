//! Tasks: enqueue, the hot path (claim, heartbeat, complete), recovery,
//! and what operators do to tasks (list, retry, cancel, delete, purge).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::lifecycle::Transition;
use crate::store::QueueSettings;
use crate::task::{LogEntry, LogLevel, NewTask, Status, TaskRow, TaskState};

/// What [`TaskStore::enqueue`] did with one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnqueueResult {
    /// The task's id; for a duplicate, the id of the active task holding the key.
    pub id: Uuid,
    /// False when an active task with the same unique key already existed.
    pub inserted: bool,
}

impl EnqueueResult {
    /// The result of each of `tasks`, in order, given the ids an engine
    /// inserted and the active holders (by unique key) of the keys that
    /// refused the others. A refused task whose holder finished in the
    /// meantime is reported with its own id.
    pub fn for_batch(
        tasks: &[NewTask],
        inserted: &HashSet<Uuid>,
        holders: &HashMap<String, Uuid>,
    ) -> Vec<EnqueueResult> {
        tasks
            .iter()
            .map(|task| {
                if inserted.contains(&task.id) {
                    return EnqueueResult {
                        id: task.id,
                        inserted: true,
                    };
                }
                let holder = task
                    .unique_key
                    .as_ref()
                    .and_then(|key| holders.get(key))
                    .copied()
                    .unwrap_or(task.id);
                EnqueueResult {
                    id: holder,
                    inserted: false,
                }
            })
            .collect()
    }
}

/// A request to claim due tasks.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The worker that will hold the leases.
    pub owner: String,
    /// The queues to take from.
    pub queues: Vec<String>,
    /// At most this many (the worker's free slots).
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
    /// The cluster has running-task caps (per queue or global): claims
    /// must take the cluster-wide claim lock so that two nodes cannot both
    /// fill the last free place. Engines whose writes are serialised anyway
    /// may ignore it. The caps themselves are read by every claim.
    pub capped: bool,
    /// The agent pool claiming (through a gateway), or `None` for an inline
    /// worker. A queue that belongs to a pool gives tasks only to claims of
    /// that pool; every other queue only to inline claims.
    pub pool: Option<PoolClaim>,
}

/// A claim made for an agent of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolClaim {
    /// The pool.
    pub name: String,
    /// The agent's labels: only tasks whose required labels are all among
    /// them are taken.
    pub labels: Vec<String>,
}

/// One finished execution, applied only while the worker still holds the
/// task (state running, same lease owner, same execution).
#[derive(Clone, Debug)]
pub struct Completion {
    /// The task.
    pub id: Uuid,
    /// Its queue (to wake that queue's workers when it is due again at once).
    pub queue: String,
    /// The execution's number, part of the fence.
    pub execution: i32,
    /// What happens to the task.
    pub transition: Transition,
    /// The worst level the execution logged.
    pub worst_level: Option<LogLevel>,
    /// Log lines not yet written.
    pub logs: Vec<LogEntry>,
}

impl Completion {
    /// The ids of `completions` not in `applied`: those whose fence did not
    /// hold, as [`TaskStore::complete`] reports them.
    pub fn rejected(completions: &[Completion], applied: &HashSet<Uuid>) -> Vec<Uuid> {
        completions
            .iter()
            .map(|c| c.id)
            .filter(|id| !applied.contains(id))
            .collect()
    }

    /// The end of a claimed task whose row the engine cannot read back
    /// (`reason`: what the decoder said, e.g. of its stored arguments): it
    /// fails at once, without running and without retries, alone — so
    /// that it never fails the claim of the tasks beside it — and its log
    /// says why, for an operator to fix or delete it.
    pub fn undecodable(id: Uuid, queue: String, execution: i32, reason: &str) -> Completion {
        let error = format!(
            "this task cannot be read back from the database, so it was failed without running: {reason}; \
             fix its row or delete it"
        );
        Completion {
            id,
            queue,
            execution,
            transition: Transition {
                state: TaskState::Failed,
                delay: None,
                error: Some(error.clone()),
                refund_attempt: false,
            },
            worst_level: Some(LogLevel::Error),
            logs: vec![LogEntry {
                task_id: id,
                execution,
                at: Utc::now(),
                level: LogLevel::Error,
                message: error,
            }],
        }
    }
}

/// What a heartbeat learned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Tasks this worker no longer holds (rescued, cancelled, deleted): stop
    /// running them, their results would be rejected anyway.
    pub lost: Vec<Uuid>,
    /// Tasks an operator asked to cancel.
    pub cancel_requested: Vec<Uuid>,
}

impl Heartbeat {
    /// What a renewal of the `held` executions learned, from the ones it
    /// renewed, each with whether an operator asked to cancel it: every
    /// other held execution was lost.
    pub fn from_renewed(
        held: &[(Uuid, i32)],
        renewed: impl IntoIterator<Item = (Uuid, bool)>,
    ) -> Heartbeat {
        let mut still_held = HashSet::with_capacity(held.len());
        let mut cancel_requested = Vec::new();
        for (id, cancel) in renewed {
            if cancel {
                cancel_requested.push(id);
            }
            still_held.insert(id);
        }
        Heartbeat {
            lost: held
                .iter()
                .map(|&(id, _)| id)
                .filter(|id| !still_held.contains(id))
                .collect(),
            cancel_requested,
        }
    }
}

/// What [`TaskStore::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelResult {
    /// It was waiting and is now cancelled.
    Cancelled,
    /// It is running: its worker was signalled and will stop it.
    Signalled,
}

/// Which tasks to list. Results come newest first; pass the last id seen as
/// `before` to get the next page. Every filter given must hold; the
/// default filters nothing (and lists nothing until `limit` is set).
///
/// Time ranges are half-open: `*_after` includes its instant, `*_before`
/// excludes it, so that adjacent ranges never share a task.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    /// Any of these states (all when empty).
    pub states: Vec<TaskState>,
    /// Any of these statuses, as [`Status::derive`] gives them on the
    /// database's clock at the time of the query (all when empty).
    pub statuses: Vec<Status>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only tasks created by this schedule.
    pub schedule: Option<String>,
    /// Only tasks working on an object of this kind.
    pub related_kind: Option<String>,
    /// Only tasks working on the object of this id (needs `related_kind`).
    pub related_id: Option<String>,
    /// Only tasks that work on no object.
    pub standalone: bool,
    /// Leave out the tasks whose status is [`Status::Successful`]
    /// (succeeded tasks that logged a warning or an error stay).
    pub exclude_successful: bool,
    /// Only tasks created at or after this.
    pub created_after: Option<DateTime<Utc>>,
    /// Only tasks created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// Only tasks that finished at or after this (unfinished tasks never match).
    pub finished_after: Option<DateTime<Utc>>,
    /// Only tasks that finished before this (unfinished tasks never match).
    pub finished_before: Option<DateTime<Utc>>,
    /// Only tasks older than this id (keyset pagination).
    pub before: Option<Uuid>,
    /// At most this many.
    pub limit: i64,
}

impl TaskFilter {
    /// True when nothing but the page (`before`, `limit`) is asked: the
    /// plain newest-first list, which engines serve from the primary key.
    pub fn filters_only_by_id(&self) -> bool {
        self.states.is_empty() && self.actor.is_none() && self.filters_only_by_state_actor_and_id()
    }

    /// The one state asked when nothing else but the page is: `tasks list
    /// --state S`, which engines serve from that state's own index.
    pub fn only_state(&self) -> Option<TaskState> {
        match self.states[..] {
            [state] if self.actor.is_none() && self.filters_only_by_state_actor_and_id() => {
                Some(state)
            }
            _ => None,
        }
    }

    /// The one state and the actor asked when nothing else but the page
    /// is: one actor's failed tasks, say, which engines may serve from the
    /// state's own index.
    pub fn only_state_and_actor(&self) -> Option<(TaskState, &str)> {
        match (&self.states[..], &self.actor) {
            ([state], Some(actor)) if self.filters_only_by_state_actor_and_id() => {
                Some((*state, actor.as_str()))
            }
            _ => None,
        }
    }

    /// True when nothing but states, the actor and the page are asked.
    fn filters_only_by_state_actor_and_id(&self) -> bool {
        let TaskFilter {
            states: _,
            statuses,
            actor: _,
            queue,
            schedule,
            related_kind,
            related_id,
            standalone,
            exclude_successful,
            created_after,
            created_before,
            finished_after,
            finished_before,
            before: _,
            limit: _,
        } = self;
        statuses.is_empty()
            && queue.is_none()
            && schedule.is_none()
            && related_kind.is_none()
            && related_id.is_none()
            && !standalone
            && !exclude_successful
            && created_after.is_none()
            && created_before.is_none()
            && finished_after.is_none()
            && finished_before.is_none()
    }

    /// Refuses a filter that cannot mean anything: an empty actor, queue
    /// or schedule name, a name holding a control character, an object id
    /// without its kind, an empty kind or id, standalone tasks of an object kind,
    /// a time range that ends before it starts, a time outside the years
    /// 1 to 9999, or a negative limit. Engines call it before listing.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |message: &str| Err(StoreError::InvalidInput(message.to_owned()));
        if self.limit < 0 {
            return invalid("a list limit cannot be negative");
        }
        for (what, name) in [
            ("actor", &self.actor),
            ("queue", &self.queue),
            ("schedule", &self.schedule),
        ] {
            if name.as_deref().is_some_and(str::is_empty) {
                return Err(StoreError::InvalidInput(format!(
                    "the {what} filter is empty: give a name, or leave the filter out"
                )));
            }
        }
        // No stored name holds a control character, and a NUL cannot even
        // be sent to PostgreSQL: refused alike on both engines.
        for (what, name) in [
            ("actor filter", &self.actor),
            ("queue filter", &self.queue),
            ("schedule filter", &self.schedule),
            ("related object kind", &self.related_kind),
            ("related object id", &self.related_id),
        ] {
            if let Some(name) = name {
                crate::task::check_printable(what, name).map_err(StoreError::InvalidInput)?;
            }
        }
        if self.related_id.is_some() && self.related_kind.is_none() {
            return invalid("a related object id needs its kind (e.g. user:42)");
        }
        if self
            .related_kind
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return invalid("the related object kind is empty");
        }
        if self
            .related_id
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return invalid("the related object id is empty");
        }
        if self.standalone && self.related_kind.is_some() {
            return invalid(
                "standalone tasks work on no object: ask for standalone tasks or for a related object, not both",
            );
        }
        for (what, after, before) in [
            ("created", self.created_after, self.created_before),
            ("finished", self.finished_after, self.finished_before),
        ] {
            for at in [after, before].into_iter().flatten() {
                if !(1..=9999).contains(&at.year()) {
                    return Err(StoreError::InvalidInput(format!(
                        "{what} time {} is outside the years 1 to 9999",
                        at.to_rfc3339()
                    )));
                }
            }
            if let (Some(after), Some(before)) = (after, before)
                && after >= before
            {
                return Err(StoreError::InvalidInput(format!(
                    "{what}-after ({}) must be earlier than {what}-before ({})",
                    after.to_rfc3339(),
                    before.to_rfc3339()
                )));
            }
        }
        Ok(())
    }
}

/// Which tasks a bulk deletion takes ([`TaskStore::count_matching`],
/// [`TaskStore::delete_matching`]): every filter given must hold.
///
/// Running tasks are never deleted: deleting one would not stop it, only
/// make its worker's result be thrown away. Cancel them first
/// ([`TaskStore::cancel`], [`TaskStore::cancel_running_in_queue`]); once cancelled
/// they are finished and can be deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSelection {
    /// Any of these states; when empty, every state but `running`.
    pub states: Vec<TaskState>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only tasks older than this, by the database's clock: a finished
    /// task's age counts from when it finished, a waiting (scheduled or
    /// queued) task's from when it was created. Running tasks are never
    /// selected for deletion, so they have no age here.
    pub older_than: Option<Duration>,
}

impl TaskSelection {
    /// The oldest an age filter may reach back: beyond it, times fall
    /// outside what the databases store.
    pub const MAX_AGE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// The selection in words, as a query string would give it:
    /// `state=queued,failed actor=mail queue=default older_than=7d`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.states.is_empty() {
            let states: Vec<&str> = self.states.iter().map(|s| s.as_str()).collect();
            parts.push(format!("state={}", states.join(",")));
        }
        if let Some(actor) = &self.actor {
            parts.push(format!("actor={actor}"));
        }
        if let Some(queue) = &self.queue {
            parts.push(format!("queue={queue}"));
        }
        if let Some(age) = self.older_than {
            parts.push(format!("older_than={}s", age.as_secs()));
        }
        parts.join(" ")
    }

    /// The states taken, each once, in life order: the given ones, or
    /// every state but `running` when none is given.
    pub fn effective_states(&self) -> Vec<TaskState> {
        TaskState::ALL
            .into_iter()
            .filter(|state| {
                if self.states.is_empty() {
                    *state != TaskState::Running
                } else {
                    self.states.contains(state)
                }
            })
            .collect()
    }

    /// The states a count walks: [`TaskSelection::effective_states`], or
    /// `None` when there are none (nothing to count).
    pub fn counted_states(&self) -> Option<Vec<TaskState>> {
        Some(self.effective_states()).filter(|states| !states.is_empty())
    }

    /// The states a deletion of up to `limit` tasks walks, after the checks
    /// of [`TaskSelection::check_deletable`]; `None` when there is nothing
    /// to delete (no state, or no room).
    pub fn deleted_states(&self, limit: i64) -> Result<Option<Vec<TaskState>>, StoreError> {
        self.check_deletable()?;
        Ok(self.counted_states().filter(|_| limit > 0))
    }

    /// Counts by state as [`TaskStore::count_matching`] answers them:
    /// states with none left out, in life order.
    pub fn tally(mut counts: Vec<(TaskState, i64)>) -> Vec<(TaskState, i64)> {
        counts.retain(|(_, n)| *n > 0);
        counts.sort_by_key(|(state, _)| *state);
        counts
    }

    /// True when no filter is given: the selection would take every task
    /// that is not running.
    pub fn is_unfiltered(&self) -> bool {
        self.states.is_empty()
            && self.actor.is_none()
            && self.queue.is_none()
            && self.older_than.is_none()
    }

    /// Refuses what no bulk deletion may do: take every task (no filter),
    /// take running tasks, or filter on an empty actor or queue name.
    /// Counting ([`TaskStore::count_matching`]) takes any selection.
    pub fn check_deletable(&self) -> Result<(), StoreError> {
        if self.is_unfiltered() {
            return Err(StoreError::InvalidInput(
                "a bulk deletion needs at least one filter (state, actor, queue or age); \
                 to empty a queue, flush it"
                    .into(),
            ));
        }
        if self.states.contains(&TaskState::Running) {
            return Err(StoreError::InvalidInput(
                "running tasks are never deleted (their workers would keep running them and \
                 only have their results thrown away): cancel them first, then delete them \
                 once they are cancelled"
                    .into(),
            ));
        }
        if self.actor.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(StoreError::InvalidInput("actor name is empty".into()));
        }
        if let Some(queue) = &self.queue {
            QueueSettings::check_name(queue)?;
        }
        if self
            .older_than
            .is_some_and(|age| age > TaskSelection::MAX_AGE)
        {
            return Err(StoreError::InvalidInput(
                "an age filter can be at most 100 years".into(),
            ));
        }
        Ok(())
    }
}

/// Refuses a purge of tasks that are not finished.
pub fn check_purgeable(state: TaskState) -> Result<(), StoreError> {
    if state.is_terminal() {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "only finished tasks are purged; {state} is not a finished state"
        )))
    }
}

/// Tasks: what workers and operators do to them.
///
/// Every call that moves a task out of `running` is fenced on
/// (state, lease owner, execution).
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts tasks in one round trip. Tasks whose unique key is held by an
    /// active task are not inserted. Invalid tasks reject the whole batch.
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<EnqueueResult>, StoreError>;

    /// Locks up to `claim.limit` due tasks, oldest and most urgent first,
    /// marks them running under a lease and returns them.
    async fn claim(&self, claim: &Claim) -> Result<Vec<TaskRow>, StoreError>;

    /// The labels that up to `limit` due tasks of each of `queues` (not
    /// paused) require, most urgent first; an empty list for a task that
    /// requires none. Reads, locks nothing, through the claim's own
    /// indexes: what a gateway asks once per pool to decide which idle
    /// agents to wake, instead of a claim per agent.
    async fn due_requirements(
        &self,
        queues: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, StoreError>;

    /// Renews the leases of the `(id, execution)` executions held by `owner`,
    /// writes `logs`, and reports which were lost or asked to cancel.
    async fn heartbeat(
        &self,
        owner: &str,
        held: &[(Uuid, i32)],
        lease: Duration,
        logs: &[LogEntry],
    ) -> Result<Heartbeat, StoreError>;

    /// Applies finished executions in one statement; returns the ids whose
    /// fence did not hold (their results were discarded, their logs kept).
    async fn complete(
        &self,
        owner: &str,
        completions: &[Completion],
    ) -> Result<Vec<Uuid>, StoreError>;

    /// [`TaskStore::complete`], then [`TaskStore::claim`] of up to `refill.limit`
    /// tasks, as one unit: the worker hands the slots of the tasks it just
    /// finished straight to new ones. Engines that can should do both in one
    /// round trip; this default makes two.
    async fn complete_and_claim(
        &self,
        owner: &str,
        completions: &[Completion],
        refill: &Claim,
    ) -> Result<(Vec<Uuid>, Vec<TaskRow>), StoreError> {
        let rejected = self.complete(owner, completions).await?;
        let claimed = self.claim(refill).await?;
        Ok((rejected, claimed))
    }

    /// Returns to the queue, due now, every task running under `owner`
    /// whose id is not in `tracked`: claims that committed although their
    /// reply never reached the worker (the connection broke after the
    /// commit). Their execution never started, so it does not count as an
    /// attempt; one an operator asked to cancel meanwhile is cancelled.
    /// Returns how many. The caller must make sure no claim of its own is in
    /// flight meanwhile.
    async fn release_untracked(&self, owner: &str, tracked: &[Uuid]) -> Result<u64, StoreError>;

    /// Returns up to `limit` running tasks whose lease expired to the queue
    /// (or fails them when their attempts are spent). Returns how many.
    async fn rescue_expired(&self, limit: i64) -> Result<u64, StoreError>;

    /// Marks up to `limit` scheduled tasks that have become due as queued.
    /// Claims do not depend on it: it keeps the stored state truthful.
    async fn promote_due(&self, limit: i64) -> Result<u64, StoreError>;

    /// One task.
    async fn task(&self, id: Uuid) -> Result<Option<TaskRow>, StoreError>;

    /// A task's log, oldest first, every execution.
    async fn logs(&self, id: Uuid) -> Result<Vec<LogEntry>, StoreError>;

    /// Tasks matching `filter`, newest first.
    async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>, StoreError>;

    /// Queues a finished task again with its attempts counted from zero
    /// (its execution numbers go on).
    async fn retry(&self, id: Uuid) -> Result<TaskRow, StoreError>;

    /// Cancels a waiting task, or signals a running one's worker.
    async fn cancel(&self, id: Uuid) -> Result<CancelResult, StoreError>;

    /// Deletes up to `limit` tasks in the terminal `state` that finished
    /// more than `older_than` ago, oldest first, with their logs; returns
    /// how many. Refuses a state that is not terminal.
    async fn purge_finished(
        &self,
        state: TaskState,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, StoreError>;

    /// How many tasks `selection` takes, by state in life order; states
    /// with none are left out. Takes any selection, running tasks too (a
    /// dry run of a flush counts them). With the same selection and no
    /// other writer, it is what [`TaskStore::delete_matching`] then deletes.
    async fn count_matching(
        &self,
        selection: &TaskSelection,
    ) -> Result<Vec<(TaskState, i64)>, StoreError>;

    /// Deletes the tasks of `ids` that are not running, with their logs,
    /// in one transaction; returns how many. Ids of tasks that do not
    /// exist, or run, are passed over.
    async fn delete_tasks(&self, ids: &[Uuid]) -> Result<u64, StoreError>;

    /// Deletes up to `limit` tasks that `selection` takes, with their
    /// logs, in one transaction; returns how many. Call it again until it
    /// deletes fewer than `limit`: each call is bounded, so that millions
    /// of tasks go without one giant transaction, and nothing is loaded
    /// into memory. Tasks another transaction holds at that moment (a
    /// claim in flight) are skipped, and a task that starts running is not
    /// deleted. Refuses what [`TaskSelection::check_deletable`] refuses.
    async fn delete_matching(
        &self,
        selection: &TaskSelection,
        limit: i64,
    ) -> Result<u64, StoreError>;

    /// Asks the workers of up to `limit` running tasks of `queue` that were
    /// not asked yet to cancel them, as [`TaskStore::cancel`] does for one;
    /// returns how many were asked. Call it again until it returns 0.
    async fn cancel_running_in_queue(&self, queue: &str, limit: i64) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_without_states_takes_every_state_but_running() {
        let all = TaskSelection {
            actor: Some("mail".into()),
            ..TaskSelection::default()
        };
        assert_eq!(
            all.effective_states(),
            vec![
                TaskState::Scheduled,
                TaskState::Queued,
                TaskState::Succeeded,
                TaskState::Failed,
                TaskState::Cancelled,
            ]
        );
        let some = TaskSelection {
            states: vec![TaskState::Failed, TaskState::Queued, TaskState::Failed],
            ..TaskSelection::default()
        };
        assert_eq!(
            some.effective_states(),
            vec![TaskState::Queued, TaskState::Failed]
        );
    }

    #[test]
    fn list_filters_that_mean_nothing_are_refused() {
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let refused = [
            TaskFilter {
                related_id: Some("42".into()),
                ..TaskFilter::default()
            },
            TaskFilter {
                related_kind: Some(" ".into()),
                ..TaskFilter::default()
            },
            TaskFilter {
                related_kind: Some("user".into()),
                related_id: Some(String::new()),
                ..TaskFilter::default()
            },
            TaskFilter {
                standalone: true,
                related_kind: Some("user".into()),
                ..TaskFilter::default()
            },
            TaskFilter {
                created_after: Some(now),
                created_before: Some(now - hour),
                ..TaskFilter::default()
            },
            TaskFilter {
                finished_after: Some(now),
                finished_before: Some(now),
                ..TaskFilter::default()
            },
            TaskFilter {
                limit: -1,
                ..TaskFilter::default()
            },
        ];
        for filter in refused {
            assert!(
                matches!(filter.validate(), Err(StoreError::InvalidInput(_))),
                "{filter:?}"
            );
        }
        let fine = TaskFilter {
            related_kind: Some("user".into()),
            related_id: Some("42".into()),
            created_after: Some(now - hour),
            created_before: Some(now),
            finished_after: Some(now - hour),
            exclude_successful: true,
            statuses: vec![Status::Warning],
            limit: 10,
            ..TaskFilter::default()
        };
        assert!(fine.validate().is_ok());
        assert!(!fine.filters_only_by_id());
        assert!(TaskFilter::default().validate().is_ok());
        assert!(
            TaskFilter {
                before: Some(Uuid::nil()),
                limit: 5,
                ..TaskFilter::default()
            }
            .filters_only_by_id()
        );
    }

    #[test]
    fn deletions_need_a_filter_and_never_take_running_tasks() {
        let refused = [
            TaskSelection::default(),
            TaskSelection {
                states: vec![TaskState::Queued, TaskState::Running],
                ..TaskSelection::default()
            },
            TaskSelection {
                actor: Some(" ".into()),
                ..TaskSelection::default()
            },
            TaskSelection {
                queue: Some(String::new()),
                ..TaskSelection::default()
            },
        ];
        for selection in refused {
            assert!(
                matches!(
                    selection.check_deletable(),
                    Err(StoreError::InvalidInput(_))
                ),
                "{selection:?}"
            );
        }
        let aged = TaskSelection {
            older_than: Some(Duration::from_secs(60)),
            ..TaskSelection::default()
        };
        assert!(aged.check_deletable().is_ok());
    }
}
