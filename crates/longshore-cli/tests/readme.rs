//! The README's five-minute walkthrough, run as written: a fresh
//! `longshore serve` on the embedded SQLite default, then every command of
//! the walkthrough, one at a time, in one shell (so `$FLAKY` and `$TOKEN`
//! carry over), with `longshore` on the PATH as `cargo install` puts it.
//! A command that fails names itself; a comment that shows an answer
//! (`# {"engine":…}`) must be the answer. What the commands did is then
//! checked in the database. The dashboard's pages are covered by its
//! browser tests (tests/dashboard.rs).

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::{Env, Proc, text};

/// The README's sections.
const README: &str = include_str!("../../../README.md");

/// The shell blocks of the section titled `title`.
fn shell_blocks(title: &str) -> Vec<String> {
    let section = README
        .split("\n## ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("the README has no section `{title}`"));
    section
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap().to_owned())
        .collect()
}

/// One command as the reader types it: its lines joined where they end in
/// `\`, with the comment after it (`# …`) if any.
struct Step {
    command: String,
    comment: Option<String>,
}

fn steps(block: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        // A comment starts at `  #` (two spaces): never inside the
        // walkthrough's quoted arguments.
        let (command, comment) = match whole.split_once("  #") {
            Some((command, comment)) => (command.trim(), Some(comment.trim().to_owned())),
            None => (whole.trim(), None),
        };
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        steps.push(Step {
            command: command.to_owned(),
            comment,
        });
    }
    steps
}

/// Starts `longshore serve` in `env`'s directory on a free port; returns
/// it and its address.
fn serve(env: &Env) -> (Proc, String) {
    let mut cmd = env.cmd();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--grpc-listen",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut proc = Proc::spawn(cmd);
    let line = proc.stdout_line(Duration::from_secs(30));
    let addr = line
        .strip_prefix("longshore serve: listening on http://")
        .and_then(|rest| rest.split_once(", using SQLite at longshore-data/longshore.db"))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("unexpected start line: {line}"));
    (proc, addr)
}

#[tokio::test]
async fn the_five_minute_walkthrough_works_as_written() {
    let blocks = shell_blocks("Your first task in five minutes");
    assert_eq!(blocks.len(), 2, "the walkthrough's shape changed");
    // The first block starts the server with `scripts/run` (a release
    // build through cargo); here the binary under test serves instead.
    assert!(blocks[0].starts_with("scripts/run"), "{}", blocks[0]);

    let env = Env::zero_config();
    let (mut server, addr) = serve(&env);

    let mut script = String::from(
        "set -euo pipefail\ntrap 'echo \"README command failed: $BASH_COMMAND\" >&2' ERR\n",
    );
    let steps = steps(&blocks[1]);
    let mut installs = 0;
    for (i, step) in steps.iter().enumerate() {
        if step
            .command
            .starts_with("cargo install --path crates/longshore-cli")
        {
            // Installing would build the binary again; the binary under
            // test is on the PATH instead, as `cargo install` puts it.
            installs += 1;
            continue;
        }
        let command = step.command.replace("127.0.0.1:8080", &addr);
        script.push_str(&format!("printf '\\n::: {i}\\n'\n{command}\n"));
    }
    assert_eq!(
        installs, 1,
        "the walkthrough no longer installs the command"
    );
    script.push_str("printf '\\n::: end\\n'\n");

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_longshore")).parent().unwrap();
    let mut shell = std::process::Command::new("bash");
    let cmd = env.cmd();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            shell.env(key, value);
        }
    }
    shell
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir(env.dir.path())
        .args(["-c", &script]);
    let out = shell.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough stopped: {}\nstdout:\n{stdout}",
        text(&out.stderr)
    );

    // Each command's output, by its index.
    let mut outputs = std::collections::HashMap::new();
    for chunk in stdout.split("\n::: ").skip(1) {
        let (index, output) = chunk.split_once('\n').unwrap_or((chunk, ""));
        outputs.insert(index.trim().to_owned(), output.trim().to_owned());
    }
    assert!(outputs.contains_key("end"), "{stdout}");
    for (i, step) in steps.iter().enumerate() {
        let Some(comment) = &step.comment else {
            continue;
        };
        let Some(output) = outputs.get(&i.to_string()) else {
            continue;
        };
        if comment.starts_with('{') {
            let said: serde_json::Value = serde_json::from_str(comment).unwrap();
            let got: serde_json::Value = serde_json::from_str(output)
                .unwrap_or_else(|e| panic!("`{}` printed {output:?}: {e}", step.command));
            assert_eq!(got, said, "`{}`", step.command);
        }
        if comment == "prints the task id" {
            assert!(
                output.parse::<uuid::Uuid>().is_ok(),
                "`{}` printed {output:?}",
                step.command
            );
        }
        if comment.starts_with("task … cancelled") {
            assert!(
                output.starts_with("task ") && output.ends_with(" cancelled"),
                "`{}` printed {output:?}",
                step.command
            );
        }
    }

    // What the walkthrough promised happened: the flaky task succeeded on
    // its third attempt, the cancelled one ran once retried, the schedule
    // exists and no cap is left behind.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = env.json(&["tasks", "list", "--actor", "fail", "--json"]);
        let task = &listed[0];
        if task["state"] == "succeeded" {
            assert_eq!(task["attempt"], 3, "{task}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flaky task did not succeed: {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let noops = env.json(&["tasks", "list", "--actor", "noop", "--json"]);
    assert_eq!(noops.as_array().unwrap().len(), 2, "{noops}");
    let schedules = env.ok(&["schedules", "list"]);
    assert!(schedules.contains("ping"), "{schedules}");
    let settings = env.ok(&["settings", "get"]);
    assert!(!settings.contains("max_running  8"), "{settings}");

    // Ctrl-C stops it gracefully.
    server.signal("INT");
    let status = server.exit_within(Duration::from_secs(30)).await;
    assert!(status.success(), "serve: {}", server.stderr());
}
