//! The statements of [`super`], with the indexes each relies on.

//! Every statement the engine runs, reviewed like code. The indexes each
//! one relies on are named beside it; they are created in `migrations/`.

/// The task counts: folded totals plus the changes not folded yet, read in
/// one statement so that a fold in between cannot count a change twice or
/// not at all (migration 9). Two small tables whatever the history's size.
macro_rules! counts {
    () => {
        "(SELECT queue, actor, state, n FROM longshore_task_counts
  UNION ALL
  SELECT queue, actor, state, n FROM longshore_task_count_changes) AS c"
    };
}

/// Counts by state.
pub(crate) const STATS_BY_STATE: &str = concat!(
    "SELECT state::text, state::text, sum(n)::bigint FROM ",
    counts!(),
    "
GROUP BY c.state HAVING sum(n) <> 0 ORDER BY c.state"
);
/// Counts by actor and state.
pub(crate) const STATS_BY_ACTOR: &str = concat!(
    "SELECT actor, state::text, sum(n)::bigint FROM ",
    counts!(),
    "
GROUP BY actor, c.state HAVING sum(n) <> 0 ORDER BY actor, c.state"
);
/// Counts by queue and state.
pub(crate) const STATS_BY_QUEUE: &str = concat!(
    "SELECT queue, state::text, sum(n)::bigint FROM ",
    counts!(),
    "
GROUP BY queue, c.state HAVING sum(n) <> 0 ORDER BY queue, c.state"
);

/// Active tasks by queue and state, for the metrics' depth gauges and
/// `queues list`, read from the counts (never the tasks table).
pub(crate) const QUEUE_DEPTHS: &str = concat!(
    "SELECT queue, state::text, sum(n)::bigint FROM ",
    counts!(),
    "
WHERE state IN ('scheduled', 'queued', 'running')
GROUP BY queue, c.state HAVING sum(n) <> 0 ORDER BY queue, c.state"
);

/// Folds the appended count changes into the totals, and adds them to the
/// current minute's throughput (migration 15); answers how many groups of
/// totals changed and how many change rows were folded. Rows appended by
/// transactions still open are not seen and wait for the next fold; two
/// folds at once cannot both take a row (the second waits for the first's
/// delete, then skips the row).
///
/// A change row is one statement's net change of one group, so a positive
/// `succeeded` or `failed` row is tasks finishing (deletes and retries only
/// take away from those states).
pub(crate) const FOLD_COUNTS: &str = "
WITH moved AS (
    DELETE FROM longshore_task_count_changes RETURNING queue, actor, state, n, inserted
), summed AS (
    SELECT queue, actor, state, sum(n)::bigint AS n FROM moved GROUP BY queue, actor, state
), totals AS (
    INSERT INTO longshore_task_counts AS t (queue, actor, state, n)
    SELECT queue, actor, state, n FROM summed WHERE n <> 0
    ON CONFLICT (queue, actor, state) DO UPDATE SET n = t.n + excluded.n
    RETURNING 1
), minute AS (
    INSERT INTO longshore_throughput AS m (minute, queue, enqueued, succeeded, failed)
    SELECT date_trunc('minute', now()), queue, sum(inserted),
           coalesce(sum(n) FILTER (WHERE state = 'succeeded' AND n > 0), 0),
           coalesce(sum(n) FILTER (WHERE state = 'failed' AND n > 0), 0)
    FROM moved GROUP BY queue
    HAVING sum(inserted) > 0 OR bool_or(state IN ('succeeded', 'failed') AND n > 0)
    ON CONFLICT (minute, queue) DO UPDATE
    SET enqueued = m.enqueued + excluded.enqueued,
        succeeded = m.succeeded + excluded.succeeded,
        failed = m.failed + excluded.failed
)
SELECT (SELECT count(*) FROM totals), (SELECT count(*) FROM moved)";
/// After a fold that moved anything, in its transaction: each queue's
/// backlog, from the totals just folded, as the current minute's.
pub(crate) const MINUTE_WAITING: &str = "
INSERT INTO longshore_throughput AS m (minute, queue, waiting)
SELECT date_trunc('minute', now()), queue,
       coalesce(sum(n) FILTER (WHERE state IN ('scheduled', 'queued')), 0)::bigint
FROM longshore_task_counts GROUP BY queue
ON CONFLICT (minute, queue) DO UPDATE SET waiting = excluded.waiting";
/// Throughput per minute since $1, all queues summed. Primary key range.
pub(crate) const THROUGHPUT: &str = "
SELECT minute, sum(enqueued)::bigint, sum(succeeded)::bigint, sum(failed)::bigint,
       sum(waiting)::bigint
