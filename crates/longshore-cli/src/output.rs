//! Human-readable output: aligned tables, times, and text made safe to
//! print in a terminal.

use std::borrow::Cow;
use std::sync::OnceLock;

use chrono::{DateTime, Local, Utc};

/// Prints rows under headers, each column as wide as its widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    print_table(headers, rows, true);
}

/// [`table`] without the headers: a later page of the same table.
pub(crate) fn rows(headers: &[&str], rows: &[Vec<String>]) {
    print_table(headers, rows, false);
}

fn print_table(headers: &[&str], rows: &[Vec<String>], with_headers: bool) {
    debug_assert!(
        rows.iter().all(|row| row.len() == headers.len()),
        "a row's cells do not match the headers"
    );
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    if with_headers {
        line(headers.to_vec());
    }
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The zone times are printed in (`--time-zone`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Zone {
    // UTC, marked `UTC`.
    #[default]
    Utc,
    // The machine's zone (`TZ`, else /etc/localtime), marked with its
    // offset.
    Local,
}

static ZONE: OnceLock<Zone> = OnceLock::new();

/// Sets the zone for this process's output, once; unset means UTC.
pub(crate) fn set_zone(zone: Option<Zone>) {
    let _ = ZONE.set(zone.unwrap_or_default());
}

/// A time as people read it, always marked with its zone:
/// `2026-11-22 10:27:45.479 UTC`, or with `--time-zone local`
/// `2026-11-22 11:27:45.479 +01:00`.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    match ZONE.get().copied().unwrap_or_default() {
        Zone::Utc => at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        Zone::Local => at
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S%.3f %:z")
            .to_string(),
    }
}

/// An optional time, or `-`.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// `text` with every control character written as an escape (`\n`,
/// `\u{1b}`): what a task, a queue or a handler's log names cannot then
/// print fake rows or run escape sequences in the operator's terminal.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A log message over several lines: each line after the first indented
/// by `indent` spaces (so that none can pass for a log line of its own),
/// every other control character escaped.
pub(crate) fn log_message(text: &str, indent: usize) -> String {
    let pad = format!("\n{}", " ".repeat(indent));
    text.lines()
        .map(|line| printable(line).into_owned())
        .collect::<Vec<_>>()
        .join(&pad)
}

/// One `name  value` line of a `show` command, the value made printable.
pub(crate) fn field(width: usize, name: &str, value: &str) {
    println!("{name:<width$} {}", printable(value));
}
