//! Human-readable output: aligned tables and times.

use chrono::{DateTime, Utc};

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
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `2026-11-22 10:27:45.479` in UTC.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// An optional time, or `-`.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}
