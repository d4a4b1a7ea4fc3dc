//! The `longshore` binary, driven as an operator would: real processes
//! against a real database of their own, on each engine (every test runs
//! as `postgres::NAME` and `sqlite::NAME`).

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{Engine, Env, ids, text};

/// Every behavioural test, once per engine.
use longshore_testing::on_both_engines;

on_both_engines!(
    control_characters_are_refused_in_names_and_escaped_in_output,
    times_are_marked_utc_or_shown_in_the_local_zone_when_asked,
    messages_say_what_happened_where_the_output_went,
    tasks_list_says_when_more_match_and_pages_through_them,
    bad_input_is_refused_with_one_line_and_changes_nothing,
    an_unreachable_database_or_a_bad_setting_is_one_line,
    migrations_run_once_when_nodes_start_together,
    migrate_warns_when_the_server_runs_without_autovacuum,
    enqueue_count_inserts_in_bulk_and_stats_count_them,
    a_unique_key_enqueued_twice_keeps_one_task,
    a_worker_runs_tasks_and_show_prints_each_execution,
    cancel_and_retry_from_the_command_line,
    a_worker_killed_mid_task_loses_nothing,
    workers_killed_ten_times_during_a_backlog_lose_nothing,
    a_stalled_workers_tasks_are_taken_over_and_its_late_results_refused,
    two_worker_processes_run_each_task_once,
    sigterm_drains_then_returns_unfinished_tasks_to_the_queue,
    the_http_actor_calls_the_webhook_and_logs_the_response,
    the_http_actor_retries_an_unexpected_status_then_fails,
    the_http_actor_sends_a_secret_from_the_workers_environment_that_nothing_stores,
    the_http_actor_follows_redirects_to_the_same_host_only_and_allowed_hosts_only,
    a_paused_queue_keeps_its_tasks_until_resumed,
    workers_list_shows_a_running_worker_until_it_stops,
    killing_the_leader_hands_maintenance_to_another_worker_within_a_lease,
    a_killed_leaders_tasks_run_again_within_one_lease,
    schedules_round_trip_from_the_command_line,
    bad_schedule_input_is_refused_and_stores_nothing,
    a_schedule_fires_through_a_worker_and_resume_runs_it_at_once,
    runtime_settings_round_trip_and_bad_keys_change_nothing,
    the_global_cap_is_never_exceeded_across_three_worker_processes,
    a_queue_cap_is_never_exceeded_across_worker_processes,
    tasks_delete_by_actor_takes_only_that_actors_queued_tasks,
    tasks_delete_refuses_running_unfiltered_and_unconfirmed_deletions,
    queues_flush_deletes_the_waiting_tasks_and_cancels_the_running_ones,
    tasks_list_filters_by_status_related_object_and_time,
    tasks_list_refuses_bad_filters_with_one_line,
    a_reader_that_stops_early_ends_the_command_quietly,
);

/// A command that must fail with exactly one line saying `expected`, and
/// write nothing.
async fn refused(env: &Env, args: &[&str], expected: &str) {
    let before = env.total().await;
    let out = env.run(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed {}",
        text(&out.stdout)
    );
    assert_eq!(env.total().await, before, "{args:?} wrote tasks");
}

async fn bad_input_is_refused_with_one_line_and_changes_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop"]);
    refused(&env, &["enqueue", "mail"], "unknown actor `mail`").await;
    refused(
        &env,
        &["enqueue", "sleep", "--args", "{ms: 5}"],
        "not valid JSON",
    )
    .await;
    refused(&env, &["enqueue", "sleep", "--args", "[1]"], "JSON object").await;
    refused(
        &env,
        &["enqueue", "sleep", "--args", r#"{"ms": "x"}"#],
        "actor `sleep`",
    )
    .await;
    refused(
        &env,
        &["enqueue", "http", "--args", r#"{"url": "ftp://x"}"#],
        "scheme",
    )
    .await;
    refused(
        &env,
        &["enqueue", "noop", "--max-attempts", "0"],
        "max attempts",
    )
    .await;
    refused(&env, &["enqueue", "noop", "--related", "user"], "TYPE:ID").await;
    refused(&env, &["enqueue", "noop", "--count", "0"], "--count").await;
    let dir = tempfile::tempdir().unwrap();
    let oversized = dir.path().join("big.json");
    std::fs::write(
        &oversized,
        format!(r#"{{"blob": "{}"}}"#, "x".repeat(1024 * 1024)),
    )
    .unwrap();
    let from_file = format!("@{}", oversized.display());
    refused(
        &env,
        &["enqueue", "noop", "--args", &from_file],
        "the limit is",
    )
    .await;
    refused(
        &env,
        &["enqueue", "noop", "--args", "@/nonexistent.json"],
        "cannot read",
    )
    .await;
    let unknown = "01a202cc-2e6d-73f6-abce-fa5a7ca4b2e4";
    refused(&env, &["tasks", "show", unknown], "no task with id").await;
    refused(&env, &["tasks", "retry", unknown], "no task with id").await;
    refused(&env, &["tasks", "cancel", unknown], "no task with id").await;
    refused(&env, &["tasks", "show", "not-an-id"], "not a task id").await;
    refused(
        &env,
        &["tasks", "list", "--state", "done"],
        "unknown task state `done`",
    )
    .await;
    assert_eq!(env.total().await, 1);
}

async fn an_unreachable_database_or_a_bad_setting_is_one_line(engine: Engine) {
    let env = Env::new(engine).await;
    let missing = env.dir.path().join("missing").join("x.db");
    let (unreachable, expected) = match engine {
        Engine::Postgres => (
            "postgres://postgres@127.0.0.1:1/x".to_owned(),
            "cannot connect",
        ),
        Engine::Sqlite => (
            format!("sqlite://{}", missing.display()),
            "no SQLite database at",
        ),
    };
    let out = env
        .cmd()
        .args(["enqueue", "noop", "--database-url", &unreachable])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        !missing.parent().unwrap().exists(),
        "enqueue created a directory"
    );

    let out = env
        .cmd()
        .env("LONGSHORE_WORKER__CONCURRENCY", "many")
        .arg("worker")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("CONCURRENCY"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("longshore.yaml");
    std::fs::write(&path, "worker:\n  concurency: 4\n").unwrap();
    let out = env
        .cmd()
        .args(["--config", path.to_str().unwrap(), "worker"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("concurency"), "{stderr}");
    assert_eq!(env.total().await, 0);
}

/// A node's start (each runs `migrate`) says when the PostgreSQL server
/// has autovacuum off, and only then: the task table would bloat until
/// claims crawl. Checked against the server's real setting, whichever it is.
async fn migrate_warns_when_the_server_runs_without_autovacuum(engine: Engine) {
    let env = Env::unmigrated(engine).await;
    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let warned = text(&out.stderr).contains("autovacuum is off on this PostgreSQL server");
    let off = match engine {
        Engine::Postgres => env.observer().await.strings("SHOW autovacuum").await == ["off"],
        Engine::Sqlite => false,
    };
    assert_eq!(warned, off, "{}", text(&out.stderr));
}

async fn migrations_run_once_when_nodes_start_together(engine: Engine) {
    // On SQLite the file does not exist yet: the four create it together.
    let env = Env::unmigrated(engine).await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd()
                .arg("migrate")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let versions = env
        .observer()
        .await
        .i64s("SELECT CAST(version AS BIGINT) FROM longshore_migrations ORDER BY version")
        .await;
    // Every migration the binary carries, each applied once.
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    );
}

async fn enqueue_count_inserts_in_bulk_and_stats_count_them(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&["enqueue", "noop", "--count", "2500", "--queue", "bulk"]);
    let printed = ids(&out);
    assert_eq!(printed.len(), 2500);
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "stats", "--by", "queue", "--json"])).unwrap();
    assert_eq!(stats["bulk"]["queued"], 2500);
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "stats", "--json"])).unwrap();
    assert_eq!(stats["queued"], 2500);
    assert_eq!(stats["running"], 0);
}

