//! The task-list filters as people type them, read the same way by
//! `longshore tasks list` and by `GET /api/v1/tasks`.
//!
//! A time is either an RFC 3339 instant (`2025-06-01T08:00:00Z`) or an age
//! (`90m`, `2h`, `7d`, any `humantime` duration) meaning "that long before
//! now": `--created-after 2h` lists the tasks of the last two hours.

use chrono::{DateTime, Utc};
use longshore_core::Status;

/// The words of every time filter's error, so that both surfaces say the same.
const TIME_FORMS: &str = "an RFC 3339 time such as 2025-06-01T08:00:00Z, or an age such as 30m, 2h or 7d (meaning that long ago)";

/// A time filter named `name`: an RFC 3339 instant, or an age before `now`.
pub fn parse_time(name: &str, value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let age = humantime::parse_duration(value)
        .map_err(|_| format!("{name}: expected {TIME_FORMS}, got `{value}`"))?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| format!("{name}: the age `{value}` reaches too far back"))
}

/// Statuses, comma-separated or repeated (`warning,error`).
pub fn parse_statuses<S: AsRef<str>>(values: &[S]) -> Result<Vec<Status>, String> {
    values
        .iter()
        .flat_map(|value| value.as_ref().split(','))
        .map(|name| name.trim().parse::<Status>().map_err(|e| e.to_string()))
        .collect()
}

/// A related object filter: `KIND` (every object of that kind) or
/// `KIND:ID` (one object; the id may itself hold colons).
pub fn parse_related(value: &str) -> Result<(String, Option<String>), String> {
    let (kind, id) = match value.split_once(':') {
        Some((kind, id)) => (kind, Some(id)),
        None => (value, None),
    };
    if kind.trim().is_empty() {
        return Err(format!(
            "related: expected KIND or KIND:ID (e.g. user or user:42), got `{value}`"
        ));
    }
    if id.is_some_and(|id| id.is_empty()) {
        return Err(format!(
            "related: the object id after `{kind}:` is empty (give KIND alone for every object of that kind)"
        ));
    }
    Ok((kind.to_owned(), id.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_instants_or_ages_before_now() {
        let now = Utc::now();
        assert_eq!(
            parse_time("t", "2h", now),
            Ok(now - chrono::Duration::hours(2))
        );
        assert_eq!(
            parse_time("t", "2025-06-01T10:00:00+02:00", now).map(|t| t.to_rfc3339()),
            Ok("2025-06-01T08:00:00+00:00".to_owned())
        );
        assert!(parse_time("t", "yesterday", now).is_err());
        assert!(parse_time("t", "2025-06-01", now).is_err());
        assert!(parse_time("t", "100000000years", now).is_err());
    }

    #[test]
    fn related_objects_are_a_kind_and_perhaps_an_id() {
        assert_eq!(parse_related("user"), Ok(("user".into(), None)));
        assert_eq!(
            parse_related("cert:a:b"),
            Ok(("cert".into(), Some("a:b".into())))
        );
        assert!(parse_related(":42").is_err());
        assert!(parse_related("user:").is_err());
        assert!(parse_related("").is_err());
    }

    #[test]
    fn statuses_are_comma_separated() {
        assert_eq!(
            parse_statuses(&["warning,error", "running"]),
            Ok(vec![Status::Warning, Status::Error, Status::Running])
        );
        assert!(parse_statuses(&["fine"]).is_err());
    }
}
