//! The task list's filters: each one, and any mix of them, selects exactly
//! the tasks it names, on every engine; paging through a filtered list
//! with `before` returns each matching task once; filters that cannot mean
//! anything are refused.
//!
//! Every test starts from the same known mix of tasks ([`mix`]): every
//! status, some tasks of related objects and some standalone, two actors,
//! and creation and finish times set to known instants.

#[macro_use]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{TestDb, task};
use longshore::core::{Claim, Completion, TaskFilter, Transition};
use longshore::{LogLevel, Related, Status, StoreError, TaskState};
use uuid::Uuid;

/// The queue whose tasks the mix claims and finishes.
const WORK: &str = "work";
/// The queue whose tasks the mix claims and leaves running.
const HOLD: &str = "hold";

/// How a task of the mix ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Due in an hour.
    Later,
    /// Left queued.
    Queued,
    /// Back to `scheduled` after an execution, due at once: scheduled,
    /// yet its status is "waiting to run".
    DueAgain,
    /// Held by a worker that never finishes it.
    Running,
    /// Succeeded, its execution's worst log line of this level (if any).
    Succeeded(Option<LogLevel>),
    /// Failed.
    Failed,
    /// Cancelled while queued.
    Cancelled,
}

/// One task of the mix, as planned.
struct Planned {
    name: &'static str,
    actor: &'static str,
    related: Option<(&'static str, &'static str)>,
    end: End,
}

/// The mix, in creation order: task `i` is created at `t0 + i hours` and,
/// when it finishes, finishes at `t0 + 10 days + i hours`.
const PLAN: [Planned; 11] = [
    Planned {
        name: "later",
        actor: "mail",
        related: Some(("user", "1")),
        end: End::Later,
    },
    Planned {
        name: "queued",
        actor: "mail",
        related: Some(("user", "2")),
        end: End::Queued,
    },
    Planned {
        name: "due_again",
        actor: "report",
        related: None,
        end: End::DueAgain,
    },
    Planned {
        name: "running",
        actor: "report",
        related: None,
        end: End::Running,
    },
    Planned {
        name: "ok",
        actor: "mail",
        related: Some(("cert", "a")),
        end: End::Succeeded(None),
    },
    Planned {
        name: "ok_info",
        actor: "report",
        related: None,
        end: End::Succeeded(Some(LogLevel::Info)),
    },
    Planned {
        name: "warned",
        actor: "mail",
        related: Some(("user", "1")),
        end: End::Succeeded(Some(LogLevel::Warning)),
    },
    Planned {
        name: "logged_error",
        actor: "report",
        related: None,
        end: End::Succeeded(Some(LogLevel::Error)),
    },
    Planned {
        name: "failed",
        actor: "mail",
        related: Some(("cert", "b:with:colons")),
        end: End::Failed,
    },
    Planned {
        name: "cancelled",
        actor: "report",
        related: None,
        end: End::Cancelled,
    },
    Planned {
        name: "ok_late",
        actor: "report",
        related: Some(("user", "3")),
        end: End::Succeeded(None),
    },
];

/// The mix as stored.
struct Mix {
    /// Each task's id by its name in [`PLAN`].
    ids: HashMap<&'static str, Uuid>,
    /// Task `i` was created at `t0 + i hours`.
    t0: DateTime<Utc>,
}

impl Mix {
    fn id(&self, name: &str) -> Uuid {
        self.ids[name]
    }

    /// The ids of the named tasks.
    fn set(&self, names: &[&str]) -> BTreeSet<Uuid> {
        names.iter().map(|name| self.id(name)).collect()
    }

    /// The ids of the planned tasks that `keep` accepts.
    fn where_(&self, keep: impl Fn(&Planned) -> bool) -> BTreeSet<Uuid> {
        PLAN.iter()
            .filter(|p| keep(p))
            .map(|p| self.id(p.name))
            .collect()
    }

    fn hours(&self, n: i64) -> DateTime<Utc> {
        self.t0 + chrono::Duration::hours(n)
    }

    fn finished_hours(&self, n: i64) -> DateTime<Utc> {
        self.t0 + chrono::Duration::days(10) + chrono::Duration::hours(n)
    }
}

