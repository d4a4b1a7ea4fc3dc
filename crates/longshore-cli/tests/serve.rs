//! `longshore serve`, and the SQLite data directory it works in by default,
//! driven as an operator would: each test in an empty directory of its own,
//! with no database configured unless it says so.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::{DEFAULT_DB, Engine, Env, Proc, text};

/// A running `longshore serve` and what it said on start.
struct Serve {
    proc: Proc,
    line: String,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `serve --listen 127.0.0.1:0 ARGS` and waits for its line.
    fn start(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Serve {
        let mut cmd = env.cmd();
        cmd.envs(vars.iter().copied());
        Serve::spawn(cmd, args)
    }

    /// Starts `CMD serve --listen 127.0.0.1:0 ARGS` and waits for its line.
    fn spawn(mut cmd: std::process::Command, args: &[&str]) -> Serve {
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut proc = Proc::spawn(cmd);
        let line = proc.stdout_line(Duration::from_secs(30));
        let addr = line
            .strip_prefix("longshore serve: listening on http://")
            .and_then(|rest| rest.split_once(", using "))
            .map(|(addr, _)| addr.parse::<SocketAddr>().unwrap())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"));
        assert_ne!(addr.port(), 0, "{line}");
        Serve { proc, line, addr }
    }

    /// GET `path` over plain HTTP/1.1: the status and the JSON body.
    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            text(&response)
        };
        let response = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap_or_else(|_| panic!("GET {path}: no answer within 10s"));
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("GET {path}: {response}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: {head}"));
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "GET {path}: {head}"
        );
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        (status, json)
    }

    /// SIGTERM, then a clean exit with nothing more on stdout.
    async fn stop(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.exit_within(Duration::from_secs(15)).await;
        assert!(
            status.success(),
            "serve exited with {status}: {}",
            self.proc.stderr()
        );
        let rest = self.proc.rest_of_stdout();
        assert!(
            rest.is_empty(),
            "serve printed more than one line: {rest:?}"
        );
    }
}

/// Waits for `tasks show ID --json` to say `state`.
async fn wait_for_state(env: &Env, id: &str, state: &str, limit: Duration) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let shown: serde_json::Value =
            serde_json::from_str(&env.ok(&["tasks", "show", id, "--json"])).unwrap();
        if shown["task"]["state"] == state {
            return shown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} is not {state} after {limit:?}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A command that must fail with one line on stderr containing every one of
/// `expected`, and print nothing on stdout.
fn one_line_error(env: &Env, args: &[&str], expected: &[&str]) -> String {
    let out = env.run(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{args:?}: {stderr}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    stderr
}

#[tokio::test]
async fn serve_with_no_configuration_answers_health_checks_and_runs_tasks_from_other_processes() {
    let env = Env::zero_config();
    let serve = Serve::start(&env, &[], &[]);
    assert!(
        serve
            .line
            .contains(&format!("using SQLite at {DEFAULT_DB}")),
        "{}",
        serve.line
    );
    assert!(
        serve.line.contains(
            "on queue(s) default with concurrency 16, agents' gateway on http://127.0.0.1:"
        ),
        "{}",
        serve.line
    );
    assert!(env.dir.path().join(DEFAULT_DB).is_file());

    let (status, body) = serve.get("/health/live").await;
    assert_eq!((status, body), (200, serde_json::json!({ "status": "ok" })));
    let (status, body) = serve.get("/health/ready").await;
    assert_eq!(
        (status, body),
        (
            200,
            serde_json::json!({ "status": "ok", "engine": "sqlite" })
        )
    );

    // Another process, in the same directory, finds the same database.
    let id = env.ok(&["enqueue", "noop"]);
    let id = id.trim();
    let shown = wait_for_state(&env, id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(shown["task"]["attempt"], 1);
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "list", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["state"], "succeeded");
    assert!(env.ok(&["tasks", "list"]).contains(id));

    serve.stop().await;
    // The file outlives the process, with the task in it.
    assert_eq!(env.counts().await.get("succeeded"), Some(&1));
}

#[tokio::test]
async fn an_idle_serve_picks_up_a_task_another_process_wrote() {
    let env = Env::zero_config();
    // The default idle backoff (up to 1 s): nothing wakes this worker when
    // another process writes a task, only its own polling.
    let mut cmd = env.cmd();
    cmd.env_remove("LONGSHORE_WORKER__IDLE_MAX");
    let serve = Serve::spawn(cmd, &["--worker-id", "idle"]);
    // Let it go idle: several empty polls, its backoff at its longest.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.total().await, 0);

    let id = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 1}"#]);
    let shown = wait_for_state(&env, id.trim(), "succeeded", Duration::from_secs(10)).await;
    assert_eq!(shown["task"]["attempt"], 1);
    serve.stop().await;
}

