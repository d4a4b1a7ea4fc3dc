//! The `shell` actor through a real worker process on each engine: only
//! configured commands run, each placeholder stays one argument, the
//! environment is what the configuration allows, output reaches the log
//! within its bound, exit codes map to outcomes, and a time limit kills the
//! command's whole process group.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use longshore_testing::on_both_engines;
use support::{Engine, Env, Proc};

on_both_engines!(
    a_configured_command_runs_with_each_placeholder_as_one_argument,
    exit_codes_map_to_the_configured_outcomes,
    bad_arguments_fail_the_task_at_once_with_the_reason,
    the_time_limit_kills_the_whole_process_group,
    output_beyond_the_bound_is_read_but_not_kept,
    a_worker_without_the_shell_enabled_runs_nothing,
    bad_shell_settings_stop_the_worker_with_one_line,
);

/// A worker whose configuration enables the shell actor with `commands`
/// (YAML lines under `commands:`) and `extra` (more lines of
/// `actors.shell`).
fn shell_worker(env: &Env, commands: &str, extra: &str) -> Proc {
    let config = write_config(env, commands, extra);
    env.worker(
        &[],
        &[
            ("LONGSHORE_CONFIG", config.to_str().unwrap()),
            ("LONGSHORE_TEST_NOT_PASSED", "leaked"),
        ],
    )
}

fn write_config(env: &Env, commands: &str, extra: &str) -> PathBuf {
    let path = env.dir.path().join("shell.yaml");
    let indented: String = commands
        .lines()
        .map(|line| format!("      {line}\n"))
        .collect();
    let extra: String = extra.lines().map(|line| format!("    {line}\n")).collect();
    std::fs::write(
        &path,
        format!("actors:\n  shell:\n    enabled: true\n    commands:\n{indented}{extra}"),
    )
    .unwrap();
    path
}

fn enqueue(env: &Env, args: serde_json::Value, more: &[&str]) -> String {
    let args = args.to_string();
    let mut command = vec!["enqueue", "shell", "--args", &args];
    command.extend_from_slice(more);
    env.ok(&command).trim().to_owned()
}

fn show(env: &Env, id: &str) -> serde_json::Value {
    env.json(&["tasks", "show", id, "--json"])
}

/// Every line of the task's current execution log.
fn log_lines(shown: &serde_json::Value) -> Vec<String> {
    shown["logs"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_finished(env: &Env, count: i64) {
    env.wait_until("the shell tasks to finish", async |env| {
        let counts = env.counts().await;
        ["succeeded", "failed"]
            .iter()
            .map(|state| counts.get(*state).copied().unwrap_or(0))
            .sum::<i64>()
            == count
    })
    .await;
}

async fn a_configured_command_runs_with_each_placeholder_as_one_argument(engine: Engine) {
    let env = Env::new(engine).await;
    let words = enqueue(
        &env,
        serde_json::json!({
            "command": "words",
            "params": {"label": "a b; echo pwned $(id)", "n": 42, "flag": true},
        }),
        &[],
    );
    let environment = enqueue(&env, serde_json::json!({"command": "environment"}), &[]);
    let _worker = shell_worker(
        &env,
        r#"words: ["/usr/bin/printf", "[%s]\n", "{label}", "--n={n}", "{flag}"]
environment: ["/usr/bin/env"]
where: ["/bin/pwd"]"#,
        "env: {FIXED: \"yes\"}",
    );
    wait_finished(&env, 2).await;

    let shown = show(&env, &words);
    assert_eq!(shown["task"]["status"], "successful", "{shown}");
    let lines = log_lines(&shown);
    // The log names the configured argv, not the filled one (a parameter
    // may hold a secret).
    assert!(
        lines[0].starts_with("running `words`: /usr/bin/printf"),
        "{lines:?}"
    );
    assert!(lines[0].contains("{label}"), "{lines:?}");
    for expected in ["[a b; echo pwned $(id)]", "[--n=42]", "[true]"] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.contains("uid=")), "{lines:?}");

    let lines = log_lines(&show(&env, &environment));
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(has("PATH="), "{lines:?}");
    assert!(has("FIXED=yes"), "{lines:?}");
    assert!(
        has(&format!("LONGSHORE_TASK_ID={environment}")),
        "{lines:?}"
    );
    assert!(has("LONGSHORE_ATTEMPT=1"), "{lines:?}");
    // Nothing else of the worker's environment: not its database URL,
    // not an unrelated variable.
    assert!(!has("LONGSHORE_DATABASE_URL"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("leaked")), "{lines:?}");
}