async fn a_unique_key_enqueued_twice_keeps_one_task(engine: Engine) {
    let env = Env::new(engine).await;
    let first = env.ok(&["enqueue", "noop", "--unique-key", "sync:42"]);
    let out = env.run(&["enqueue", "noop", "--unique-key", "sync:42"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("held by active task"));
    assert!(text(&out.stderr).contains(first.trim()));
    assert_eq!(env.total().await, 1);
    // Idempotent for scripts: the held task's id on stdout, and in JSON.
    assert_eq!(text(&out.stdout).trim(), first.trim());
    let json = env.json(&["enqueue", "noop", "--unique-key", "sync:42", "--json"]);
    assert_eq!(
        json,
        serde_json::json!({"id": first.trim(), "duplicate": true})
    );
    let fresh = env.json(&["enqueue", "noop", "--unique-key", "sync:43", "--json"]);
    assert_eq!(fresh["duplicate"], false);
}

async fn a_worker_runs_tasks_and_show_prints_each_execution(engine: Engine) {
    let env = Env::new(engine).await;
    let id = env.ok(&["enqueue", "fail", "--args", r#"{"times": 2}"#]);
    let id = id.trim();
    let _worker = env.worker(&[], &[]);
    env.wait_until("the task to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&1)
    })
    .await;
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "show", id, "--json"])).unwrap();
    assert_eq!(shown["task"]["attempt"], 3);
    assert_eq!(shown["task"]["status"], "successful");
    assert_eq!(shown["logs"]["previous"].as_array().unwrap().len(), 2);
    let human = env.ok(&["tasks", "show", id]);
    assert!(human.contains("Current execution (#3)"), "{human}");
    assert!(human.contains("Previous execution (#1)"), "{human}");
    assert!(human.contains("failing on purpose"), "{human}");
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "list", "--state", "succeeded", "--json"]))
            .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn a_paused_queue_keeps_its_tasks_until_resumed(engine: Engine) {
    let env = Env::new(engine).await;
    let paused = env.ok(&["queues", "pause", "mail"]);
    assert!(paused.contains("queue mail paused"), "{paused}");
    env.ok(&["enqueue", "noop", "--queue", "mail"]);
    env.ok(&["enqueue", "noop"]);
    let _worker = env.worker(&["--queues", "default,mail"], &[]);
    env.wait_until("the default queue's task to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&1)
    })
    .await;
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["queues", "list", "--json"])).unwrap();
    let mail = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mail")
        .unwrap();
    assert_eq!(mail["paused"], true);
    assert_eq!(mail["tasks"]["queued"], 1);
    let human = env.ok(&["queues", "list"]);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("mail") && l.contains("yes")),
        "{human}"
    );

    env.ok(&["queues", "resume", "mail"]);
    env.wait_until("the mail task to succeed after the resume", async |env| {
        env.counts().await.get("succeeded") == Some(&2)
    })
    .await;
    // A name no task could carry changes nothing.
    refused(&env, &["queues", "pause", ""], "queue name is empty").await;
}

async fn workers_list_shows_a_running_worker_until_it_stops(engine: Engine) {
    let env = Env::new(engine).await;
    let worker = env.worker(&["--worker-id", "node-7", "--queues", "default,mail"], &[]);
    env.wait_until("the worker to be listed", async |env| {
        env.ok(&["workers", "list"]).contains("node-7")
    })
    .await;
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["workers", "list", "--json"])).unwrap();
    let node = &listed.as_array().unwrap()[0];
    assert_eq!(node["id"], "node-7");
    assert_eq!(node["queues"], serde_json::json!(["default", "mail"]));
    assert_eq!(node["concurrency"], 16);
    let human = env.ok(&["workers", "list"]);
    let header = human.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.ends_with("LAST SEEN"),
        "{human}"
    );
    assert!(header.contains("LEADS"), "{human}");
    let row = human.lines().nth(1).unwrap_or_default();
    assert!(row.contains("0/16") && row.ends_with("s ago"), "{human}");

    // The running count is the database's own, not the last heartbeat's:
    // as soon as the tasks run, the list says so; as soon as they are
    // cancelled and finished, it says so too.
    let sleepers = ids(&env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 60000}"#,
        "--count",
        "2",
    ]));
    assert_eq!(sleepers.len(), 2);
    env.wait_until("both tasks to run", async |env| {
        env.count("running").await == 2
    })
    .await;
    let listed = env.json(&["workers", "list", "--json"]);
    assert_eq!(listed[0]["running"], 2, "{listed}");
    for id in &sleepers {
        env.ok(&["tasks", "cancel", id]);
    }
    env.wait_until("both tasks to end", async |env| {
        env.count("running").await == 0
    })
    .await;
    let listed = env.json(&["workers", "list", "--json"]);
    assert_eq!(listed[0]["running"], 0, "{listed}");

    worker.signal("TERM");
    env.wait_until("the stopped worker to leave the list", async |env| {
        env.ok(&["workers", "list", "--json"]).trim() == "[]"
    })
    .await;
}

/// Which worker `workers list` says holds `role`.
fn leader(env: &Env, role: &str) -> Option<String> {
    let listed = env.json(&["workers", "list", "--json"]);
    listed.as_array().unwrap().iter().find_map(|w| {
        let leads = w["leads"].as_array()?;
        leads
            .iter()
            .any(|held| held == role)
            .then(|| w["id"].as_str().unwrap_or_default().to_owned())
    })
}

async fn killing_the_leader_hands_maintenance_to_another_worker_within_a_lease(engine: Engine) {
    let env = Env::new(engine).await;
    let first = env.worker(&["--worker-id", "first"], &[]);
    env.wait_until("the first worker to hold both roles", async |env| {
        leader(env, "maintenance").as_deref() == Some("first")
            && leader(env, "scheduler").as_deref() == Some("first")
    })
    .await;
    let _second = env.worker(&["--worker-id", "second"], &[]);
    env.wait_until("the second worker to be listed", async |env| {
        env.ok(&["workers", "list"]).contains("second")
    })
    .await;
    first.signal("KILL");
    // The lease is 2 s here: each role passes once it runs out (the slack
    // is for the second worker's next try and the listing itself).
    env.wait_within(
        Duration::from_secs(6),
        "the second worker to hold both roles",
        async |env| {
            leader(env, "maintenance").as_deref() == Some("second")
                && leader(env, "scheduler").as_deref() == Some("second")
        },
    )
    .await;
}

/// Running tasks of a worker `owner`, straight from the table.
async fn running_on(env: &Env, owner: &str) -> i64 {
    env.observer()
        .await
        .i64(&format!(
            "SELECT count(*) FROM longshore_tasks WHERE state = 'running' AND lease_owner = '{owner}'"
        ))
        .await
}

/// The promise of docs/configuration.md: a crashed worker's tasks run
/// again within a lease (plus a maintenance interval), also when the
/// crashed worker held the maintenance role that rescues them: the role's
/// lease and the tasks' run out together, not one after the other.
async fn a_killed_leaders_tasks_run_again_within_one_lease(engine: Engine) {
    let env = Env::new(engine).await;
    // A lease long enough that two of them in a row cannot pass for one.
    let timings = [
        ("LONGSHORE_WORKER__LEASE", "5s"),
        ("LONGSHORE_WORKER__HEARTBEAT", "1s"),
    ];
    let first = env.worker(&["--worker-id", "first", "--concurrency", "3"], &timings);
    env.wait_until("the first worker to lead maintenance", async |env| {
        leader(env, "maintenance").as_deref() == Some("first")
    })
    .await;
    for _ in 0..3 {
        env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 600000}"#]);
    }
    env.wait_until("the first worker to run all three", async |env| {
        running_on(env, "first").await == 3
    })
    .await;
    let _second = env.worker(&["--worker-id", "second", "--concurrency", "3"], &timings);
    env.wait_until("the second worker to be listed", async |env| {
        env.ok(&["workers", "list"]).contains("second")
    })
    .await;

    first.signal("KILL");
    // Lease 5 s + maintenance interval 0.2 s + 1 s, and 2 s for the
    // second worker to claim them and for the polling itself; two leases
    // in a row would take over 10 s.
    env.wait_within(
        Duration::from_millis(8_200),
        "the killed leader's tasks to run on the second worker",
        async |env| running_on(env, "second").await == 3,
    )
    .await;
    assert_eq!(running_on(&env, "first").await, 0);
    assert_eq!(env.total().await, 3, "nothing lost, nothing doubled");
}

async fn cancel_and_retry_from_the_command_line(engine: Engine) {
    let env = Env::new(engine).await;
    let id = env.ok(&["enqueue", "noop", "--delay", "1h"]);
    let id = id.trim();
    let out = env.ok(&["tasks", "cancel", id]);
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(env.counts().await.get("cancelled"), Some(&1));
    let out = env.ok(&["tasks", "retry", id]);
    assert!(out.contains("queued again"), "{out}");
    assert_eq!(env.counts().await.get("queued"), Some(&1));
    // A waiting task cannot be retried.
    let out = env.run(&["tasks", "retry", id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot retry"));
}

async fn a_worker_killed_mid_task_loses_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 1500}"#,
        "--count",
        "12",
    ]);
    assert_eq!(ids(&out).len(), 12);
    let mut doomed = env.worker(&["--worker-id", "doomed", "--concurrency", "4"], &[]);
    env.wait_until("the doomed worker to hold four tasks", async |env| {
        let running = env
            .observer()
            .await
            .i64(
                "SELECT count(*) FROM longshore_tasks WHERE state = 'running' AND lease_owner = 'doomed'",
            )
            .await;
        running == 4
    })
    .await;
    doomed.child.kill().unwrap(); // SIGKILL: no drain, no goodbye
    doomed.child.wait().unwrap();

    let _survivor = env.worker(&["--worker-id", "survivor", "--concurrency", "6"], &[]);
    env.wait_until("every task to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&12)
    })
    .await;
    assert_eq!(env.total().await, 12, "tasks lost or duplicated");
    // The killed worker's tasks ran again after their leases expired, and
    // their logs say why.
    let rescued = env
        .observer()
        .await
        .i64(
            "SELECT count(DISTINCT task_id) FROM longshore_task_logs WHERE message LIKE '%lease of worker doomed expired%'",
        )
        .await;
    assert!(rescued >= 4, "only {rescued} rescue log lines");
}