FROM longshore_throughput WHERE minute >= $1 GROUP BY minute ORDER BY minute";
/// Minutes that started more than $1 milliseconds ago.
pub(crate) const PURGE_THROUGHPUT: &str =
    "DELETE FROM longshore_throughput WHERE minute < now() - $1 * interval '1 millisecond'";
/// Groups that came back to zero.
pub(crate) const FORGET_EMPTY_COUNTS: &str = "DELETE FROM longshore_task_counts WHERE n = 0";

/// A recount: writers of tasks wait (readers do not) from the lock to the
/// commit, so the count is exact; waiting for the lock itself is bounded,
/// so that a long transaction cannot make every writer queue up behind it.
pub(crate) const RECOUNT: [&str; 5] = [
    "SET LOCAL lock_timeout = '5s'",
    "LOCK TABLE longshore_tasks IN SHARE ROW EXCLUSIVE MODE",
    "DELETE FROM longshore_task_count_changes",
    "DELETE FROM longshore_task_counts",
    "INSERT INTO longshore_task_counts (queue, actor, state, n)
SELECT queue, actor, state, count(*) FROM longshore_tasks GROUP BY queue, actor, state",
];

#[cfg(test)]
mod tests {
    use longshore_core::StatsKey;
    use longshore_core::store::prelude::*;
    use sqlx::{Connection, PgConnection};

    use super::{QUEUE_DEPTHS, STATS_BY_ACTOR, STATS_BY_QUEUE, STATS_BY_STATE};
    use crate::store::tasks::sql::{
        FINISHED_IDS_WINDOW, LIST, LIST_BY_RELATED_KIND, LIST_BY_RELATED_OBJECT, LIST_BY_SCHEDULE,
        LIST_FINISHED_IN_STATE, LIST_RECENT, LIST_RUNNING, LIST_SCHEDULED, PLAN_FOR_VALUES,
    };
    use crate::{PgOptions, PgStore};

