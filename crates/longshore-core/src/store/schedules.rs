//! Cron schedules: definitions, pause, and firing a run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::schedule::{Fire, FireOutcome, PutMode, Schedule, ScheduleDef};

/// Cron schedules.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Creates or changes a schedule (see [`PutMode`]). `next_run_at` is
    /// stored when the schedule is created or its timing (cron expression,
    /// time zone) changes; otherwise its next run stays. A paused schedule
    /// stays paused. The caller validates `def` (see
    /// [`ScheduleDef::validate`]); built-in schedules only take a new timing.
    async fn put_schedule(
        &self,
        def: &ScheduleDef,
        mode: PutMode,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<Schedule, StoreError>;

    /// One schedule.
    async fn schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError>;

    /// Every schedule, by name.
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Pauses or resumes a schedule. Resuming makes it due at once: it runs
    /// at the scheduler's next pass, then follows its cron expression.
    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, StoreError>;

    /// Deletes a schedule (not a built-in one). The tasks it created stay
    /// and keep its name.
    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError>;

    /// Up to `limit` schedules that are not built in and have a run to fire:
    /// not paused and due, or with a run by hand pending.
    async fn due_schedules(&self, limit: i64) -> Result<Vec<Schedule>, StoreError>;

    /// Fires one run of a schedule in one transaction: applies its overlap
    /// policy against its previous run, enqueues the task, records the run
    /// and the next due time. See [`FireKind`](crate::FireKind) for the fences.
    async fn fire_schedule(&self, fire: &Fire) -> Result<FireOutcome, StoreError>;
}