/// The chaos suite's kill loop: during a backlog, a worker is killed with
/// SIGKILL ten times, each time while it runs tasks, beside one that is
/// never killed. Every task finishes; none is lost or doubled; the only
/// tasks that ran more than once are those a killed worker held, each
/// rescued after its lease (LONGSHORE_CHAOS_KILLS sets the count, for a
/// soak).
async fn workers_killed_ten_times_during_a_backlog_lose_nothing(engine: Engine) {
    let kills: usize = std::env::var("LONGSHORE_CHAOS_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let env = Env::new(engine).await;
    let total = 300;
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 500}"#,
        "--count",
        "300",
        "--quiet",
    ]);
    let _steady = env.worker(&["--worker-id", "steady", "--concurrency", "2"], &[]);
    for kill in 0..kills {
        let id = format!("victim-{kill}");
        // Every other victim is a whole `serve` (worker, HTTP side and
        // all), the one process a single-node install runs.
        let command = if kill % 2 == 0 { "worker" } else { "serve" };
        let mut cmd = env.cmd();
        cmd.args([command, "--worker-id", &id, "--concurrency", "4"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if command == "serve" {
            cmd.args(["--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"]);
        }
        let victim = support::Proc::spawn(cmd);
        env.wait_until("the victim to run tasks", async |env| {
            running_on(env, &id).await > 0
        })
        .await;
        victim.signal("KILL");
    }
    // A last worker that lives, to drain what is left.
    let _last = env.worker(&["--worker-id", "last", "--concurrency", "8"], &[]);
    env.wait_within(
        Duration::from_secs(240),
        "every task to succeed",
        async |env| env.count("succeeded").await == total,
    )
    .await;
    assert_eq!(env.total().await, total, "tasks lost or doubled");
    let observer = env.observer().await;
    let ran_again = observer
        .i64("SELECT count(*) FROM longshore_tasks WHERE attempt > 1")
        .await;
    let rescued_from_victims = observer
        .i64(
            "SELECT count(DISTINCT task_id) FROM longshore_task_logs \
             WHERE message LIKE '%lease of worker victim-%'",
        )
        .await;
    let rescued_from_others = observer
        .i64(
            "SELECT count(*) FROM longshore_task_logs WHERE message LIKE '%lease of worker%' \
             AND message NOT LIKE '%lease of worker victim-%'",
        )
        .await;
    // The figures docs/reliability.md quotes (`--nocapture` shows them).
    eprintln!(
        "kill loop on {engine:?}: {kills} kills, {total} tasks, none lost, {ran_again} ran again"
    );
    assert!(ran_again > 0, "no kill caught a task running");
    assert_eq!(
        ran_again, rescued_from_victims,
        "a task ran again without a killed worker's lease behind it"
    );
    assert_eq!(rescued_from_others, 0, "a living worker's task was rescued");
    assert!(
        ran_again <= i64::try_from(4 * kills).unwrap(),
        "{ran_again} re-runs from {kills} kills of 4 slots"
    );
}

/// A worker stopped with SIGSTOP past its lease: another takes its tasks
/// over and runs them; when the stalled one wakes, every result it still
/// has is refused (or never sent, its heartbeat having learned the lease
/// was lost), and nothing it does changes a row. Counted: tasks, re-runs,
/// refusals.
async fn a_stalled_workers_tasks_are_taken_over_and_its_late_results_refused(engine: Engine) {
    let env = Env::new(engine).await;
    let total = 8;
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 2000}"#,
        "--count",
        "8",
        "--quiet",
    ]);
    let short_lease = [
        ("LONGSHORE_WORKER__LEASE", "3s"),
        ("LONGSHORE_WORKER__HEARTBEAT", "1s"),
    ];
    let mut cmd = env.cmd();
    cmd.args(["worker", "--worker-id", "stalled", "--concurrency", "4"])
        .envs(short_lease)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let stalled = support::Proc::spawn(cmd);
    env.wait_until("the stalled worker to run four tasks", async |env| {
        running_on(env, "stalled").await == 4
    })
    .await;
    stalled.signal("STOP");
    let observer = env.observer().await;
    let held = observer
        .strings(
            "SELECT CAST(id AS TEXT) FROM longshore_tasks \
             WHERE state = 'running' AND lease_owner = 'stalled' ORDER BY id",
        )
        .await;
    assert_eq!(held.len(), 4);

    let _taker = env.worker(
        &["--worker-id", "taker", "--concurrency", "4"],
        &short_lease,
    );
    env.wait_within(
        Duration::from_secs(120),
        "every task to succeed",
        async |env| env.count("succeeded").await == total,
    )
    .await;
    let snapshot = "SELECT CAST(id AS TEXT) || ' ' || CAST(state AS TEXT) || ' ' \
                    || CAST(attempt AS TEXT) || ' ' || CAST(attempt + uncounted_executions AS TEXT) \
                    || ' ' || COALESCE(lease_owner, '-') \
                    || ' ' || COALESCE(CAST(finished_at AS TEXT), '-') \
                    || ' ' || COALESCE(CAST(worst_level AS TEXT), '-') \
                    || ' ' || COALESCE(last_error, '-') \
                    FROM longshore_tasks ORDER BY id";
    let before = observer.strings(snapshot).await;
    let log_lines = "SELECT CAST(count(*) AS BIGINT) FROM longshore_task_logs";
    let logs_before = observer.i64(log_lines).await;

    // Wake it: each of its four executions ends without a recorded result.
    stalled.signal("CONT");
    let refused = |stderr: &str| -> std::collections::BTreeSet<String> {
        stderr
            .lines()
            .filter(|l| l.contains("result discarded") || l.contains("lease lost"))
            .filter_map(|l| held.iter().find(|id| l.contains(id.as_str())).cloned())
            .collect()
    };
    env.wait_until("the stalled worker to give up all four tasks", async |_| {
        refused(&stalled.stderr()).len() == 4
    })
    .await;

    let after = observer.strings(snapshot).await;
    assert_eq!(before, after, "a late result changed a task");
    assert_eq!(env.total().await, total, "tasks lost or doubled");
    // The stalled worker's tasks ran again, once each, as execution 2,
    // each rescued from its lease; the others ran once.
    for line in &after {
        let fields: Vec<&str> = line.split(' ').collect();
        let (id, attempt, execution) = (fields[0], fields[2], fields[3]);
        let expected = if held.iter().any(|h| h == id) {
            "2"
        } else {
            "1"
        };
        assert_eq!((attempt, execution), (expected, expected), "{line}");
    }
    let rescued = observer
        .i64(
            "SELECT count(DISTINCT task_id) FROM longshore_task_logs \
             WHERE message LIKE '%lease of worker stalled expired%'",
        )
        .await;
    assert_eq!(rescued, 4);
    // Its lines written after waking are kept (they are what happened),
    // under its own execution; none claims a result.
    let logs_after = observer.i64(log_lines).await;
    assert!(logs_after >= logs_before);
    let stderr = stalled.stderr();
    let discarded = stderr.matches("result discarded").count();
    let stopped = stderr.matches("lease lost").count();
    eprintln!(
        "SIGSTOP on {engine:?}: {total} tasks, 4 held by the stalled worker, 4 taken over, \
         4 late results refused ({discarded} sent and discarded by the fence, {stopped} \
         executions stopped by the heartbeat), rows unchanged"
    );
}

async fn two_worker_processes_run_each_task_once(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop", "--count", "1500", "--quiet"]);
    let _a = env.worker(&["--worker-id", "a"], &[]);
    let _b = env.worker(&["--worker-id", "b"], &[]);
    env.wait_until("all tasks to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&1500)
    })
    .await;
    // Claimed exactly once each: no task needed a second execution.
    let attempts = env
        .observer()
        .await
        .i64s("SELECT DISTINCT CAST(attempt + uncounted_executions AS BIGINT) FROM longshore_tasks")
        .await;
    assert_eq!(attempts, vec![1]);
}

async fn sigterm_drains_then_returns_unfinished_tasks_to_the_queue(engine: Engine) {
    let env = Env::new(engine).await;
    let short = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 300}"#]);
    let long = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 600000}"#]);
    let mut worker = env.worker(
        &["--worker-id", "leaving"],
        &[("LONGSHORE_WORKER__DRAIN_TIMEOUT", "2s")],
    );
    env.wait_until("both tasks to run", async |env| {
        env.counts().await.get("running") == Some(&2)
    })
    .await;
    worker.signal("TERM");
    let status = worker.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "worker exited with {status}");

    let observer = env.observer().await;
    let (state, owner, _) = observer.task(&short).await;
    assert_eq!((state, owner), ("succeeded".to_owned(), None));
    // Back in the queue at once, not after a lease expiry.
    let (state, owner, _) = observer.task(&long).await;
    assert_eq!((state, owner), ("queued".to_owned(), None));
    assert_eq!(env.total().await, 2);
}

