//! `--help` of every command, walked from the top: each command shows the
//! flags it takes and no others, under the same headings, with the same
//! kind of placeholders; a flag a command does not take is refused.
//! No database is involved.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_longshore");

fn longshore(args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .output()
        .unwrap()
}

fn help(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = longshore(&args);
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command that runs something (no subcommands of its own), with
/// its help text.
fn leaves() -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    let mut pending = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let text = help(&path);
        let children = subcommands(&text);
        if children.is_empty() {
            found.push((path, text));
        } else {
            for child in children {
                let mut next = path.clone();
                next.push(child);
                pending.push(next);
            }
        }
    }
    found.sort();
    found
}

/// The flags a help text lists under `heading`.
fn flags_under(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .take_while(|line| !line.is_empty() && line.starts_with(' '))
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with("--"))
                .map(|flag| flag.trim_end_matches(',').to_owned())
        })
        .collect()
}

/// The commands that cannot work through a server's API.
const DATABASE_ONLY: &[&str] = &[
    "serve", "migrate", "worker", "bench", "pools", "agents", "agent",
];

#[test]
fn every_command_shows_only_the_flags_it_takes() {
    let leaves = leaves();
    assert!(leaves.len() >= 25, "{} commands found", leaves.len());
    for (path, text) in &leaves {
        let name = path.join(" ");
        assert_eq!(
            flags_under(text, "Global options:"),
            ["--config", "--log", "--log-format", "--time-zone"],
            "longshore {name}:\n{text}"
        );
        assert_eq!(
            flags_under(text, "Database:"),
            ["--database-url", "--data-dir"],
            "longshore {name}:\n{text}"
        );
        let through = flags_under(text, "Through a server:");
        if DATABASE_ONLY.contains(&path[0].as_str()) {
            assert!(through.is_empty(), "longshore {name} lists {through:?}");
            assert!(!text.contains("--server"), "longshore {name}:\n{text}");
        } else {
            assert_eq!(
                through,
                ["--server", "--token"],
                "longshore {name}:\n{text}"
            );
        }
        // A command's own flags are listed once, before the shared ones.
        let own = flags_under(text, "Options:");
        for shared in ["--config", "--database-url", "--server"] {
            assert!(
                !own.contains(&shared.to_owned()),
                "longshore {name}: {own:?}"
            );
        }
    }
}

#[test]
fn help_has_no_dangling_env_hints_nor_field_named_placeholders() {
    for (path, text) in leaves() {
        let name = path.join(" ");
        assert!(!text.contains("=]"), "longshore {name}:\n{text}");
        // A placeholder clap made from a field name (`<BULK_TASKS>`) where
        // a short word was meant (`<N>`).
        for word in text.split(['<', '>']).skip(1).step_by(2) {
            assert!(
                !word.contains('_'),
                "longshore {name}: placeholder <{word}>"
            );
        }
    }
}

#[test]
fn a_flag_a_command_does_not_take_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for args in [
        &["migrate", "--data-dir", data, "--token", "x"][..],
        &[
            "serve",
            "--data-dir",
            data,
            "--server",
            "http://127.0.0.1:9",
        ],
        &["worker", "--data-dir", data, "--token", "x"],
        &[
            "bench",
            "--data-dir",
            data,
            "--server",
            "http://127.0.0.1:9",
        ],
    ] {
        let out = longshore(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
    assert!(
        !std::path::Path::new(data).exists(),
        "a refused command created its data directory"
    );
}

#[test]
fn connection_flags_are_taken_before_or_after_the_subcommand() {
    for args in [
        &["tasks", "--server", "http://127.0.0.1:9", "list", "--help"][..],
        &["tasks", "list", "--server", "http://127.0.0.1:9", "--help"],
        &["--log", "warn", "tasks", "list", "--help"],
    ] {
        let out = longshore(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