async fn exit_codes_map_to_the_configured_outcomes(engine: Engine) {
    let env = Env::new(engine).await;
    let exit = |code: i32, more: &[&str]| {
        enqueue(
            &env,
            serde_json::json!({"command": "exit", "params": {"code": code}}),
            more,
        )
    };
    let ok = exit(0, &[]);
    let warning = exit(3, &[]);
    let error = exit(4, &[]);
    let fatal = exit(5, &["--max-attempts", "5"]);
    let retried = exit(9, &["--max-attempts", "2"]);
    let _worker = shell_worker(
        &env,
        r#"exit: ["/bin/sh", "-c", "echo leaving with {code}; exit {code}"]"#,
        "warning_exit_codes: [3]\nerror_exit_codes: [4]\nfatal_exit_codes: [5]",
    );
    wait_finished(&env, 5).await;

    let status = |id: &str| {
        show(&env, id)["task"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(&ok), "successful");
    assert_eq!(status(&warning), "warning");
    assert_eq!(status(&error), "error");

    let shown = show(&env, &fatal);
    assert_eq!(shown["task"]["state"], "failed", "{shown}");
    assert_eq!(shown["task"]["attempt"], 1, "a fatal code is not retried");
    assert_eq!(shown["task"]["last_error"], "exited with status 5");

    let shown = show(&env, &retried);
    assert_eq!(shown["task"]["state"], "failed", "{shown}");
    assert_eq!(shown["task"]["attempt"], 2, "another code is retried");
    assert_eq!(shown["task"]["last_error"], "exited with status 9");
    assert!(
        log_lines(&shown).iter().any(|l| l == "leaving with 9"),
        "{shown}"
    );
}

async fn bad_arguments_fail_the_task_at_once_with_the_reason(engine: Engine) {
    let env = Env::new(engine).await;
    // Refused at enqueue, writing nothing: the shape is wrong.
    for (args, expected) in [
        (r#"{"params": {}}"#, "missing field `command`"),
        (r#"{"command": ""}"#, "command is empty"),
        (r#"{"command": "x", "params": {"a": [1]}}"#, "params.a"),
        (
            r#"{"command": "x", "argv": ["sh"]}"#,
            "unknown field `argv`",
        ),
    ] {
        let out = env.run(&["enqueue", "shell", "--args", args]);
        assert!(!out.status.success(), "{args}");
        let stderr = support::text(&out.stderr);
        assert!(stderr.contains(expected), "{args}: {stderr}");
    }
    assert_eq!(env.total().await, 0);
    // Accepted at enqueue (another node may know the command), failed at
    // once by the worker that cannot run it, without retries.
    let unknown = enqueue(&env, serde_json::json!({"command": "nope"}), &[]);
    let missing = enqueue(&env, serde_json::json!({"command": "echo"}), &[]);
    let _worker = shell_worker(&env, r#"echo: ["/bin/echo", "{text}"]"#, "");
    wait_finished(&env, 2).await;
    for (id, expected) in [
        (
            &unknown,
            "command `nope` is not in this node's actors.shell.commands",
        ),
        (
            &missing,
            "command `echo`: the command needs params.text, which the task does not give",
        ),
    ] {
        let shown = show(&env, id);
        assert_eq!(shown["task"]["state"], "failed", "{shown}");
        assert_eq!(shown["task"]["attempt"], 1, "{shown}");
        assert_eq!(shown["task"]["last_error"], expected, "{shown}");
    }
}

async fn the_time_limit_kills_the_whole_process_group(engine: Engine) {
    let env = Env::new(engine).await;
    let pids = env.dir.path().join("pids");
    let id = enqueue(
        &env,
        serde_json::json!({"command": "linger", "params": {"out": pids.to_str().unwrap()}}),
        &["--time-limit", "1s", "--max-attempts", "1"],
    );
    // A child and a grandchild that ignore SIGTERM: only SIGKILL to the
    // group stops them.
    let _worker = shell_worker(
        &env,
        r#"linger: ["/bin/sh", "-c", "trap '' TERM; (trap '' TERM; sleep 300 & echo $! >> {out}; wait) & echo $! >> {out}; echo started; wait"]"#,
        "kill_grace: 200ms",
    );
    wait_finished(&env, 1).await;
    let shown = show(&env, &id);
    assert_eq!(shown["task"]["state"], "failed", "{shown}");
    assert_eq!(
        shown["task"]["last_error"], "time limit of 1s exceeded",
        "{shown}"
    );
    let lines = log_lines(&shown);
    assert!(lines.iter().any(|l| l == "started"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("after SIGTERM: killed")),
        "{lines:?}"
    );
    let pids: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    env.wait_until("every process of the group to be gone", async |_| {
        pids.iter().all(|pid| !alive(pid))
    })
    .await;
}

/// Whether process `pid` exists and has not died (a zombie waits only for
/// its parent to read its status).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn output_beyond_the_bound_is_read_but_not_kept(engine: Engine) {
    let env = Env::new(engine).await;
    let id = enqueue(&env, serde_json::json!({"command": "chatter"}), &[]);
    // 100,000 lines on each of stderr and stdout: far beyond a pipe's
    // buffer, so a reader that stopped reading either would hang the
    // command. Which stream fills the 200 bytes first is up to the
    // scheduler; the test holds for either.
    let _worker = shell_worker(
        &env,
        r#"chatter: ["/bin/sh", "-c", "seq 1 100000 >&2; seq 1 100000; echo done"]"#,
        "max_output_bytes: 200",
    );
    wait_finished(&env, 1).await;
    let shown = show(&env, &id);
    assert_eq!(shown["task"]["status"], "warning", "{shown}");
    let lines = log_lines(&shown);
    let output: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("running") && !l.starts_with("output cut"))
        .collect();
    let kept: usize = output
        .iter()
        .map(|l| l.strip_prefix("stderr: ").unwrap_or(l).len())
        .sum();
    assert_eq!(kept, 200, "{lines:?}");
    assert!(!lines.iter().any(|l| l == "done"), "{lines:?}");
    // Every byte the command wrote (newlines aside) was read: kept or
    // counted as dropped. 1..=100000 has 488,895 digits; twice, plus "done".
    let written: u64 = 2 * 488_895 + 4;
    let cut = lines.iter().find(|l| l.starts_with("output cut")).unwrap();
    let expected = format!(
        "output cut at actors.shell.max_output_bytes (200 bytes): {} more bytes were not kept",
        written - 200
    );
    assert_eq!(cut, &expected, "{lines:?}");
}

async fn a_worker_without_the_shell_enabled_runs_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let marker = env.dir.path().join("ran");
    let id = enqueue(
        &env,
        serde_json::json!({"command": "touch", "params": {"path": marker.to_str().unwrap()}}),
        &["--max-attempts", "1"],
    );
    let config = env.dir.path().join("off.yaml");
    std::fs::write(
        &config,
        "actors:\n  shell:\n    commands:\n      touch: [\"/usr/bin/touch\", \"{path}\"]\n",
    )
    .unwrap();
    let _worker = env.worker(&[], &[("LONGSHORE_CONFIG", config.to_str().unwrap())]);
    wait_finished(&env, 1).await;
    let shown = show(&env, &id);
    let error = shown["task"]["last_error"].as_str().unwrap();
    assert!(error.contains("actors.shell.enabled"), "{error}");
    assert!(!marker.exists());
}

async fn bad_shell_settings_stop_the_worker_with_one_line(engine: Engine) {
    let env = Env::new(engine).await;
    for (commands, extra, expected) in [
        (r#"bad: ["{program}"]"#, "", "cannot hold a placeholder"),
        (
            r#"bad: ["/bin/echo", "{open"]"#,
            "",
            "actors.shell.commands.bad[1]",
        ),
        ("bad: []", "", "actors.shell.commands.bad is empty"),
        (
            r#"ok: ["/bin/true"]"#,
            "working_dir: /does/not/exist",
            "is not a directory",
        ),
        (
            r#"ok: ["/bin/true"]"#,
            "warning_exit_codes: [2]\nfatal_exit_codes: [2]",
            "exit code 2 is in both",
        ),
    ] {
        let config = write_config(&env, commands, extra);
        let out = env
            .cmd()
            .arg("worker")
            .env("LONGSHORE_CONFIG", &config)
            .output()
            .unwrap();
        let stderr = support::text(&out.stderr);
        assert!(!out.status.success(), "{commands} {extra}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}
