//! `longshore bench --compare OLD NEW`: two sets of reports, figure by
//! figure, so that a change to the hot path is judged on repeated runs
//! rather than on one.
//!
//! Each side is what `--json-out` wrote: one report, or the list of
//! reports of `--repeat N`. A figure is every number of a report, named by
//! its path (`a_bulk.process_per_sec`, `b_latency.p99_ms`). Per figure and
//! side: the median and the spread (lowest to highest) over the side's
//! runs; the change of the medians; and a verdict that calls a change
//! better or worse only when the two spreads do not overlap.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::Value;

/// One figure on both sides.
#[derive(Debug, PartialEq)]
pub struct Figure {
    /// Its path in the report, e.g. `a_bulk.process_per_sec`.
    pub name: String,
    /// The old side's runs.
    pub old: Spread,
    /// The new side's runs.
    pub new: Spread,
}

/// A figure's values over one side's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value (of an even count, the mean of the middle two).
    pub median: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
    /// Runs that reported it.
    pub runs: usize,
}

impl Spread {
    pub(crate) fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => values[n / 2],
            _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
            runs: n,
        })
    }

    fn show(&self) -> String {
        if self.runs == 1 {
            return number(self.median);
        }
        format!(
            "{} ({}–{}, {} runs)",
            number(self.median),
            number(self.min),
            number(self.max),
            self.runs
        )
    }
}

/// Which way is better for a figure, read from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    /// A size or a setting, not a result (`tasks`, `producers`).
    Neither,
}

fn better(name: &str) -> Better {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    // What the run was asked to do, not what it measured.
    if leaf == "interval_ms" {
        return Better::Neither;
    }
    if leaf.ends_with("_per_sec") || leaf == "speedup" || leaf.starts_with("ratio") {
        Better::Higher
    } else if leaf.ends_with("_ms") || leaf.ends_with("_seconds") || leaf.ends_with("_mib") {
        Better::Lower
    } else {
        Better::Neither
    }
}

impl Figure {
    /// The change of the medians, in percent of the old one.
    pub fn change_percent(&self) -> Option<f64> {
        (self.old.median != 0.0)
            .then(|| (self.new.median - self.old.median) / self.old.median.abs() * 100.0)
    }

    /// `better` or `worse` when the spreads do not overlap, `within
    /// spread` when they do, and `-` for a figure that is not a result.
    pub fn verdict(&self) -> &'static str {
        let direction = better(&self.name);
        if direction == Better::Neither {
            return "-";
        }
        let up = self.new.min > self.old.max;
        let down = self.new.max < self.old.min;
        match (direction, up, down) {
            (Better::Higher, true, _) | (Better::Lower, _, true) => "better",
            (Better::Higher, _, true) | (Better::Lower, true, _) => "worse",
            _ => "within spread",
        }
    }

    /// The row for people: figure, old, new, change, verdict.
    pub fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.old.show(),
            self.new.show(),
            self.change_percent()
                .map_or_else(|| "-".into(), |c| format!("{c:+.1} %")),
            self.verdict().into(),
        ]
    }
}

/// The headers of [`Figure::row`].
pub const HEADERS: [&str; 5] = ["FIGURE", "OLD", "NEW", "CHANGE", "VERDICT"];

/// Reads one side: a report, or a list of reports, as `--json-out`
/// writes them.
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let reports = match value {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    if reports.is_empty() || !reports.iter().all(|r| r.get("engine").is_some()) {
        bail!(
            "{} is not a report of `longshore bench --json-out`",
            path.display()
        );
    }
    Ok(reports)
}

/// The figures both sides report, in report order. Figures only one side
/// has are left out: they were not measured on the other.
pub fn compare(old: &[Value], new: &[Value]) -> Vec<Figure> {
    let (old_values, order) = figures(old);
    let (new_values, _) = figures(new);
    order
        .into_iter()
        .filter_map(|name| {
            let old = Spread::of(old_values.get(&name)?.clone())?;
            let new = Spread::of(new_values.get(&name)?.clone())?;
            Some(Figure { name, old, new })
        })
        .collect()
}

