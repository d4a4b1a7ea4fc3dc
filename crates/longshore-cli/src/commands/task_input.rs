//! What `enqueue` and `schedules add|edit` read the same way: a task's
//! arguments, its actor, the object it works on and its time limit.

use std::time::Duration;

use anyhow::{anyhow, bail};
use longshore::Related;
use longshore::ops::{self, OpError, Wording};
use longshore_actors::Builtin;

/// The JSON object `--args` gives: inline, `@FILE`, or `@-` for stdin.
pub(crate) fn read_args(arg: &str) -> anyhow::Result<serde_json::Value> {
    let text = match arg.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| anyhow!("cannot read --args from stdin: {e}"))?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read --args file {path}: {e}"))?,
        None => arg.to_owned(),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("--args is not valid JSON: {e}"))?;
    if !json.is_object() {
        bail!("--args must be a JSON object, e.g. '{{\"ms\": 100}}'");
    }
    Ok(json)
}

/// Checks `args` for `actor`: a built-in actor's own checks, or, with
/// `any_actor`, only that the name is not empty (an actor the user's own
/// workers register, which this binary cannot check).
pub(crate) fn check_actor(
    actor: &str,
    args: &serde_json::Value,
    any_actor: bool,
) -> Result<(), OpError> {
    ops::check_actor(&Builtin, actor, args, any_actor, Wording::Cli)
}

/// `--related TYPE:ID`.
pub(crate) fn parse_related(text: &str) -> anyhow::Result<Related> {
    match text.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(Related {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }),
        _ => bail!("--related must be TYPE:ID, e.g. user:42; got `{text}`"),
    }
}

/// A `--time-limit` as stored: whole milliseconds.
pub(crate) fn time_limit_ms(limit: Duration) -> i64 {
    i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_needs_both_halves() {
        let related = parse_related("user:42").expect("valid");
        assert_eq!((related.kind.as_str(), related.id.as_str()), ("user", "42"));
        assert!(parse_related("user").is_err());
        assert!(parse_related(":42").is_err());
        assert!(parse_related("user:").is_err());
    }

    #[test]
    fn args_must_be_a_json_object() {
        assert!(read_args(r#"{"ms": 5}"#).is_ok());
        let err = read_args("{ms: 5}").expect_err("not JSON").to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = read_args("[1]").expect_err("not an object").to_string();
        assert!(err.contains("JSON object"), "{err}");
    }

    #[test]
    fn actors_are_checked_unless_told_otherwise() {
        let args = serde_json::json!({});
        assert!(check_actor("noop", &args, false).is_ok());
        let err = check_actor("mail", &args, false)
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("--any-actor"), "{err}");
        assert!(check_actor("mail", &args, true).is_ok());
        assert!(check_actor(" ", &args, true).is_err());
    }
}
