//! Agents through a real gateway on each engine: a `longshore worker`
//! serving the gRPC gateway, real `longshore agent` processes, pools and
//! agent tokens made with the CLI. A pool's tasks run on its agents and
//! never inline; a killed agent's tasks come back at once (an execution
//! that had started counts as an attempt); tokens of the wrong kind,
//! revoked or expired are refused with a reason, at the gateway and at the
//! API.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use longshore_testing::on_both_engines;
use support::{Engine, Env, Proc};

on_both_engines!(
    a_pools_tasks_run_on_its_agents_and_never_inline,
    a_killed_agents_tasks_return_at_once,
    labels_route_tasks_to_the_agents_that_offer_them,
    a_partitioned_agent_loses_its_tasks_and_its_late_result_is_refused,
    caps_hold_across_inline_workers_and_two_pools,
    a_drained_agent_finishes_what_it_runs_and_takes_nothing_more,
    tokens_of_the_wrong_kind_revoked_or_expired_are_refused,
    a_second_agent_with_the_same_id_is_refused_while_the_first_is_connected,
    operators_see_and_steer_agents_and_pools_from_the_cli_and_the_api,
    expired_agent_tokens_are_deleted_by_their_schedule,
    the_gateway_speaks_tls_when_given_a_certificate,
    the_bench_runs_a_and_b_through_an_agent_and_watches_idle_agents,
    an_agent_runs_the_shell_commands_its_own_configuration_names,
    a_stopping_agent_hands_back_what_runs_and_is_given_nothing_more,
    an_agent_queues_tasks_ahead_and_gives_back_the_queued_ones_unrun,
    a_task_queued_on_an_agent_past_its_time_limit_is_handed_back_unrun,
);

