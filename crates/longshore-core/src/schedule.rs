//! Cron schedules: what one is, when it next runs, and what firing it did.
//!
//! A schedule lives in the database ([`Schedule`]). One node at a time, the
//! holder of the [`Leadership::SCHEDULER`](crate::Leadership::SCHEDULER)
//! role, looks for due schedules and fires each through
//! [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule), which applies the
//! overlap policy and enqueues the run in one transaction, fenced on the
//! due time it read: a second scheduler firing the same run finds the
//! fence moved and does nothing.
//!
//! Cron expressions are the standard five fields (minute, hour, day of
//! month, month, day of week) or the `@hourly`-style aliases, read by
//! [croner](https://docs.rs/croner); a sixth, leading field of seconds is
//! accepted too. Times are computed in the schedule's IANA time zone, so
//! `0 9 * * *` in `Europe/Paris` is nine o'clock there, summer and winter.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::task::{NewTask, Related};

/// The names of the built-in maintenance schedules, seeded by the
/// migrations and run by the maintenance leader itself.
pub mod builtin {
    /// Deletes finished tasks past their retention (default: every minute).
    pub const PURGE: &str = "longshore.purge";
    /// Returns tasks whose lease expired to the queue (default: every second).
    pub const RESCUE: &str = "longshore.rescue";
    /// Forgets workers not seen for a lease (default: every five seconds).
    pub const WORKERS: &str = "longshore.workers";
    /// Deletes expired agent tokens (default: daily at 03:00 UTC).
    pub const AGENT_TOKENS: &str = "longshore.agent_tokens";
    /// All of them, most urgent first (the order the leader runs them in).
    pub const ALL: [&str; 4] = [RESCUE, WORKERS, AGENT_TOKENS, PURGE];
}

/// What a due run does while the schedule's previous run is still active
/// (scheduled, queued or running).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The new run waits until the previous one finishes, then starts
    /// (runs due meanwhile collapse into it).
    #[default]
    Queue,
    /// The new run is dropped and counted as skipped.
    Skip,
    /// The previous run is cancelled and the new one starts.
    Replace,
}

impl Overlap {
    /// Every policy.
    pub const ALL: [Overlap; 3] = [Overlap::Queue, Overlap::Skip, Overlap::Replace];

    /// The stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Queue => "queue",
            Overlap::Skip => "skip",
            Overlap::Replace => "replace",
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Overlap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Overlap::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown overlap policy `{s}`: expected queue, skip or replace"))
    }
}

/// A parsed cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct CronSpec {
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl CronSpec {
    /// Parses `expr` for `time_zone` (an IANA name such as `UTC` or
    /// `Europe/Paris`); the error says which of the two is wrong and why.
    pub fn parse(expr: &str, time_zone: &str) -> Result<CronSpec, StoreError> {
        let zone: chrono_tz::Tz = time_zone.parse().map_err(|_| {
            StoreError::InvalidInput(format!(
                "unknown time zone `{time_zone}`: expected an IANA name such as UTC or Europe/Paris"
            ))
        })?;
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build();
        let cron = parser.parse(expr).map_err(|e| {
            StoreError::InvalidInput(format!(
                "invalid cron expression `{expr}`: {e} (expected five fields, minute hour day-of-month month day-of-week, or an alias such as @hourly)"
            ))
        })?;
        let spec = CronSpec { cron, zone };
        // A pattern that never matches (31 February) is as wrong as one
        // that does not parse.
        if spec.next_after(Utc::now()).is_none() {
            return Err(StoreError::InvalidInput(format!(
                "cron expression `{expr}` never comes due"
            )));
        }
        Ok(spec)
    }

    /// The first time strictly after `after` that the expression matches,
    /// or `None` if it never does again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

/// What a schedule is: everything its owner defines. The database adds
/// its state ([`Schedule`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDef {
    /// Unique across the cluster; what code and operators refer to it by.
    pub name: String,
    /// The actor each run calls.
    pub actor: String,
    /// The JSON arguments of each run.
    pub args: serde_json::Value,
    /// The queue runs go to.
    pub queue: String,
    /// Priority of each run (lower first).
    pub priority: i16,
    /// Attempts each run may have.
    pub max_attempts: i32,
    /// Time limit of each run in milliseconds (`None`: the actor's or the worker's).
    pub time_limit_ms: Option<i64>,
    /// The object runs work on.
    pub related: Option<Related>,
    /// Cron expression.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub time_zone: String,
    /// What a run does while the previous one is still active.
    pub overlap: Overlap,
}

impl ScheduleDef {
    /// The time zone of a schedule that names none.
    pub const DEFAULT_TIME_ZONE: &'static str = "UTC";
    /// The prefix of built-in schedules' names, which no other schedule may use.
    pub const BUILTIN_PREFIX: &'static str = "longshore.";

