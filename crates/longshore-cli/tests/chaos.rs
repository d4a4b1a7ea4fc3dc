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