/// A one-connection-at-a-time HTTP server on loopback that answers every
/// request with `status` and `body`, and reports what it received.
async fn http_server(
    status: &'static str,
    body: &'static str,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    http_server_with(status, String::new(), body).await
}

/// [`http_server`], answering `headers` (whole lines) too.
async fn http_server_with(
    status: &'static str,
    headers: String,
    body: &'static str,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let _ = seen.send(String::from_utf8_lossy(&request).into_owned());
            let response = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, requests)
}

async fn the_http_actor_calls_the_webhook_and_logs_the_response(engine: Engine) {
    let env = Env::new(engine).await;
    let (url, mut requests) = http_server("201 Created", "thanks").await;
    let args = serde_json::json!({
        "url": url,
        "headers": {"x-longshore-test": "yes"},
        "body": {"hello": "world"},
        "expect_status": [201],
    })
    .to_string();
    let id = env.ok(&["enqueue", "http", "--args", &args]);
    let _worker = env.worker(&[], &[]);
    env.wait_until("the webhook task to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&1)
    })
    .await;
    let request = requests.recv().await.unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    assert!(request.contains("x-longshore-test: yes"), "{request}");
    assert!(request.ends_with(r#"{"hello":"world"}"#), "{request}");
    let shown = env.ok(&["tasks", "show", id.trim()]);
    assert!(
        shown.contains("status 201 Created; body: thanks"),
        "{shown}"
    );
}

async fn the_http_actor_sends_a_secret_from_the_workers_environment_that_nothing_stores(
    engine: Engine,
) {
    const VALUE: &str = "Bearer 7f3a-only-in-the-environment";
    let env = Env::new(engine).await;
    let (url, mut requests) = http_server("200 OK", "ok").await;
    let args = serde_json::json!({
        "url": url,
        "headers": {
            "Authorization": {"$secret": "hook_token"},
            "X-Pin": {"$secret": "pin"},
        },
    })
    .to_string();
    let id = env.ok(&["enqueue", "http", "--args", &args]);
    // A value that looks like a number stays text, leading zeros and all.
    let _worker = env.worker(
        &[],
        &[
            ("LONGSHORE_SECRETS__HOOK_TOKEN", VALUE),
            ("LONGSHORE_SECRETS__PIN", "0012345"),
        ],
    );
    env.wait_until("the webhook task to succeed", async |env| {
        env.counts().await.get("succeeded") == Some(&1)
    })
    .await;
    let request = requests.recv().await.unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("authorization: {}", VALUE.to_ascii_lowercase())),
        "{request}"
    );
    assert!(
        request.to_ascii_lowercase().contains("x-pin: 0012345"),
        "{request}"
    );
    // What is stored, listed and shown holds the reference only.
    let shown = env.ok(&["tasks", "show", id.trim(), "--json"]);
    assert!(!shown.contains(VALUE), "{shown}");
    assert!(shown.contains(r#""$secret": "hook_token""#), "{shown}");
}

async fn the_http_actor_retries_an_unexpected_status_then_fails(engine: Engine) {
    let env = Env::new(engine).await;
    let (url, _requests) = http_server("503 Service Unavailable", "busy").await;
    let args = serde_json::json!({ "url": url }).to_string();
    let id = env.ok(&["enqueue", "http", "--args", &args, "--max-attempts", "2"]);
    let _worker = env.worker(&[], &[]);
    env.wait_until("the webhook task to fail", async |env| {
        env.counts().await.get("failed") == Some(&1)
    })
    .await;
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "show", id.trim(), "--json"])).unwrap();
    assert_eq!(shown["task"]["attempt"], 2);
    assert_eq!(
        shown["task"]["last_error"],
        "unexpected status 503 Service Unavailable"
    );
    assert_eq!(shown["logs"]["previous"].as_array().unwrap().len(), 1);
}

async fn the_http_actor_follows_redirects_to_the_same_host_only_and_allowed_hosts_only(
    engine: Engine,
) {
    let env = Env::new(engine).await;
    let (target, mut reached) = http_server("200 OK", "done").await;
    // The same host, another port: followed.
    let (same, _) = http_server_with("302 Found", format!("Location: {target}\r\n"), "").await;
    // Another host name for the same machine: not followed by default.
    let elsewhere = target.replace("127.0.0.1", "localhost");
    let (other, _) = http_server_with("302 Found", format!("Location: {elsewhere}\r\n"), "").await;
    let enqueue = |url: &str| {
        let args = serde_json::json!({ "url": url }).to_string();
        ids(&env.ok(&["enqueue", "http", "--args", &args, "--max-attempts", "5"])).remove(0)
    };
    let followed = enqueue(&same);
    let stopped = enqueue(&other);
    let worker = env.worker(&[], &[]);
    env.wait_until("both webhook tasks to finish", async |env| {
        env.count("succeeded").await + env.count("failed").await == 2
    })
    .await;
    drop(worker);
    let shown = env.json(&["tasks", "show", &followed, "--json"]);
    assert_eq!(shown["task"]["state"], "succeeded", "{shown}");
    let shown = env.json(&["tasks", "show", &stopped, "--json"]);
    assert_eq!(shown["task"]["state"], "failed", "{shown}");
    assert_eq!(
        shown["task"]["attempt"], 1,
        "a redirect that stops is not retried"
    );
    let error = shown["task"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("not followed") && error.contains("actors.http.redirects"),
        "{error}"
    );
    // Only the followed redirect reached the target.
    assert!(reached.recv().await.is_some());
    assert!(reached.try_recv().is_err(), "the other host was called");

    // With allowed hosts set, a host not among them is never called.
    let config = env.dir.path().join("hosts.yaml");
    std::fs::write(
        &config,
        "actors:\n  http:\n    allowed_hosts: [hooks.example.com, '*.internal.example']\n",
    )
    .unwrap();
    let refused_host = enqueue(&target);
    let _worker = env.worker(&["--config", config.to_str().unwrap()], &[]);
    env.wait_until("the task to a host not allowed to fail", async |env| {
        env.count("failed").await == 2
    })
    .await;
    let shown = env.json(&["tasks", "show", &refused_host, "--json"]);
    assert_eq!(shown["task"]["attempt"], 1, "{shown}");
    assert!(
        shown["task"]["last_error"]
            .as_str()
            .unwrap()
            .contains("is not in actors.http.allowed_hosts"),
        "{shown}"
    );
    assert!(reached.try_recv().is_err(), "a host not allowed was called");
}

/// [`refused`], and `snapshot` (a read-only command) prints the same
/// before and after: nothing was stored.
async fn refused_keeping(env: &Env, args: &[&str], expected: &str, snapshot: &[&str]) {
    let before = env.ok(snapshot);
    refused(env, args, expected).await;
    assert_eq!(env.ok(snapshot), before, "{args:?} changed {snapshot:?}");
}

