//! The overview's charts of the last 24 hours, drawn on the server as SVG
//! lines from the throughput per minute ([`MinuteRow`]) that the
//! maintenance fold keeps: the shape of the day for operators without
//! Prometheus, with no script and nothing from another origin.
//!
//! The day is cut into [`BUCKETS`] spans of ten minutes. The throughput
//! chart adds up each span's tasks; the backlog chart shows the last
//! backlog counted in each span, and carries it over spans in which
//! nothing was counted (nothing changed then). The SVG holds only the
//! lines, stretched to the page's width; the labels are HTML around it, so
//! they stay legible on a phone.

use chrono::{DateTime, Duration, Utc};
use longshore::core::MinuteRow;

/// Spans of the day.
pub(crate) const BUCKETS: usize = 144;
/// One span.
pub(crate) const SPAN_MINUTES: i64 = 10;
/// The drawing's own units: one per span across, 100 up, of which the
/// lines use [`LOW`] to [`HIGH`] (a line at zero stays in sight).
const LOW: f64 = 98.0;
const HIGH: f64 = 2.0;

/// One line of a chart.
pub(crate) struct Line {
    /// What it counts, for the legend; also its CSS class (its colour).
    pub(crate) name: &'static str,
    /// The polyline's points, in the drawing's units; empty when the line
    /// has nothing to show.
    pub(crate) points: String,
    /// Its total (throughput) or latest value (backlog), for the legend.
    pub(crate) figure: i64,
}

/// One chart.
pub(crate) struct Chart {
    /// Its caption.
    pub(crate) title: &'static str,
    /// The largest value drawn (the top of the drawing), at least 1.
    pub(crate) top: i64,
    pub(crate) lines: Vec<Line>,
    /// Read aloud in place of the drawing.
    pub(crate) summary: String,
}

/// The two charts of the overview, and the times along their bottom.
pub(crate) struct Day {
    /// Throughput, then backlog.
    pub(crate) charts: [Chart; 2],
    /// Labels of the left end, the middle and the right end (UTC).
    pub(crate) axis: [String; 3],
    /// The drawing's width in its own units.
    pub(crate) width: usize,
}

impl Day {
    /// The day that ends at `now`, from the minutes since 24 hours before.
    pub(crate) fn new(rows: &[MinuteRow], now: DateTime<Utc>) -> Day {
        let start = now - Duration::minutes(SPAN_MINUTES * BUCKETS as i64);
        let span_of = |at: DateTime<Utc>| {
            let minutes = (at - start).num_minutes();
            (minutes >= 0)
                .then(|| usize::try_from(minutes / SPAN_MINUTES).ok())
                .flatten()
                .map(|i| i.min(BUCKETS - 1))
        };
        let mut enqueued = [0i64; BUCKETS];
        let mut succeeded = [0i64; BUCKETS];
        let mut failed = [0i64; BUCKETS];
        let mut waiting: [Option<i64>; BUCKETS] = [None; BUCKETS];
        // The backlog before the day's first span, if a row tells it.
        let mut carried = None;
        for row in rows {
            match span_of(row.minute) {
                Some(i) => {
                    enqueued[i] += row.enqueued;
                    succeeded[i] += row.succeeded;
                    failed[i] += row.failed;
                    if row.waiting.is_some() {
                        waiting[i] = row.waiting;
                    }
                }
                None => carried = row.waiting.or(carried),
            }
        }
        for slot in &mut waiting {
            match slot {
                Some(n) => carried = Some(*n),
                None => *slot = carried,
            }
        }
        let throughput = chart(
            "Tasks per ten minutes",
            vec![
                ("enqueued", &enqueued.map(Some)),
                ("succeeded", &succeeded.map(Some)),
                ("failed", &failed.map(Some)),
            ],
            |values| values.iter().flatten().sum(),
            |lines, top| {
                format!(
                    "In the last 24 hours: {} enqueued, {} succeeded, {} failed; at most {top} in ten minutes.",
                    lines[0].figure, lines[1].figure, lines[2].figure
                )
            },
        );
        let backlog = chart(
            "Tasks waiting",
            vec![("waiting", &waiting)],
            |values| values.iter().rev().flatten().next().copied().unwrap_or(0),
            |lines, top| {
                format!(
                    "Tasks waiting (scheduled or queued) over the last 24 hours: at most {top}, {} at the last count.",
                    lines[0].figure
                )
            },
        );
        let label = |at: DateTime<Utc>| at.format("%H:%M").to_string();
        Day {
            charts: [throughput, backlog],
            axis: [label(start), label(start + Duration::hours(12)), label(now)],
            width: BUCKETS,
        }
    }
}

/// Chart `title` of `lines` (name, one value per span, `None` where
/// unknown), each with the figure `figure` makes of its values, read aloud
/// as `summary` says.
fn chart(
    title: &'static str,
    lines: Vec<(&'static str, &[Option<i64>; BUCKETS])>,
    figure: impl Fn(&[Option<i64>; BUCKETS]) -> i64,
    summary: impl Fn(&[Line], i64) -> String,
) -> Chart {
    let top = lines
        .iter()
        .flat_map(|(_, values)| values.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(name, values)| Line {
            name,
            points: points(values, top),
            figure: figure(values),
        })
        .collect();
    Chart {
        title,
        summary: summary(&lines, top),
        top,
        lines,
    }
}

/// A polyline through the known values, each span's point at its middle.
fn points(values: &[Option<i64>; BUCKETS], top: i64) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if let Some(value) = value {
            let x = i as f64 + 0.5;
            let y = LOW - (*value as f64 / top as f64) * (LOW - HIGH);
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{x:.1},{y:.1}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(now: DateTime<Utc>, ago: i64, enqueued: i64, waiting: Option<i64>) -> MinuteRow {
        MinuteRow {
            minute: now - Duration::minutes(ago),
            enqueued,
            succeeded: enqueued / 2,
            failed: 0,
            waiting,
        }
    }

    #[test]
    fn spans_add_up_and_the_backlog_carries_over() {
        let now = Utc::now();
        let rows = [
            minute(now, 2000, 0, Some(7)), // before the day: carried in
            minute(now, 1430, 10, None),
            minute(now, 1425, 30, Some(3)),
            minute(now, 1, 4, None),
        ];
        let day = Day::new(&rows, now);
        let enqueued = &day.charts[0].lines[0];
        assert_eq!(enqueued.figure, 44);
        assert_eq!(day.charts[0].top, 40, "both first minutes share a span");
        assert_eq!(day.charts[0].lines[1].figure, 22);
        // Every span has a backlog: 7 until it was counted at 3.
        let backlog = &day.charts[1].lines[0];
        assert_eq!(backlog.points.split(' ').count(), BUCKETS);
        assert_eq!(backlog.figure, 3);
        assert_eq!(day.charts[1].top, 7);
        assert!(day.charts[0].summary.contains("44 enqueued"));
    }

    #[test]
    fn an_empty_day_draws_flat_lines_and_no_backlog() {
        let day = Day::new(&[], Utc::now());
        assert_eq!(day.charts[0].top, 1);
        assert!(day.charts[0].lines[0].points.ends_with(",98.0"));
        assert!(day.charts[1].lines[0].points.is_empty());
    }
}
