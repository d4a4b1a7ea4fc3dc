//! `longshore bench` beyond its figures: the workloads that start
//! processes or sweep a setting (M, S, K) run to the end on each engine;
//! `--chart` draws their curves; `--compare` reads two `--json-out` files
//! back and compares them figure by figure; and the files and flags both
//! refuse. (Workloads through agents run in `agents.rs`.) Nothing here
//! judges a figure: the bench reports, tests do not time.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use longshore_testing::on_both_engines;
use serde_json::json;
use support::{Engine, Env, text};

on_both_engines!(
    the_bench_runs_many_producers_with_gathering_off_then_on,
    the_bench_drains_a_backlog_with_one_then_two_worker_processes,
    the_bench_sweeps_concurrency_and_draws_the_curve,
    the_bench_syncs_users_through_the_http_actor_in_each_layout,
    the_bench_measures_before_and_after_a_churn,
);

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

/// Each of `cases` fails with one line of stderr that says `expected`.
fn refused_with_one_line(env: &Env, cases: &[(Vec<&str>, &str)]) {
    for (args, expected) in cases {
        let out = env.run(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Not a measurement (figures are the bench's to report): workload M runs
/// both of its runs on each engine and reports each one's figures.
async fn the_bench_runs_many_producers_with_gathering_off_then_on(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "bench",
        "--workloads",
        "m",
        "--producers",
        "8",
        "--producers-duration",
        "300ms",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let m = &report["m_producers"];
    assert_eq!(m["producers"], 8, "{report}");
    for run in ["alone", "gathered"] {
        assert!(m[run]["enqueued"].as_u64().unwrap() > 0, "{report}");
        let latency = &m[run]["latency"];
        assert!(latency["p50_ms"].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            latency["p99_ms"].as_f64() <= latency["max_ms"].as_f64(),
            "{report}"
        );
    }
    assert!(m["speedup"].as_f64().unwrap() > 0.0, "{report}");
    assert!(out.contains("gathered / one commit each"), "{out}");
}

/// Not a measurement: workload S starts worker processes of this binary
/// against the scratch database, and each count drains its whole backlog;
/// with `--agents`, agent processes of this binary drain it again through
/// the bench's gateway. Agent counts it cannot run are refused up front.
async fn the_bench_drains_a_backlog_with_one_then_two_worker_processes(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "bench",
        "--workloads",
        "s",
        "--bulk-tasks",
        "300",
        "--processes",
        "1,2",
        "--agents",
        "1,2",
        "--concurrency",
        "4",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let runs = report["s_scale"]["runs"].as_array().unwrap();
    let counts: Vec<u64> = runs
        .iter()
        .map(|r| r["processes"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2], "{report}");
    for run in runs {
        assert!(run["process_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert_eq!(runs[0]["ratio"].as_f64(), Some(1.0), "{report}");
    assert!(out.contains("2 worker process(es)"), "{out}");
    let agent_runs = report["s_scale"]["agent_runs"].as_array().unwrap();
    let counts: Vec<u64> = agent_runs
        .iter()
        .map(|r| r["processes"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2], "{report}");
    assert!(out.contains("2 agent process(es)"), "{out}");

    refused_with_one_line(
        &env,
        &[
            (
                vec!["bench", "--workloads", "s", "--agents", "0"],
                "--agents takes counts from 1 to 64",
            ),
            (
                vec!["bench", "--workloads", "a", "--agents", "2"],
                "--agents belongs to workload s",
            ),
        ],
    );
}

/// Not a measurement: workload K runs A at each concurrency it is given,
/// and `--chart-dir` draws the run's curve; `--chart` draws it again from
/// the `--json-out` file. Flags that cannot draw are refused up front.
async fn the_bench_sweeps_concurrency_and_draws_the_curve(engine: Engine) {
    let env = Env::new(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let (charts, json_out) = (dir.path().join("charts"), dir.path().join("k.json"));
    let out = env.ok(&[
        "bench",
        "--workloads",
        "k",
        "--bulk-tasks",
        "200",
        "--concurrencies",
        "1,4",
        "--chart-dir",
        charts.to_str().unwrap(),
        "--json-out",
        json_out.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    let runs = report["k_concurrency"]["runs"].as_array().unwrap();
    let concurrencies: Vec<u64> = runs
        .iter()
        .map(|r| r["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(concurrencies, [1, 4], "{report}");
    assert!(
        runs.iter()
            .all(|r| r["process_per_sec"].as_f64().unwrap() > 0.0)
    );
    assert!(out.contains("concurrency 4"), "{out}");
    let svg = std::fs::read_to_string(charts.join("concurrency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("tasks/s"), "{svg}");
    assert!(!charts.join("processes.svg").exists(), "S did not run");

    // Drawn again from the file, into another directory.
    let again = dir.path().join("again");
    let out = env.ok(&[
        "bench",
        "--chart",
        json_out.to_str().unwrap(),
        "--chart-dir",
        again.to_str().unwrap(),
    ]);
    assert!(out.contains("concurrency.svg"), "{out}");
    assert!(again.join("concurrency.svg").exists());

    refused_with_one_line(
        &env,
        &[
            (
                vec!["bench", "--workloads", "a", "--chart-dir", "x"],
                "draws the curves of workloads k and s",
            ),
            (
                vec!["bench", "--workloads", "k", "--concurrencies", "0"],
                "--concurrencies takes counts from 1",
            ),
        ],
    );
    // A report without a curve has nothing to draw.
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, r#"{"engine": "sqlite", "a_bulk": {"tasks": 1}}"#).unwrap();
    let out = env.run(&["bench", "--chart", plain.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nothing to draw"), "{out:?}");
}

/// Not a measurement: workload U sends every user to the stand-in
/// directory through `http` tasks, in each layout, and says how many
/// requests it answered at once (never more than the layout's slots).
async fn the_bench_syncs_users_through_the_http_actor_in_each_layout(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "bench",
        "--workloads",
        "u",
        "--users",
        "120",
        "--layouts",
        "1x4,2x3",
        "--directory-latency",
        "5ms",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let u = &report["u_directory_sync"];
    assert_eq!(u["users"], 120, "{report}");
    let runs = u["runs"].as_array().unwrap();
    let layouts: Vec<&str> = runs.iter().map(|r| r["layout"].as_str().unwrap()).collect();
    assert_eq!(layouts, ["1x4", "2x3"], "{report}");
    for (run, slots) in runs.iter().zip([4, 6]) {
        let most = run["most_in_flight"].as_u64().unwrap();
        assert!((1..=slots).contains(&most), "{run}");
        assert!(run["process_per_sec"].as_f64().unwrap() > 0.0, "{run}");
        assert!(run["worker_cpu_seconds"].as_f64().unwrap() >= 0.0, "{run}");
        // The database's CPU is read only for a PostgreSQL server (and
        // only when it runs on this machine).
        let database = run.get("database_cpu_seconds").and_then(|d| d.as_f64());
        match engine {
            Engine::Sqlite => assert!(database.is_none(), "{run}"),
            Engine::Postgres => assert!(database.is_none_or(|d| d >= 0.0), "{run}"),
        }
    }
    for (layouts, expected) in [
        ("4", "expected PROCESSESxSLOTS"),
        ("0x16", "1 to 64 processes"),
    ] {
        let out = env.run(&["bench", "--workloads", "u", "--layouts", layouts]);
        assert!(!out.status.success(), "{layouts} was accepted");
        assert!(text(&out.stderr).contains(expected), "{out:?}");
    }
}

/// Not a measurement: workload W measures A and B, churns its tasks
/// through with the purger at work, and measures again; it runs alone.
async fn the_bench_measures_before_and_after_a_churn(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.ok(&[
        "bench",
        "--workloads",
        "w",
        "--bulk-tasks",
        "300",
        "--latency-tasks",
        "20",
        "--churn-tasks",
        "3000",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let w = &report["w_churn"];
    assert_eq!(w["churn"]["tasks"], 3000, "{report}");
    // Everything the churn ran was purged but what the last passes left.
    let purged = w["churn"]["purged"].as_u64().unwrap();
    let left = w["churn"]["unpurged_at_end"].as_u64().unwrap();
    assert!(purged > 0 && left <= 3000, "{report}");
    for phase in ["fresh", "after"] {
        assert_eq!(w[phase]["a_bulk"]["tasks"], 300, "{report}");
        assert!(w[phase]["b_latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    }
    assert!(w["ratio_process"].as_f64().unwrap() > 0.0, "{report}");
    let out = env.run(&["bench", "--workloads", "w,a"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("workload w runs alone"),
        "{out:?}"
    );
}