    /// A schedule `name` calling `actor` with `{}` on `cron`, in UTC, on the
    /// default queue, with the `queue` overlap policy.
    pub fn new(
        name: impl Into<String>,
        actor: impl Into<String>,
        cron: impl Into<String>,
    ) -> ScheduleDef {
        ScheduleDef {
            name: name.into(),
            actor: actor.into(),
            args: serde_json::json!({}),
            queue: NewTask::DEFAULT_QUEUE.to_owned(),
            priority: 0,
            max_attempts: NewTask::DEFAULT_MAX_ATTEMPTS,
            time_limit_ms: None,
            related: None,
            cron: cron.into(),
            time_zone: ScheduleDef::DEFAULT_TIME_ZONE.to_owned(),
            overlap: Overlap::Queue,
        }
    }

    /// Checks the definition; returns its parsed cron expression. The error
    /// names what is wrong.
    pub fn validate(&self) -> Result<CronSpec, StoreError> {
        if self.name.trim().is_empty() {
            return Err(StoreError::InvalidInput("schedule name is empty".into()));
        }
        crate::task::check_printable("schedule name", &self.name)
            .map_err(StoreError::InvalidInput)?;
        let spec = CronSpec::parse(&self.cron, &self.time_zone)?;
        self.task()
            .validate()
            .map_err(|e| StoreError::InvalidInput(format!("schedule {}: {e}", self.name)))?;
        Ok(spec)
    }

    /// A run of this schedule, as a task to insert now.
    pub fn task(&self) -> NewTask {
        let mut task = NewTask::new(self.actor.clone(), self.args.clone());
        task.queue = self.queue.clone();
        task.priority = self.priority;
        task.max_attempts = self.max_attempts;
        task.time_limit_ms = self.time_limit_ms;
        task.related = self.related.clone();
        task.schedule = Some(self.name.clone());
        task
    }

    /// True for the names of built-in schedules.
    pub fn is_builtin_name(name: &str) -> bool {
        name.starts_with(ScheduleDef::BUILTIN_PREFIX)
    }
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// What it is.
    #[serde(flatten)]
    pub def: ScheduleDef,
    /// A paused schedule does not run on its own; it can still be run by hand.
    pub paused: bool,
    /// One of Longshore's own maintenance schedules: its cron expression,
    /// time zone and pause can be changed, nothing else, and it cannot be
    /// deleted. The maintenance leader runs it itself (no task is enqueued).
    pub builtin: bool,
    /// When it next comes due (`None`: never again).
    pub next_run_at: Option<DateTime<Utc>>,
    /// When it last ran.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The task its last run created.
    pub last_task_id: Option<Uuid>,
    /// A run by hand waits for the previous run to finish (`queue` policy).
    pub run_requested: bool,
    /// Runs dropped by the `skip` policy.
    pub skipped_runs: i64,
    /// When a run was last dropped by the `skip` policy.
    pub last_skipped_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed (by its owner or by a run) at.
    pub modified_at: DateTime<Utc>,
}

/// How [`ScheduleStore::put_schedule`](crate::ScheduleStore::put_schedule) treats an
/// existing schedule of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Only create: an existing schedule is an error.
    Create,
    /// Only change an existing one: a missing schedule is an error.
    Update,
    /// Create or change (what code defining its schedules at start-up
    /// does, so that a redeploy does not duplicate them).
    Upsert,
}

impl PutMode {
    /// Whether `def` may be put this way over `existing` (the stored
    /// schedule of its name, read under the write's lock): refuses a
    /// create over an existing one, an update of a missing one, and what
    /// [`check_builtin_edit`] refuses.
    pub fn check(self, existing: Option<&Schedule>, def: &ScheduleDef) -> Result<(), StoreError> {
        match (self, existing) {
            (PutMode::Create, Some(_)) => return Err(StoreError::ScheduleExists(def.name.clone())),
            (PutMode::Update, None) => return Err(StoreError::ScheduleNotFound(def.name.clone())),
            _ => {}
        }
        check_builtin_edit(existing, def)
    }
}

/// Which run [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule) is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FireKind {
    /// The cron run due at this time, as read: nothing happens unless the
    /// schedule is still due at exactly that time and not paused.
    Due(DateTime<Utc>),
    /// A run asked for by hand, paused or not.
    Now,
    /// A run by hand that had to wait for the previous run (its request
    /// is still pending).
    Requested,
}