/// Stores [`PLAN`]: enqueues every task, claims those that must run, ends
/// each as planned, then sets its creation and finish times.
async fn mix(db: &TestDb) -> Mix {
    let now = Utc::now();
    // Whole seconds, so that bounds compare exactly on every engine.
    let t0 =
        DateTime::from_timestamp(now.timestamp(), 0).expect("a time") - chrono::Duration::days(30);
    let mut ids = HashMap::new();
    for planned in &PLAN {
        let mut new = task(planned.actor);
        new.related = planned.related.map(|(kind, id)| Related {
            kind: kind.into(),
            id: id.into(),
        });
        match planned.end {
            End::Later => new.run_at = Some(now + chrono::Duration::hours(1)),
            End::Running => new.queue = HOLD.into(),
            End::DueAgain | End::Succeeded(_) | End::Failed => new.queue = WORK.into(),
            End::Queued | End::Cancelled => {}
        }
        ids.insert(planned.name, db.enqueue_one(new).await);
    }
    let claim = |queue: &str| Claim {
        owner: "filters-test".into(),
        queues: vec![queue.into()],
        limit: 100,
        lease: Duration::from_secs(3600),
        capped: false,
        pool: None,
    };
    let held = db.store.claim(&claim(HOLD)).await.expect("claim");
    assert_eq!(held.len(), 1);
    let claimed = db.store.claim(&claim(WORK)).await.expect("claim");
    let completions: Vec<Completion> = claimed
        .iter()
        .map(|row| {
            let planned = PLAN
                .iter()
                .find(|p| ids[p.name] == row.id)
                .expect("a planned task");
            let (state, delay, worst_level) = match planned.end {
                End::DueAgain => (TaskState::Scheduled, Some(Duration::ZERO), None),
                End::Succeeded(level) => (TaskState::Succeeded, None, level),
                End::Failed => (TaskState::Failed, None, Some(LogLevel::Error)),
                other => panic!("{other:?} is not claimed from {WORK}"),
            };
            Completion {
                id: row.id,
                queue: WORK.into(),
                execution: row.execution,
                transition: Transition {
                    state,
                    delay,
                    error: (state == TaskState::Failed).then(|| "failing on purpose".into()),
                    refund_attempt: false,
                },
                worst_level,
                logs: Vec::new(),
            }
        })
        .collect();
    assert_eq!(completions.len(), 7);
    let rejected = db
        .store
        .complete("filters-test", &completions)
        .await
        .expect("complete");
    assert!(rejected.is_empty(), "{rejected:?}");
    db.store.cancel(ids["cancelled"]).await.expect("cancel");
    let mix = Mix { ids, t0 };
    for (i, planned) in PLAN.iter().enumerate() {
        let i = i64::try_from(i).expect("a small index");
        db.backdate_created(mix.id(planned.name), mix.hours(i))
            .await;
        if matches!(
            planned.end,
            End::Succeeded(_) | End::Failed | End::Cancelled
        ) {
            db.backdate_finished(mix.id(planned.name), mix.finished_hours(i))
                .await;
        }
    }
    mix
}

/// The ids `filter` lists (up to 1000), checked to come newest first.
async fn listed(db: &TestDb, filter: TaskFilter) -> BTreeSet<Uuid> {
    let rows = db
        .store
        .list(&TaskFilter {
            limit: 1000,
            ..filter
        })
        .await
        .expect("list");
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "not newest first");
    let set: BTreeSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "a task listed twice");
    set
}

/// Every page of `filter`, `page` tasks at a time, following `before`.
async fn paged(db: &TestDb, filter: TaskFilter, page: i64) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let rows = db
            .store
            .list(&TaskFilter {
                before,
                limit: page,
                ..filter.clone()
            })
            .await
            .expect("list a page");
        seen.extend(rows.iter().map(|row| row.id));
        if i64::try_from(rows.len()).expect("a page") < page {
            return seen;
        }
        before = rows.last().map(|row| row.id);
    }
}

fn related(kind: &str, id: Option<&str>) -> TaskFilter {
    TaskFilter {
        related_kind: Some(kind.into()),
        related_id: id.map(str::to_owned),
        ..TaskFilter::default()
    }
}