/// Takes SQLite's write lock on `path` and keeps it until the transaction
/// is rolled back.
async fn hold_write_lock(path: &std::path::Path) -> sqlx::SqliteConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; CREATE TABLE test_lock_holder (x INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn release_write_lock(mut conn: sqlx::SqliteConnection) {
    sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// Whether process `pid` has `path` open.
fn has_open(pid: &str, path: &std::path::Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target == path)
}

fn spawn_enqueue(env: &Env, vars: &[(&str, &str)]) -> Proc {
    let mut cmd = env.cmd();
    cmd.args(["enqueue", "noop"])
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Proc::spawn(cmd)
}

#[tokio::test]
async fn a_locked_database_makes_enqueue_wait_then_succeed() {
    let env = Env::zero_config();
    env.ok(&["migrate"]);
    let path = env.sqlite_path().canonicalize().unwrap();
    let lock = hold_write_lock(&path).await;

    let mut enqueue = spawn_enqueue(&env, &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !has_open(&enqueue.pid(), &path) {
        assert!(
            enqueue.running(),
            "enqueue exited while the lock was held: {}",
            enqueue.stderr()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "enqueue never opened the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well inside the default 5 s busy timeout, it waits: no failure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        enqueue.running(),
        "enqueue gave up while the lock was held: {}",
        enqueue.stderr()
    );
    assert_eq!(env.total().await, 0);
    release_write_lock(lock).await;

    let status = enqueue.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "enqueue: {}", enqueue.stderr());
    assert_eq!(enqueue.stderr(), "");
    let id = enqueue.stdout_line(Duration::from_secs(5));
    let (state, _, attempt) = env.observer().await.task(&id).await;
    assert_eq!((state.as_str(), attempt), ("queued", 0));
    assert_eq!(env.total().await, 1);
}

#[tokio::test]
async fn a_database_locked_past_the_busy_timeout_is_one_line_and_writes_nothing() {
    let env = Env::zero_config();
    env.ok(&["migrate"]);
    let lock = hold_write_lock(&env.sqlite_path()).await;

    let mut enqueue = spawn_enqueue(&env, &[("LONGSHORE_DATABASE__BUSY_TIMEOUT", "300ms")]);
    // The lock is held until the enqueue gives up.
    let status = enqueue.exit_within(Duration::from_secs(15)).await;
    release_write_lock(lock).await;

    let stderr = enqueue.stderr();
    assert!(!status.success(), "enqueue succeeded under a held lock");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("locked") || stderr.contains("busy"),
        "{stderr}"
    );
    assert_eq!(enqueue.rest_of_stdout(), Vec::<String>::new());
    assert_eq!(env.total().await, 0);
}

#[tokio::test]
async fn serve_on_a_taken_port_fails_naming_it_and_claims_nothing() {
    let env = Env::zero_config();
    env.ok(&["migrate"]);
    let id = env.ok(&["enqueue", "noop"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    let mut cmd = env.cmd();
    cmd.args(["serve", "--listen", &addr, "--grpc-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut serve = Proc::spawn(cmd);
    let status = serve.exit_within(Duration::from_secs(15)).await;
    let stderr = serve.stderr();
    assert!(!status.success(), "serve started on a taken port");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert_eq!(serve.rest_of_stdout(), Vec::<String>::new());
    // Nothing started: the task was never claimed.
    let (state, owner, attempt) = env.observer().await.task(&id).await;
    assert_eq!((state.as_str(), owner, attempt), ("queued", None, 0));
    drop(taken);
}

#[tokio::test]
async fn a_bad_database_url_or_a_missing_database_is_one_line_and_creates_nothing() {
    let env = Env::zero_config();
    for command in [&["serve"][..], &["tasks", "list"], &["enqueue", "noop"]] {
        let mut args = command.to_vec();
        args.extend_from_slice(&["--database-url", "mysql://x"]);
        one_line_error(&env, &args, &["neither postgres://", "sqlite://"]);
    }
    for url in ["sqlite::memory:", "sqlite://:memory:", "sqlite://"] {
        one_line_error(
            &env,
            &["serve", "--database-url", url],
            &["names no file", "sqlite://PATH"],
        );
    }
    // Nothing to look at or add to: said so, and no data directory appears.
    for command in [&["tasks", "list"][..], &["enqueue", "noop"]] {
        one_line_error(&env, command, &[&format!("no database at {DEFAULT_DB}")]);
    }
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "created {left:?}");
}

#[tokio::test]
async fn serve_on_postgres_says_so_and_runs_tasks() {
    let env = Env::unmigrated(Engine::Postgres).await;
    let url = env.url().unwrap().to_owned();
    // The URL as a flag; the other commands get it from the environment.
    let mut cmd = env.cmd();
    cmd.env_remove("LONGSHORE_DATABASE_URL");
    let serve = Serve::spawn(cmd, &["--database-url", &url]);
    assert!(
        serve.line.contains(", using PostgreSQL at postgres://"),
        "{}",
        serve.line
    );
    let (status, body) = serve.get("/health/ready").await;
    assert_eq!(
        (status, body),
        (
            200,
            serde_json::json!({ "status": "ok", "engine": "postgres" })
        )
    );
    let id = env.ok(&["enqueue", "noop"]);
    env.wait_until("the task to succeed", async |env| {
        env.count("succeeded").await == 1
    })
    .await;
    let (state, _, attempt) = env.observer().await.task(&id).await;
    assert_eq!((state.as_str(), attempt), ("succeeded", 1));
    serve.stop().await;
    assert!(
        !env.dir.path().join("longshore-data").exists(),
        "serve on PostgreSQL created a data directory"
    );
}

#[tokio::test]
async fn ready_answers_503_when_the_database_is_gone() {
    let env = Env::unmigrated(Engine::Postgres).await;
    let serve = Serve::start(&env, &[], &[("LONGSHORE_DATABASE__ACQUIRE_TIMEOUT", "1s")]);
    assert_eq!(serve.get("/health/ready").await.0, 200);
    let mut admin = sqlx::PgConnection::connect(&longshore_testing::admin_url())
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "DROP DATABASE {} WITH (FORCE)",
        env.scratch_name()
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let (status, body) = serve.get("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["engine"], "postgres", "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // Alive all the same.
    assert_eq!(serve.get("/health/live").await.0, 200);
    serve.stop().await;
}

#[tokio::test]
async fn sigterm_on_serve_drains_then_returns_unfinished_tasks_to_the_queue() {
    let env = Env::zero_config();
    let serve = Serve::start(
        &env,
        &["--worker-id", "leaving"],
        &[("LONGSHORE_WORKER__DRAIN_TIMEOUT", "2s")],
    );
    assert!(
        serve.line.contains("worker leaving on queue(s) default"),
        "{}",
        serve.line
    );
    let short = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 300}"#]);
    let long = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 600000}"#]);
    env.wait_until("both tasks to run", async |env| {
        env.count("running").await == 2
    })
    .await;
    serve.stop().await;

    let observer = env.observer().await;
    let (state, owner, _) = observer.task(&short).await;
    assert_eq!((state, owner), ("succeeded".to_owned(), None));
    // Back in the queue at once, not after a lease expiry.
    let (state, owner, _) = observer.task(&long).await;
    assert_eq!((state, owner), ("queued".to_owned(), None));
    assert_eq!(env.total().await, 2);
}

#[tokio::test]
async fn a_second_signal_stops_serve_without_waiting_for_the_drain() {
    let env = Env::zero_config();
    let mut serve = Serve::start(
        &env,
        &["--worker-id", "hasty"],
        &[
            ("LONGSHORE_WORKER__DRAIN_TIMEOUT", "10m"),
            ("LONGSHORE_LOG", "info"),
        ],
    );
    let long = env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 600000}"#]);
    env.wait_until("the task to run", async |env| {
        env.count("running").await == 1
    })
    .await;
    serve.proc.signal("INT");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !serve.proc.stderr().contains("draining") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no drain began: {}",
            serve.proc.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(serve.proc.running(), "serve did not wait for the drain");
    serve.proc.signal("INT");
    let status = serve.proc.exit_within(Duration::from_secs(5)).await;
    assert!(status.success(), "serve exited with {status}");
    // Not handed back: it returns when its lease expires.
    let (state, owner, _) = env.observer().await.task(&long).await;
    assert_eq!(
        (state.as_str(), owner.as_deref()),
        ("running", Some("hasty"))
    );
}

// serve prints its start line before it installs its SIGTERM/SIGINT
// handlers (src/commands/serve.rs: the println! comes before
// worker::wait_for_stop_signal), so a supervisor that stops it as soon as it
// says it is listening kills it by signal about half of the time.
#[tokio::test]
async fn sigterm_right_after_the_start_line_is_a_clean_stop() {
    let env = Env::zero_config();
    for _ in 0..40 {
        let serve = Serve::start(&env, &[], &[]);
        serve.stop().await;
    }
}

/// Logs written to a pipe carry no colour codes; `--log-format json`
/// writes one JSON object a line.
#[tokio::test]
async fn logs_to_a_pipe_are_plain_text_or_json_lines() {
    let env = Env::zero_config();
    let serve = Serve::start(&env, &[], &[("LONGSHORE_LOG", "info")]);
    let mut proc = serve.proc;
    proc.signal("TERM");
    assert!(proc.exit_within(Duration::from_secs(15)).await.success());
    let logs = proc.stderr();
    assert!(logs.contains("worker started"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in a pipe: {logs:?}");

    let serve = Serve::start(
        &env,
        &["--log-format", "json"],
        &[("LONGSHORE_LOG", "info")],
    );
    let mut proc = serve.proc;
    proc.signal("TERM");
    assert!(proc.exit_within(Duration::from_secs(15)).await.success());
    let logs = proc.stderr();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{entry}"
        );
    }
}

/// The help names each variable without a dangling `=`.
#[tokio::test]
async fn help_names_environment_variables_cleanly() {
    let env = Env::zero_config();
    let help = env.ok(&["--help"]);
    assert!(help.contains("[env: LONGSHORE_CONFIG]"), "{help}");
    assert!(!help.contains("=]"), "{help}");
}

/// Reads what the server sends on `stream` until it closes the
/// connection; fails the test if it is still open after `limit`.
async fn until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
        panic!("the server kept a slow client's connection open past {limit:?}")
    });
    text(&got)
}

