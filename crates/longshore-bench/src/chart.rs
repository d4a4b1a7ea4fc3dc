//! `longshore bench --chart`: the curves of workloads K (tasks/s against
//! a worker's concurrency) and S (tasks/s against worker processes),
//! drawn as SVG files from `--json-out` reports, one line per file.
//!
//! Each file is one report or a `--repeat` list. A point is the median of
//! the runs that measured it, with a bar from the lowest to the highest
//! when there were several, so a chart shows the spread as well as the
//! trend. The x axis is logarithmic: the counts double (1, 2, 4… or 1,
//! 4, 16, 64).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plotters::prelude::*;
use serde_json::Value;

use crate::compare::Spread;

/// One file's reports, and what to call its line when its settings alone
/// do not tell it from the others (the file's name).
pub struct Series {
    /// The file's name without its extension.
    pub name: String,
    /// Its reports.
    pub reports: Vec<Value>,
}

impl Series {
    /// Reads a `--json-out` file.
    pub fn read(path: &Path) -> anyhow::Result<Series> {
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        Ok(Series {
            name,
            reports: crate::compare::read(path)?,
        })
    }

    /// The engine and the settings that shape the curve, from the first
    /// report: "PostgreSQL, durable, prefetch 16".
    fn settings(&self, chart: Chart) -> String {
        let first = self.reports.first();
        let text = |key: &str| first.and_then(|r| r.get(key));
        let mut label = match text("engine").and_then(Value::as_str) {
            Some("postgres") => "PostgreSQL".to_owned(),
            Some("sqlite") => "SQLite".to_owned(),
            other => other.unwrap_or("?").to_owned(),
        };
        if text("durable_hot_path").and_then(Value::as_bool) == Some(true) {
            label.push_str(", durable");
        }
        if let Some(slots) = text("concurrency").and_then(Value::as_u64)
            && chart == Chart::Processes
        {
            label.push_str(&format!(", {slots} slots each"));
        }
        // A count, or `auto` (reports from before it existed say nothing,
        // meaning 0).
        match text("prefetch") {
            Some(Value::String(mode)) => label.push_str(&format!(", prefetch {mode}")),
            Some(n) if n.as_u64().is_some_and(|n| n > 0) => {
                label.push_str(&format!(", prefetch {n}"));
            }
            _ => {}
        }
        label
    }
}

/// Which curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// K: one worker at each concurrency.
    Concurrency,
    /// S: more and more worker processes (and, where the reports have
    /// them, agent processes through one gateway, a line of their own).
    Processes,
}

impl Chart {
    /// Both, in the order they are drawn.
    pub const ALL: [Chart; 2] = [Chart::Concurrency, Chart::Processes];

    /// The file it is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            Chart::Concurrency => "concurrency.svg",
            Chart::Processes => "processes.svg",
        }
    }

    /// The report's part, and the name of its runs' x value.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Chart::Concurrency => ("k_concurrency", "concurrency"),
            Chart::Processes => ("s_scale", "processes"),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Chart::Concurrency => "Tasks processed per second, one worker",
            Chart::Processes => "Tasks processed per second, processes on one database",
        }
    }

    fn x_description(self) -> &'static str {
        match self {
            Chart::Concurrency => "concurrency (slots of the one worker)",
            Chart::Processes => "processes (workers, or agents through one gateway)",
        }
    }
}

/// One point of a line: an x value and the rates measured at it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Concurrency or processes.
    pub x: f64,
    /// Tasks/s over the runs.
    pub rate: Spread,
}

/// The points `reports` hold for `chart`, by x (empty when none ran it).
pub fn points(reports: &[Value], chart: Chart) -> Vec<Point> {
    points_of(reports, chart, "runs")
}

/// The points of S's runs through agents (empty for K, and when none ran).
fn agent_points(reports: &[Value], chart: Chart) -> Vec<Point> {
    match chart {
        Chart::Processes => points_of(reports, chart, "agent_runs"),
        Chart::Concurrency => Vec::new(),
    }
}

/// The points of the runs listed under `runs` in `chart`'s part.
fn points_of(reports: &[Value], chart: Chart, runs: &str) -> Vec<Point> {
    let (part, key) = chart.source();
    let mut by_x: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for report in reports {
        let runs = report
            .get(part)
            .and_then(|p| p.get(runs))
            .and_then(Value::as_array);
        for run in runs.into_iter().flatten() {
            let x = run.get(key).and_then(Value::as_u64);
            let rate = run.get("process_per_sec").and_then(Value::as_f64);
            if let (Some(x), Some(rate)) = (x, rate) {
                by_x.entry(x).or_default().push(rate);
            }
        }
    }
    by_x.into_iter()
        .filter_map(|(x, rates)| {
            Some(Point {
                x: x as f64,
                rate: Spread::of(rates)?,
            })
        })
        .collect()
}

