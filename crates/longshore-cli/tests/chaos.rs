//! The database itself failing under a running system: a PostgreSQL
//! cluster of the test's own crashes and restarts while a producer
//! enqueues and a worker drains (PostgreSQL only: SQLite lives inside the
//! process).

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::{Env, Proc};

/// Nothing is lost when PostgreSQL crashes (`pg_ctl stop -m immediate`)
/// and comes back mid-drain: every task whose enqueue was acknowledged
/// exists and succeeds, the worker process resumes by itself, and the
/// producer carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_mid_drain_loses_no_acknowledged_task() {
    let cluster = Cluster::start();
    let env = Arc::new(Env::on_postgres_url(cluster.url()).await);
    let mut cmd = env.cmd();
    cmd.args(["worker", "--worker-id", "drainer", "--concurrency", "8"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut worker = Proc::spawn(cmd);

    // The producer: one `longshore enqueue` after another; an id printed is
    // an acknowledged task, an error is one that may or may not exist.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (env, acknowledged, refused, stop) = (
            env.clone(),
            acknowledged.clone(),
            refused.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let out = env.run(&["enqueue", "sleep", "--args", r#"{"ms": 20}"#]);
                if out.status.success() {
                    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    acknowledged.lock().unwrap().push(id);
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let produced = || acknowledged.lock().unwrap().len();

    env.wait_within(
        Duration::from_secs(60),
        "the first tasks to be enqueued and run",
        async |env| produced() >= 30 && env.count("succeeded").await >= 10,
    )
    .await;
    cluster.crash_and_restart();
    let back = Instant::now();
    let done_at_crash = env.count("succeeded").await;
    let produced_at_crash = produced();

    // The worker resumes by itself: more tasks succeed than had by then.
    env.wait_within(
        Duration::from_secs(60),
        "the worker to resume after the restart",
        async |env| env.count("succeeded").await > done_at_crash,
    )
    .await;
    let resumed_after = back.elapsed();
    // And the producer: tasks are acknowledged again.
    env.wait_within(
        Duration::from_secs(60),
        "the producer to enqueue after the restart",
        async |_| produced() >= produced_at_crash + 20,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    let wanted: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let observer = env.observer().await;
    env.wait_within(
        Duration::from_secs(120),
        "every acknowledged task to succeed",
        async |_| {
            let done: HashSet<String> = observer
                .strings("SELECT CAST(id AS TEXT) FROM longshore_tasks WHERE state = 'succeeded'")
                .await
                .into_iter()
                .collect();
            wanted.iter().all(|id| done.contains(*id))
        },
    )
    .await;
    let total = env.total().await;
    let refused = refused.load(Ordering::SeqCst);
    let extra = total - i64::try_from(acknowledged.len()).unwrap();
    // An enqueue whose reply the crash cut off may have committed: at most
    // one task per refused enqueue exists beyond the acknowledged ones.
    assert!(
        (0..=i64::try_from(refused).unwrap()).contains(&extra),
        "{total} tasks for {} acknowledged and {refused} refused enqueues",
        acknowledged.len()
    );
    assert!(worker.running(), "the worker exited: {}", worker.stderr());
    eprintln!(
        "PostgreSQL crash mid-drain: {} enqueues acknowledged ({refused} refused while it was down), \
         {total} tasks, none lost; the worker ran tasks again {:.2} s after the server was back",
        acknowledged.len(),
        resumed_after.as_secs_f64()
    );
}

/// Every operation through PgBouncer in transaction pooling (a different
/// server connection for each transaction), with `poll_only`: enqueue,
/// claim and complete, cancel, a schedule, caps, retries; nothing lost.
///
/// Debian's PgBouncer (1.18 on bookworm) cannot carry named prepared
/// statements in this mode; poll-only mode runs every statement unnamed and
/// inside a transaction (see `crates/longshore-postgres/src/exec.rs`), so
/// any version works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_works_through_pgbouncer_in_transaction_mode() {
    let cluster = Cluster::start();
    // Migrated directly, as docs/deployment.md says to.
    let env = Env::on_postgres_url(cluster.url()).await;
    let bouncer = cluster.bouncer();
    let through = |args: &[&str]| -> std::process::Output {
        let mut cmd = env.cmd();
        cmd.env("LONGSHORE_DATABASE_URL", bouncer.url("postgres"))
            .env("LONGSHORE_DATABASE__POLL_ONLY", "true")
            .args(args);
        cmd.output().unwrap()
    };
    let ok = |args: &[&str]| -> String {
        let out = through(args);
        assert!(
            out.status.success(),
            "longshore {args:?} through pgbouncer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Migrating through PgBouncer works too, again and again (nothing left
    // to apply here, but the ledger is read under the advisory lock, on
    // server connections other clients used before).
    ok(&["migrate"]);
    ok(&["migrate"]);
    ok(&["enqueue", "noop", "--count", "300", "--quiet"]);
    ok(&["enqueue", "fail", "--args", r#"{"times": 2}"#]);
    let later = ok(&["enqueue", "noop", "--delay", "1h"]);
    ok(&["tasks", "cancel", later.trim()]);
    ok(&["settings", "set", "max_running", "4"]);
    ok(&["settings", "set", "queues.default.max_running", "3"]);
    ok(&[
        "schedules",
        "add",
        "tick",
        "--actor",
        "noop",
        "--cron",
        "* * * * * *",
    ]);

    let mut cmd = env.cmd();
    cmd.env("LONGSHORE_DATABASE_URL", bouncer.url("postgres"))
        .env("LONGSHORE_DATABASE__POLL_ONLY", "true")
        .env("LONGSHORE_DATABASE__MIGRATE_ON_START", "false")
        .args(["worker", "--worker-id", "pooled", "--concurrency", "8"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut worker = Proc::spawn(cmd);
    let observer = env.observer().await;
    let most_running = Arc::new(AtomicUsize::new(0));
    env.wait_within(
        Duration::from_secs(120),
        "every task and two schedule runs to succeed",
        async |env| {
            let running = observer
                .i64("SELECT count(*) FROM longshore_tasks WHERE state = 'running'")
                .await;
            most_running.fetch_max(usize::try_from(running).unwrap(), Ordering::SeqCst);
            let scheduled_runs = observer
                .i64(
                    "SELECT count(*) FROM longshore_tasks \
                     WHERE schedule_name = 'tick' AND state = 'succeeded'",
                )
                .await;
            env.count("succeeded").await >= 301 + scheduled_runs && scheduled_runs >= 2
        },
    )
    .await;
    assert!(worker.running(), "the worker exited: {}", worker.stderr());
    // The cap on the queue held (as far as samples can tell).
    assert!(most_running.load(Ordering::SeqCst) <= 3);
    let shown = ok(&["tasks", "show", later.trim(), "--json"]);
    assert!(shown.contains(r#""state": "cancelled""#), "{shown}");
    let failing = observer
        .i64("SELECT CAST(attempt AS BIGINT) FROM longshore_tasks WHERE actor = 'fail'")
        .await;
    assert_eq!(failing, 3, "retried twice, then succeeded");
    assert_eq!(
        observer
            .i64("SELECT count(*) FROM longshore_tasks WHERE schedule_name IS NULL")
            .await,
        302,
        "tasks lost or doubled"
    );
    let stderr = worker.stderr();
    assert!(
        !stderr.contains("prepared statement"),
        "the worker hit PgBouncer's pooling: {stderr}"
    );
}
