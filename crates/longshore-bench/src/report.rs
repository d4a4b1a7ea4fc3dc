//! What the workloads measured: the report's JSON shape, and its rows
//! for people.

use std::time::Duration;

use serde::Serialize;

use crate::agents::IdleReport;
use crate::churn::ChurnReport;
use crate::history::HistoryReport;
use crate::producers::ProducersReport;
use crate::scale::ScaleReport;
use crate::scenario::ScenarioReport;

/// What the workloads measured; serialised, the JSON line `longshore
/// bench` prints last.
#[derive(Default, Serialize)]
pub struct Report {
    pub(crate) engine: &'static str,
    pub(crate) server: String,
    /// The settings that decide when a commit is on disk.
    pub(crate) durability: String,
    pub(crate) durable_hot_path: bool,
    pub(crate) concurrency: usize,
    pub(crate) prefetch: longshore::Prefetch,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) a_bulk: Option<BulkReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) b_latency: Option<LatencyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) c_steady: Option<SteadyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) d_memory: Option<MemoryReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) e_far_backlog: Option<FarBacklogReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) f_history: Option<HistoryReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) g_agent: Option<AgentReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) h_idle_agents: Option<IdleReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p_python_agent: Option<BulkReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) m_producers: Option<ProducersReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) s_scale: Option<ScaleReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) k_concurrency: Option<ConcurrencyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) u_directory_sync: Option<ScenarioReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) w_churn: Option<ChurnReport>,
}

/// K: A at each concurrency.
#[derive(Serialize)]
pub(crate) struct ConcurrencyReport {
    pub(crate) tasks: usize,
    pub(crate) runs: Vec<ConcurrencyRun>,
}

/// One concurrency of K.
#[derive(Serialize)]
pub(crate) struct ConcurrencyRun {
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) process_per_sec: f64,
}

/// A and B through one agent.
#[derive(Serialize)]
pub(crate) struct AgentReport {
    pub(crate) a_bulk: BulkReport,
    pub(crate) b_latency: LatencyReport,
}

#[derive(Serialize)]
pub(crate) struct BulkReport {
    pub(crate) tasks: usize,
    pub(crate) insert_seconds: f64,
    pub(crate) insert_per_sec: f64,
    pub(crate) process_seconds: f64,
    pub(crate) process_per_sec: f64,
    /// Where the processing's CPU went, for an inline worker (one in the
    /// bench's own process); none through agents, which run elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu: Option<crate::cpu::Spent>,
}

impl BulkReport {
    pub(crate) fn new(tasks: usize, insert: Duration, process: Duration) -> BulkReport {
        BulkReport {
            tasks,
            insert_seconds: insert.as_secs_f64(),
            insert_per_sec: tasks as f64 / insert.as_secs_f64(),
            process_seconds: process.as_secs_f64(),
            process_per_sec: tasks as f64 / process.as_secs_f64(),
            cpu: None,
        }
    }
}