/// The schedule `name` as `schedules list --json` prints it.
fn listed_schedule(env: &Env, name: &str) -> Option<serde_json::Value> {
    env.json(&["schedules", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

fn json_time(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

async fn schedules_round_trip_from_the_command_line(engine: Engine) {
    let env = Env::new(engine).await;
    let added = env.ok(&[
        "schedules",
        "add",
        "nightly",
        "--actor",
        "sleep",
        "--args",
        r#"{"ms": 5}"#,
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Paris",
        "--queue",
        "reports",
        "--overlap",
        "skip",
    ]);
    assert!(
        added.starts_with("schedule nightly created; next run: "),
        "{added}"
    );

    // Listed beside the built-in ones.
    let nightly = listed_schedule(&env, "nightly").unwrap();
    assert_eq!(nightly["actor"], "sleep");
    assert_eq!(nightly["args"]["ms"], 5);
    assert_eq!(nightly["cron"], "0 3 * * *");
    assert_eq!(nightly["time_zone"], "Europe/Paris");
    assert_eq!(nightly["queue"], "reports");
    assert_eq!(nightly["overlap"], "skip");
    assert_eq!(nightly["paused"], false);
    assert_eq!(nightly["builtin"], false);
    let next = json_time(&nightly["next_run_at"]);
    assert!(next > chrono::Utc::now(), "{nightly}");
    // Three in the morning in Paris is 01:00 or 02:00 UTC.
    assert!(
        added.contains(&next.format("%Y-%m-%d %H:%M:%S").to_string()),
        "{added} vs {next}"
    );
    let purge = listed_schedule(&env, "longshore.purge").unwrap();
    assert_eq!(purge["builtin"], true);
    let human = env.ok(&["schedules", "list"]);
    let header = human.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "CRON",
        "TZ",
        "OVERLAP",
        "PAUSED",
        "NEXT RUN",
        "LAST RUN",
        "LAST TASK",
        "SKIPPED",
    ] {
        assert!(header.contains(column), "{column}: {human}");
    }
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("longshore.purge") && l.contains("built-in")),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("nightly") && l.contains("Europe/Paris")),
        "{human}"
    );
    let shown = env.json(&["schedules", "show", "nightly", "--json"]);
    assert_eq!(shown["schedule"]["name"], "nightly");
    assert_eq!(shown["recent_runs"], serde_json::json!([]));

    // Paused, it still runs by hand; the run points back to it.
    let paused = env.ok(&["schedules", "pause", "nightly"]);
    assert!(paused.contains("schedule nightly paused"), "{paused}");
    let ran = env.ok(&["schedules", "run", "nightly"]);
    let task = ran
        .trim()
        .strip_prefix("schedule nightly: enqueued task ")
        .unwrap_or_else(|| panic!("{ran}"))
        .to_owned();
    let runs = env.json(&["tasks", "list", "--schedule", "nightly", "--json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], task.as_str());
    assert_eq!(runs[0]["schedule"], "nightly");
    assert_eq!(runs[0]["queue"], "reports");
    assert_eq!(runs[0]["args"]["ms"], 5);
    let task_shown = env.ok(&["tasks", "show", &task]);
    assert!(
        task_shown
            .lines()
            .any(|l| l.starts_with("schedule") && l.ends_with("nightly")),
        "{task_shown}"
    );
    let shown = env.json(&["schedules", "show", "nightly", "--json"]);
    assert_eq!(shown["schedule"]["paused"], true);
    assert_eq!(shown["schedule"]["last_task_id"], task.as_str());
    assert_eq!(shown["recent_runs"][0]["id"], task.as_str());
    let human = env.ok(&["schedules", "show", "nightly"]);
    assert!(human.contains("Recent runs"), "{human}");
    assert!(human.contains(&task), "{human}");
    // Its run is still active: the skip policy drops a second one.
    let skipped = env.ok(&["schedules", "run", "nightly"]);
    assert!(
        skipped.contains(&format!("skipped: task {task} still active (overlap skip)")),
        "{skipped}"
    );
    assert_eq!(env.total().await, 1);
    assert_eq!(listed_schedule(&env, "nightly").unwrap()["skipped_runs"], 1);

    // Resumed, it is due at once.
    let resumed = env.ok(&["schedules", "resume", "nightly"]);
    assert!(resumed.contains("runs at once"), "{resumed}");
    let nightly = listed_schedule(&env, "nightly").unwrap();
    assert_eq!(nightly["paused"], false);
    let due = json_time(&nightly["next_run_at"]);
    assert!(due <= chrono::Utc::now(), "{nightly}");

    // An edit that leaves the timing alone keeps the next run; a new
    // cron expression moves it.
    let edited = env.ok(&[
        "schedules",
        "edit",
        "nightly",
        "--priority",
        "3",
        "--overlap",
        "replace",
    ]);
    assert!(edited.contains("schedule nightly updated"), "{edited}");
    let nightly = listed_schedule(&env, "nightly").unwrap();
    assert_eq!(nightly["priority"], 3);
    assert_eq!(nightly["overlap"], "replace");
    assert_eq!(nightly["cron"], "0 3 * * *");
    assert_eq!(json_time(&nightly["next_run_at"]), due);
    env.ok(&["schedules", "edit", "nightly", "--cron", "30 4 * * *"]);
    let nightly = listed_schedule(&env, "nightly").unwrap();
    assert_eq!(nightly["cron"], "30 4 * * *");
    assert!(json_time(&nightly["next_run_at"]) > chrono::Utc::now());

    // Deleting takes --yes; the tasks it made stay.
    let snapshot = ["schedules", "list", "--json"];
    refused_keeping(
        &env,
        &["schedules", "delete", "nightly"],
        "without --yes",
        &snapshot,
    )
    .await;
    let deleted = env.ok(&["schedules", "delete", "nightly", "--yes"]);
    assert!(deleted.contains("schedule nightly deleted"), "{deleted}");
    assert!(listed_schedule(&env, "nightly").is_none());
    refused(
        &env,
        &["schedules", "show", "nightly"],
        "no schedule named `nightly`",
    )
    .await;
    assert_eq!(env.total().await, 1);

    // The built-in ones: retimed, never deleted nor changed otherwise.
    refused_keeping(
        &env,
        &["schedules", "delete", "longshore.purge", "--yes"],
        "built-in schedule and cannot be deleted",
        &snapshot,
    )
    .await;
    refused_keeping(
        &env,
        &["schedules", "edit", "longshore.purge", "--queue", "other"],
        "only --cron and --tz can change",
        &snapshot,
    )
    .await;
    let retimed = env.ok(&[
        "schedules",
        "edit",
        "longshore.purge",
        "--cron",
        "*/10 * * * * *",
    ]);
    assert!(
        retimed.contains("schedule longshore.purge updated"),
        "{retimed}"
    );
    let purge = listed_schedule(&env, "longshore.purge").unwrap();
    assert_eq!(purge["cron"], "*/10 * * * * *");
    assert_eq!(purge["builtin"], true);
    let ran = env.ok(&["schedules", "run", "longshore.purge"]);
    assert!(ran.contains("the maintenance leader runs it"), "{ran}");
    let purge = listed_schedule(&env, "longshore.purge").unwrap();
    assert_eq!(purge["run_requested"], true, "{purge}");
    assert_eq!(env.total().await, 1, "a built-in run enqueued a task");
}

async fn bad_schedule_input_is_refused_and_stores_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&[
        "schedules",
        "add",
        "taken",
        "--actor",
        "noop",
        "--cron",
        "@hourly",
    ]);
    let snapshot = ["schedules", "list", "--json"];
    let add = |rest: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["schedules", "add", "fresh"];
        args.extend_from_slice(rest);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            add(&["--actor", "noop", "--cron", "61 * * * *"]),
            "invalid cron expression `61 * * * *`",
        ),
        (
            add(&["--actor", "noop", "--cron", "* * *"]),
            "invalid cron expression",
        ),
        (
            add(&["--actor", "noop", "--cron", "0 0 31 2 *"]),
            "never comes due",
        ),
        (
            add(&[
                "--actor",
                "noop",
                "--cron",
                "@daily",
                "--tz",
                "Mars/Olympus",
            ]),
            "unknown time zone `Mars/Olympus`",
        ),
        (
            add(&["--actor", "mail", "--cron", "@daily"]),
            "unknown actor `mail`",
        ),
        (
            add(&["--actor", "sleep", "--cron", "@daily", "--args", "{ms: 5}"]),
            "--args is not valid JSON",
        ),
        (
            add(&[
                "--actor",
                "sleep",
                "--cron",
                "@daily",
                "--args",
                r#"{"ms": "x"}"#,
            ]),
            "actor `sleep`",
        ),
        (
            add(&["--actor", "noop", "--cron", "@daily", "--overlap", "wait"]),
            "unknown overlap policy `wait`",
        ),
        (
            add(&["--actor", "noop", "--cron", "@daily", "--related", "user"]),
            "TYPE:ID",
        ),
        (
            add(&["--actor", "noop", "--cron", "@daily", "--max-attempts", "0"]),
            "max attempts",
        ),
        (
            add(&[
                "--actor",
                "noop",
                "--cron",
                "@daily",
                "--time-limit",
                "soon",
            ]),
            "--time-limit",
        ),
        (
            vec![
                "schedules",
                "add",
                "taken",
                "--actor",
                "noop",
                "--cron",
                "@daily",
            ],
            "a schedule named `taken` exists already",
        ),
        (
            vec![
                "schedules",
                "add",
                "longshore.mine",
                "--actor",
                "noop",
                "--cron",
                "@daily",
            ],
            "reserved for built-in schedules",
        ),
        (
            vec!["schedules", "edit", "missing", "--cron", "@daily"],
            "no schedule named `missing`",
        ),
        (vec!["schedules", "edit", "taken"], "nothing to change"),
        (
            vec!["schedules", "edit", "taken", "--cron", "@never"],
            "invalid cron expression",
        ),
        (
            vec!["schedules", "edit", "taken", "--actor", "mail"],
            "unknown actor `mail`",
        ),
        (vec!["schedules", "pause", "missing"], "no schedule named"),
        (vec!["schedules", "run", "missing"], "no schedule named"),
        (
            vec!["schedules", "delete", "missing", "--yes"],
            "no schedule named",
        ),
    ];
    for (args, expected) in &cases {
        refused_keeping(&env, args, expected, &snapshot).await;
    }
    // An actor of the user's own is taken when said so.
    env.ok(&[
        "schedules",
        "add",
        "custom",
        "--actor",
        "mail",
        "--any-actor",
        "--cron",
        "@daily",
    ]);
    assert_eq!(listed_schedule(&env, "custom").unwrap()["actor"], "mail");
    assert_eq!(env.total().await, 0);
}

/// Tasks of schedule `name` in `state`.
async fn schedule_runs(env: &Env, name: &str, state: &str) -> i64 {
    env.observer()
        .await
        .i64(&format!(
            "SELECT count(*) FROM longshore_tasks WHERE schedule_name = '{name}' AND state = '{state}'"
        ))
        .await
}