/// A request to fire a schedule.
#[derive(Clone, Debug)]
pub struct Fire {
    /// The schedule.
    pub name: String,
    /// Which run.
    pub kind: FireKind,
    /// When the schedule is due next, computed by the caller after now;
    /// stored when a [`FireKind::Due`] run goes ahead or is skipped.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The task to enqueue; `None` for a built-in schedule whose job the
    /// caller has just done itself.
    pub task: Option<NewTask>,
}

/// What [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum FireOutcome {
    /// A task was enqueued (or, for a built-in schedule, the run recorded).
    Enqueued {
        /// The new task (nil for a built-in schedule).
        task: Uuid,
        /// The previous run, cancelled by the `replace` policy.
        replaced: Option<Uuid>,
    },
    /// The previous run is still active and the policy is `queue`: the run
    /// happens once it finishes.
    Waiting {
        /// The previous run.
        behind: Uuid,
    },
    /// The previous run is still active and the policy is `skip`: this run
    /// was dropped and counted.
    Skipped {
        /// The previous run.
        behind: Uuid,
    },
    /// Nothing to do: another scheduler fired this run already, or the
    /// schedule was paused, changed or deleted meanwhile.
    Stale,
}

/// One write of a [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule),
/// in the order [`plan_fire`] lists them; an engine makes them all in the
/// transaction that read the schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum FireWrite {
    /// Mark a run by hand as pending (it waits for the previous run).
    RequestRun,
    /// Count a run dropped by the `skip` policy.
    Skip {
        /// It was the cron run: the next run moves to `Fire::next_run_at`.
        moves_next: bool,
        /// It was a pending run by hand: the request is dropped.
        clears_request: bool,
    },
    /// Cancel the previous run (the `replace` policy), found in this state.
    Cancel(Uuid, crate::task::TaskState),
    /// Insert the run's task, as an enqueue would.
    Enqueue(Box<NewTask>),
    /// Record the run: its task (none for a built-in job), the time, the
    /// request served; for the cron run, the next run at `Fire::next_run_at`.
    Ran(Option<Uuid>),
}

/// What firing `fire` on `schedule` (as read, locked) does, given its
/// previous run's task and state (if that task still exists): the outcome
/// and the writes that make it so. Shared by the engines, so that they
/// cannot differ in the overlap rules.
pub fn plan_fire(
    schedule: &Schedule,
    fire: &Fire,
    previous: Option<(Uuid, crate::task::TaskState)>,
) -> Result<(FireOutcome, Vec<FireWrite>), StoreError> {
    let stale = match fire.kind {
        FireKind::Due(at) => schedule.paused || schedule.next_run_at != Some(at),
        FireKind::Requested => !schedule.run_requested,
        FireKind::Now => false,
    };
    if stale {
        return Ok((FireOutcome::Stale, Vec::new()));
    }
    let now = fire.kind == FireKind::Now;
    let Some(task) = &fire.task else {
        if !schedule.builtin {
            return Err(StoreError::InvalidInput(format!(
                "schedule {} is not built in: its runs are tasks",
                schedule.def.name
            )));
        }
        // A built-in job runs inside the maintenance leader: by hand, it is
        // asked for; otherwise the leader has just done it.
        return Ok(if now {
            (
                FireOutcome::Waiting {
                    behind: Uuid::nil(),
                },
                vec![FireWrite::RequestRun],
            )
        } else {
            (
                FireOutcome::Enqueued {
                    task: Uuid::nil(),
                    replaced: None,
                },
                vec![FireWrite::Ran(None)],
            )
        });
    };
    if schedule.builtin {
        return Err(StoreError::InvalidInput(format!(
            "{} is a built-in schedule: the maintenance leader runs it itself",
            schedule.def.name
        )));
    }
    let mut writes = Vec::with_capacity(3);
    let mut replaced = None;
    if let Some((behind, state)) = previous.filter(|(_, state)| !state.is_terminal()) {
        match schedule.def.overlap {
            Overlap::Queue => {
                if now {
                    writes.push(FireWrite::RequestRun);
                }
                return Ok((FireOutcome::Waiting { behind }, writes));
            }
            Overlap::Skip => {
                writes.push(FireWrite::Skip {
                    moves_next: matches!(fire.kind, FireKind::Due(_)),
                    clears_request: fire.kind == FireKind::Requested,
                });
                return Ok((FireOutcome::Skipped { behind }, writes));
            }
            Overlap::Replace => {
                writes.push(FireWrite::Cancel(behind, state));
                replaced = Some(behind);
            }
        }
    }
    writes.push(FireWrite::Enqueue(Box::new(task.clone())));
    writes.push(FireWrite::Ran(Some(task.id)));
    Ok((
        FireOutcome::Enqueued {
            task: task.id,
            replaced,
        },
        writes,
    ))
}

