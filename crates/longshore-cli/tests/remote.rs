//! The CLI through a server's API (`--server URL`, `LONGSHORE_TOKEN`):
//! each command that works that way prints what it prints against the
//! database directly, with the same exit code; tokens, a missing server
//! and commands that need the database each end in one line.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use support::{Engine, Env, Proc, text};

use longshore_testing::on_both_engines;

on_both_engines!(
    every_remote_command_prints_what_the_database_path_prints,
    tokens_and_servers_that_fail_end_in_one_line,
    schedule_and_settings_commands_print_the_same_both_ways,
    token_commands_print_the_same_both_ways,
);

/// A running `longshore serve` whose worker serves only queue `run`, with
/// an admin and a read token.
struct Server {
    proc: Proc,
    base: String,
    admin: String,
    read: String,
}

impl Server {
    async fn start(env: &Env) -> Server {
        let token = |name: &str, scope: &str| {
            env.ok(&["tokens", "create", "--name", name, "--scope", scope])
                .trim()
                .to_owned()
        };
        let admin = token("admin", "admin");
        let read = token("viewer", "read");
        let mut cmd = env.cmd();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--queues",
            "run",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut proc = Proc::spawn(cmd);
        let line = proc.stdout_line(Duration::from_secs(30));
        let addr = line
            .strip_prefix("longshore serve: listening on http://")
            .and_then(|rest| rest.split_once(", using "))
            .map(|(addr, _)| addr.parse::<SocketAddr>().unwrap())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"));
        Server {
            proc,
            base: format!("http://{addr}"),
            admin,
            read,
        }
    }

    async fn stop(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.exit_within(Duration::from_secs(15)).await;
        assert!(status.success(), "serve: {}", self.proc.stderr());
    }
}

/// `longshore ARGS` through `base` with `token` (in `LONGSHORE_TOKEN`),
/// with a database URL that leads nowhere: nothing may use it.
fn remote(env: &Env, base: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = env.cmd();
    cmd.env(
        "LONGSHORE_DATABASE_URL",
        "sqlite:///nonexistent/remote-test.db",
    )
    .env("LONGSHORE_SERVER", base);
    if let Some(token) = token {
        cmd.env("LONGSHORE_TOKEN", token);
    }
    cmd.args(args).output().unwrap()
}

/// Runs `args` against the database and through the server; asserts the
/// same exit code and the same stdout (and, on failure, the same error
/// line); returns the stdout.
#[track_caller]
fn same(env: &Env, server: &Server, args: &[&str]) -> String {
    let direct = env.run(args);
    let through = remote(env, &server.base, Some(&server.admin), args);
    assert_eq!(
        direct.status.code(),
        through.status.code(),
        "longshore {args:?}: exit codes differ; direct: {} through the server: {}",
        text(&direct.stderr),
        text(&through.stderr)
    );
    assert_eq!(
        text(&direct.stdout),
        text(&through.stdout),
        "longshore {args:?}: outputs differ"
    );
    if !direct.status.success() {
        assert_eq!(text(&direct.stderr), text(&through.stderr), "{args:?}");
    }
    text(&through.stdout)
}

