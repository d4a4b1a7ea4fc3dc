//! What every page shows around its content (the navigation, who is
//! signed in, the CSRF token its forms carry, notices), and the formatting
//! of times and tasks that pages share. Times are UTC, marked as such.

use chrono::{DateTime, Utc};
use longshore::{TaskRow, TokenScope};

use super::session::Signed;

/// The pages, as the navigation lists them: path, label, section.
const LINKS: &[(&str, &str, &str)] = &[
    ("/", "Overview", "overview"),
    ("/tasks", "Tasks", "tasks"),
    ("/schedules", "Schedules", "schedules"),
    ("/queues", "Queues", "queues"),
    ("/workers", "Workers", "workers"),
    ("/settings", "Settings", "settings"),
    ("/audit", "Audit", "audit"),
];

/// A notice shown at the top of a page.
pub(crate) struct Flash {
    /// `""` or `error`.
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

/// The frame of every signed-in page.
pub(crate) struct Chrome {
    /// Which navigation link is this page's.
    pub(crate) section: &'static str,
    /// The token the session was opened with.
    pub(crate) who: String,
    pub(crate) scope: &'static str,
    /// Whether write controls are shown (the server refuses writes of
    /// read sessions anyway).
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    /// Seconds between live refreshes of the page's content.
    pub(crate) refresh: Option<u32>,
    pub(crate) flashes: Vec<Flash>,
}

impl Chrome {
    pub(crate) fn new(signed: &Signed, section: &'static str) -> Chrome {
        let token = &signed.session.token;
        Chrome {
            section,
            who: token.name.clone(),
            scope: token.scope.as_str(),
            admin: token.scope == TokenScope::Admin,
            csrf: signed.session.csrf.clone(),
            refresh: None,
            flashes: Vec::new(),
        }
    }

    /// Refreshes the page's content every `seconds` while it is visible.
    pub(crate) fn live(mut self, seconds: u32) -> Chrome {
        self.refresh = Some(seconds);
        self
    }

    /// The notice a redirect after a change asked for (`?done=CODE`); a
    /// code it does not know shows nothing, so that a link cannot put
    /// words of its own on the page.
    pub(crate) fn done(mut self, code: Option<&str>) -> Chrome {
        let text = match code {
            Some("retried") => "The task was queued again.",
            Some("cancelled") => "The task was cancelled.",
            Some("signalled") => "The task is running: its worker was told to cancel it.",
            Some("ran") => "The schedule was run.",
            Some("paused") => "Paused.",
            Some("resumed") => "Resumed.",
            Some("saved") => "Saved.",
            Some("flushed") => "The queue was flushed.",
            Some("stopping") => "Asked to stop: it stops after the batch it is on.",
            Some("ended") => "It had ended already.",
            Some("draining") => {
                "The agent was asked to drain: it finishes what it runs and takes nothing more."
            }
            Some("revoked") => {
                "The token was revoked: requests and sessions bearing it are refused."
            }
            _ => return self,
        };
        self.flashes.push(Flash {
            kind: "",
            text: text.to_owned(),
        });
        self
    }

    pub(crate) fn error(mut self, text: impl Into<String>) -> Chrome {
        self.flashes.push(Flash {
            kind: "error",
            text: text.into(),
        });
        self
    }

    /// The navigation: every page, but the audit trail for admins only.
    pub(crate) fn links(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        LINKS
            .iter()
            .filter(|(_, _, section)| self.admin || *section != "audit")
            .copied()
            .collect()
    }
}

/// `2026-12-03 17:02:12 UTC`.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional time, or `-`.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// How long ago `at` was, coarsely: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(crate) fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = now.signed_duration_since(at).num_seconds();
    if seconds < 0 {
        return format!("in {}", span(-seconds));
    }
    format!("{} ago", span(seconds))
}

fn span(seconds: i64) -> String {
    match seconds {
        s if s < 90 => format!("{s}s"),
        s if s < 90 * 60 => format!("{}m", s / 60),
        s if s < 36 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One task as a line of a table.
pub(crate) struct TaskLine {
    pub(crate) id: String,
    pub(crate) short_id: String,
    /// The status's name, for the badge's class.
    pub(crate) status: String,
    pub(crate) status_label: &'static str,
    pub(crate) actor: String,
    pub(crate) queue: String,
    pub(crate) related: String,
    pub(crate) attempt: String,
    pub(crate) age: String,
    pub(crate) created_at: String,
    pub(crate) finished_at: String,
    pub(crate) duration: String,
}

impl TaskLine {
    pub(crate) fn new(task: &TaskRow, now: DateTime<Utc>) -> TaskLine {
        let status = task.status_at(now);
        let duration = match (task.started_at, task.finished_at) {
            (Some(start), Some(end)) => {
                let ms = end.signed_duration_since(start).num_milliseconds();
                if ms < 10_000 {
                    format!("{ms} ms")
                } else {
                    span(ms / 1000)
                }
            }
            (Some(start), None) => format!(
                "{} so far",
                span(now.signed_duration_since(start).num_seconds())
            ),
            _ => "-".to_owned(),
        };
        TaskLine {
            id: task.id.to_string(),
            short_id: task
                .id
                .to_string()
                .chars()
                .rev()
                .take(8)
                .collect::<String>()
                .chars()
                .rev()
                .collect(),
            status: status.as_str().to_owned(),
            status_label: status.label(),
            actor: task.actor.clone(),
            queue: task.queue.clone(),
            related: task
                .related
                .as_ref()
                .map_or_else(|| "-".to_owned(), |r| format!("{}:{}", r.kind, r.id)),
            attempt: format!("{}/{}", task.attempt, task.max_attempts),
            age: age(task.created_at, now),
            created_at: time(task.created_at),
            finished_at: maybe_time(task.finished_at),
            duration,
        }
    }
}