/// Refuses what built-in schedules do not allow: deleting them, changing
/// anything but their cron expression, time zone or pause, or creating a
/// schedule under their prefix.
pub fn check_builtin_edit(old: Option<&Schedule>, new: &ScheduleDef) -> Result<(), StoreError> {
    match old {
        Some(old) if old.builtin => {
            let same_job = ScheduleDef {
                cron: new.cron.clone(),
                time_zone: new.time_zone.clone(),
                ..old.def.clone()
            };
            if &same_job != new {
                return Err(StoreError::InvalidInput(format!(
                    "{} is a built-in schedule: only its cron expression, time zone and pause can change",
                    old.def.name
                )));
            }
            Ok(())
        }
        _ if ScheduleDef::is_builtin_name(&new.name) => Err(StoreError::InvalidInput(format!(
            "schedule names starting with `{}` are reserved for built-in schedules",
            ScheduleDef::BUILTIN_PREFIX
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn five_fields_and_aliases() {
        let spec = CronSpec::parse("*/15 * * * *", "UTC").expect("valid");
        assert_eq!(
            spec.next_after(at(2026, 1, 1, 10, 7)),
            Some(at(2026, 1, 1, 10, 15))
        );
        let hourly = CronSpec::parse("@hourly", "UTC").expect("valid");
        assert_eq!(
            hourly.next_after(at(2026, 1, 1, 10, 0)),
            Some(at(2026, 1, 1, 11, 0))
        );
        let daily = CronSpec::parse("@daily", "UTC").expect("valid");
        assert_eq!(
            daily.next_after(at(2026, 1, 1, 10, 0)),
            Some(at(2026, 1, 2, 0, 0))
        );
    }

    #[test]
    fn times_follow_the_zone_across_summer_time() {
        let spec = CronSpec::parse("0 9 * * *", "Europe/Paris").expect("valid");
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(
            spec.next_after(at(2026, 1, 10, 0, 0)),
            Some(at(2026, 1, 10, 8, 0))
        );
        assert_eq!(
            spec.next_after(at(2026, 7, 10, 0, 0)),
            Some(at(2026, 7, 10, 7, 0))
        );
    }

    #[test]
    fn bad_input_says_which_part_is_wrong() {
        let err = CronSpec::parse("61 * * * *", "UTC")
            .expect_err("minute 61")
            .to_string();
        assert!(
            err.contains("invalid cron expression `61 * * * *`"),
            "{err}"
        );
        let err = CronSpec::parse("* * *", "UTC")
            .expect_err("3 fields")
            .to_string();
        assert!(err.contains("invalid cron expression"), "{err}");
        let err = CronSpec::parse("* * * * *", "Mars/Olympus")
            .expect_err("zone")
            .to_string();
        assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
        let err = CronSpec::parse("0 0 31 2 *", "UTC")
            .expect_err("never")
            .to_string();
        assert!(err.contains("never comes due"), "{err}");
    }

    #[test]
    fn a_definition_checks_its_run_too() {
        let mut def = ScheduleDef::new("nightly", "sync", "0 3 * * *");
        assert!(def.validate().is_ok());
        def.max_attempts = 0;
        let err = def.validate().expect_err("attempts").to_string();
        assert!(err.contains("max attempts"), "{err}");
        let def = ScheduleDef::new(" ", "sync", "0 3 * * *");
        assert!(def.validate().is_err());
        let task = ScheduleDef::new("nightly", "sync", "@daily").task();
        assert_eq!(task.schedule.as_deref(), Some("nightly"));
    }

    #[test]
    fn built_in_schedules_change_only_their_timing() {
        let now = Utc::now();
        let old = Schedule {
            def: ScheduleDef::new("longshore.purge", "longshore.purge", "* * * * *"),
            paused: false,
            builtin: true,
            next_run_at: None,
            last_run_at: None,
            last_task_id: None,
            run_requested: false,
            skipped_runs: 0,
            last_skipped_at: None,
            created_at: now,
            modified_at: now,
        };
        let mut new = old.def.clone();
        new.cron = "*/5 * * * *".into();
        new.time_zone = "Europe/Paris".into();
        assert!(check_builtin_edit(Some(&old), &new).is_ok());
        new.queue = "other".into();
        assert!(check_builtin_edit(Some(&old), &new).is_err());
        let squatter = ScheduleDef::new("longshore.mine", "noop", "@daily");
        assert!(check_builtin_edit(None, &squatter).is_err());
        assert!(check_builtin_edit(None, &ScheduleDef::new("mine", "noop", "@daily")).is_ok());
    }

    #[test]
    fn overlap_names_round_trip() {
        for policy in Overlap::ALL {
            assert_eq!(policy.as_str().parse::<Overlap>(), Ok(policy));
        }
        assert!("wait".parse::<Overlap>().is_err());
    }
}