/// As [`same`] for a command printing JSON, compared as values after
/// `normalise`.
#[track_caller]
fn same_json(env: &Env, server: &Server, args: &[&str], normalise: fn(&mut Value)) -> Value {
    let mut direct = env.json(args);
    let out = remote(env, &server.base, Some(&server.admin), args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    let mut through: Value = serde_json::from_slice(&out.stdout).unwrap();
    normalise(&mut direct);
    normalise(&mut through);
    assert_eq!(direct, through, "longshore {args:?}: JSON differs");
    through
}

/// Runs `direct` against the database and `through` through the server
/// (the same command on different but equivalent objects); asserts that
/// they print the same once `a` and `b` are both written `X`.
#[track_caller]
fn alike(env: &Env, server: &Server, direct: &[&str], through: &[&str], a: &str, b: &str) {
    let d = env.run(direct);
    let t = remote(env, &server.base, Some(&server.admin), through);
    assert!(d.status.success(), "{direct:?}: {}", text(&d.stderr));
    assert!(t.status.success(), "{through:?}: {}", text(&t.stderr));
    assert_eq!(
        text(&d.stdout).replace(a, "X"),
        text(&t.stdout).replace(b, "X"),
        "{direct:?} / {through:?}"
    );
}

fn one_id(out: &str) -> String {
    let ids = support::ids(out);
    assert_eq!(ids.len(), 1, "{out}");
    ids[0].clone()
}

fn unchanged(_: &mut Value) {}

async fn every_remote_command_prints_what_the_database_path_prints(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;

    // Waiting tasks of several kinds, and one that runs and fails twice,
    // so that it has logs of two executions.
    env.ok(&[
        "enqueue",
        "noop",
        "--count",
        "3",
        "--queue",
        "held",
        "--related",
        "user:1",
    ]);
    env.ok(&[
        "enqueue",
        "sleep",
        "--args",
        r#"{"ms": 5}"#,
        "--queue",
        "other",
    ]);
    env.ok(&[
        "enqueue",
        "noop",
        "--queue",
        "held",
        "--priority",
        "3",
        "--delay",
        "1h",
    ]);
    let failing = one_id(&env.ok(&[
        "enqueue",
        "fail",
        "--args",
        r#"{"times": 9, "message": "boom"}"#,
        "--queue",
        "run",
        "--max-attempts",
        "2",
    ]));
    env.wait_until("the failing task to fail", async |env: &Env| {
        env.json(&["tasks", "show", &failing, "--json"])["task"]["state"] == "failed"
    })
    .await;

    // Reading: tables and JSON, every filter.
    for args in [
        &["tasks", "list"][..],
        &[
            "tasks",
            "list",
            "--state",
            "queued,scheduled",
            "--actor",
            "noop",
        ],
        &[
            "tasks",
            "list",
            "--queue",
            "held",
            "--related",
            "user",
            "--limit",
            "2",
        ],
        &[
            "tasks",
            "list",
            "--related",
            "user:1",
            "--created-after",
            "1h",
        ],
        &["tasks", "list", "--standalone", "--exclude-successful"],
        &["tasks", "list", "--status", "error,scheduled"],
        &[
            "tasks",
            "list",
            "--finished-after",
            "2025-01-01T00:00:00Z",
            "--finished-before",
            "2100-01-01T00:00:00Z",
        ],
        // An age: every task here was created within the hour, on both
        // sides (an age near a task's own time would straddle the two
        // runs: "1s" did, when a task finished between them).
        &["tasks", "list", "--created-after", "1h"],
        &["tasks", "list", "--created-before", "2020-01-01T00:00:00Z"],
        &["tasks", "show", &failing],
        &["tasks", "stats"],
        &["tasks", "stats", "--by", "actor"],
        &["tasks", "stats", "--by", "queue"],
        &["tasks", "stats", "--by", "queue", "--json"],
        &["tasks", "stats", "--by", "state", "--json"],
        &["queues", "list"],
        &["queues", "list", "--json"],
    ] {
        same(&env, &server, args);
    }
    let listed = same_json(&env, &server, &["tasks", "list", "--json"], unchanged);
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    let shown = same_json(
        &env,
        &server,
        &["tasks", "show", &failing, "--json"],
        unchanged,
    );
    assert_eq!(
        shown["logs"]["previous"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
    // The workers: the server's own node; only its heartbeat time moves.
    let workers = same_json(&env, &server, &["workers", "list", "--json"], |v| {
        for w in v.as_array_mut().unwrap() {
            w.as_object_mut().unwrap().remove("last_seen_at");
        }
    });
    assert_eq!(workers.as_array().unwrap().len(), 1, "{workers}");
    same_json(&env, &server, &["schedules", "list", "--json"], |v| {
        for s in v.as_array_mut().unwrap() {
            let s = s.as_object_mut().unwrap();
            for moving in [
                "next_run_at",
                "last_run_at",
                "last_task_id",
                "modified_at",
                "run_requested",
            ] {
                s.remove(moving);
            }
        }
    });

    // Errors: the same line and exit code either way.
    let zero = "00000000-0000-0000-0000-000000000000";
    same(&env, &server, &["tasks", "show", zero]);
    let queued: Vec<String> = env
        .json(&[
            "tasks", "list", "--state", "queued", "--queue", "held", "--json",
        ])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    same(&env, &server, &["tasks", "retry", &queued[0]]);
    same(&env, &server, &["tasks", "delete", "--actor", "noop"]);
    same(
        &env,
        &server,
        &["tasks", "delete", "--state", "running", "--yes"],
    );
    same(&env, &server, &["queues", "flush", "held"]);

    // Steering: the same command on equivalent tasks prints the same.
    alike(
        &env,
        &server,
        &["tasks", "cancel", &queued[0]],
        &["tasks", "cancel", &queued[1]],
        &queued[0],
        &queued[1],
    );
    alike(
        &env,
        &server,
        &["tasks", "retry", &queued[0]],
        &["tasks", "retry", &queued[1]],
        &queued[0],
        &queued[1],
    );
    alike(
        &env,
        &server,
        &["queues", "pause", "p1"],
        &["queues", "pause", "p2"],
        "p1",
        "p2",
    );
    alike(
        &env,
        &server,
        &["queues", "resume", "p1"],
        &["queues", "resume", "p2"],
        "p1",
        "p2",
    );
    same(&env, &server, &["queues", "list", "--json"]);

    // Enqueue: one task with every option, the same row either way.
    let options = [
        "--args",
        r#"{"ms": 1}"#,
        "--queue",
        "e",
        "--priority",
        "-2",
        "--time-limit",
        "90s",
        "--unique-key",
        "k",
        "--related",
        "doc:7",
    ];
    let direct = one_id(&env.ok(&[&["enqueue", "sleep"][..], &options].concat()));
    let out = remote(
        &env,
        &server.base,
        Some(&server.admin),
        &[&["enqueue", "sleep"][..], &options].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The key is held: the server keeps the one task as the database does,
    // and the command prints the held task's id, for scripts to follow.
    assert_eq!(
        text(&out.stdout).trim(),
        direct,
        "a duplicate's id is the held task's"
    );
    assert!(text(&out.stderr).contains(&direct), "{}", text(&out.stderr));
    env.ok(&["tasks", "cancel", &direct]);
    let through = one_id(&text(
        &remote(
            &env,
            &server.base,
            Some(&server.admin),
            &[&["enqueue", "sleep"][..], &options].concat(),
        )
        .stdout,
    ));
    let task = |id: &str| {
        let mut task = env.json(&["tasks", "show", id, "--json"])["task"].clone();
        for moving in [
            "id",
            "created_at",
            "modified_at",
            "run_at",
            "state",
            "status",
            "status_label",
            "finished_at",
        ] {
            task.as_object_mut().unwrap().remove(moving);
        }
        task
    };
    assert_eq!(task(&direct), task(&through));
    // In bulk, past the API's 1000 tasks a request; a listing past its page.
    same(
        &env,
        &server,
        &[
            "enqueue", "noop", "--queue", "bulk", "--count", "1200", "--quiet",
        ],
    );
    same_json(
        &env,
        &server,
        &[
            "tasks", "list", "--queue", "bulk", "--limit", "1500", "--json",
        ],
        |v| {
            assert_eq!(v.as_array().unwrap().len(), 1500);
        },
    );

    // Deleting and flushing: dry runs alike, then the real thing on
    // equivalent queues.
    same(
        &env,
        &server,
        &["tasks", "delete", "--queue", "bulk", "--dry-run"],
    );
    same(
        &env,
        &server,
        &[
            "tasks",
            "delete",
            "--queue",
            "bulk",
            "--state",
            "queued",
            "--dry-run",
            "--json",
        ],
    );
    same(&env, &server, &["queues", "flush", "held", "--dry-run"]);
    same(
        &env,
        &server,
        &["queues", "flush", "held", "--dry-run", "--json"],
    );
    for queue in ["d1", "d2", "f1", "f2"] {
        env.ok(&["enqueue", "noop", "--queue", queue, "--count", "2"]);
    }
    alike(
        &env,
        &server,
        &["tasks", "delete", "--queue", "d1", "--yes"],
        &["tasks", "delete", "--queue", "d2", "--yes"],
        "d1",
        "d2",
    );
    alike(
        &env,
        &server,
        &["queues", "flush", "f1", "--yes", "--json"],
        &["queues", "flush", "f2", "--yes", "--json"],
        "f1",
        "f2",
    );
    same(&env, &server, &["tasks", "stats", "--by", "queue"]);

    // The repair recount works through the API too (an admin token), and
    // leaves the counts as they were.
    let recounted = remote(
        &env,
        &server.base,
        Some(&server.admin),
        &["tasks", "recount"],
    );
    assert!(recounted.status.success(), "{}", text(&recounted.stderr));
    assert!(
        text(&recounted.stdout).starts_with("task counts rebuilt: "),
        "{}",
        text(&recounted.stdout)
    );
    same(&env, &server, &["tasks", "stats", "--by", "queue"]);
    let refused = remote(
        &env,
        &server.base,
        Some(&server.read),
        &["tasks", "recount"],
    );
    assert!(!refused.status.success());

    server.stop().await;
}

async fn tokens_and_servers_that_fail_end_in_one_line(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let id = one_id(&env.ok(&["enqueue", "noop", "--queue", "held"]));
    let one_line = |out: &Output, words: &str| {
        assert!(!out.status.success(), "succeeded: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(words), "{err}");
    };

    // A read token reads, and changes nothing.
    let out = remote(
        &env,
        &server.base,
        Some(&server.read),
        &["tasks", "list", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for args in [
        &["tasks", "retry", &id][..],
        &["tasks", "cancel", &id],
        &["tasks", "delete", "--queue", "held", "--yes"],
        &["queues", "pause", "held"],
        &["queues", "flush", "held", "--yes"],
        &["enqueue", "noop"],
        // The token list names every credential: admin only, reading too.
        &["tokens", "list"],
        &["tokens", "list", "--json"],
        &["tokens", "create", "--name", "sneaky", "--scope", "admin"],
        &["tokens", "revoke", "admin"],
    ] {
        let out = remote(&env, &server.base, Some(&server.read), args);
        one_line(&out, "read token");
    }
    let tokens = env.json(&["tokens", "list", "--json"]);
    let names: Vec<(&str, bool)> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, vec![("admin", true), ("viewer", true)]);
    assert_eq!(
        env.json(&["tasks", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(env.count("queued").await, 1);

    // No token, a wrong one, one given as a flag.
    one_line(
        &remote(&env, &server.base, None, &["tasks", "list"]),
        "LONGSHORE_TOKEN",
    );
    one_line(
        &remote(&env, &server.base, Some("ls_wrong"), &["tasks", "list"]),
        "unknown or revoked",
    );
    let out = remote(
        &env,
        &server.base,
        None,
        &["tasks", "stats", "--token", &server.admin],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A server that is not there, or not a URL, or not Longshore.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    one_line(
        &remote(&env, &gone, Some(&server.admin), &["tasks", "list"]),
        "cannot reach the server",
    );
    one_line(
        &remote(
            &env,
            "localhost-8080",
            Some(&server.admin),
            &["queues", "list"],
        ),
        "not a URL",
    );
    let prefixed = format!("{}/longshore/", server.base);
    one_line(
        &remote(&env, &prefixed, Some(&server.admin), &["workers", "list"]),
        "no API at",
    );
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_base = format!("http://{}", other.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in other.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 6\r\nconnection: close\r\n\r\n<html>",
            );
        }
    });
    one_line(
        &remote(&env, &other_base, Some(&server.admin), &["workers", "list"]),
        "JSON API",
    );

    // Commands that need the database say so, and touch no server.
    for args in [&["migrate"][..], &["worker"], &["bench"]] {
        one_line(
            &remote(&env, &gone, Some(&server.admin), args),
            "needs the database",
        );
    }

    server.stop().await;
}

/// As [`alike`], every task id also written `ID`.
#[track_caller]
fn alike_ids(env: &Env, server: &Server, direct: &[&str], through: &[&str], a: &str, b: &str) {
    let d = env.run(direct);
    let t = remote(env, &server.base, Some(&server.admin), through);
    assert!(d.status.success(), "{direct:?}: {}", text(&d.stderr));
    assert!(t.status.success(), "{through:?}: {}", text(&t.stderr));
    let norm = |out: &str, name: &str| {
        out.replace(name, "X")
            .lines()
            .map(|line| {
                line.split(' ')
                    .map(|word| {
                        if word.parse::<uuid::Uuid>().is_ok() {
                            "ID"
                        } else {
                            word
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        norm(&text(&d.stdout), a),
        norm(&text(&t.stdout), b),
        "{direct:?} / {through:?}"
    );
}

async fn schedule_and_settings_commands_print_the_same_both_ways(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let both = |direct: &[&str], through: &[&str]| {
        alike(&env, &server, direct, through, "dsched", "tsched")
    };

    // Add: every flag, and paused with an actor of one's own.
    let add = |name: &'static str| {
        vec![
            "schedules",
            "add",
            name,
            "--actor",
            "sleep",
            "--args",
            r#"{"ms": 1}"#,
            "--cron",
            "0 3 * * *",
            "--tz",
            "Europe/Paris",
            "--queue",
            "held",
            "--priority",
            "4",
            "--max-attempts",
            "2",
            "--time-limit",
            "9s",
            "--related",
            "user:7",
            "--overlap",
            "skip",
        ]
    };
    both(&add("dsched"), &add("tsched"));
    let paused = |name: &'static str| {
        vec![
            "schedules",
            "add",
            name,
            "--actor",
            "mine",
            "--any-actor",
            "--cron",
            "@hourly",
            "--paused",
        ]
    };
    alike(
        &env,
        &server,
        &paused("dpaused"),
        &paused("tpaused"),
        "dpaused",
        "tpaused",
    );
    same(&env, &server, &["schedules", "show", "dsched"]);
    same(&env, &server, &["schedules", "show", "dpaused"]);
    same_json(
        &env,
        &server,
        &["schedules", "show", "dsched", "--json"],
        unchanged,
    );

    // Edit: some fields, then the same values again.
    let edit = |name: &'static str| {
        vec![
            "schedules",
            "edit",
            name,
            "--cron",
            "30 4 * * *",
            "--priority",
            "2",
            "--related",
            "none",
        ]
    };
    both(&edit("dsched"), &edit("tsched"));
    both(&edit("dsched"), &edit("tsched"));
    both(
        &[
            "schedules",
            "edit",
            "dsched",
            "--actor",
            "custom",
            "--any-actor",
        ],
        &[
            "schedules",
            "edit",
            "tsched",
            "--actor",
            "custom",
            "--any-actor",
        ],
    );
    both(
        &[
            "schedules",
            "edit",
            "dsched",
            "--actor",
            "sleep",
            "--args",
            r#"{"ms": 1}"#,
        ],
        &[
            "schedules",
            "edit",
            "tsched",
            "--actor",
            "sleep",
            "--args",
            r#"{"ms": 1}"#,
        ],
    );

    // Run by hand (queue `held` is not served): enqueued, then skipped.
    let run = |name: &'static str| vec!["schedules", "run", name];
    alike_ids(
        &env,
        &server,
        &run("dsched"),
        &run("tsched"),
        "dsched",
        "tsched",
    );
    alike_ids(
        &env,
        &server,
        &run("dsched"),
        &run("tsched"),
        "dsched",
        "tsched",
    );
    same(&env, &server, &["schedules", "show", "dsched"]);
    same_json(
        &env,
        &server,
        &["schedules", "show", "tsched", "--json"],
        unchanged,
    );
    // Pause, resume (which makes it due at once: the scheduler may fire
    // it, so it is paused again before anything reads it).
    both(
        &["schedules", "pause", "dsched"],
        &["schedules", "pause", "tsched"],
    );
    same(&env, &server, &["schedules", "show", "dsched"]);
    both(
        &["schedules", "resume", "dsched"],
        &["schedules", "resume", "tsched"],
    );
    both(
        &["schedules", "pause", "dsched"],
        &["schedules", "pause", "tsched"],
    );
    // A built-in schedule: the maintenance leader runs it; only its
    // timing changes.
    alike(
        &env,
        &server,
        &[
            "schedules",
            "edit",
            "longshore.purge",
            "--cron",
            "0 0 1 1 *",
        ],
        &[
            "schedules",
            "edit",
            "longshore.workers",
            "--cron",
            "0 0 1 1 *",
        ],
        "purge",
        "workers",
    );
    same(&env, &server, &["schedules", "run", "longshore.purge"]);

    // Refusals, in the same words and exit code.
    for args in [
        &[
            "schedules",
            "add",
            "bad",
            "--actor",
            "noop",
            "--cron",
            "not cron",
        ][..],
        &[
            "schedules",
            "add",
            "bad",
            "--actor",
            "noop",
            "--cron",
            "@daily",
            "--tz",
            "Mars/Olympus",
        ],
        &[
            "schedules",
            "add",
            "bad",
            "--actor",
            "mine",
            "--cron",
            "@daily",
        ],
        &[
            "schedules",
            "add",
            "dsched",
            "--actor",
            "noop",
            "--cron",
            "@daily",
        ],
        &[
            "schedules",
            "add",
            "longshore.mine",
            "--actor",
            "noop",
            "--cron",
            "@daily",
        ],
        &["schedules", "edit", "dsched", "--cron", "61 * * * *"],
        &["schedules", "edit", "dsched"],
        &["schedules", "edit", "longshore.purge", "--queue", "other"],
        &["schedules", "edit", "missing", "--cron", "@daily"],
        &["schedules", "show", "missing"],
        &["schedules", "pause", "missing"],
        &["schedules", "run", "missing"],
        &["schedules", "delete", "longshore.purge", "--yes"],
        &["schedules", "delete", "dsched"],
        &["schedules", "delete", "missing", "--yes"],
        &["settings", "set", "max_running", "0"],
        &["settings", "set", "max_running", "many"],
        &["settings", "set", "worker.concurrency", "3"],
        &["settings", "get", "queues..max_running"],
    ] {
        same(&env, &server, args);
    }

    // Delete.
    both(
        &["schedules", "delete", "dsched", "--yes"],
        &["schedules", "delete", "tsched", "--yes"],
    );
    same(&env, &server, &["schedules", "show", "dsched"]);

    // Settings: the same command both ways sets the same value.
    for args in [
        &["settings", "set", "max_running", "5"][..],
        &["settings", "set", "queues.mail.max_running", "2"],
        &["settings", "get"],
        &["settings", "get", "max_running"],
        &["settings", "get", "queues.mail.max_running"],
        &["settings", "get", "queues.other.max_running"],
        &["settings", "set", "max_running", "none"],
        &["settings", "get", "max_running"],
    ] {
        same(&env, &server, args);
    }
    same_json(&env, &server, &["settings", "get", "--json"], unchanged);

    // A read token may look, not change.
    let out = remote(&env, &server.base, Some(&server.read), &["settings", "get"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = remote(
        &env,
        &server.base,
        Some(&server.read),
        &["settings", "set", "max_running", "9"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("admin token"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.ok(&["settings", "get", "max_running"]).trim(), "none");
    server.stop().await;
}

async fn token_commands_print_the_same_both_ways(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;

    // Create: the secret alone on stdout, the warning on stderr, both ways.
    let direct = env.run(&["tokens", "create", "--name", "d1", "--scope", "read"]);
    let through = remote(
        &env,
        &server.base,
        Some(&server.admin),
        &["tokens", "create", "--name", "t1", "--scope", "read"],
    );
    for out in [&direct, &through] {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let secret = text(&out.stdout);
        assert_eq!(secret.lines().count(), 1, "{secret}");
        assert!(secret.starts_with("ls_"), "{secret}");
    }
    assert_eq!(
        text(&direct.stderr).replace("d1", "X"),
        text(&through.stderr).replace("t1", "X")
    );
    assert!(
        text(&through.stderr).contains("shown this once only"),
        "{}",
        text(&through.stderr)
    );
    // The secret made through the server works there.
    let secret = text(&through.stdout).trim().to_owned();
    let out = remote(&env, &server.base, Some(&secret), &["tasks", "stats"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Refusals end in the same line both ways.
    for args in [
        &["tokens", "create", "--name", "d1", "--scope", "admin"][..],
        &["tokens", "create", "--name", "t1", "--scope", "admin"],
        &["tokens", "create", "--name", "a b", "--scope", "admin"],
        &["tokens", "revoke", "nobody"],
    ] {
        same(&env, &server, args);
    }

    // Revoke: the same line but for the name and time.
    let d = env.ok(&["tokens", "revoke", "d1"]);
    let out = remote(
        &env,
        &server.base,
        Some(&server.admin),
        &["tokens", "revoke", "t1"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let shape = |line: &str, name: &str| {
        line.replace(name, "X")
            .split(" at ")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(shape(&d, "d1"), shape(&t, "t1"));
    assert_eq!(shape(&t, "t1"), "token X (read) revoked");
    let out = remote(&env, &server.base, Some(&secret), &["tasks", "stats"]);
    assert!(!out.status.success());
    // Revoking again prints the first revocation's time, both ways.
    same(&env, &server, &["tokens", "revoke", "t1"]);

    // List: the table and the JSON, once every token's last use is
    // recorded (a use is recorded at most once a minute).
    let _ = remote(&env, &server.base, Some(&server.admin), &["tokens", "list"]);
    let table = same(&env, &server, &["tokens", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");
    let list = same_json(&env, &server, &["tokens", "list", "--json"], unchanged);
    let text = list.to_string();
    assert!(!text.contains(&secret) && !text.contains("hash"), "{text}");
    server.stop().await;
}
