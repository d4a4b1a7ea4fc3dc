//! `/metrics` and the health checks of `longshore serve` and of
//! `longshore worker --metrics-addr`, scraped over HTTP as Prometheus and
//! Kubernetes would, on both engines.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use support::{Engine, Env, Proc, text};

use longshore_testing::on_both_engines;

on_both_engines!(
    serve_counts_what_it_ran_and_gauges_the_queues_from_the_store,
    worker_metrics_addr_answers_metrics_and_health_checks_through_the_drain,
    a_taken_metrics_address_stops_the_worker_before_it_claims,
    api_requests_are_counted_by_route_template_and_status,
);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A client for plain HTTP (it needs a TLS provider chosen all the same).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// The address in `line` after `prefix` (up to a comma or the end).
fn address_in(line: &str, prefix: &str) -> SocketAddr {
    line.split_once(prefix)
        .map(|(_, rest)| rest.split(',').next().unwrap_or(rest))
        .and_then(|addr| addr.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address after `{prefix}` in: {line}"))
}

/// GET `base/path` without a token: the status and the JSON body.
async fn get_json(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let response = client.get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
    (status, json)
}

/// GET `base/metrics` without a token: the exposition text, after checking
/// the status and the content type.
async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, OPENMETRICS);
    let body = response.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of the one sample `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// `longshore_NAME{actor="ACTOR",queue="QUEUE"}`, 0 when absent.
fn of(text: &str, name: &str, actor: &str, queue: &str) -> f64 {
    sample(
        text,
        &format!("longshore_{name}{{actor=\"{actor}\",queue=\"{queue}\"}}"),
    )
    .unwrap_or(0.0)
}

fn depth(text: &str, queue: &str, state: &str) -> Option<f64> {
    sample(
        text,
        &format!("longshore_queue_depth{{queue=\"{queue}\",state=\"{state}\"}}"),
    )
}

/// Scrapes until `done` holds, failing the test after 30 s with the last
/// text scraped.
async fn scrape_until(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(client, base).await;
        if done(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `longshore serve` on a free port with `args`: the process and its
/// base URL, once it says where it listens.
fn spawn_serve(env: &Env, args: &[&str]) -> (Proc, String) {
    let mut cmd = env.cmd();
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
    let mut serve = Proc::spawn(cmd);
    let line = serve.stdout_line(Duration::from_secs(30));
    let base = format!("http://{}", address_in(&line, "listening on http://"));
    (serve, base)
}

async fn serve_counts_what_it_ran_and_gauges_the_queues_from_the_store(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = env
        .ok(&["tokens", "create", "--name", "admin", "--scope", "admin"])
        .trim()
        .to_owned();
    env.ok(&["queues", "pause", "held"]);
    let (mut serve, base) = spawn_serve(&env, &["--queues", "default,mail,held"]);
    let client = client();

    // Enqueued through the API, so that this process counts them: three
    // that succeed, two that fail once and then succeed, one that fails
    // its two attempts, and four in the paused queue that stay queued.
    let mut tasks = vec![json!({"actor": "noop"}); 3];
    tasks.extend(vec![
        json!({"actor": "fail", "args": {"times": 1}, "queue": "mail"});
        2
    ]);
    tasks.push(json!({"actor": "fail", "args": {"times": 5}, "max_attempts": 2}));
    tasks.extend(vec![json!({"actor": "noop", "queue": "held"}); 4]);
    let response = client
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth(&admin)
        .json(&json!({ "tasks": tasks }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);

    env.wait_until("the runnable tasks to finish", async |env| {
        let counts = env.counts().await;
        counts.get("succeeded") == Some(&5) && counts.get("failed") == Some(&1)
    })
    .await;
    let queued_in_store = env
        .observer()
        .await
        .i64("SELECT count(*) FROM longshore_tasks WHERE queue = 'held' AND state = 'queued'")
        .await;
    assert_eq!(queued_in_store, 4);

    // The counters move as results are recorded, the depth gauges when
    // their cached reading (5 s) is renewed: wait for both to settle.
    let text = scrape_until(&client, &base, "counters and gauges to settle", |text| {
        of(text, "tasks_succeeded_total", "fail", "mail") == 2.0
            && of(text, "tasks_failed_total", "fail", "default") == 1.0
            && depth(text, "held", "queued") == Some(4.0)
            && depth(text, "default", "scheduled").unwrap_or(0.0) == 0.0
            && depth(text, "mail", "scheduled").unwrap_or(0.0) == 0.0
            && sample(text, "longshore_leader{role=\"maintenance\"}") == Some(1.0)
            && sample(text, "longshore_leader{role=\"scheduler\"}") == Some(1.0)
    })
    .await;
    for (name, actor, queue, want) in [
        ("tasks_enqueued_total", "noop", "default", 3.0),
        ("tasks_enqueued_total", "fail", "mail", 2.0),
        ("tasks_enqueued_total", "fail", "default", 1.0),
        ("tasks_enqueued_total", "noop", "held", 4.0),
        ("tasks_started_total", "noop", "default", 3.0),
        ("tasks_started_total", "fail", "mail", 4.0),
        ("tasks_started_total", "fail", "default", 2.0),
        ("tasks_started_total", "noop", "held", 0.0),
        ("tasks_succeeded_total", "noop", "default", 3.0),
        ("tasks_succeeded_total", "fail", "mail", 2.0),
        ("tasks_succeeded_total", "fail", "default", 0.0),
        ("tasks_retried_total", "fail", "mail", 2.0),
        ("tasks_retried_total", "fail", "default", 1.0),
        ("tasks_retried_total", "noop", "default", 0.0),
        ("tasks_failed_total", "fail", "default", 1.0),
        ("tasks_failed_total", "fail", "mail", 0.0),
        ("tasks_cancelled_total", "noop", "default", 0.0),
        ("tasks_running", "fail", "mail", 0.0),
        ("task_duration_seconds_count", "fail", "mail", 4.0),
        ("task_duration_seconds_count", "noop", "default", 3.0),
    ] {
        assert_eq!(
            of(&text, name, actor, queue),
            want,
            "{name}{{actor={actor},queue={queue}}}:\n{text}"
        );
    }
    // The depth gauges say what the store says.
    assert_eq!(depth(&text, "held", "queued"), Some(queued_in_store as f64));
    assert_eq!(depth(&text, "held", "running"), Some(0.0));
    assert_eq!(
        sample(&text, "longshore_queue_paused{queue=\"held\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "longshore_workers_live"), Some(1.0));
    assert_eq!(sample(&text, "longshore_cluster_read_ok"), Some(1.0));
    assert_eq!(sample(&text, "longshore_worker_slots"), Some(16.0));
    assert_eq!(sample(&text, "longshore_lease_rescues_total"), Some(0.0));

    // Health checks need no token either.
    let (status, body) = get_json(&client, &base, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["engine"],
        match engine {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
        }
    );

    serve.signal("TERM");
    let status = serve.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}: {}", serve.stderr());
}

async fn worker_metrics_addr_answers_metrics_and_health_checks_through_the_drain(engine: Engine) {
    let env = Env::new(engine).await;
    let mut cmd = env.cmd();
    cmd.env("LONGSHORE_WORKER__DRAIN_TIMEOUT", "2s")
        .args([
            "worker",
            "--concurrency",
            "3",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut worker = Proc::spawn(cmd);
    let line = worker.stdout_line(Duration::from_secs(30));
    assert!(
        line.starts_with("longshore worker: metrics and health checks on http://"),
        "{line}"
    );
    let addr = address_in(&line, "on http://");
    assert_ne!(addr.port(), 0, "{line}");
    let base = format!("http://{addr}");
    let client = client();

    let (status, body) = get_json(&client, &base, "/health/live").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get_json(&client, &base, "/health/ready").await;
    assert_eq!(status, 200, "{body}");

    env.ok(&["enqueue", "noop", "--count", "2", "--quiet"]);
    env.ok(&["enqueue", "sleep", "--args", r#"{"ms": 60000}"#, "--quiet"]);
    let text = scrape_until(&client, &base, "the tasks to run", |text| {
        of(text, "tasks_succeeded_total", "noop", "default") == 2.0
            && of(text, "tasks_running", "sleep", "default") == 1.0
    })
    .await;
    assert_eq!(of(&text, "tasks_started_total", "noop", "default"), 2.0);
    // The `enqueue` command is a process of its own: not counted here.
    assert_eq!(of(&text, "tasks_enqueued_total", "noop", "default"), 0.0);
    assert_eq!(sample(&text, "longshore_worker_slots"), Some(3.0));
    // The cluster gauges see the running task (within their cache time).
    scrape_until(&client, &base, "the depth gauge to show it", |text| {
        depth(text, "default", "running") == Some(1.0)
            && sample(text, "longshore_workers_live") == Some(1.0)
    })
    .await;

    // Draining: still alive, no longer ready, and says why.
    worker.signal("TERM");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get_json(&client, &base, "/health/ready").await;
        if status == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready after SIGTERM: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["error"]["code"], "worker_stopping", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let (status, _) = get_json(&client, &base, "/health/live").await;
    assert_eq!(status, 200);

    let status = worker.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}: {}", worker.stderr());
    assert!(worker.rest_of_stdout().is_empty());
    // The sleeping task went back to the queue.
    assert_eq!(env.count("queued").await, 1);
}

async fn a_taken_metrics_address_stops_the_worker_before_it_claims(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["enqueue", "noop", "--quiet"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env.run(&["worker", "--metrics-addr", &addr]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(&addr) && last.contains("--metrics-addr"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(env.count("queued").await, 1);
}

/// Each API request is counted by method, route template (an id in the
/// path makes no series of its own) and status, refusals too; the probes
/// are not API requests.
async fn api_requests_are_counted_by_route_template_and_status(engine: Engine) {
    let env = Env::new(engine).await;
    let read = env
        .ok(&["tokens", "create", "--name", "reader", "--scope", "read"])
        .trim()
        .to_owned();
    let (mut serve, base) = spawn_serve(&env, &[]);
    let client = client();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/api/v1/stats", Some(&read)).await, 200);
    assert_eq!(get("/api/v1/stats", Some(&read)).await, 200);
    assert_eq!(get("/api/v1/stats", None).await, 401);
    let missing = "/api/v1/tasks/0190a3b4-0000-7000-8000-000000000000";
    assert_eq!(get(missing, Some(&read)).await, 404);
    assert_eq!(get("/api/v1/nothing-here", Some(&read)).await, 404);
    let denied = client
        .post(format!("{base}/api/v1/queues/q/pause"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(denied, 403);

    let text = scrape(&client, &base).await;
    let requests = |method: &str, route: &str, status: u16| {
        sample(
            &text,
            &format!(
                "longshore_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("GET", "/api/v1/stats", 200), Some(2.0), "{text}");
    assert_eq!(requests("GET", "/api/v1/stats", 401), Some(1.0), "{text}");
    assert_eq!(
        requests("GET", "/api/v1/tasks/{id}", 404),
        Some(1.0),
        "{text}"
    );
    assert_eq!(requests("GET", "unmatched", 404), Some(1.0), "{text}");
    assert_eq!(
        requests("POST", "/api/v1/queues/{name}/pause", 403),
        Some(1.0),
        "{text}"
    );
    let timed = sample(
        &text,
        "longshore_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/stats\"}",
    );
    assert_eq!(timed, Some(3.0), "{text}");
    // The probes and the scrape itself are not API requests.
    assert!(!text.contains("route=\"/metrics\""), "{text}");
    serve.signal("TERM");
    let status = serve.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}: {}", serve.stderr());
}