async fn a_schedule_fires_through_a_worker_and_resume_runs_it_at_once(engine: Engine) {
    let env = Env::new(engine).await;
    // Every second (a leading seconds field).
    env.ok(&[
        "schedules",
        "add",
        "tick",
        "--actor",
        "noop",
        "--cron",
        "* * * * * *",
    ]);
    // Once a year, created paused: only the resume runs it here.
    let added = env.ok(&[
        "schedules",
        "add",
        "yearly",
        "--actor",
        "noop",
        "--cron",
        "0 0 1 1 *",
        "--paused",
    ]);
    assert!(added.contains("paused"), "{added}");
    let _worker = env.worker(&["--worker-id", "only"], &[]);
    env.wait_until("the every-second schedule to run twice", async |env| {
        schedule_runs(env, "tick", "succeeded").await >= 2
    })
    .await;
    assert_eq!(schedule_runs(&env, "yearly", "succeeded").await, 0);
    env.ok(&["schedules", "pause", "tick"]);
    env.ok(&["schedules", "resume", "yearly"]);
    env.wait_until("the resumed schedule to run at once", async |env| {
        schedule_runs(env, "yearly", "succeeded").await == 1
    })
    .await;
    let yearly = listed_schedule(&env, "yearly").unwrap();
    assert!(
        json_time(&yearly["next_run_at"]) > chrono::Utc::now() + chrono::Duration::days(1),
        "after its run it follows its cron again: {yearly}"
    );
    assert!(!yearly["last_run_at"].is_null(), "{yearly}");
    // The paused one stays put (its last run may still be finishing).
    let ticks = env
        .observer()
        .await
        .i64("SELECT count(*) FROM longshore_tasks WHERE schedule_name = 'tick'")
        .await;
    env.wait_until("the last tick to finish", async |env| {
        schedule_runs(env, "tick", "succeeded").await == ticks
    })
    .await;
    let shown = env.json(&["schedules", "show", "tick", "--json"]);
    assert_eq!(shown["schedule"]["paused"], true);
    assert_eq!(
        shown["recent_runs"].as_array().unwrap().len() as i64,
        ticks.min(10)
    );
}

async fn runtime_settings_round_trip_and_bad_keys_change_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    assert_eq!(
        env.json(&["settings", "get", "--json"]),
        serde_json::json!({"max_running": null})
    );
    assert_eq!(env.ok(&["settings", "get", "max_running"]).trim(), "none");
    let set = env.ok(&["settings", "set", "max_running", "3"]);
    assert!(set.starts_with("max_running = 3"), "{set}");
    assert!(set.contains("every node"), "{set}");
    env.ok(&["settings", "set", "queues.mail.max_running", "2"]);
    assert_eq!(env.ok(&["settings", "get", "max_running"]).trim(), "3");
    assert_eq!(
        env.ok(&["settings", "get", "queues.mail.max_running"])
            .trim(),
        "2"
    );
    assert_eq!(
        env.json(&["settings", "get", "--json"]),
        serde_json::json!({"max_running": 3, "queues.mail.max_running": 2})
    );
    let human = env.ok(&["settings", "get"]);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("queues.mail.max_running") && l.ends_with('2')),
        "{human}"
    );
    // The queue's cap shows in `queues list`, and a pause keeps it.
    env.ok(&["queues", "pause", "mail"]);
    let queues = env.json(&["queues", "list", "--json"]);
    let mail = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mail")
        .unwrap();
    assert_eq!(mail["max_running"], 2);
    assert_eq!(mail["paused"], true);
    let human = env.ok(&["queues", "list"]);
    assert!(
        human
            .lines()
            .next()
            .unwrap_or_default()
            .contains("MAX RUNNING"),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("mail") && l.contains(" 2 ")),
        "{human}"
    );

    let snapshot = ["settings", "get", "--json"];
    for (args, expected) in [
        (
            vec!["settings", "set", "worker.concurrency", "4"],
            "unknown runtime setting `worker.concurrency`",
        ),
        (vec!["settings", "set", "max_running", "0"], "at least 1"),
        (vec!["settings", "set", "max_running", "-1"], "at least 1"),
        (
            vec!["settings", "set", "max_running", "many"],
            "positive whole number or `none`",
        ),
        (
            vec!["settings", "set", "queues..max_running", "2"],
            "names no queue",
        ),
        (
            vec!["settings", "set", "queues.mail.max_running", "1.5"],
            "positive whole number",
        ),
        (
            vec!["settings", "get", "max_runing"],
            "unknown runtime setting `max_runing`",
        ),
    ] {
        refused_keeping(&env, &args, expected, &snapshot).await;
    }

    env.ok(&["settings", "set", "max_running", "none"]);
    env.ok(&["settings", "set", "queues.mail.max_running", "none"]);
    assert_eq!(
        env.json(&["settings", "get", "--json"]),
        serde_json::json!({"max_running": null, "queues.mail.max_running": null})
    );
    // Lifting the cap kept the pause.
    let queues = env.json(&["queues", "list", "--json"]);
    assert_eq!(queues[0]["paused"], true, "{queues}");
}

/// Samples the running tasks of each of `queues` (`None`: of every
/// queue), one sample each per round, as fast as the database answers,
/// until `total` tasks have succeeded; returns every sample by queue.
async fn sample_running(env: &Env, queues: &[Option<&str>], total: i64) -> Vec<Vec<i64>> {
    let observer = env.observer().await;
    let statements: Vec<String> = queues
        .iter()
        .map(|queue| match queue {
            Some(q) => format!(
                "SELECT count(*) FROM longshore_tasks WHERE state = 'running' AND queue = '{q}'"
            ),
            None => "SELECT count(*) FROM longshore_tasks WHERE state = 'running'".to_owned(),
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut samples = vec![Vec::new(); queues.len()];
    loop {
        for (sql, samples) in statements.iter().zip(&mut samples) {
            samples.push(observer.i64(sql).await);
        }
        if env.count("succeeded").await == total {
            return samples;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; counts {:?}",
            env.counts().await
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every task succeeded at its first attempt, none failed or vanished.
async fn each_ran_once(env: &Env, total: i64) {
    assert_eq!(env.total().await, total, "tasks lost or duplicated");
    assert_eq!(env.count("succeeded").await, total);
    let attempts = env
        .observer()
        .await
        .i64s("SELECT DISTINCT CAST(attempt AS BIGINT) FROM longshore_tasks")
        .await;
    assert_eq!(attempts, vec![1], "some task ran more than once");
}

async fn the_global_cap_is_never_exceeded_across_three_worker_processes(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["settings", "set", "max_running", "3"]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 40}"#,
        "--count",
        "60",
        "--quiet",
    ]);
    let _workers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|id| env.worker(&["--worker-id", id, "--concurrency", "4"], &[]))
        .collect();
    let samples = sample_running(&env, &[None], 60).await.remove(0);
    let max = samples.iter().copied().max().unwrap_or(0);
    assert!(
        max <= 3,
        "{max} tasks ran at once under a cap of 3; samples {samples:?}"
    );
    // The cap is a ceiling, not a throttle to one.
    assert_eq!(max, 3, "never reached the cap; samples {samples:?}");
    each_ran_once(&env, 60).await;
}

async fn a_queue_cap_is_never_exceeded_across_worker_processes(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["settings", "set", "queues.slow.max_running", "2"]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 40}"#,
        "--count",
        "30",
        "--queue",
        "slow",
        "--quiet",
    ]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 100}"#,
        "--count",
        "30",
        "--queue",
        "free",
        "--quiet",
    ]);
    let _workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            env.worker(
                &[
                    "--worker-id",
                    id,
                    "--concurrency",
                    "4",
                    "--queues",
                    "slow,free",
                ],
                &[],
            )
        })
        .collect();
    let samples = sample_running(&env, &[Some("slow"), Some("free")], 60).await;
    let (slow, free) = (&samples[0], &samples[1]);
    let max_slow = slow.iter().copied().max().unwrap_or(0);
    assert!(
        max_slow <= 2,
        "{max_slow} tasks of a queue capped at 2 ran at once: {slow:?}"
    );
    // The other queue is not held to it.
    let max_free = free.iter().copied().max().unwrap_or(0);
    assert!(
        max_free > 2,
        "the uncapped queue never ran more than {max_free}: {free:?}"
    );
    each_ran_once(&env, 60).await;
}

/// Tasks by actor and state, as `tasks stats --by actor --json` prints them
/// (states without tasks left out).
fn by_actor(env: &Env) -> serde_json::Value {
    let mut stats = env.json(&["tasks", "stats", "--by", "actor", "--json"]);
    for counts in stats.as_object_mut().unwrap().values_mut() {
        counts.as_object_mut().unwrap().retain(|_, n| n != 0);
    }
    stats
}

/// Runs `count` noop tasks on queue `done` to success with a worker of its
/// own, which then stops.
async fn finished_noops(env: &Env, count: &str) {
    let mut worker = env.worker(&["--queues", "done"], &[]);
    env.ok(&["enqueue", "noop", "--queue", "done", "--count", count, "-q"]);
    env.wait_until("the noop tasks to succeed", async |env| {
        env.count("succeeded").await.to_string() == count
    })
    .await;
    worker.signal("TERM");
    assert!(worker.exit_within(Duration::from_secs(20)).await.success());
}