/// Percentiles of some latencies, in milliseconds (0 for none).
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Percentiles {
    /// Of `millis`, in any order: each the smallest value that at least
    /// that share of `millis` does not exceed.
    pub(crate) fn of(mut millis: Vec<f64>) -> Percentiles {
        millis.sort_by(f64::total_cmp);
        let n = millis.len();
        let pct = |p: f64| match n {
            0 => 0.0,
            _ => millis[((n as f64 * p).ceil() as usize).clamp(1, n) - 1],
        };
        Percentiles {
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: millis.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct LatencyReport {
    pub(crate) tasks: usize,
    pub(crate) interval_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// The first part of each latency: the enqueue call until it returned
    /// (the insert and its durable commit, and this process resuming the
    /// caller).
    pub(crate) enqueue: Percentiles,
    /// The rest: the enqueue's return until the handler started (the
    /// notification, the worker's claim and the start of its handler).
    pub(crate) pickup: Percentiles,
}

#[derive(Serialize)]
pub(crate) struct SteadyReport {
    pub(crate) seconds: f64,
    pub(crate) enqueued: u64,
    pub(crate) enqueue_per_sec: f64,
    pub(crate) completed: u64,
    pub(crate) completed_per_sec: f64,
    pub(crate) final_backlog: i64,
}

#[derive(Serialize)]
pub(crate) struct FarBacklogReport {
    pub(crate) not_due: usize,
    pub(crate) claims: usize,
    pub(crate) mean_empty_claim_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct MemoryReport {
    pub(crate) backlog: usize,
    pub(crate) seconds: f64,
    pub(crate) processed: u64,
    pub(crate) rss_before_mib: f64,
    pub(crate) peak_rss_mib: f64,
}

impl Report {
    /// The line that names what was measured, for people.
    pub fn title(&self) -> String {
        format!(
            "longshore bench: {} {} ({}), concurrency {}, prefetch {}",
            self.engine, self.server, self.durability, self.concurrency, self.prefetch,
        )
    }

    /// The results for people: one row of workload, metric and value per
    /// figure.
    pub fn rows(&self) -> Vec<Vec<String>> {
        summary_rows(self)
    }
}

fn summary_rows(r: &Report) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |w: &str, m: &str, v: String| rows.push(vec![w.into(), m.into(), v]);
    if let Some(a) = &r.a_bulk {
        row(
            "A bulk",
            &format!("insert ({} tasks)", a.tasks),
            format!("{:.0} tasks/s", a.insert_per_sec),
        );
        row(
            "A bulk",
            "process",
            format!("{:.0} tasks/s", a.process_per_sec),
        );
        if let Some(cpu) = &a.cpu {
            let per_task = |seconds: Option<f64>| {
                seconds.map_or("-".to_owned(), |s| {
                    format!("{:.0} µs", s / a.tasks as f64 * 1e6)
                })
            };
            row(
                "A bulk",
                "CPU a task: bench / PostgreSQL",
                format!(
                    "{} / {}; machine {:.2} cores busy",
                    per_task(cpu.bench_cpu_seconds),
                    per_task(cpu.database_cpu_seconds),
                    cpu.machine_busy_cores
                ),
            );
        }
    }
    if let Some(b) = &r.b_latency {
        row("B latency", "p50", format!("{:.2} ms", b.p50_ms));
        row("B latency", "p95", format!("{:.2} ms", b.p95_ms));
        row("B latency", "p99", format!("{:.2} ms", b.p99_ms));
        row("B latency", "max", format!("{:.2} ms", b.max_ms));
        for (part, p) in [("enqueue", &b.enqueue), ("pickup", &b.pickup)] {
            row(
                "B latency",
                &format!("{part} p50 / p99"),
                format!("{:.2} / {:.2} ms", p.p50_ms, p.p99_ms),
            );
        }
    }
    if let Some(c) = &r.c_steady {
        row(
            "C steady",
            "enqueued (1 producer)",
            format!("{:.0} tasks/s", c.enqueue_per_sec),
        );
        row(
            "C steady",
            "completed",
            format!("{:.0} tasks/s", c.completed_per_sec),
        );
        row("C steady", "final backlog", c.final_backlog.to_string());
    }
    if let Some(d) = &r.d_memory {
        row(
            "D memory",
            &format!("backlog {}", d.backlog),
            format!("{} run in {:.0} s", d.processed, d.seconds),
        );
        row("D memory", "peak RSS", format!("{:.1} MiB", d.peak_rss_mib));
    }
    if let Some(e) = &r.e_far_backlog {
        row(
            "E far backlog",
            &format!("empty claim, {} not due", e.not_due),
            format!("{:.3} ms", e.mean_empty_claim_ms),
        );
    }
    if let Some(f) = &r.f_history {
        row(
            "F history",
            &format!("fill ({} finished, {} queued)", f.finished, f.queued),
            format!("{:.0} s", f.fill_seconds),
        );
        for call in &f.calls {
            row(
                "F history",
                &call.call,
                format!(
                    "{:.2} ms (max {:.2}), {:.1} KB",
                    call.median_ms,
                    call.max_ms,
                    call.bytes as f64 / 1e3
                ),
            );
        }
    }
    let inline_rate = r.a_bulk.as_ref().map(|a| a.process_per_sec);
    if let Some(g) = &r.g_agent {
        through_agent_rows(
            &mut row,
            "G agent",
            &g.a_bulk,
            &[("agent / inline", inline_rate)],
        );
        row("G agent", "B p50", format!("{:.2} ms", g.b_latency.p50_ms));
        row("G agent", "B p95", format!("{:.2} ms", g.b_latency.p95_ms));
        if let Some(b) = &r.b_latency {
            row(
                "G agent",
                "B p50, agent / inline",
                format!("{:.2}", g.b_latency.p50_ms / b.p50_ms),
            );
        }
    }
    if let Some(h) = &r.h_idle_agents {
        h.rows(&mut row);
    }
    if let Some(p) = &r.p_python_agent {
        let rust_rate = r.g_agent.as_ref().map(|g| g.a_bulk.process_per_sec);
        through_agent_rows(
            &mut row,
            "P python agent",
            p,
            &[
                ("python / rust agent", rust_rate),
                ("python / inline", inline_rate),
            ],
        );
    }
    if let Some(m) = &r.m_producers {
        for (how, run) in [("one commit each", &m.alone), ("gathered", &m.gathered)] {
            let who = format!("{} producers, {how}", m.producers);
            row(
                "M producers",
                &who,
                format!("{:.0} tasks/s", run.enqueue_per_sec),
            );
            row(
                "M producers",
                &format!("{who}, p50 / p99"),
                format!("{:.2} / {:.2} ms", run.latency.p50_ms, run.latency.p99_ms),
            );
        }
        row(
            "M producers",
            "gathered / one commit each",
            format!("{:.2}", m.speedup),
        );
    }
    if let Some(s) = &r.s_scale {
        for (kind, runs) in [("worker", &s.runs), ("agent", &s.agent_runs)] {
            for run in runs {
                row(
                    "S scale-out",
                    &format!("{} tasks, {} {kind} process(es)", s.tasks, run.processes),
                    format!(
                        "{:.0} tasks/s ({:.2}× the first)",
                        run.process_per_sec, run.ratio
                    ),
                );
            }
        }
    }
    if let Some(k) = &r.k_concurrency {
        for run in &k.runs {
            row(
                "K concurrency",
                &format!("{} tasks, concurrency {}", k.tasks, run.concurrency),
                format!("{:.0} tasks/s", run.process_per_sec),
            );
        }
    }
    if let Some(w) = &r.w_churn {
        for (when, phase) in [("fresh", &w.fresh), ("after the churn", &w.after)] {
            row(
                "W churn",
                &format!("A process, {when}"),
                format!("{:.0} tasks/s", phase.a_bulk.process_per_sec),
            );
            row(
                "W churn",
                &format!("B p50 / p99, {when}"),
                format!(
                    "{:.2} / {:.2} ms",
                    phase.b_latency.p50_ms, phase.b_latency.p99_ms
                ),
            );
        }
        let c = &w.churn;
        row(
            "W churn",
            &format!("{} tasks through", c.tasks),
            format!(
                "{:.0} s, {:.0} tasks/s; purged {:.0} rows/s, {} left at the end",
                c.seconds, c.completed_per_sec, c.purged_per_sec, c.unpurged_at_end
            ),
        );
        row(
            "W churn",
            "after / fresh: A, B p50, B p99",
            format!(
                "{:.2}, {:.2}, {:.2}",
                w.ratio_process, w.ratio_b_p50, w.ratio_b_p99
            ),
        );
    }
    if let Some(u) = &r.u_directory_sync {
        for run in &u.runs {
            let what = format!(
                "{} users at {:.0} ms, {} worker(s) x {} slots",
                u.users, u.directory_latency_ms, run.processes, run.slots
            );
            row(
                "U directory sync",
                &what,
                format!(
                    "{:.1} s, {:.0} tasks/s (slots allow {:.0}), {} requests at once at most",
                    run.seconds, run.process_per_sec, run.slots_allow_per_sec, run.most_in_flight
                ),
            );
            let database = run
                .database_cpu_seconds
                .map_or_else(String::new, |db| format!(", database {db:.1} s"));
            row(
                "U directory sync",
                &format!("{what}, CPU"),
                format!(
                    "workers {:.1} s{database}; machine {:.2} cores busy ({:.0} %)",
                    run.worker_cpu_seconds, run.machine_busy_cores, run.machine_busy_percent
                ),
            );
        }
    }
    rows
}

/// A's rows when it ran through an agent: its rate, and its ratio to each
/// rate of the same run in `beside` that was measured.
fn through_agent_rows(
    row: &mut dyn FnMut(&str, &str, String),
    workload: &str,
    bulk: &BulkReport,
    beside: &[(&str, Option<f64>)],
) {
    row(
        workload,
        &format!("A process ({} tasks, one agent)", bulk.tasks),
        format!("{:.0} tasks/s", bulk.process_per_sec),
    );
    for (what, rate) in beside {
        if let Some(rate) = rate {
            row(
                workload,
                &format!("A process, {what}"),
                format!("{:.2}", bulk.process_per_sec / rate),
            );
        }
    }
}
