//! Cron schedules as operators change them: create and edit with every
//! field checked before anything is written, run by hand, and the rules
//! for deleting one. What `longshore schedules add|edit|run|delete` and
//! `/api/v1/schedules` share.

use chrono::{DateTime, Utc};
use longshore_core::schedule::check_builtin_edit;
use longshore_core::{
    Fire, FireKind, FireOutcome, NewTask, Overlap, PutMode, Related, Schedule, ScheduleDef, Store,
    StoreError, TaskFilter, TaskRow,
};

use super::{ActorCatalog, OpError, Wording, check_actor};

/// How many runs a schedule's detail lists.
pub const RECENT_RUNS: i64 = 10;

/// What a create or an edit sets: every field parsed, nothing yet checked
/// against the others. On an edit, each field given replaces the stored
/// value; `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// The actor each run calls.
    pub actor: Option<String>,
    /// The cron expression.
    pub cron: Option<String>,
    /// The IANA time zone the expression is read in.
    pub time_zone: Option<String>,
    /// Arguments of each run: a JSON object.
    pub args: Option<serde_json::Value>,
    /// Queue each run goes to.
    pub queue: Option<String>,
    /// Priority of each run, lower first.
    pub priority: Option<i16>,
    /// Executions each run may have.
    pub max_attempts: Option<i32>,
    /// Time limit of each execution in milliseconds (`None`: the worker's).
    pub time_limit_ms: Option<Option<i64>>,
    /// The object each run works on (`None`: standalone).
    pub related: Option<Option<Related>>,
    /// Overlap policy.
    pub overlap: Option<Overlap>,
    /// Accept an actor the catalog does not know.
    pub any_actor: bool,
}

impl Changes {
    /// Whether a field other than the timing ones (cron, time zone) was
    /// given.
    fn touches_the_job(&self) -> bool {
        self.actor.is_some()
            || self.args.is_some()
            || self.queue.is_some()
            || self.priority.is_some()
            || self.max_attempts.is_some()
            || self.time_limit_ms.is_some()
            || self.related.is_some()
            || self.overlap.is_some()
    }

    fn is_empty(&self) -> bool {
        !self.touches_the_job() && self.cron.is_none() && self.time_zone.is_none()
    }

    fn apply(self, def: &mut ScheduleDef) {
        if let Some(actor) = self.actor {
            def.actor = actor;
        }
        if let Some(cron) = self.cron {
            def.cron = cron;
        }
        if let Some(zone) = self.time_zone {
            def.time_zone = zone;
        }
        if let Some(args) = self.args {
            def.args = args;
        }
        if let Some(queue) = self.queue {
            def.queue = queue;
        }
        if let Some(priority) = self.priority {
            def.priority = priority;
        }
        if let Some(max) = self.max_attempts {
            def.max_attempts = max;
        }
        if let Some(limit) = self.time_limit_ms {
            def.time_limit_ms = limit;
        }
        if let Some(related) = self.related {
            def.related = related;
        }
        if let Some(overlap) = self.overlap {
            def.overlap = overlap;
        }
    }
}

/// A definition's own checks; returns when it next comes due from now.
fn check(def: &ScheduleDef) -> Result<Option<DateTime<Utc>>, OpError> {
    let spec = def.validate().map_err(OpError::plain)?;
    Ok(spec.next_after(Utc::now()))
}

/// A new schedule `name` from `changes` (which must give its actor and
/// cron expression), every field checked; with when it next comes due.
pub fn new_schedule(
    name: &str,
    changes: Changes,
    default_max_attempts: i32,
    actors: &dyn ActorCatalog,
    wording: Wording,
) -> Result<(ScheduleDef, Option<DateTime<Utc>>), OpError> {
    let any_actor = changes.any_actor;
    let mut def = ScheduleDef::new(name, "", "");
    def.max_attempts = default_max_attempts;
    changes.apply(&mut def);
    let next = check(&def)?;
    check_builtin_edit(None, &def).map_err(OpError::plain)?;
    check_actor(actors, &def.actor, &def.args, any_actor, wording)?;
    Ok((def, next))
}

/// `old` with `changes` applied, every field checked; with when it next
/// comes due.
pub fn edited_schedule(
    old: &Schedule,
    changes: Changes,
    actors: &dyn ActorCatalog,
    wording: Wording,
) -> Result<(ScheduleDef, Option<DateTime<Utc>>), OpError> {
    check_not_empty(&changes, wording)?;
    let name = &old.def.name;
    if old.builtin && changes.touches_the_job() {
        return Err(OpError::Invalid(match wording {
            Wording::Cli => format!(
                "{name} is a built-in schedule: only --cron and --tz can change (and `schedules pause|resume` stop and start it)"
            ),
            Wording::Api => format!(
                "{name} is a built-in schedule: only cron and time_zone can change (and pause|resume stop and start it)"
            ),
        }));
    }
    let checks_actor = changes.actor.is_some() || changes.args.is_some();
    let any_actor = changes.any_actor;
    let mut def = old.def.clone();
    changes.apply(&mut def);
    let next = check(&def)?;
    if checks_actor {
        check_actor(actors, &def.actor, &def.args, any_actor, wording)?;
    }
    Ok((def, next))
}