async fn tasks_delete_by_actor_takes_only_that_actors_queued_tasks(engine: Engine) {
    let env = Env::new(engine).await;
    finished_noops(&env, "2").await;
    env.ok(&["enqueue", "noop", "--count", "5", "-q"]);
    env.ok(&["enqueue", "noop", "--queue", "mail", "--count", "2", "-q"]);
    env.ok(&["enqueue", "noop", "--delay", "1h"]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 10}"#,
        "--count",
        "3",
        "-q",
    ]);
    let before = serde_json::json!({
        "noop": {"scheduled": 1, "queued": 7, "succeeded": 2},
        "sleep": {"queued": 3},
    });
    assert_eq!(by_actor(&env), before);

    // The dry run counts, by state, and changes nothing.
    let dry = env.ok(&[
        "tasks",
        "delete",
        "--actor",
        "noop",
        "--state",
        "queued",
        "--dry-run",
    ]);
    let table: Vec<Vec<&str>> = dry
        .lines()
        .take(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table,
        vec![
            vec!["STATE", "MATCHING"],
            vec!["queued", "7"],
            vec!["total", "7"]
        ],
        "{dry}"
    );
    assert!(dry.contains("nothing was deleted"), "{dry}");
    let dry = env.json(&[
        "tasks",
        "delete",
        "--actor",
        "noop",
        "--state",
        "queued",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(
        dry,
        serde_json::json!({"dry_run": true, "matched": {"queued": 7}, "matched_total": 7, "deleted": 0})
    );
    assert_eq!(by_actor(&env), before);

    // The deletion: progress on stderr, the total on stdout.
    let out = env.run(&[
        "tasks", "delete", "--actor", "noop", "--state", "queued", "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "deleted 7 tasks\n");
    assert!(
        text(&out.stderr).contains("deleted 7 of 7 tasks"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        by_actor(&env),
        serde_json::json!({
            "noop": {"scheduled": 1, "succeeded": 2},
            "sleep": {"queued": 3},
        })
    );

    // By age: a finished task's age counts from when it finished.
    let none = env.ok(&[
        "tasks",
        "delete",
        "--state",
        "succeeded",
        "--older-than",
        "1h",
        "--yes",
    ]);
    assert_eq!(none, "no task matches: nothing was deleted\n");
    let some = env.ok(&[
        "tasks",
        "delete",
        "--state",
        "succeeded,failed,cancelled",
        "--older-than",
        "0s",
        "--yes",
    ]);
    assert_eq!(some, "deleted 2 tasks\n");
    // A queue of a repeated --state: what is left of noop on default.
    let last = env.ok(&[
        "tasks",
        "delete",
        "--queue",
        "default",
        "--state",
        "scheduled",
        "--state",
        "queued",
        "--actor",
        "noop",
        "--yes",
    ]);
    assert_eq!(last, "deleted 1 tasks\n");
    assert_eq!(by_actor(&env), serde_json::json!({"sleep": {"queued": 3}}));
}

async fn tasks_delete_refuses_running_unfiltered_and_unconfirmed_deletions(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop", "--count", "3", "-q"]);
    refused(
        &env,
        &["tasks", "delete", "--actor", "noop"],
        "not deleting without --yes",
    )
    .await;
    refused(
        &env,
        &["tasks", "delete", "--yes"],
        "refusing to delete every task",
    )
    .await;
    refused(
        &env,
        &["tasks", "delete", "--dry-run"],
        "refusing to delete every task",
    )
    .await;
    refused(
        &env,
        &["tasks", "delete", "--state", "queued,running", "--yes"],
        "running tasks are never deleted",
    )
    .await;
    refused(
        &env,
        &["tasks", "delete", "--state", "done", "--yes"],
        "unknown task state `done`",
    )
    .await;
    refused(
        &env,
        &["tasks", "delete", "--actor", "", "--yes"],
        "actor name is empty",
    )
    .await;
    for args in [
        &[
            "tasks",
            "delete",
            "--actor",
            "noop",
            "--older-than",
            "soon",
            "--yes",
        ][..],
        &["tasks", "delete", "--actor", "noop", "--dry-run", "--yes"][..],
    ] {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(env.count("queued").await, 3);
}

async fn queues_flush_deletes_the_waiting_tasks_and_cancels_the_running_ones(engine: Engine) {
    let env = Env::new(engine).await;
    let _worker = env.worker(&["--queues", "hot", "--concurrency", "2"], &[]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 60000}"#,
        "--queue",
        "hot",
        "--count",
        "2",
        "-q",
    ]);
    env.wait_until("two tasks to run", async |env| {
        env.count("running").await == 2
    })
    .await;
    // Paused, so that the slots the cancelled tasks free take nothing more.
    env.ok(&["queues", "pause", "hot"]);
    env.ok(&["enqueue", "noop", "--queue", "hot", "--count", "4", "-q"]);
    env.ok(&["enqueue", "noop", "--queue", "hot", "--delay", "1h"]);
    env.ok(&["enqueue", "noop", "--queue", "cold"]);

    refused(
        &env,
        &["queues", "flush", "hot"],
        "not flushing queue hot without --yes",
    )
    .await;
    refused(
        &env,
        &["queues", "flush", " ", "--yes"],
        "queue name is empty",
    )
    .await;
    let dry = env.ok(&["queues", "flush", "hot", "--dry-run"]);
    assert!(
        dry.starts_with(
            "queue hot: 5 waiting tasks would be deleted (scheduled 1, queued 4) and 2 running tasks asked to cancel\n"
        ),
        "{dry}"
    );
    assert_eq!(env.total().await, 8);
    assert_eq!(env.count("running").await, 2);

    let out = env.run(&["queues", "flush", "hot", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "queue hot flushed: deleted 5 waiting tasks; asked 2 running tasks to cancel\n"
    );
    assert!(
        text(&out.stderr).contains("deleted 5 of 5 waiting tasks of queue hot"),
        "{}",
        text(&out.stderr)
    );
    env.wait_until("the running tasks to end cancelled", async |env| {
        env.count("cancelled").await == 2
    })
    .await;
    let counts = env.counts().await;
    assert_eq!(counts.get("queued"), Some(&1), "{counts:?}");
    assert_eq!(env.total().await, 3, "{counts:?}");
    // Nothing left to flush.
    let again = env.json(&["queues", "flush", "hot", "--yes", "--json"]);
    assert_eq!(
        again,
        serde_json::json!({
            "queue": "hot", "dry_run": false,
            "matched": {"scheduled": 0, "queued": 0, "running": 0},
            "deleted": 0, "signalled": 0,
        })
    );
}

/// The ids `tasks list ARGS --json` prints, as a set.
fn listed(env: &Env, args: &[&str]) -> std::collections::BTreeSet<String> {
    let mut all = vec!["tasks", "list", "--json"];
    all.extend_from_slice(args);
    env.json(&all)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn tasks_list_filters_by_status_related_object_and_time(engine: Engine) {
    let env = Env::new(engine).await;
    let first = ids(&env.ok(&["enqueue", "noop", "--related", "user:1"]));
    let second = ids(&env.ok(&["enqueue", "noop", "--related", "user:2"]));
    let cert = ids(&env.ok(&["enqueue", "noop", "--related", "cert:a:b"]));
    let alone = ids(&env.ok(&["enqueue", "noop"]));
    let later = ids(&env.ok(&["enqueue", "noop", "--delay", "1h"]));
    let set = |groups: &[&Vec<String>]| -> std::collections::BTreeSet<String> {
        groups.iter().flat_map(|g| g.iter().cloned()).collect()
    };
    assert_eq!(
        listed(&env, &["--related", "user"]),
        set(&[&first, &second])
    );
    assert_eq!(listed(&env, &["--related", "user:1"]), set(&[&first]));
    assert_eq!(listed(&env, &["--related", "cert:a:b"]), set(&[&cert]));
    assert_eq!(listed(&env, &["--standalone"]), set(&[&alone, &later]));
    assert_eq!(listed(&env, &["--status", "scheduled"]), set(&[&later]));
    assert_eq!(
        listed(&env, &["--status", "waiting_to_run", "--standalone"]),
        set(&[&alone])
    );
    assert_eq!(
        listed(&env, &["--status", "warning,error", "--exclude-successful"]),
        set(&[])
    );
    assert_eq!(listed(&env, &["--exclude-successful"]).len(), 5);
    // An age counts back from now; an RFC 3339 time is taken as it is.
    assert_eq!(listed(&env, &["--created-after", "1h"]).len(), 5);
    assert!(listed(&env, &["--created-before", "1h"]).is_empty());
    assert!(listed(&env, &["--created-after", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        listed(
            &env,
            &[
                "--created-before",
                "2999-01-01T00:00:00+02:00",
                "--related",
                "user:2"
            ]
        ),
        set(&[&second])
    );
    // Unfinished tasks never match a finish time.
    assert!(listed(&env, &["--finished-after", "100d"]).is_empty());
    let human = env.ok(&["tasks", "list", "--related", "cert"]);
    assert!(human.contains(&cert[0]), "{human}");
}

async fn tasks_list_refuses_bad_filters_with_one_line(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop", "--related", "user:1"]);
    let bad = [
        (vec!["--status", "fine"], "unknown task status `fine`"),
        (vec!["--related", ":1"], "expected KIND or KIND:ID"),
        (
            vec!["--related", "user:"],
            "object id after `user:` is empty",
        ),
        (
            vec!["--standalone", "--related", "user"],
            "ask for standalone tasks or for a related object, not both",
        ),
        (
            vec!["--created-after", "yesterday"],
            "--created-after: expected an RFC 3339 time",
        ),
        (
            vec!["--finished-before", "2025-13-01T00:00:00Z"],
            "--finished-before: expected an RFC 3339 time",
        ),
        (
            vec!["--created-after", "1h", "--created-before", "2h"],
            "must be earlier than",
        ),
    ];
    for (args, expected) in bad {
        let mut all = vec!["tasks", "list"];
        all.extend_from_slice(&args);
        refused(&env, &all, expected).await;
    }
    assert_eq!(env.total().await, 1);
}

/// `longshore tasks list | head -1`: when the reader goes away, the command
/// ends with SIGPIPE's status and says nothing on stderr (no panic).
async fn a_reader_that_stops_early_ends_the_command_quietly(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop", "--count", "50"]);
    let mut child = env
        .cmd()
        .args(["tasks", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader closes before the command has written a line: it connects
    // to the database first.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// `tasks list` says on stderr when more tasks match than it printed, and
/// pages through them with `--before`, or prints them all with `--all`.
async fn tasks_list_says_when_more_match_and_pages_through_them(engine: Engine) {
    let env = Env::new(engine).await;
    let ids = ids(&env.ok(&["enqueue", "noop", "--count", "5", "--queue", "held"]));
    let newest_first: Vec<&String> = ids.iter().rev().collect();
    let first = env.run(&["tasks", "list", "--limit", "2"]);
    assert!(first.status.success());
    let stdout = text(&first.stdout);
    let listed: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, [newest_first[0].as_str(), newest_first[1].as_str()]);
    let hint = text(&first.stderr);
    assert!(
        hint.contains(&format!("--before {}", newest_first[1])) && hint.contains("--all"),
        "{hint}"
    );

    let next = env.ok(&["tasks", "list", "--limit", "2", "--before", newest_first[1]]);
    let listed: Vec<&str> = next
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, [newest_first[2].as_str(), newest_first[3].as_str()]);

    // The last page says nothing more.
    let last = env.run(&["tasks", "list", "--limit", "2", "--before", newest_first[3]]);
    assert_eq!(
        text(&last.stdout).lines().count(),
        2,
        "{}",
        text(&last.stdout)
    );
    assert!(text(&last.stderr).is_empty(), "{}", text(&last.stderr));

    let all = env.ok(&["tasks", "list", "--all"]);
    assert_eq!(all.lines().count(), 6, "{all}");
    let lines = env.ok(&["tasks", "list", "--all", "--json"]);
    let objects: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 5);
    assert_eq!(objects[0]["id"], newest_first[0].as_str());
    let out = env.run(&["tasks", "list", "--before", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a task id"),
        "{}",
        text(&out.stderr)
    );
}

/// A token's secret captured by `$(…)` is not "the line above"; a flush
/// of a queue that does not exist says so.
async fn messages_say_what_happened_where_the_output_went(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.run(&["tokens", "create", "--name", "ci", "--scope", "read"]);
    assert!(out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("its secret went to standard output"),
        "{said}"
    );
    assert!(!said.contains("line above"), "{said}");

    let out = env.run(&["queues", "flush", "nosuchqueue", "--dry-run"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("no queue named nosuchqueue"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["enqueue", "noop", "--queue", "mail", "--delay", "1h"]);
    let out = env.run(&["queues", "flush", "mail", "--dry-run"]);
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

async fn times_are_marked_utc_or_shown_in_the_local_zone_when_asked(engine: Engine) {
    let env = Env::new(engine).await;
    let id = ids(&env.ok(&["enqueue", "noop", "--delay", "1h"])).remove(0);
    let run_at = |out: &str| {
        out.lines()
            .find(|line| line.starts_with("run at"))
            .unwrap_or_else(|| panic!("no `run at` line: {out}"))
            .trim_start_matches("run at")
            .trim()
            .to_owned()
    };

    // By default every time says UTC: a field, and every table cell.
    let shown = env.ok(&["tasks", "show", &id]);
    let utc = run_at(&shown);
    assert!(utc.ends_with(" UTC"), "{shown}");
    let listed = env.ok(&["tasks", "list"]);
    let row = listed.lines().nth(1).unwrap();
    assert!(row.contains(" UTC"), "{listed}");
    let at = chrono::NaiveDateTime::parse_from_str(
        utc.trim_end_matches(" UTC"),
        "%Y-%m-%d %H:%M:%S%.3f",
    )
    .unwrap()
    .and_utc();

    // `--time-zone local` (or LONGSHORE_TIME_ZONE=local) prints the
    // machine's zone with its offset: the same instant.
    for (args, zone_env) in [
        (&["--time-zone", "local", "tasks", "show", &id][..], None),
        (&["tasks", "show", &id][..], Some("local")),
    ] {
        let mut cmd = env.cmd();
        // A POSIX zone string: no time zone database needed.
        cmd.env("TZ", "IST-5:30").args(args);
        if let Some(zone) = zone_env {
            cmd.env("LONGSHORE_TIME_ZONE", zone);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let local = run_at(&text(&out.stdout));
        assert!(local.ends_with(" +05:30"), "{local}");
        let parsed = chrono::DateTime::parse_from_str(&local, "%Y-%m-%d %H:%M:%S%.3f %:z").unwrap();
        assert_eq!(parsed.with_timezone(&chrono::Utc), at);
    }

    // JSON stays in UTC whatever the option.
    let json = env.json(&["--time-zone", "local", "tasks", "show", &id, "--json"]);
    let json_run_at = json["task"]["run_at"]
        .as_str()
        .or_else(|| json["run_at"].as_str())
        .unwrap_or_else(|| panic!("no run_at in {json}"));
    assert!(json_run_at.ends_with('Z'), "{json_run_at}");

    // A zone that is not one is refused.
    let out = env.run(&["--time-zone", "mars", "tasks", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("mars"), "{}", text(&out.stderr));
}

async fn control_characters_are_refused_in_names_and_escaped_in_output(engine: Engine) {
    let env = Env::new(engine).await;
    // Names: refused on input, one line, nothing written.
    for args in [
        &["enqueue", "noop", "--queue", "mail\nfake"][..],
        &["enqueue", "noop", "--related", "user:1\u{1b}[2J"],
        &["enqueue", "noop", "--unique-key", "a\tb"],
        &["queues", "pause", "x\ny"],
        &["settings", "set", "queues.a\u{7}.max_running", "2"],
        &[
            "schedules",
            "add",
            "night\nly",
            "--actor",
            "noop",
            "--cron",
            "@daily",
        ],
    ] {
        refused(&env, args, "control character").await;
    }
    assert!(!env.ok(&["queues", "list"]).contains('x'));
    assert!(
        env.ok(&["schedules", "list"])
            .lines()
            .all(|l| !l.starts_with("night"))
    );

    // Data may hold them (a failure message here): what the CLI prints
    // escapes them, and a message's second line cannot pass for a log line.
    let message = "line one\n  2026-01-01 00:00:00.000 UTC  info     fake line\u{1b}[31m";
    let args = serde_json::json!({"times": 1, "message": message}).to_string();
    let id = ids(&env.ok(&[
        "enqueue",
        "fail",
        "--args",
        &args,
        "--max-attempts",
        "1",
        "--queue",
        "ctl",
    ]))
    .remove(0);
    let _worker = env.worker(&["--queues", "ctl"], &[]);
    env.wait_until("the task to fail", async |env| {
        env.count("failed").await == 1
    })
    .await;
    let shown = env.ok(&["tasks", "show", &id]);
    assert!(!shown.contains('\u{1b}'), "{shown}");
    assert!(shown.contains("fake line\\u{1b}[31m"), "{shown}");
    let logged: Vec<&str> = shown
        .lines()
        .filter(|l| l.trim_start().starts_with("2026-01-01"))
        .collect();
    assert_eq!(logged.len(), 1, "{shown}");
    assert!(
        logged[0].starts_with("                                         "),
        "the message's second line is indented under the first: {shown}"
    );
    let listed = env.ok(&["tasks", "list", "--queue", "ctl"]);
    assert!(!listed.contains('\u{1b}'), "{listed}");
    // JSON keeps the data as it is.
    let json = env.json(&["tasks", "show", &id, "--json"]);
    assert!(json.to_string().contains("fake line\\u001b[31m"), "{json}");
}