    /// With a long history of finished tasks, the stats and the depth
    /// query of every scrape read the counts only, never the tasks table,
    /// and count what the table holds.
    #[tokio::test]
    async fn stats_and_queue_depths_read_the_counts_never_the_table() {
        let db = longshore_testing::ScratchDb::create().await;
        let store = PgStore::connect(&db.url, &PgOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let mut conn = PgConnection::connect_with(&db.options()).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO longshore_tasks (id, queue, actor, args, state, run_at, max_attempts, finished_at)
             SELECT gen_random_uuid(), 'q' || (i % 4), 'noop', '{}', 'succeeded', now(), 1, now()
             FROM generate_series(1, 100000) AS i;
             INSERT INTO longshore_tasks (id, queue, actor, args, state, run_at, max_attempts, lease_owner, lease_expires_at)
             SELECT gen_random_uuid(), 'q' || (i % 4), 'noop', '{}',
                    (ARRAY['scheduled', 'queued', 'running'])[i % 3 + 1]::longshore_task_state,
                    now() + interval '1 hour', 1, 'w', now() + interval '30 seconds'
             FROM generate_series(1, 300) AS i;
             ANALYZE longshore_tasks;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for statement in [QUEUE_DEPTHS, STATS_BY_STATE, STATS_BY_ACTOR, STATS_BY_QUEUE] {
            let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {statement}"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let plan = plan.join("\n");
            assert!(!plan.contains("longshore_tasks"), "{plan}");
            assert!(plan.contains("longshore_task_counts"), "{plan}");
        }
        let check = |depths: Vec<longshore_core::StatsRow>,
                     stats: Vec<longshore_core::StatsRow>| {
            assert_eq!(depths.len(), 12, "{depths:?}");
            assert_eq!(depths.iter().map(|r| r.count).sum::<i64>(), 300);
            let by_state: Vec<(String, i64)> =
                stats.into_iter().map(|r| (r.key, r.count)).collect();
            assert_eq!(
                by_state,
                [
                    ("scheduled", 100),
                    ("queued", 100),
                    ("running", 100),
                    ("succeeded", 100_000)
                ]
                .map(|(s, n)| (s.to_owned(), n))
            );
        };
        // Before and after the changes are folded into the totals.
        check(
            store.queue_depths().await.unwrap(),
            store.stats(StatsKey::State).await.unwrap(),
        );
        assert!(store.fold_counts().await.unwrap() > 0);
        check(
            store.queue_depths().await.unwrap(),
            store.stats(StatsKey::State).await.unwrap(),
        );
        assert_eq!(store.fold_counts().await.unwrap(), 0);
        let _ = conn.close().await;
    }

    /// The plan `statement` gets on `conn` for `args`, prepared as the
    /// store's connections prepare it.
    async fn plan_of(conn: &mut PgConnection, statement: &str, args: &str) -> String {
        sqlx::raw_sql(&format!(
            "DEALLOCATE ALL; PREPARE list(text[], text, text, uuid, bigint, text[], boolean, boolean,
               timestamptz, timestamptz, timestamptz, timestamptz, text, text, text) AS {statement}"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE list({args})"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        plan.join("\n")
    }

    /// Over a long history, under `force_generic_plan` (as the store's
    /// connections run): the first page of an unfiltered list walks the
    /// primary key backwards; the filters with an index of their own use
    /// it; the general statement, planned for its values, walks the key.
    #[tokio::test]
    async fn list_statements_use_their_indexes_under_a_generic_plan() {
        let db = longshore_testing::ScratchDb::create().await;
        let store = PgStore::connect(&db.url, &PgOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let mut conn = PgConnection::connect_with(&db.options()).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO longshore_tasks (id, queue, actor, args, state, run_at, max_attempts,
                                          finished_at, related_kind, related_id, schedule_name)
             SELECT gen_random_uuid(), 'default', 'noop', '{}', 'succeeded', now(), 1, now(),
                    CASE WHEN i % 10 = 0 THEN 'user' END,
                    CASE WHEN i % 10 = 0 THEN (i % 5000)::text END,
                    CASE WHEN i % 1000 = 0 THEN 'nightly' END
             FROM generate_series(1, 100000) AS i;
             INSERT INTO longshore_tasks (id, queue, actor, args, state, run_at, max_attempts, finished_at)
             SELECT gen_random_uuid(), 'default', 'noop', '{}', 'failed', now(), 1, now()
             FROM generate_series(1, 1000) AS i;
             ANALYZE longshore_tasks;
             SET plan_cache_mode = force_generic_plan;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let nothing = "'{}', NULL, NULL, NULL, 50, '{}', false, false, NULL, NULL, NULL, NULL";
        let cases = [
            (
                LIST_BY_RELATED_OBJECT,
                format!("{nothing}, 'user', '42', NULL"),
                "longshore_tasks_related",
            ),
            (
                LIST_BY_RELATED_KIND,
                format!("{nothing}, 'user', NULL, NULL"),
                "longshore_tasks_related",
            ),
            (
                LIST_BY_SCHEDULE,
                format!("{nothing}, NULL, NULL, 'nightly'"),
                "longshore_tasks_schedule",
            ),
        ];
        for (statement, args, expected) in cases {
            let plan = plan_of(&mut conn, statement, &args).await;
            assert!(plan.contains(expected), "{expected} unused: {plan}");
            assert!(!plan.contains("Seq Scan"), "{plan}");
        }
        // The first page without filters: one page's worth of the key.
        sqlx::raw_sql(&format!(
            "DEALLOCATE ALL; PREPARE recent(uuid, bigint) AS {LIST_RECENT}"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE recent(NULL, 50)")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan Backward using longshore_tasks_pkey"),
            "{plan}"
        );
        // One state: its ids from its index alone, then the rows by key.
        for (statement, args, index) in [
            (
                LIST_FINISHED_IN_STATE,
                "NULL, 50, 'failed'",
                "longshore_tasks_finished_id",
            ),
            (LIST_RUNNING, "NULL, 50", "longshore_tasks_lease"),
            (
                FINISHED_IDS_WINDOW,
                "NULL, 1000, 'failed'",
                "longshore_tasks_finished_id",
            ),
            (LIST_SCHEDULED, "NULL, 50", "longshore_tasks_scheduled"),
        ] {
            let types = if statement == LIST_FINISHED_IN_STATE || statement == FINISHED_IDS_WINDOW {
                "uuid, bigint, text"
            } else {
                "uuid, bigint"
            };
            sqlx::raw_sql(&format!(
                "DEALLOCATE ALL; PREPARE by_state({types}) AS {statement}"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            // Simple protocol: DEALLOCATE ALL would drop a statement
            // cached by sqlx.
            let plan: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN EXECUTE by_state({args})"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, 0))
                .collect();
            let plan = plan.join("\n");
            // Either partial index of the scheduled state will do.
            let used = plan.contains(index)
                || (index == "longshore_tasks_scheduled" && plan.contains("longshore_tasks_due"));
            assert!(used, "{index} unused: {plan}");
            assert!(!plan.contains("Seq Scan"), "{plan}");
        }
        // A broad filter, planned for its values, walks the key too.
        sqlx::raw_sql(&format!("BEGIN; {PLAN_FOR_VALUES}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let plan = plan_of(
            &mut conn,
            LIST,
            "'{succeeded}', NULL, NULL, NULL, 50, '{}', true, false, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL",
        )
        .await;
        assert!(
            plan.contains("Index Scan Backward using longshore_tasks_pkey"),
            "{plan}"
        );
        let _ = conn.close().await;
    }
}