/// Refuses an edit that changes nothing.
pub fn check_not_empty(changes: &Changes, wording: Wording) -> Result<(), OpError> {
    if changes.is_empty() {
        return Err(OpError::Invalid(match wording {
            Wording::Cli => "nothing to change: pass at least one of --actor, --cron, --tz, --args, --queue, --priority, \
                 --max-attempts, --time-limit, --related, --overlap"
                .to_owned(),
            Wording::Api => "nothing to change: give at least one of actor, cron, time_zone, args, queue, priority, \
                 max_attempts, time_limit_ms, related, overlap"
                .to_owned(),
        }));
    }
    Ok(())
}

/// Writes a new, checked schedule; paused, it is created with no next run
/// and then paused, so that it cannot come due in between.
pub async fn create(
    store: &dyn Store,
    def: &ScheduleDef,
    next: Option<DateTime<Utc>>,
    paused: bool,
) -> Result<Schedule, OpError> {
    if !paused {
        return store
            .put_schedule(def, PutMode::Create, next)
            .await
            .map_err(OpError::plain);
    }
    store
        .put_schedule(def, PutMode::Create, None)
        .await
        .map_err(OpError::plain)?;
    store
        .set_schedule_paused(&def.name, true)
        .await
        .map_err(|source| OpError::Partial {
            done: format!(
                "schedule {} was created but not paused: it has no next run until `longshore schedules resume {}`",
                def.name, def.name
            ),
            source,
        })
}

/// Writes an edited, checked schedule.
pub async fn update(
    store: &dyn Store,
    def: &ScheduleDef,
    next: Option<DateTime<Utc>>,
) -> Result<Schedule, OpError> {
    store
        .put_schedule(def, PutMode::Update, next)
        .await
        .map_err(OpError::plain)
}

/// Why a schedule may not be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteRefusal {
    /// A built-in one.
    Builtin(String),
    /// No confirmation.
    Unconfirmed(String),
}

/// Whether schedule `name` may be deleted, `confirmed` or not.
pub fn check_deletable(name: &str, confirmed: bool, wording: Wording) -> Result<(), DeleteRefusal> {
    if ScheduleDef::is_builtin_name(name) {
        return Err(DeleteRefusal::Builtin(match wording {
            Wording::Cli => format!(
                "{name} is a built-in schedule and cannot be deleted; pause it instead (`longshore schedules pause {name}`)"
            ),
            Wording::Api => format!(
                "{name} is a built-in schedule and cannot be deleted; pause it instead (POST /api/v1/schedules/{name}/pause)"
            ),
        }));
    }
    if !confirmed {
        return Err(DeleteRefusal::Unconfirmed(match wording {
            Wording::Cli => format!(
                "not deleting schedule {name} without --yes (the tasks it created stay; `longshore schedules pause {name}` stops it without deleting it)"
            ),
            Wording::Api => format!(
                "not deleting schedule {name} without ?confirm=true (the tasks it created stay; pausing stops it without deleting it)"
            ),
        }));
    }
    Ok(())
}

/// The schedule `name`, or the store's not-found error.
pub async fn load(store: &dyn Store, name: &str) -> Result<Schedule, StoreError> {
    store
        .schedule(name)
        .await?
        .ok_or_else(|| StoreError::ScheduleNotFound(name.to_owned()))
}

/// Runs schedule `name` now, paused or not, under its overlap policy;
/// with whether it is built in.
pub async fn fire_now(store: &dyn Store, name: &str) -> Result<(bool, FireOutcome), StoreError> {
    let schedule = load(store, name).await?;
    // A built-in job is the maintenance leader's to run; a user schedule's
    // run is a task like any other.
    let task: Option<NewTask> = (!schedule.builtin).then(|| schedule.def.task());
    let outcome = store
        .fire_schedule(&Fire {
            name: name.to_owned(),
            kind: FireKind::Now,
            next_run_at: None,
            task,
        })
        .await?;
    Ok((schedule.builtin, outcome))
}

/// The most recent runs of schedule `name`, newest first.
pub async fn recent_runs(store: &dyn Store, name: &str) -> Result<Vec<TaskRow>, StoreError> {
    store
        .list(&TaskFilter {
            schedule: Some(name.to_owned()),
            limit: RECENT_RUNS,
            ..TaskFilter::default()
        })
        .await
}