/// Hundreds of clients that send half their headers, or a short body
/// under a large Content-Length, do not starve the node: /health/live
/// answers while they hang on, the server closes their connections after
/// the read deadlines, and a body declared too large is refused before it
/// is sent.
#[tokio::test]
async fn slow_clients_are_cut_off_and_health_still_answers() {
    let env = Env::zero_config();
    let serve = Serve::start(
        &env,
        &[],
        &[
            ("LONGSHORE_HTTP__HEADER_READ_TIMEOUT", "2s"),
            ("LONGSHORE_HTTP__BODY_READ_TIMEOUT", "2s"),
        ],
    );
    let addr = serve.addr;
    let connect = || async move { tokio::net::TcpStream::connect(addr).await.unwrap() };

    let mut half_headers = Vec::new();
    for _ in 0..300 {
        let mut stream = connect().await;
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        half_headers.push(stream);
    }
    let mut short_bodies = Vec::new();
    for _ in 0..50 {
        let mut stream = connect().await;
        stream
            .write_all(
                b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"actor\":",
            )
            .await
            .unwrap();
        short_bodies.push(stream);
    }

    // Every one of them is still held: the node answers all the same.
    let (status, body) = serve.get("/health/live").await;
    assert_eq!(status, 200, "{body}");

    // A body declared larger than the limit is refused at once, unread.
    let mut huge = connect().await;
    huge.write_all(
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut huge, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // The deadlines close the rest: a stalled body is answered 408 first.
    for mut stream in short_bodies {
        let answer = until_closed(&mut stream, Duration::from_secs(60)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    for mut stream in half_headers {
        until_closed(&mut stream, Duration::from_secs(60)).await;
    }
    let (status, _) = serve.get("/health/live").await;
    assert_eq!(status, 200);
    let stats = env.json(&["tasks", "stats", "--json"]);
    let total: i64 = stats
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(total, 0, "a cut-off request wrote a task: {stats}");
}

/// A node lifts its soft limit on open files to the hard one, so that its
/// connections are not capped at the usual 1,024.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_raises_its_open_file_limit_to_the_hard_limit() {
    let env = Env::zero_config();
    // Started with a low soft limit, as many systems start processes.
    let binary = env.cmd();
    let mut cmd = std::process::Command::new("bash");
    cmd.env_clear().current_dir(env.dir.path());
    for (key, value) in binary.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.args([
        "-c",
        r#"ulimit -Sn 256 && exec "$0" "$@""#,
        binary.get_program().to_str().unwrap(),
    ]);
    let serve = Serve::spawn(cmd, &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", serve.proc.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{limits}"));
    let fields: Vec<&str> = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .collect();
    assert_eq!(fields[0], fields[1], "soft and hard limits differ: {line}");
}
