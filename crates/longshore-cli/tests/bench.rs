//! `longshore bench --compare`: two `--json-out` files read back and
//! compared figure by figure, and the files it refuses. No database is
//! involved (the workloads themselves run in `cli.rs` and `agents.rs`).

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_longshore");

fn compare(old: &Path, new: &Path) -> Output {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["bench", "--compare"])
        .arg(old)
        .arg(new)
        .output()
        .unwrap()
}

fn report(rate: f64, p50: f64) -> serde_json::Value {
    json!({
        "engine": "postgres",
        "server": "PostgreSQL 15",
        "durability": "synchronous_commit=on",
        "durable_hot_path": false,
        "concurrency": 16,
        "a_bulk": {"tasks": 20000, "insert_seconds": 0.2, "insert_per_sec": 90000.0,
                   "process_seconds": 20000.0 / rate, "process_per_sec": rate},
        "b_latency": {"tasks": 300, "interval_ms": 10.0, "p50_ms": p50, "p95_ms": 4.0,
                      "p99_ms": 5.0, "max_ms": 9.0},
    })
}

#[test]
fn repeated_runs_are_compared_by_median_and_spread() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.json"), dir.path().join("new.json"));
    // A `--repeat 3` list against a single report.
    let runs = json!([
        report(5000.0, 3.0),
        report(5200.0, 3.2),
        report(5100.0, 2.8)
    ]);
    std::fs::write(&old, runs.to_string()).unwrap();
    std::fs::write(&new, report(6000.0, 3.1).to_string()).unwrap();
    let out = compare(&old, &new);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |figure: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(figure))
            .unwrap_or_else(|| panic!("no {figure} in:\n{text}"))
            .to_owned()
    };
    let rate = line("a_bulk.process_per_sec");
    assert!(rate.contains("5100 (5000–5200, 3 runs)"), "{rate}");
    assert!(
        rate.contains("+17.6 %") && rate.ends_with("better"),
        "{rate}"
    );
    let p50 = line("b_latency.p50_ms");
    assert!(p50.ends_with("within spread"), "{p50}");
    assert!(line("a_bulk.tasks").ends_with('-'));
}

#[test]
fn files_that_are_not_reports_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, report(5000.0, 3.0).to_string()).unwrap();
    let cases = [
        ("missing.json", None, "cannot read"),
        ("broken.json", Some("{\"engine\": "), "is not JSON"),
        ("other.json", Some("{\"tasks\": 3}"), "is not a report"),
        ("empty-list.json", Some("[]"), "is not a report"),
        (
            "nothing-shared.json",
            Some("{\"engine\": \"sqlite\", \"note\": \"x\"}"),
            "no figure in common",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        let out = compare(&good, &path);
        let stderr = String::from_utf8(out.stderr.clone()).unwrap();
        assert!(!out.status.success(), "{name} was accepted");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: {:?}", out.stdout);
    }
}