/// Every number of `reports`, by path, and the paths in the order they
/// first appear.
fn figures(reports: &[Value]) -> (BTreeMap<String, Vec<f64>>, Vec<String>) {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut order = Vec::new();
    for report in reports {
        let mut numbers = Vec::new();
        leaves(report, String::new(), &mut numbers);
        for (path, number) in numbers {
            let seen = values.entry(path.clone()).or_default();
            if seen.is_empty() {
                order.push(path);
            }
            seen.push(number);
        }
    }
    (values, order)
}

fn leaves(value: &Value, path: String, out: &mut Vec<(String, f64)>) {
    let child = |key: &str| match path.as_str() {
        "" => key.to_owned(),
        _ => format!("{path}.{key}"),
    };
    match value {
        Value::Number(n) => {
            if let Some(n) = n.as_f64() {
                out.push((path, n));
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                leaves(value, child(key), out);
            }
        }
        Value::Array(items) => {
            // A list of named calls (F's) is keyed by each call's name.
            for (i, item) in items.iter().enumerate() {
                let key = item
                    .get("call")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_owned);
                leaves(item, child(&key), out);
            }
        }
        _ => {}
    }
}

/// A figure as people read it: whole numbers as such and from 100 up,
/// two or three decimals below.
fn number(n: f64) -> String {
    if n.abs() >= 100.0 || n.fract() == 0.0 {
        format!("{n:.0}")
    } else if n.abs() >= 1.0 {
        format!("{n:.2}")
    } else {
        format!("{n:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(rate: f64, p99: f64) -> Value {
        json!({
            "engine": "postgres",
            "concurrency": 16,
            "a_bulk": {"tasks": 1000, "process_per_sec": rate},
            "b_latency": {"p99_ms": p99},
        })
    }

    fn figure<'a>(figures: &'a [Figure], name: &str) -> &'a Figure {
        figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no figure {name} in {figures:?}"))
    }

    #[test]
    fn a_change_is_better_or_worse_only_outside_both_spreads() {
        let old = [run(1000.0, 5.0), run(1100.0, 6.0), run(1200.0, 7.0)];
        let new = [run(1500.0, 5.5), run(1300.0, 6.5), run(1400.0, 9.0)];
        let figures = compare(&old, &new);
        let rate = figure(&figures, "a_bulk.process_per_sec");
        assert_eq!(
            rate.old,
            Spread {
                median: 1100.0,
                min: 1000.0,
                max: 1200.0,
                runs: 3
            }
        );
        assert_eq!(rate.new.median, 1400.0);
        assert_eq!(rate.verdict(), "better");
        let change = rate.change_percent().unwrap();
        assert!((change - 27.27).abs() < 0.01, "{change}");
        // Overlapping spreads decide nothing, whatever the medians say.
        assert_eq!(
            figure(&figures, "b_latency.p99_ms").verdict(),
            "within spread"
        );
        // Sizes are shown, not judged.
        assert_eq!(figure(&figures, "a_bulk.tasks").verdict(), "-");
    }

    #[test]
    fn lower_is_better_for_times_and_an_even_count_takes_the_middle_two() {
        let old = [run(1000.0, 9.0), run(1000.0, 11.0)];
        let new = [run(900.0, 4.0), run(800.0, 6.0)];
        let figures = compare(&old, &new);
        let p99 = figure(&figures, "b_latency.p99_ms");
        assert_eq!((p99.old.median, p99.new.median), (10.0, 5.0));
        assert_eq!(p99.verdict(), "better");
        assert_eq!(
            figure(&figures, "a_bulk.process_per_sec").verdict(),
            "worse"
        );
    }

    #[test]
    fn figures_one_side_lacks_are_left_out_and_named_calls_keep_their_names() {
        let old = [json!({"engine": "sqlite", "f_history": {"calls": [
            {"call": "stats", "median_ms": 2.0}
        ]}})];
        let new = [
            json!({"engine": "sqlite", "a_bulk": {"process_per_sec": 5.0},
            "f_history": {"calls": [{"call": "stats", "median_ms": 1.0}]}}),
        ];
        let names: Vec<String> = compare(&old, &new).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["f_history.calls.stats.median_ms"]);
    }
}
