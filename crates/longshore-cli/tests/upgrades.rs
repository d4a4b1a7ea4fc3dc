//! Upgrades: every fixture in `tests/fixtures/upgrade/` (a database that an
//! earlier version's migrations made and filled, dumped as SQL by
//! `scripts/upgrade-fixture.sh`) is loaded into a fresh database, migrated
//! by today's `longshore migrate`, and must have lost nothing and still
//! work: its tasks, logs, schedule, token, caps and paused queue read back,
//! a task its killed worker still held is rescued, and new work runs.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use support::{Engine, Env, Observer};

use longshore_testing::on_both_engines;

on_both_engines!(every_fixture_upgrades_to_the_current_schema_and_works,);

/// The fixtures of `engine`, oldest version first.
fn fixtures(engine: Engine) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade");
    let suffix = match engine {
        Engine::Postgres => ".postgres.sql",
        Engine::Sqlite => ".sqlite.sql",
    };
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_suffix(suffix)?.strip_prefix('v')?.parse().ok()?;
            Some((version, entry.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

async fn load(observer: &Observer, sql: &str) {
    match observer {
        Observer::Postgres(pool) => {
            // The dump empties the session's search_path: on one connection,
            // reset afterwards, so the pool's later reads see the tables.
            let mut conn = pool.acquire().await.unwrap();
            sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
            sqlx::raw_sql("RESET ALL")
                .execute(&mut *conn)
                .await
                .map(|_| ())
        }
        Observer::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
}

async fn every_fixture_upgrades_to_the_current_schema_and_works(engine: Engine) {
    let all = fixtures(engine);
    assert!(!all.is_empty(), "no upgrade fixture for {engine:?}");
    for fixture in all {
        upgrade(engine, &fixture).await;
    }
}

/// The runs of the fixture's schedule.
const NIGHTLY_RUNS: &str = "SELECT count(*) FROM longshore_tasks WHERE schedule_name = 'nightly'";

async fn upgrade(engine: Engine, fixture: &Path) {
    let env = Env::unmigrated(engine).await;
    if engine == Engine::Sqlite {
        // The observer opens the file: it must exist first.
        std::fs::File::create(env.sqlite_path()).unwrap();
    }
    let observer = env.observer().await;
    load(observer, &std::fs::read_to_string(fixture).unwrap()).await;
    let counts = observer.counts().await;
    let log_lines = observer
        .i64("SELECT count(*) FROM longshore_task_logs")
        .await;
    let nightly_runs = observer.i64(NIGHTLY_RUNS).await;
    let at = fixture.display();

    env.ok(&["migrate"]);

    // Nothing lost.
    assert_eq!(observer.counts().await, counts, "{at}: tasks by state");
    assert_eq!(
        observer
            .i64("SELECT count(*) FROM longshore_task_logs")
            .await,
        log_lines,
        "{at}: log lines"
    );
    for state in [
        "scheduled",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ] {
        assert!(
            counts.get(state).is_some_and(|n| *n > 0),
            "{at}: no {state} task: {counts:?}"
        );
    }

    // A task that ran twice reads back with both executions' logs.
    let listed = env.json(&["tasks", "list", "--related", "user:42", "--json"]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let shown = env.json(&["tasks", "show", &id, "--json"]);
    assert_eq!(shown["task"]["state"], "succeeded", "{at}: {shown}");
    assert_eq!(shown["task"]["attempt"], 2, "{at}: {shown}");
    assert_eq!(shown["task"]["execution"], 2, "{at}: {shown}");
    assert_eq!(shown["task"]["unique_key"], "sync-user-42", "{at}: {shown}");
    assert!(
        !shown["logs"]["current"].as_array().unwrap().is_empty(),
        "{at}: {shown}"
    );
    assert_eq!(
        shown["logs"]["previous"][0]["execution"], 1,
        "{at}: {shown}"
    );

    // The rest of what it held.
    let schedules = env.ok(&["schedules", "list"]);
    assert!(
        schedules.contains("nightly") && schedules.contains("Europe/Paris"),
        "{at}: {schedules}"
    );
    let tokens = env.ok(&["tokens", "list"]);
    assert!(tokens.contains("fixture-admin"), "{at}: {tokens}");
    let settings = env.json(&["settings", "get", "--json"]);
    assert_eq!(settings["max_running"], 50, "{at}: {settings}");
    assert_eq!(
        settings["queues.default.max_running"], 10,
        "{at}: {settings}"
    );
    // From schema 13: a pool with its cap, an agent token, and a task that
    // needs a label, waiting in the pool's queue for an agent.
    let pools = env.json(&["pools", "list", "--json"]);
    let with_pool = !pools.as_array().unwrap().is_empty();
    if with_pool {
        assert_eq!(pools[0]["name"], "gpu", "{at}: {pools}");
        assert_eq!(pools[0]["queues"], serde_json::json!(["render"]), "{at}");
        assert_eq!(pools[0]["max_running"], 2, "{at}: {pools}");
        let agent_tokens = env.ok(&["agents", "tokens", "list"]);
        assert!(
            agent_tokens.contains("fixture-agent"),
            "{at}: {agent_tokens}"
        );
        let waiting = env.json(&["tasks", "list", "--queue", "render", "--json"]);
        assert_eq!(waiting[0]["requires"], serde_json::json!(["cuda"]), "{at}");
    }
    let queues = env.ok(&["queues", "list"]);
    let held = queues
        .lines()
        .find(|l| l.starts_with("held "))
        .unwrap_or_default();
    assert_eq!(
        held.split_whitespace().nth(1),
        Some("yes"),
        "{at}: {queues}"
    );

    // And it works: the task its killed worker held is rescued and runs
    // again, the waiting one runs, and so does new work. What waits in the
    // paused queue (and in the pool's queue, for an agent) stays queued.
    let stays_queued = 1 + i64::from(with_pool);
    let new = env.ok(&["enqueue", "noop"]);
    let _worker = env.worker(&["--queues", "default,slow"], &[]);
    env.wait_within(
        std::time::Duration::from_secs(60),
        "the fixture's work to resume",
        async |env| {
            let observer = env.observer().await;
            let rescued = observer
                .i64(
                    "SELECT count(*) FROM longshore_task_logs \
                     WHERE message LIKE '%lease of worker killed expired%'",
                )
                .await;
            let (state, _, _) = observer.task(new.trim()).await;
            rescued == 1 && state == "succeeded" && env.count("queued").await == stays_queued
        },
    )
    .await;
    // The fixture's `nightly` schedule fires once on start when its time
    // has passed since the fixture was made (the day after): that run is
    // new work too, not a doubled task. It may fire at any moment after
    // the worker starts, even between two reads here, so the tasks it
    // made are left out of the count in the same statement that counts.
    let others = env
        .observer()
        .await
        .i64(
            "SELECT count(*) FROM longshore_tasks \
             WHERE schedule_name IS NULL OR schedule_name <> 'nightly'",
        )
        .await;
    assert_eq!(
        others,
        counts.values().sum::<i64>() - nightly_runs + 1,
        "{at}: tasks lost or doubled: {}",
        env.ok(&["tasks", "list", "--all"])
    );
    let fired = env.observer().await.i64(NIGHTLY_RUNS).await - nightly_runs;
    assert!(fired <= 1, "{at}: the schedule fired {fired} times");
}