fn statuses(statuses: &[Status]) -> TaskFilter {
    TaskFilter {
        statuses: statuses.to_vec(),
        ..TaskFilter::default()
    }
}

conformance! {
    #[tokio::test]
    async fn each_status_selects_the_tasks_showing_it(db) {
        let mix = mix(&db).await;
        let expected = [
            (Status::Scheduled, vec!["later"]),
            (Status::WaitingToRun, vec!["queued", "due_again"]),
            (Status::Running, vec!["running"]),
            (Status::Successful, vec!["ok", "ok_info", "ok_late"]),
            (Status::Warning, vec!["warned"]),
            (Status::Error, vec!["logged_error", "failed"]),
            (Status::Cancelled, vec!["cancelled"]),
        ];
        // The mix is what it claims to be: the rows' own status agrees.
        assert_eq!(db.task(mix.id("due_again")).await.state, TaskState::Scheduled);
        for (status, names) in &expected {
            for name in names {
                assert_eq!(db.task(mix.id(name)).await.status(), *status, "{name}");
            }
            assert_eq!(listed(&db, statuses(&[*status])).await, mix.set(names), "{status:?}");
        }
        assert_eq!(
            listed(&db, statuses(&[Status::Warning, Status::Error])).await,
            mix.set(&["warned", "logged_error", "failed"])
        );
        assert_eq!(listed(&db, statuses(&[])).await.len(), PLAN.len());
        // A state and a status both hold.
        assert_eq!(
            listed(&db, TaskFilter {
                states: vec![TaskState::Succeeded],
                statuses: vec![Status::Error],
                ..TaskFilter::default()
            }).await,
            mix.set(&["logged_error"])
        );
    }

    #[tokio::test]
    async fn exclude_successful_keeps_everything_but_clean_successes(db) {
        let mix = mix(&db).await;
        let expected = mix.where_(|p| !matches!(p.end, End::Succeeded(None | Some(LogLevel::Info))));
        assert_eq!(expected.len(), PLAN.len() - 3);
        let filter = TaskFilter { exclude_successful: true, ..TaskFilter::default() };
        assert_eq!(listed(&db, filter.clone()).await, expected);
        // Succeeded tasks that logged a warning or an error stay.
        assert_eq!(
            listed(&db, TaskFilter { states: vec![TaskState::Succeeded], ..filter }).await,
            mix.set(&["warned", "logged_error"])
        );
    }

    #[tokio::test]
    async fn related_objects_and_standalone_tasks(db) {
        let mix = mix(&db).await;
        assert_eq!(listed(&db, related("user", None)).await, mix.set(&["later", "queued", "warned", "ok_late"]));
        assert_eq!(listed(&db, related("user", Some("1"))).await, mix.set(&["later", "warned"]));
        assert_eq!(listed(&db, related("cert", Some("b:with:colons"))).await, mix.set(&["failed"]));
        assert!(listed(&db, related("user", Some("404"))).await.is_empty());
        assert!(listed(&db, related("nobody", None)).await.is_empty());
        // Kinds and ids match exactly, case included.
        assert!(listed(&db, related("User", None)).await.is_empty());
        let standalone = TaskFilter { standalone: true, ..TaskFilter::default() };
        assert_eq!(listed(&db, standalone).await, mix.where_(|p| p.related.is_none()));
    }

    #[tokio::test]
    async fn creation_and_finish_ranges_include_their_start_and_exclude_their_end(db) {
        let mix = mix(&db).await;
        let created = |after: Option<i64>, before: Option<i64>| TaskFilter {
            created_after: after.map(|h| mix.hours(h)),
            created_before: before.map(|h| mix.hours(h)),
            ..TaskFilter::default()
        };
        assert_eq!(listed(&db, created(Some(3), Some(6))).await, mix.set(&["running", "ok", "ok_info"]));
        assert_eq!(listed(&db, created(Some(9), None)).await, mix.set(&["cancelled", "ok_late"]));
        assert_eq!(listed(&db, created(None, Some(2))).await, mix.set(&["later", "queued"]));
        assert_eq!(listed(&db, created(Some(-1), Some(100))).await.len(), PLAN.len());
        let finished = |after: Option<i64>, before: Option<i64>| TaskFilter {
            finished_after: after.map(|h| mix.finished_hours(h)),
            finished_before: before.map(|h| mix.finished_hours(h)),
            ..TaskFilter::default()
        };
        // Unfinished tasks never match a finish range, however wide.
        let terminal = mix.set(&["ok", "ok_info", "warned", "logged_error", "failed", "cancelled", "ok_late"]);
        assert_eq!(listed(&db, finished(Some(-1000), None)).await, terminal);
        assert_eq!(listed(&db, finished(None, Some(1000))).await, terminal);
        assert_eq!(listed(&db, finished(Some(6), Some(9))).await, mix.set(&["warned", "logged_error", "failed"]));
        assert_eq!(listed(&db, finished(Some(9), None)).await, mix.set(&["cancelled", "ok_late"]));
    }

    #[tokio::test]
    async fn filters_combine_and_every_one_must_hold(db) {
        let mix = mix(&db).await;
        assert_eq!(
            listed(&db, TaskFilter {
                actor: Some("mail".into()),
                exclude_successful: true,
                ..related("user", None)
            }).await,
            mix.set(&["later", "queued", "warned"])
        );
        assert_eq!(
            listed(&db, TaskFilter {
                standalone: true,
                statuses: vec![Status::Error, Status::Cancelled, Status::Running],
                created_after: Some(mix.hours(4)),
                ..TaskFilter::default()
            }).await,
            mix.set(&["logged_error", "cancelled"])
        );
        assert_eq!(
            listed(&db, TaskFilter {
                queue: Some(WORK.into()),
                finished_after: Some(mix.finished_hours(5)),
                finished_before: Some(mix.finished_hours(8)),
                statuses: vec![Status::Warning, Status::Error],
                ..TaskFilter::default()
            }).await,
            mix.set(&["warned", "logged_error"])
        );
        assert_eq!(
            listed(&db, TaskFilter {
                states: vec![TaskState::Succeeded],
                created_before: Some(mix.hours(7)),
                ..related("user", Some("1"))
            }).await,
            mix.set(&["warned"])
        );
        // Every filter at once, each narrowing to the one task.
        assert_eq!(
            listed(&db, TaskFilter {
                states: vec![TaskState::Failed],
                statuses: vec![Status::Error],
                actor: Some("mail".into()),
                queue: Some(WORK.into()),
                exclude_successful: true,
                created_after: Some(mix.hours(8)),
                created_before: Some(mix.hours(9)),
                finished_after: Some(mix.finished_hours(8)),
                finished_before: Some(mix.finished_hours(9)),
                ..related("cert", Some("b:with:colons"))
            }).await,
            mix.set(&["failed"])
        );
        // A filter that rules the rest out.
        assert!(listed(&db, TaskFilter {
            statuses: vec![Status::Successful],
            exclude_successful: true,
            ..TaskFilter::default()
        }).await.is_empty());
    }

    #[tokio::test]
    async fn paging_a_filtered_list_returns_each_match_once(db) {
        let mix = mix(&db).await;
        let filters = [
            TaskFilter { exclude_successful: true, ..TaskFilter::default() },
            TaskFilter { standalone: true, ..TaskFilter::default() },
            statuses(&[Status::Successful, Status::Error, Status::WaitingToRun]),
            related("user", None),
            related("user", Some("1")),
            TaskFilter { created_after: Some(mix.hours(2)), finished_before: Some(mix.finished_hours(100)), ..TaskFilter::default() },
            TaskFilter::default(),
        ];
        for filter in filters {
            let all = listed(&db, filter.clone()).await;
            assert!(!all.is_empty(), "{filter:?}");
            for page in [1, 2, 3] {
                let seen = paged(&db, filter.clone(), page).await;
                assert!(seen.windows(2).all(|w| w[0] > w[1]), "{filter:?} by {page}: not newest first");
                assert_eq!(seen.len(), all.len(), "{filter:?} by {page}");
                assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all, "{filter:?} by {page}");
            }
        }
    }

    #[tokio::test]
    async fn one_state_lists_exactly_its_tasks_page_by_page(db) {
        let mix = mix(&db).await;
        // Each task's state and actor, as stored.
        let mut stored = Vec::new();
        for id in mix.ids.values() {
            let row = db.task(*id).await;
            stored.push((row.id, row.state, row.actor));
        }
        let mut states_seen = BTreeSet::new();
        for state in TaskState::ALL {
            let expected: BTreeSet<Uuid> =
                stored.iter().filter(|(_, s, _)| *s == state).map(|(id, _, _)| *id).collect();
            if !expected.is_empty() {
                states_seen.insert(state.as_str());
            }
            let alone = TaskFilter { states: vec![state], ..TaskFilter::default() };
            assert_eq!(listed(&db, alone.clone()).await, expected, "{state}");
            for page in [1, 2, 3] {
                let seen = paged(&db, alone.clone(), page).await;
                assert_eq!(seen.len(), expected.len(), "{state} by {page}");
                assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected, "{state} by {page}");
            }
            // With an actor: each actor's, one who has none in the state,
            // and one who has no task at all (the counts answer those).
            for actor in ["mail", "report", "nobody"] {
                let with_actor = TaskFilter { actor: Some(actor.into()), ..alone.clone() };
                let expected: BTreeSet<Uuid> = stored
                    .iter()
                    .filter(|(_, s, a)| *s == state && a == actor)
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(listed(&db, with_actor.clone()).await, expected, "{state} of {actor}");
                let seen = paged(&db, with_actor, 1).await;
                assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected, "{state} of {actor} by 1");
            }
            // With a queue none of whose tasks is in the state.
            let elsewhere = TaskFilter { queue: Some("elsewhere".into()), ..alone.clone() };
            assert!(listed(&db, elsewhere).await.is_empty(), "{state} of queue elsewhere");
        }
        // The mix holds tasks in most states, so the paths above ran.
        assert!(states_seen.len() >= 4, "{states_seen:?}");
    }

    #[tokio::test]
    async fn an_actor_with_few_old_tasks_in_a_big_state_is_listed_whole(db) {
        // 1,300 cancelled tasks: the 3 oldest of actor `rare`, behind more
        // than a thousand newer ones of actor `common`.
        let mut ids = Vec::new();
        for i in 0..1300 {
            let mut new = task(if i < 3 { "rare" } else { "common" });
            new.run_at = Some(Utc::now() + chrono::Duration::hours(1));
            ids.push(db.enqueue_one(new).await);
        }
        for id in &ids {
            db.store.cancel(*id).await.expect("cancel");
        }
        let of = |actor: &str| TaskFilter {
            states: vec![TaskState::Cancelled],
            actor: Some(actor.into()),
            ..TaskFilter::default()
        };
        let rare: BTreeSet<Uuid> = ids[..3].iter().copied().collect();
        assert_eq!(listed(&db, of("rare")).await, rare);
        let by_two = paged(&db, of("rare"), 2).await;
        assert_eq!(by_two, rare.iter().rev().copied().collect::<Vec<_>>());
        let newest = db.store.list(&TaskFilter { limit: 50, ..of("common") }).await.expect("list");
        let mut common = ids[3..].to_vec();
        common.sort_unstable_by(|a, b| b.cmp(a));
        let expected: Vec<Uuid> = common.into_iter().take(50).collect();
        assert_eq!(newest.iter().map(|t| t.id).collect::<Vec<_>>(), expected);
    }

    #[tokio::test]
    async fn filters_that_mean_nothing_are_refused(db) {
        mix(&db).await;
        let now = Utc::now();
        let refused = [
            TaskFilter { related_id: Some("1".into()), ..TaskFilter::default() },
            related("", None),
            related("user", Some("")),
            TaskFilter { standalone: true, ..related("user", None) },
            TaskFilter { created_after: Some(now), created_before: Some(now - chrono::Duration::hours(1)), ..TaskFilter::default() },
            TaskFilter { finished_after: Some(now), finished_before: Some(now), ..TaskFilter::default() },
        ];
        for filter in refused {
            let result = db.store.list(&TaskFilter { limit: 10, ..filter.clone() }).await;
            assert!(matches!(result, Err(StoreError::InvalidInput(_))), "{filter:?}: {result:?}");
        }
    }
}
