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
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Engine::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Engine::Sqlite).await;
                }
            )*
        }
    };
}

on_both_engines!(
    bad_input_is_refused_with_one_line_and_changes_nothing,
    an_unreachable_database_or_a_bad_setting_is_one_line,
    migrations_run_once_when_nodes_start_together,
    enqueue_count_inserts_in_bulk_and_stats_count_them,
    a_unique_key_enqueued_twice_keeps_one_task,
    a_worker_runs_tasks_and_show_prints_each_execution,
    cancel_and_retry_from_the_command_line,
    a_worker_killed_mid_task_loses_nothing,
    two_worker_processes_run_each_task_once,
    sigterm_drains_then_returns_unfinished_tasks_to_the_queue,
    the_http_actor_calls_the_webhook_and_logs_the_response,
    the_http_actor_retries_an_unexpected_status_then_fails,
    a_paused_queue_keeps_its_tasks_until_resumed,
    workers_list_shows_a_running_worker_until_it_stops,
    killing_the_leader_hands_maintenance_to_another_worker_within_a_lease,
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
        .args(["--database-url", &unreachable, "enqueue", "noop"])
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
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
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
    assert!(human.contains("Current execution (attempt 3)"), "{human}");
    assert!(human.contains("Previous execution (attempt 1)"), "{human}");
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

    worker.signal("TERM");
    env.wait_until("the stopped worker to leave the list", async |env| {
        env.ok(&["workers", "list", "--json"]).trim() == "[]"
    })
    .await;
}

/// Which worker `workers list` says holds the maintenance role.
fn maintenance_leader(env: &Env) -> Option<String> {
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["workers", "list", "--json"])).unwrap();
    listed.as_array().unwrap().iter().find_map(|w| {
        let leads = w["leads"].as_array()?;
        leads
            .iter()
            .any(|role| role == "maintenance")
            .then(|| w["id"].as_str().unwrap_or_default().to_owned())
    })
}

async fn killing_the_leader_hands_maintenance_to_another_worker_within_a_lease(engine: Engine) {
    let env = Env::new(engine).await;
    let first = env.worker(&["--worker-id", "first"], &[]);
    env.wait_until("the first worker to lead", async |env| {
        maintenance_leader(env).as_deref() == Some("first")
    })
    .await;
    let _second = env.worker(&["--worker-id", "second"], &[]);
    env.wait_until("the second worker to be listed", async |env| {
        env.ok(&["workers", "list"]).contains("second")
    })
    .await;
    first.signal("KILL");
    // The lease is 2 s here: the role passes once it runs out.
    env.wait_until("the second worker to lead", async |env| {
        maintenance_leader(env).as_deref() == Some("second")
    })
    .await;
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
        .i64s("SELECT DISTINCT CAST(attempt AS BIGINT) FROM longshore_tasks")
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
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