/// Draws every chart some series has points for into `dir`, and
/// returns the files written.
pub fn draw(series: &[Series], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for chart in Chart::ALL {
        let lines = labelled(series, chart);
        if lines.is_empty() {
            continue;
        }
        let path = dir.join(chart.file_name());
        let svg = svg(chart, &lines)?;
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    if written.is_empty() {
        bail!(
            "nothing to draw: the reports have no curve (run workload k, concurrency, or s, processes)"
        );
    }
    Ok(written)
}

/// The series that have points for `chart`, each with its label; a
/// label two of them share gets each file's name after it.
fn labelled(series: &[Series], chart: Chart) -> Vec<(String, Vec<Point>)> {
    let lines: Vec<(String, &Series, Vec<Point>)> = series
        .iter()
        .flat_map(|s| {
            let settings = s.settings(chart);
            [
                (settings.clone(), s, points(&s.reports, chart)),
                (
                    format!("{settings}, agents"),
                    s,
                    agent_points(&s.reports, chart),
                ),
            ]
        })
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    lines
        .iter()
        .map(|(label, s, points)| {
            let shared = lines.iter().filter(|(l, _, _)| l == label).count() > 1;
            let label = if shared {
                format!("{label} ({})", s.name)
            } else {
                label.clone()
            };
            (label, points.clone())
        })
        .collect()
}

/// Line colours that stay apart on white, in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// The chart as an SVG document.
fn svg(chart: Chart, lines: &[(String, Vec<Point>)]) -> anyhow::Result<String> {
    let all = || lines.iter().flat_map(|(_, points)| points);
    let x_max = all().map(|p| p.x).fold(1.0, f64::max);
    let y_max = all().map(|p| p.rate.max).fold(1.0, f64::max) * 1.1;
    let ticks: Vec<f64> = {
        let mut xs: Vec<f64> = all().map(|p| p.x).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (760, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut plot = ChartBuilder::on(&root)
            .caption(chart.title(), ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (0.8..x_max * 1.25).log_scale().with_key_points(ticks),
                0.0..y_max,
            )
            .map_err(drawing)?;
        plot.configure_mesh()
            .max_light_lines(1)
            .x_desc(chart.x_description())
            .y_desc("tasks/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(drawing)?;
        for (i, (label, points)) in lines.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            plot.draw_series(LineSeries::new(
                points.iter().map(|p| (p.x, p.rate.median)),
                colour.stroke_width(2),
            ))
            .map_err(drawing)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
            plot.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.rate.median), 3, colour.filled())),
            )
            .map_err(drawing)?;
            plot.draw_series(points.iter().filter(|p| p.rate.runs > 1).map(|p| {
                ErrorBar::new_vertical(p.x, p.rate.min, p.rate.median, p.rate.max, colour, 8)
            }))
            .map_err(drawing)?;
        }
        plot.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(out)
}

fn drawing<E: std::error::Error + Send + Sync + 'static>(
    error: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(rates: &[(u64, f64)]) -> Value {
        let runs: Vec<Value> = rates
            .iter()
            .map(|(c, r)| json!({"concurrency": c, "seconds": 1.0, "process_per_sec": r}))
            .collect();
        json!({"engine": "sqlite", "durable_hot_path": false, "concurrency": 16,
               "prefetch": 0, "k_concurrency": {"tasks": 100, "runs": runs}})
    }

    #[test]
    fn a_point_is_the_median_of_the_runs_that_measured_it() {
        let reports = [
            k(&[(1, 100.0), (16, 900.0)]),
            k(&[(1, 300.0), (16, 1000.0)]),
            k(&[(1, 200.0)]),
        ];
        let curve = points(&reports, Chart::Concurrency);
        assert_eq!(curve.len(), 2);
        assert_eq!((curve[0].x, curve[0].rate.median), (1.0, 200.0));
        assert_eq!((curve[0].rate.min, curve[0].rate.max), (100.0, 300.0));
        assert_eq!((curve[1].x, curve[1].rate.runs), (16.0, 2));
        assert!(points(&reports, Chart::Processes).is_empty());
    }

    #[test]
    fn each_file_is_a_labelled_line_and_only_charts_with_points_are_written() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let series = [
            Series {
                name: "before".into(),
                reports: vec![k(&[(1, 100.0), (4, 350.0), (16, 900.0)])],
            },
            Series {
                name: "after".into(),
                reports: vec![k(&[(1, 120.0), (4, 400.0), (16, 1500.0)])],
            },
        ];
        let written = draw(&series, dir.path()).expect("drawn");
        assert_eq!(written, [dir.path().join("concurrency.svg")]);
        let svg = std::fs::read_to_string(&written[0]).expect("written");
        assert!(svg.starts_with("<svg"), "{svg}");
        // Two series with the same settings are told apart by file name.
        assert!(svg.contains("SQLite (before)") && svg.contains("SQLite (after)"));
        assert!(svg.contains("concurrency (slots of the one worker)"));
        let series = [Series {
            name: "none".into(),
            reports: vec![json!({"engine": "sqlite"})],
        }];
        let err = draw(&series, dir.path()).expect_err("nothing to draw");
        assert!(err.to_string().contains("nothing to draw"), "{err}");
    }

    #[test]
    fn runs_through_agents_are_a_line_of_their_own() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let run = |n: u64, r: f64| json!({"processes": n, "seconds": 1.0, "process_per_sec": r});
        let report = json!({"engine": "postgres", "concurrency": 16, "prefetch": "auto",
            "s_scale": {"tasks": 100,
                "runs": [run(1, 900.0), run(2, 1200.0)],
                "agent_runs": [run(1, 500.0), run(2, 700.0)]}});
        let series = [Series {
            name: "s".into(),
            reports: vec![report],
        }];
        let lines = labelled(&series, Chart::Processes);
        let labels: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "PostgreSQL, 16 slots each, prefetch auto",
                "PostgreSQL, 16 slots each, prefetch auto, agents"
            ]
        );
        assert_eq!(lines[1].1[1].rate.median, 700.0);
        let written = draw(&series, dir.path()).expect("drawn");
        assert_eq!(written, [dir.path().join("processes.svg")]);
    }
}
