//! The SQL of a bulk selection ([`TaskSelection`]): what
//! [`TaskStore::count_matching`] and [`TaskStore::delete_matching`] run,
//! written once for both engines, which differ only in their
//! [`Dialect`]. Each state the selection takes is one arm of the statement,
//! walking that state's own index, so that a count or a deletion never
//! walks the whole table.
//!
//! [`TaskStore::count_matching`]: crate::TaskStore::count_matching
//! [`TaskStore::delete_matching`]: crate::TaskStore::delete_matching

use crate::store::TaskSelection;
use crate::task::TaskState;

/// How an engine writes what its SQL says differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// `$1` parameters; an age as milliseconds before `now()`; rows that
    /// another transaction has locked are skipped.
    Postgres,
    /// `?1` parameters; an age as a cutoff in microseconds, bound by the
    /// caller; one writer at a time, so no row locks.
    Sqlite,
}

impl Dialect {
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// `column` older than the age in parameter `param`.
    fn older(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("{column} < now() - {param} * interval '1 millisecond'"),
            Dialect::Sqlite => format!("{column} < {param}"),
        }
    }
}

/// A selection's statements, for the states it takes. Parameters: the
/// actor, the queue and the age, those the selection has, in that order
/// (after the limit, for a deletion).
#[derive(Clone, Debug)]
pub struct SelectionSql<'a> {
    states: &'a [TaskState],
    actor: bool,
    queue: bool,
    older_than: bool,
    dialect: Dialect,
}

impl TaskSelection {
    /// The statements that count or delete what this selection takes of
    /// `states` (see [`TaskSelection::counted_states`] and
    /// [`TaskSelection::deleted_states`]), in `dialect`.
    pub fn sql<'a>(&self, states: &'a [TaskState], dialect: Dialect) -> SelectionSql<'a> {
        SelectionSql {
            states,
            actor: self.actor.is_some(),
            queue: self.queue.is_some(),
            older_than: self.older_than.is_some(),
            dialect,
        }
    }
}

impl SelectionSql<'_> {
    /// The conditions on one state's tasks, parameters numbered from
    /// `first`, and the order of the index that walks them:
    ///
    /// - `scheduled`: `longshore_tasks_due` (queue, run_at) or
    ///   `longshore_tasks_scheduled` (run_at);
    /// - `queued`: `longshore_tasks_queued` (queue, priority, run_at, id),
    ///   a range of it with a queue, all of it without;
    /// - `running` (counted only): `longshore_tasks_lease`;
    /// - finished states: `longshore_tasks_finished` (state, finished_at),
    ///   a range of it when an age is given.
    ///
    /// The actor (no index of its own) is checked on the rows each index
    /// yields. A finished task's age counts from `finished_at`, a waiting
    /// one's from `created_at`, a running one's from `started_at`.
    fn arm(&self, state: TaskState, first: usize) -> (String, &'static str) {
        let mut conditions = vec![format!("state = '{}'", state.as_str())];
        if state.is_terminal() {
            // The index's own condition, word for word, so that the
            // planner (SQLite's especially) takes it.
            conditions.push("state IN ('succeeded', 'failed', 'cancelled')".to_owned());
        }
        let mut n = first;
        if self.actor {
            conditions.push(format!("actor = {}", self.dialect.param(n)));
            n += 1;
        }
        if self.queue {
            conditions.push(format!("queue = {}", self.dialect.param(n)));
            n += 1;
        }
        if self.older_than {
            let since = match state {
                TaskState::Scheduled | TaskState::Queued => "created_at",
                TaskState::Running => "started_at",
                _ => "finished_at",
            };
            conditions.push(self.dialect.older(since, &self.dialect.param(n)));
        }
        let order = match state {
            TaskState::Scheduled => "run_at",
            TaskState::Queued => "queue, priority, run_at, id",
            TaskState::Running => "lease_expires_at",
            _ => "finished_at",
        };
        (conditions.join(" AND "), order)
    }

    /// The selection's tasks counted by state, one row (`state`, `n`) per
    /// state, zero included, each count through its state's index.
    /// Filters from the first parameter.
    pub fn count(&self) -> String {
        self.states
            .iter()
            .map(|state| {
                let (conditions, _) = self.arm(*state, 1);
                format!(
                    "SELECT '{}' AS state, count(*) AS n FROM longshore_tasks WHERE {conditions}",
                    state.as_str()
                )
            })
            .collect::<Vec<_>>()
            .join("\nUNION ALL\n")
    }

    /// Deletes up to the first parameter's number of the selection's
    /// tasks, state by state in the order given, each state's walked in its
    /// index's order; their logs go with them (`ON DELETE CASCADE`,
    /// `longshore_task_logs_task`). Filters from the second parameter. On
    /// PostgreSQL, rows another transaction has locked (a claim in flight)
    /// are skipped, and a row that changed state before it was locked is
    /// checked again and left alone.
    pub fn delete(&self) -> String {
        let limit = self.dialect.param(1);
        let arms: Vec<String> = self
            .states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let (conditions, order) = self.arm(*state, 2);
                match self.dialect {
                    Dialect::Postgres => format!(
                        "SELECT * FROM (SELECT id FROM longshore_tasks WHERE {conditions}
                      ORDER BY {order} LIMIT {limit} FOR UPDATE SKIP LOCKED) AS s{i}"
                    ),
                    Dialect::Sqlite => format!(
                        "SELECT id FROM (SELECT id FROM longshore_tasks WHERE {conditions}
                      ORDER BY {order} LIMIT {limit})"
                    ),
                }
            })
            .collect();
        match self.dialect {
            Dialect::Postgres => format!(
                "DELETE FROM longshore_tasks WHERE id IN (
    SELECT id FROM (
        {}
    ) AS picked
    LIMIT {limit}
)",
                arms.join("\n        UNION ALL\n        ")
            ),
            Dialect::Sqlite => format!(
                "DELETE FROM longshore_tasks WHERE id IN (
    {}
    LIMIT {limit}
)",
                arms.join("\n    UNION ALL\n    ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_an_arm_with_the_filters_numbered_in_the_dialect() {
        let selection = TaskSelection {
            states: vec![TaskState::Queued, TaskState::Failed],
            actor: Some("mail".into()),
            queue: None,
            older_than: Some(std::time::Duration::from_secs(60)),
        };
        let states = selection.effective_states();
        let pg = selection.sql(&states, Dialect::Postgres);
        let count = pg.count();
        assert!(count.contains("state = 'queued' AND actor = $1 AND created_at < now() - $2"));
        assert!(count.contains("state = 'failed' AND state IN ('succeeded', 'failed', 'cancelled') AND actor = $1 AND finished_at < now() - $2"));
        let delete = pg.delete();
        assert!(delete.contains("actor = $2 AND created_at < now() - $3"));
        assert!(delete.contains("LIMIT $1 FOR UPDATE SKIP LOCKED"));
        let lite = selection.sql(&states, Dialect::Sqlite).delete();
        assert!(lite.contains("actor = ?2 AND created_at < ?3"));
        assert!(!lite.contains("FOR UPDATE"));
    }
}