/// A worker on queue `default` that also serves the gateway; it and the
/// gateway's address.
fn gateway(env: &Env, extra: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = env.cmd();
    cmd.args([
        "worker",
        "--queues",
        "default,render",
        "--grpc-listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ])
    .envs(extra.iter().copied())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut proc = Proc::spawn(cmd);
    let line = proc.stdout_line(Duration::from_secs(30));
    let address = |marker: &str| {
        line.split(marker)
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no `{marker}` in the start line: {line}"))
    };
    // `http://…`, or `https://…` when the gateway speaks TLS.
    let grpc = address("agents' gateway on ");
    let http = format!(
        "http://{}",
        address("API, metrics and health checks on http://")
    );
    (proc, format!("{grpc} {http}"))
}

fn addresses(both: &str) -> (&str, &str) {
    both.split_once(' ').unwrap()
}

/// Makes pool `gpu` serving queue `render`, and an agent token for it.
fn pool_and_token(env: &Env) -> String {
    env.ok(&[
        "pools", "add", "gpu", "--queues", "render", "--labels", "cuda",
    ]);
    env.ok(&[
        "agents", "tokens", "create", "--name", "gpu-1", "--pool", "gpu",
    ])
    .trim()
    .to_owned()
}

/// A `longshore agent` for pool `pool` with `token`, its stderr kept.
fn agent(env: &Env, gateway: &str, pool: &str, id: &str, token: &str, more: &[&str]) -> Proc {
    let mut cmd = env.cmd();
    cmd.args(["agent", "--gateway", gateway, "--pool", pool, "--id", id])
        .args(more)
        .env("LONGSHORE_AGENT_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Proc::spawn(cmd)
}

/// An agent of pool `gpu` whose stop waits `drain` for what runs.
fn draining_agent(
    env: &Env,
    gateway: &str,
    id: &str,
    token: &str,
    more: &[&str],
    drain: &str,
) -> Proc {
    let mut cmd = env.cmd();
    cmd.args(["agent", "--gateway", gateway, "--pool", "gpu", "--id", id])
        .args(more)
        .env("LONGSHORE_AGENT_TOKEN", token)
        .env("LONGSHORE_WORKER__DRAIN_TIMEOUT", drain)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Proc::spawn(cmd)
}

fn enqueue(env: &Env, args: &[&str]) -> Vec<String> {
    env.ok(args).lines().map(str::to_owned).collect()
}

/// `count` tasks on the pool's queue that each sleep `ms`; their ids.
fn sleeps_in_render(env: &Env, ms: u32, count: u32) -> Vec<String> {
    let args = format!(r#"{{"ms": {ms}}}"#);
    let count = count.to_string();
    let argv = [
        "enqueue", "sleep", "--queue", "render", "--args", &args, "--count", &count,
    ];
    enqueue(env, &argv)
}

fn show(env: &Env, id: &str) -> serde_json::Value {
    env.json(&["tasks", "show", id, "--json"])
}

async fn a_pools_tasks_run_on_its_agents_and_never_inline(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let rendered = enqueue(
        &env,
        &["enqueue", "noop", "--queue", "render", "--count", "20"],
    );
    let inline = enqueue(&env, &["enqueue", "noop", "--count", "5"]);
    assert_eq!((rendered.len(), inline.len()), (20, 5));
    // The worker serves `render` too, yet leaves it to the pool: it runs
    // its own queue's tasks and none of the pool's.
    env.wait_until("the inline tasks to succeed", async |env| {
        env.count("succeeded").await == 5
    })
    .await;
    let queued = env
        .observer()
        .await
        .i64("SELECT COUNT(*) FROM longshore_tasks WHERE queue = 'render' AND state = 'queued'")
        .await;
    assert_eq!(queued, 20, "inline workers must not claim a pool's queue");

    let long = sleeps_in_render(&env, 1500, 1);
    let mut runner = agent(
        &env,
        grpc,
        "gpu",
        "agent-a",
        &token,
        &["--concurrency", "4"],
    );
    env.wait_until("the sleeping task to run on the agent", async |env| {
        let shown = show(env, &long[0]);
        shown["task"]["state"] == "running"
    })
    .await;
    let shown = show(&env, &long[0]);
    assert_eq!(shown["task"]["lease_owner"], "agent-a", "{shown}");
    env.wait_until("every task to succeed", async |env| {
        env.count("succeeded").await == 26
    })
    .await;
    assert_eq!(env.total().await, 26);
    assert!(runner.running(), "{}", runner.stderr());
    // SIGTERM drains the agent: it exits cleanly.
    runner.signal("TERM");
    let status = runner.exit_within(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}: {}", runner.stderr());
}

async fn a_killed_agents_tasks_return_at_once(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    // A long lease: what comes back within the test's patience came back
    // because the session closed, not because a lease expired.
    let (_node, both) = gateway(&env, &[("LONGSHORE_WORKER__LEASE", "120s")]);
    let (grpc, _) = addresses(&both);
    let ids = sleeps_in_render(&env, 3000, 2);
    let mut doomed = agent(&env, grpc, "gpu", "doomed", &token, &["--concurrency", "2"]);
    env.wait_until("both tasks to run on the doomed agent", async |env| {
        env.count("running").await == 2
    })
    .await;
    // Started, as the agent reported: give the Started messages a moment
    // by waiting until the gateway has renewed the leases once (the lease
    // expiry moves forward).
    let first_expiry = show(&env, &ids[0])["task"]["lease_expires_at"].clone();
    env.wait_until("a lease renewal", async |env| {
        show(env, &ids[0])["task"]["lease_expires_at"] != first_expiry
    })
    .await;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    env.wait_within(
        Duration::from_secs(20),
        "both tasks to leave running",
        async |env| env.count("running").await == 0,
    )
    .await;
    for id in &ids {
        let shown = show(&env, id);
        let error = shown["task"]["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("agent doomed went away"), "{shown}");
        // It had started: the attempt is used.
        assert_eq!(shown["task"]["attempt"], 1, "{shown}");
    }
    let _second = agent(&env, grpc, "gpu", "second", &token, &["--concurrency", "2"]);
    env.wait_until("both tasks to succeed on the second agent", async |env| {
        env.count("succeeded").await == 2
    })
    .await;
    assert_eq!(env.total().await, 2, "none lost, none doubled");
    for id in &ids {
        assert_eq!(show(&env, id)["task"]["attempt"], 2);
    }
}

async fn tokens_of_the_wrong_kind_revoked_or_expired_are_refused(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    env.ok(&["pools", "add", "cpu", "--queues", "crunch"]);
    let api_token = env
        .ok(&["tokens", "create", "--name", "ops", "--scope", "admin"])
        .trim()
        .to_owned();
    let (_node, both) = gateway(&env, &[]);
    let (grpc, http) = addresses(&both);
    let before = env.total().await;

    let refused = async |token: &str, pool: &str, reason: &str| {
        let mut proc = agent(&env, grpc, pool, "refused", token, &[]);
        let status = proc.exit_within(Duration::from_secs(20)).await;
        assert!(!status.success(), "{reason}: the agent kept running");
        let stderr = proc.stderr();
        assert!(stderr.contains(reason), "expected `{reason}` in: {stderr}");
    };
    refused(&api_token, "gpu", "this is an API token").await;
    refused("ls_not-a-token-at-all", "gpu", "unknown agent token").await;
    refused(&token, "cpu", "is for pool `gpu`, not `cpu`").await;

    let revoked = env
        .ok(&[
            "agents", "tokens", "create", "--name", "gone", "--pool", "gpu",
        ])
        .trim()
        .to_owned();
    env.ok(&["agents", "tokens", "revoke", "gone"]);
    refused(&revoked, "gpu", "agent token `gone` was revoked").await;

    let short = env
        .ok(&[
            "agents",
            "tokens",
            "create",
            "--name",
            "brief",
            "--pool",
            "gpu",
            "--expires",
            "1s",
        ])
        .trim()
        .to_owned();
    env.wait_until("the short token to expire", async |env| {
        env.ok(&["agents", "tokens", "list"])
            .lines()
            .any(|line| line.starts_with("brief") && line.contains("expired"))
    })
    .await;
    refused(&short, "gpu", "agent token `brief` expired at").await;

    // And the other way round: an agent token opens nothing in the API.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{http}/api/v1/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let answer = client
        .get(format!("{http}/api/v1/tasks"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(env.total().await, before, "a refusal changes nothing");

    // Bad input to the commands changes nothing either.
    let out = env.run(&[
        "agents", "tokens", "create", "--name", "x", "--pool", "nope",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pool named `nope`"));
    let out = env.run(&[
        "agents",
        "tokens",
        "create",
        "--name",
        "x",
        "--pool",
        "gpu",
        "--expires",
        "soon",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a duration"));
    let out = env.run(&["pools", "add", "other", "--queues", "render"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to pool `gpu` already"));
    let listed = env.json(&["pools", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

async fn a_second_agent_with_the_same_id_is_refused_while_the_first_is_connected(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let ids = sleeps_in_render(&env, 500, 1);
    let mut first = agent(&env, grpc, "gpu", "twin", &token, &[]);
    env.wait_until("the first agent to take the task", async |env| {
        show(env, &ids[0])["task"]["lease_owner"] == "twin"
    })
    .await;
    let second = agent(&env, grpc, "gpu", "twin", &token, &[]);
    env.wait_until("the second agent to be told", async |_| {
        second
            .stderr()
            .contains("an agent with id `twin` is connected already")
    })
    .await;
    env.wait_until("the task to succeed", async |env| {
        env.count("succeeded").await == 1
    })
    .await;
    assert!(first.running());
}

async fn labels_route_tasks_to_the_agents_that_offer_them(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let needy = enqueue(
        &env,
        &[
            "enqueue",
            "noop",
            "--queue",
            "render",
            "--requires",
            "cuda,linux",
            "--count",
            "3",
        ],
    );
    enqueue(
        &env,
        &["enqueue", "noop", "--queue", "render", "--count", "3"],
    );
    assert_eq!(
        show(&env, &needy[0])["task"]["requires"],
        serde_json::json!(["cuda", "linux"])
    );
    let _plain = agent(&env, grpc, "gpu", "plain", &token, &["--labels", "cuda"]);
    env.wait_until("the tasks anyone may run to succeed", async |env| {
        env.count("succeeded").await == 3
    })
    .await;
    for id in &needy {
        assert_eq!(
            show(&env, id)["task"]["state"],
            "queued",
            "an agent without `linux` ran it"
        );
    }
    let _able = agent(
        &env,
        grpc,
        "gpu",
        "able",
        &token,
        &["--labels", "linux,cuda,arm"],
    );
    env.wait_until("every task to succeed", async |env| {
        env.count("succeeded").await == 6
    })
    .await;
    // A label that cannot be one is refused at enqueue and writes nothing.
    let out = env.run(&["enqueue", "noop", "--queue", "render", "--requires", "a b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires: label `a b`"));
    assert_eq!(env.total().await, 6);
}

/// A TCP proxy to `upstream` that forwards while `forward` is true and
/// otherwise swallows every byte both ways, leaving the connections open:
/// a network partition.
struct Proxy {
    address: String,
    forward: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let forward = Arc::new(AtomicBool::new(true));
        let gate = forward.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, gate.clone()));
                tokio::spawn(pipe(server_read, client_write, gate.clone()));
            }
        });
        Proxy { address, forward }
    }

    fn partition(&self) {
        self.forward.store(false, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.forward.store(true, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    forward: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if forward.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn a_partitioned_agent_loses_its_tasks_and_its_late_result_is_refused(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    // Sessions time out after 3 s; leases last long, so that what comes
    // back came back because the session was closed.
    let (_node, both) = gateway(
        &env,
        &[
            ("LONGSHORE_GRPC__SESSION_TIMEOUT", "3s"),
            ("LONGSHORE_WORKER__LEASE", "120s"),
        ],
    );
    let (grpc, _) = addresses(&both);
    let proxy = Proxy::start(grpc).await;
    let ids = sleeps_in_render(&env, 2000, 1);
    let mut cmd = env.cmd();
    cmd.args([
        "agent",
        "--gateway",
        &proxy.address,
        "--pool",
        "gpu",
        "--id",
        "cut-off",
    ])
    .env("LONGSHORE_AGENT_TOKEN", &token)
    .env("LONGSHORE_LOG", "warn,longshore_agent=debug")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let cut_off = Proc::spawn(cmd);
    // Partitioned once the agent has the task: its handler runs and ends
    // while nothing gets through.
    env.wait_until("the agent to run the task", async |_| {
        cut_off.stderr().contains("running an assigned task")
    })
    .await;
    proxy.partition();
    env.wait_within(
        Duration::from_secs(30),
        "the gateway to hand the task back",
        async |env| show(env, &ids[0])["task"]["state"] != "running",
    )
    .await;
    let shown = show(&env, &ids[0]);
    let error = shown["task"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("agent cut-off went away") || shown["task"]["state"] == "queued",
        "{shown}"
    );
    // The handler finished meanwhile; its result could not get through.
    // Once the network is back the agent reconnects and sends it again: it
    // is refused, the task is run again and succeeds.
    proxy.heal();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cut_off.stderr().contains("the gateway refused a result") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late result was not refused; the agent said: {}; the task: {}; its log: {}",
            cut_off.stderr(),
            show(&env, &ids[0]),
            env.ok(&["tasks", "show", &ids[0]])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.wait_within(
        Duration::from_secs(60),
        "the task to succeed",
        async |env| env.count("succeeded").await == 1,
    )
    .await;
    assert_eq!(env.total().await, 1);
    let shown = show(&env, &ids[0]);
    assert!(shown["task"]["execution"].as_i64().unwrap() >= 2, "{shown}");
}

async fn caps_hold_across_inline_workers_and_two_pools(engine: Engine) {
    let env = Env::new(engine).await;
    let gpu = pool_and_token(&env);
    env.ok(&["pools", "add", "cpu", "--queues", "crunch"]);
    let cpu = env
        .ok(&[
            "agents", "tokens", "create", "--name", "cpu-1", "--pool", "cpu",
        ])
        .trim()
        .to_owned();
    // Three running tasks at most across the cluster, two in `crunch`, and
    // one of pool `gpu` (its own cap).
    env.ok(&["settings", "set", "max_running", "3"]);
    env.ok(&["settings", "set", "queues.crunch.max_running", "2"]);
    env.ok(&["pools", "edit", "gpu", "--max-running", "1"]);
    let sleep = r#"{"ms": 300}"#;
    for queue in ["default", "render", "crunch"] {
        enqueue(
            &env,
            &[
                "enqueue", "sleep", "--queue", queue, "--args", sleep, "--count", "8",
            ],
        );
    }
    // The gateway's node runs `default` inline with 4 slots; each pool has
    // an agent with 4 slots: 12 slots against a cap of 3.
    let (_node, both) = gateway(&env, &[("LONGSHORE_WORKER__CONCURRENCY", "4")]);
    let (grpc, _) = addresses(&both);
    let _gpu_agent = agent(&env, grpc, "gpu", "gpu-a", &gpu, &["--concurrency", "4"]);
    let _cpu_agent = agent(&env, grpc, "cpu", "cpu-a", &cpu, &["--concurrency", "4"]);
    let observer = env.observer().await;
    let (mut most, mut most_crunch, mut most_render, mut samples) = (0, 0, 0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let running = observer
            .i64("SELECT COUNT(*) FROM longshore_tasks WHERE state = 'running'")
            .await;
        let crunch = observer
            .i64(
                "SELECT COUNT(*) FROM longshore_tasks WHERE state = 'running' AND queue = 'crunch'",
            )
            .await;
        let render = observer
            .i64(
                "SELECT COUNT(*) FROM longshore_tasks WHERE state = 'running' AND queue = 'render'",
            )
            .await;
        most = most.max(running);
        most_crunch = most_crunch.max(crunch);
        most_render = most_render.max(render);
        samples += 1;
        if env.count("succeeded").await == 24 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counts {:?}",
            env.counts().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most <= 3, "{most} tasks ran at once under a cap of 3");
    assert!(
        most_crunch <= 2,
        "{most_crunch} crunch tasks ran at once under a cap of 2"
    );
    assert!(
        most_render <= 1,
        "{most_render} tasks of pool gpu ran at once under its cap of 1"
    );
    // The caps were reached, so the samples saw them hold under pressure.
    assert_eq!(most, 3, "never reached the cap in {samples} samples");
}

async fn a_drained_agent_finishes_what_it_runs_and_takes_nothing_more(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let first = sleeps_in_render(&env, 1500, 2);
    let mut drained = agent(
        &env,
        grpc,
        "gpu",
        "drained",
        &token,
        &["--concurrency", "2"],
    );
    env.wait_until("both tasks to run on the agent", async |env| {
        env.count("running").await == 2
    })
    .await;
    // It is listed beside the worker nodes, and can be drained by id; a
    // worker node or an unknown id cannot.
    let listed = env.ok(&["workers", "list"]);
    assert!(
        listed.contains("drained") && listed.contains("agent (rust)"),
        "{listed}"
    );
    let out = env.run(&["agents", "drain", "nobody"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no connected agent has id `nobody`"));
    let said = env.ok(&["agents", "drain", "drained"]);
    assert!(said.starts_with("asked agent drained to drain"), "{said}");
    env.wait_until("the agent to hear of it", async |_| {
        drained.stderr().contains("drained by an operator")
    })
    .await;
    let later = enqueue(
        &env,
        &["enqueue", "noop", "--queue", "render", "--count", "3"],
    );
    env.wait_until("the running tasks to finish", async |env| {
        env.count("succeeded").await == 2
    })
    .await;
    for id in &first {
        assert_eq!(show(&env, id)["task"]["state"], "succeeded");
    }
    // Nothing more is taken, while the agent stays connected: a second
    // agent takes the rest.
    assert_eq!(env.count("queued").await, 3);
    assert!(drained.running(), "{}", drained.stderr());
    let _fresh = agent(&env, grpc, "gpu", "fresh", &token, &[]);
    env.wait_until("the rest to succeed elsewhere", async |env| {
        env.count("succeeded").await == 5
    })
    .await;
    for id in &later {
        assert_eq!(show(&env, id)["task"]["state"], "succeeded");
    }
}

async fn operators_see_and_steer_agents_and_pools_from_the_cli_and_the_api(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let admin = env
        .ok(&["tokens", "create", "--name", "ops", "--scope", "admin"])
        .trim()
        .to_owned();
    let (_node, both) = gateway(&env, &[]);
    let (grpc, http) = addresses(&both);
    let _agent = agent(
        &env,
        grpc,
        "gpu",
        "gpu-a",
        &token,
        &["--labels", "cuda,linux", "--concurrency", "3"],
    );
    env.wait_until("the agent to be listed", async |env| {
        env.ok(&["agents", "list"]).contains("gpu-a")
    })
    .await;

    // The CLI.
    let listed = env.json(&["agents", "list", "--json"]);
    let listed = &listed[0];
    assert_eq!(listed["id"], "gpu-a", "{listed}");
    assert_eq!(listed["type"], "rust", "{listed}");
    assert_eq!(listed["pool"], "gpu", "{listed}");
    assert_eq!(listed["labels"], serde_json::json!(["cuda", "linux"]));
    assert_eq!(listed["slots"], 3, "{listed}");
    assert_eq!(listed["draining"], false, "{listed}");
    enqueue(
        &env,
        &["enqueue", "noop", "--queue", "render", "--count", "2"],
    );
    env.wait_until("the agent to run them", async |env| {
        env.count("succeeded").await == 2
    })
    .await;
    let shown = env.json(&["pools", "show", "gpu", "--json"]);
    assert_eq!(shown["live_agents"], 1, "{shown}");
    assert_eq!(shown["agents"], serde_json::json!(["gpu-a"]), "{shown}");
    let human = env.ok(&["pools", "show", "gpu"]);
    assert!(
        human.contains("render") && human.contains("gpu-a"),
        "{human}"
    );
    // Edit: a second queue, no labels, a cap; then the cap lifted.
    let said = env.ok(&[
        "pools",
        "edit",
        "gpu",
        "--queues",
        "render,bake",
        "--labels",
        "",
        "--max-running",
        "4",
    ]);
    assert!(
        said.contains("render,bake") || said.contains("bake,render"),
        "{said}"
    );
    let pools = env.json(&["pools", "list", "--json"]);
    assert_eq!(pools[0]["queues"], serde_json::json!(["bake", "render"]));
    assert_eq!(pools[0]["labels"], serde_json::json!([]));
    assert_eq!(pools[0]["max_running"], 4);
    env.ok(&["pools", "edit", "gpu", "--max-running", "none"]);
    assert!(env.json(&["pools", "list", "--json"])[0]["max_running"].is_null());
    // Refusals change nothing.
    for (args, says) in [
        (vec!["pools", "edit", "gpu"], "nothing to change"),
        (
            vec!["pools", "edit", "nope", "--max-running", "1"],
            "no pool named `nope`",
        ),
        (
            vec!["pools", "edit", "gpu", "--max-running=-1"],
            "neither a whole number",
        ),
        (
            vec!["pools", "edit", "gpu", "--queues", "a,a"],
            "listed twice",
        ),
        (vec!["pools", "show", "nope"], "no pool named `nope`"),
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(
        env.json(&["pools", "list", "--json"])[0]["queues"],
        serde_json::json!(["bake", "render"])
    );

    // The API, and its refusals.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let get = async |path: &str| -> serde_json::Value {
        let answer = client
            .get(format!("{http}{path}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "GET {path}");
        answer.json().await.unwrap()
    };
    let agents = get("/api/v1/agents").await;
    assert_eq!(agents["agents"][0]["id"], "gpu-a", "{agents}");
    assert_eq!(agents["agents"][0]["type"], "rust", "{agents}");
    let pools = get("/api/v1/pools").await;
    assert_eq!(pools["pools"][0]["name"], "gpu", "{pools}");
    assert_eq!(pools["pools"][0]["live_agents"], 1, "{pools}");
    let workers = get("/api/v1/workers").await;
    assert_eq!(workers["agents"][0]["id"], "gpu-a", "{workers}");
    assert_eq!(workers["agents"][0]["active_count"], 0, "{workers}");
    assert_eq!(workers["pools"][0]["pool"]["name"], "gpu", "{workers}");
    assert_eq!(workers["pools"][0]["live_agents"], 1, "{workers}");
    // The gateway's node's slots, and the agent's 3.
    let inline = workers["task_inline_max_concurrent"].as_i64().unwrap();
    assert_eq!(
        workers["task_max_concurrent"].as_i64().unwrap(),
        inline + 3,
        "{workers}"
    );
    let post = async |path: &str, body: serde_json::Value| {
        let answer = client
            .post(format!("{http}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json::<serde_json::Value>().await.unwrap())
    };
    let (status, made) = post(
        "/api/v1/pools",
        serde_json::json!({"name": "cpu", "queues": ["crunch"], "max_running": 2}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["queues"], serde_json::json!(["crunch"]), "{made}");
    for (body, expected) in [
        (serde_json::json!({"name": "cpu", "queues": ["other"]}), 409),
        (serde_json::json!({"name": "x y", "queues": ["q"]}), 400),
        (serde_json::json!({"name": "x", "queues": []}), 400),
        (serde_json::json!({"name": "x", "queues": ["render"]}), 400),
        (
            serde_json::json!({"name": "x", "queues": ["q"], "colour": 1}),
            400,
        ),
    ] {
        let (status, answer) = post("/api/v1/pools", body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    assert_eq!(
        get("/api/v1/pools").await["pools"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, answer) = post("/api/v1/agents/nobody/drain", serde_json::json!({})).await;
    assert_eq!(status, 404, "{answer}");
    let node = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pool"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = post(
        &format!("/api/v1/agents/{node}/drain"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post("/api/v1/agents/gpu-a/drain", serde_json::json!({})).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["draining"], true, "{answer}");
    env.wait_until("the drain to show", async |env| {
        env.json(&["agents", "list", "--json"])[0]["draining"] == true
    })
    .await;
    // The seeds' form of a settings change.
    let answer = client
        .put(format!("{http}/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"key": "max_running", "value": 40}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(env.json(&["settings", "get", "--json"])["max_running"], 40);
    let answer = client
        .put(format!("{http}/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"key": "nonsense", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(env.json(&["settings", "get", "--json"])["max_running"], 40);

    // Metrics by pool, across the cluster.
    let metrics = client
        .get(format!("{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"longshore_pool_agents{pool="gpu"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"longshore_pool_agents{pool="cpu"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"longshore_pool_running{pool="gpu"} 0"#),
        "{metrics}"
    );
}

async fn expired_agent_tokens_are_deleted_by_their_schedule(engine: Engine) {
    let env = Env::new(engine).await;
    env.ok(&["pools", "add", "gpu", "--queues", "render"]);
    let create = |name: &str, expires: &str| {
        env.ok(&[
            "agents",
            "tokens",
            "create",
            "--name",
            name,
            "--pool",
            "gpu",
            "--expires",
            expires,
        ]);
    };
    create("short", "1s");
    create("forever", "never");
    create("month", "30d");
    env.ok(&["agents", "tokens", "revoke", "month"]);
    env.wait_until("token `short` to expire", async |env| {
        env.ok(&["agents", "tokens", "list"])
            .lines()
            .any(|line| line.starts_with("short") && line.contains("expired"))
    })
    .await;
    // The maintenance leader runs the built-in schedule when asked (it is
    // due daily at 03:00 UTC otherwise).
    let _node = env.worker(&[], &[]);
    let ran = env.ok(&["schedules", "run", "longshore.agent_tokens"]);
    assert!(ran.contains("the maintenance leader runs it"), "{ran}");
    env.wait_until("the expired token to be deleted", async |env| {
        !env.ok(&["agents", "tokens", "list"]).contains("short")
    })
    .await;
    // Only it: a token that never expires and a revoked one stay.
    let listed = env.json(&["agents", "tokens", "list", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["forever", "month"], "{listed}");
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in
/// the test's directory: (certificate, key).
fn self_signed(env: &Env) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = env.dir.path().join("gateway.crt");
    let key = env.dir.path().join("gateway.key");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

async fn the_gateway_speaks_tls_when_given_a_certificate(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (cert, key) = self_signed(&env);

    // Half a pair, or a key that does not fit: start-up stops, saying why.
    let mut lone = env.cmd();
    lone.args(["worker", "--grpc-listen", "127.0.0.1:0"])
        .env("LONGSHORE_GRPC__TLS_CERT", &cert);
    let out = lone.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("grpc.tls_cert and grpc.tls_key go together"),
        "{out:?}"
    );
    let (_, other_key) = {
        let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
        let path = env.dir.path().join("other.key");
        std::fs::write(&path, other.signing_key.serialize_pem()).unwrap();
        ((), path.to_str().unwrap().to_owned())
    };
    let mut mismatched = env.cmd();
    mismatched
        .args(["worker", "--grpc-listen", "127.0.0.1:0"])
        .env("LONGSHORE_GRPC__TLS_CERT", &cert)
        .env("LONGSHORE_GRPC__TLS_KEY", &other_key);
    let out = mismatched.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("are not a PEM certificate chain and its key"),
        "{out:?}"
    );

    let (_node, both) = gateway(
        &env,
        &[
            ("LONGSHORE_GRPC__TLS_CERT", &cert),
            ("LONGSHORE_GRPC__TLS_KEY", &key),
        ],
    );
    let (grpc, _) = addresses(&both);
    assert!(grpc.starts_with("https://127.0.0.1:"), "{grpc}");

    // Without the CA the agent trusts only the system's roots: it cannot
    // connect, and says why; over plain HTTP/2 it cannot either.
    let untrusting = agent(&env, grpc, "gpu", "untrusting", &token, &[]);
    let plain = grpc.replace("https://", "http://");
    let plain_agent = agent(&env, &plain, "gpu", "plain", &token, &[]);
    env.wait_until("the agents to say they cannot connect", async |_| {
        untrusting
            .stderr()
            .contains("invalid peer certificate: UnknownIssuer")
            && plain_agent.stderr().contains("cannot open a session")
    })
    .await;
    assert_eq!(
        env.json(&["agents", "list", "--json"]),
        serde_json::json!([])
    );
    drop((untrusting, plain_agent));

    // With the CA it runs the pool's tasks (only an agent can: the
    // worker leaves the pool's queue alone).
    let ids = sleeps_in_render(&env, 2000, 1);
    let _trusting = agent(&env, grpc, "gpu", "trusting", &token, &["--ca-file", &cert]);
    env.wait_until("the task to run on the agent over TLS", async |env| {
        show(env, &ids[0])["task"]["lease_owner"] == "trusting"
    })
    .await;
    env.wait_until("the task to succeed", async |env| {
        env.count("succeeded").await == 1
    })
    .await;
}

/// Not a measurement (figures are the bench's to report, not a test's to
/// assert): workloads G and H run on each engine and report what they
/// say they measure.
async fn the_bench_runs_a_and_b_through_an_agent_and_watches_idle_agents(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "bench",
        "--workloads",
        "a,b,g,h",
        "--bulk-tasks",
        "200",
        "--latency-tasks",
        "10",
        "--latency-interval",
        "5ms",
        "--concurrency",
        "4",
        "--idle-agents",
        "3",
        "--idle-duration",
        "1s",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let g = &report["g_agent"];
    assert_eq!(g["a_bulk"]["tasks"], 200, "{report}");
    assert!(g["a_bulk"]["process_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(g["b_latency"]["tasks"], 10, "{report}");
    assert!(g["b_latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(out.contains("A process, agent / inline"), "{out}");
    assert!(out.contains("B p50, agent / inline"), "{out}");
    // B in two parts (how they split is a unit test of the bench).
    let b = &report["b_latency"];
    let ms = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("{report}"));
    assert!(ms(&b["enqueue"]["p50_ms"]) > 0.0, "{report}");
    assert!(ms(&b["pickup"]["p99_ms"]) >= 0.0, "{report}");
    assert!(out.contains("pickup p50 / p99"), "{out}");
    // A inline says where its CPU went (in whole clock ticks, which 200
    // tasks may not fill); through the agent, which is another process,
    // it says nothing.
    let cpu = &report["a_bulk"]["cpu"];
    assert!(ms(&cpu["bench_cpu_seconds"]) >= 0.0, "{report}");
    assert!(ms(&cpu["machine_busy_cores"]) >= 0.0, "{report}");
    if engine == Engine::Sqlite {
        assert!(cpu["database_cpu_seconds"].is_null(), "{report}");
    }
    assert!(g["a_bulk"].get("cpu").is_none(), "{report}");
    assert!(out.contains("CPU a task: bench / PostgreSQL"), "{out}");
    let h = &report["h_idle_agents"];
    assert_eq!(h["agents"], 3, "{report}");
    assert!(h["rss_mib"].as_f64().unwrap() > 0.0, "{report}");
    // Only PostgreSQL counts its transactions.
    assert_eq!(
        h["db_transactions_per_sec"].is_number(),
        engine == Engine::Postgres,
        "{report}"
    );
}

/// `longshore agent` turns the shell actor on when its own configuration
/// names commands (no `enabled` needed, unlike an inline worker): a named
/// command runs with each parameter as one argument; one it does not name
/// fails at once and runs nothing; the gateway's node, which names none,
/// never runs them.
async fn an_agent_runs_the_shell_commands_its_own_configuration_names(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let marker = env.dir.path().join("must-not-exist");
    let config = env.dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "actors:\n  shell:\n    commands:\n      words: [\"/usr/bin/printf\", \"[%s]\\n\", \"{label}\"]\n",
    )
    .unwrap();
    let run = |command: &str, label: String| {
        let args = serde_json::json!({"command": command, "params": {"label": label}}).to_string();
        enqueue(
            &env,
            &["enqueue", "shell", "--queue", "render", "--args", &args],
        )[0]
        .clone()
    };
    let hostile = format!("a b; touch {}", marker.display());
    let named = run("words", hostile.clone());
    let unnamed = run("touch", marker.display().to_string());
    let mut cmd = env.cmd();
    cmd.args(["agent", "--gateway", grpc, "--pool", "gpu", "--id", "sh"])
        .env("LONGSHORE_AGENT_TOKEN", &token)
        .env("LONGSHORE_CONFIG", config.to_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _agent = Proc::spawn(cmd);
    env.wait_until("both shell tasks to finish", async |env| {
        env.count("succeeded").await + env.count("failed").await == 2
    })
    .await;

    let shown = show(&env, &named);
    assert_eq!(shown["task"]["state"], "succeeded", "{shown}");
    assert_eq!(shown["task"]["lease_owner"], serde_json::Value::Null);
    let lines: Vec<&str> = shown["logs"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&format!("[{hostile}]").as_str()),
        "{lines:?}"
    );

    let shown = show(&env, &unnamed);
    assert_eq!(shown["task"]["state"], "failed", "{shown}");
    assert_eq!(shown["task"]["attempt"], 1, "failed at once: {shown}");
    let error = shown["task"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("actors.shell.commands"), "{shown}");
    assert!(
        !marker.exists(),
        "a command ran that no configuration names"
    );
}

/// SIGTERM drains an agent; past `worker.drain_timeout` what still runs is
/// handed back, unstarted as far as attempts go. The agent's other slots
/// were free, yet the task is not given to it again (it said `Stopping`),
/// so it ends queued with its one execution and no attempt used.
async fn a_stopping_agent_hands_back_what_runs_and_is_given_nothing_more(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let ids = sleeps_in_render(&env, 600_000, 1);
    let mut leaving = draining_agent(&env, grpc, "leaving", &token, &["--concurrency", "4"], "1s");
    env.wait_until("the task to run on the agent", async |env| {
        show(env, &ids[0])["task"]["state"] == "running"
    })
    .await;
    leaving.signal("TERM");
    env.wait_until("the agent to exit", async |_| !leaving.running())
        .await;
    let task = show(&env, &ids[0])["task"].clone();
    assert_eq!(
        task["state"],
        "queued",
        "{task}; agent: {}",
        leaving.stderr()
    );
    assert_eq!(task["attempt"], 0, "{task}");
    assert_eq!(
        task["execution"], 1,
        "given to the stopping agent again: {task}"
    );
}

/// `--prefetch 3` on one slot: besides the task it runs, the agent holds
/// three queued under its lease (the database shows four running, and no
/// more while a fifth waits). An operator's cancel takes a queued task
/// without running it; a stop hands the queued ones back at once, while
/// the one that runs is still draining.
async fn an_agent_queues_tasks_ahead_and_gives_back_the_queued_ones_unrun(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[]);
    let (grpc, _) = addresses(&both);
    let first = sleeps_in_render(&env, 600_000, 1);
    let mut ahead = draining_agent(
        &env,
        grpc,
        "ahead",
        &token,
        &["--concurrency", "1", "--prefetch", "3"],
        "10m",
    );
    env.wait_until("the first task to run on the agent", async |env| {
        show(env, &first[0])["task"]["state"] == "running"
    })
    .await;
    // The slot is busy for ten minutes: what comes now waits on the agent.
    let later = sleeps_in_render(&env, 600_000, 4);
    env.wait_until("three more to be the agent's", async |env| {
        env.count("running").await == 4
    })
    .await;
    assert_eq!(env.count("queued").await, 1, "{}", ahead.stderr());
    let held: Vec<&String> = later
        .iter()
        .filter(|id| show(&env, id)["task"]["state"] == "running")
        .collect();
    assert_eq!(held.len(), 3);
    for id in &held {
        assert_eq!(show(&env, id)["task"]["lease_owner"], "ahead");
    }

    // Cancelled while queued: never run, and its room is the fifth's.
    env.ok(&["tasks", "cancel", held[0]]);
    env.wait_until("the queued task to be cancelled", async |env| {
        show(env, held[0])["task"]["state"] == "cancelled"
    })
    .await;
    let shown = show(&env, held[0]);
    let lines: Vec<&str> = shown["logs"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["cancelled by an operator before it started"],
        "{shown}"
    );
    env.wait_until("the fifth task to be the agent's", async |env| {
        env.count("running").await == 4 && env.count("queued").await == 0
    })
    .await;

    // A stop: the three queued come back at once, unrun and with no
    // attempt used, while the first still runs through its drain.
    assert_eq!(env.total().await, 5);
    ahead.signal("TERM");
    env.wait_until("the queued tasks to come back", async |env| {
        env.count("queued").await == 3
    })
    .await;
    assert!(ahead.running(), "the agent is draining its running task");
    assert_eq!(show(&env, &first[0])["task"]["state"], "running");
    let back: Vec<&String> = later
        .iter()
        .filter(|id| show(&env, id)["task"]["state"] == "queued")
        .collect();
    assert_eq!(back.len(), 3);
    for id in back {
        let task = show(&env, id)["task"].clone();
        assert_eq!(task["attempt"], 0, "{task}");
        assert_eq!(task["lease_owner"], serde_json::Value::Null, "{task}");
    }
    assert_eq!(env.count("cancelled").await, 1);
    assert_eq!(env.total().await, 5, "none lost, none doubled");
}

/// A task queued behind a slot that stays busy past the task's whole time
/// limit is handed back unrun (to go where a slot is free), not failed:
/// its attempt is not used.
async fn a_task_queued_on_an_agent_past_its_time_limit_is_handed_back_unrun(engine: Engine) {
    let env = Env::new(engine).await;
    let token = pool_and_token(&env);
    let (_node, both) = gateway(&env, &[("LONGSHORE_WORKER__HEARTBEAT", "1s")]);
    let (grpc, _) = addresses(&both);
    let busy = sleeps_in_render(&env, 600_000, 1);
    let _agent = agent(
        &env,
        grpc,
        "gpu",
        "wedged",
        &token,
        &["--concurrency", "1", "--prefetch", "1"],
    );
    env.wait_until("the long task to run", async |env| {
        show(env, &busy[0])["task"]["state"] == "running"
    })
    .await;
    let hurried = enqueue(
        &env,
        &[
            "enqueue",
            "sleep",
            "--queue",
            "render",
            "--args",
            r#"{"ms": 1}"#,
            "--time-limit",
            "2s",
        ],
    );
    env.wait_until("the queued task to be handed back", async |env| {
        show(env, &hurried[0])["logs"]
            .to_string()
            .contains("its time limit passed before it started; it was handed back")
    })
    .await;
    let task = show(&env, &hurried[0])["task"].clone();
    assert_ne!(task["state"], "failed", "{task}");
    assert_eq!(task["last_error"], serde_json::Value::Null, "{task}");
    assert_eq!(show(&env, &busy[0])["task"]["state"], "running");
    assert_eq!(env.total().await, 2);
}

/// Settings no agent can run with are refused before it starts: the error
/// names the setting, and no start line claims otherwise.
#[test]
fn unusable_agent_settings_are_refused_before_the_agent_starts() {
    let env = Env::zero_config();
    for (flags, reason) in [
        (["--concurrency", "0"], "concurrency must be at least 1"),
        (["--prefetch", "20000"], "prefetch must be at most 10000"),
    ] {
        let out = env
            .cmd()
            .args(["agent", "--gateway", "http://127.0.0.1:9", "--pool", "gpu"])
            .args(flags)
            .env("LONGSHORE_AGENT_TOKEN", "ls_unused")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}: the agent ran");
        let stderr = support::text(&out.stderr);
        assert!(
            stderr.contains(reason),
            "{flags:?}: expected `{reason}` in: {stderr}"
        );
        let stdout = support::text(&out.stdout);
        assert!(
            stdout.is_empty(),
            "{flags:?}: printed a start line: {stdout}"
        );
    }
}
