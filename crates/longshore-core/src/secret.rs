//! Secrets a task refers to by name instead of carrying.
//!
//! A task's arguments are stored, listed and shown to every read token, so
//! a password or an API key does not belong in them. In its place goes a
//! reference, an object with the single key `$secret`:
//!
//! ```json
//! {"url": "https://api.example.com/sync",
//!  "headers": {"Authorization": {"$secret": "example_api_token"}}}
//! ```
//!
//! The task is stored with the reference. The worker that runs it replaces
//! each reference with the value it knows under that name ([`Secrets`],
//! from its own configuration or environment) just before the handler
//! starts, in memory only: the value is never written to the database nor
//! to the task's log. A worker that does not know a name fails that
//! execution (retryably: during a rolling deploy another worker may know
//! it), saying which name is missing and where it is looked for.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key of a reference object.
pub const REFERENCE_KEY: &str = "$secret";

/// The longest secret name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Checks a secret's name: 1 to 64 lower-case ASCII letters, digits and
/// underscores (so that `LONGSHORE_SECRETS__<NAME>` in any case sets it).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a secret's name must have 1 to {MAX_NAME_BYTES} characters, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "secret name `{}` may hold only lower-case letters, digits and `_`",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// The name `value` refers to, if it is a reference; an error if it is an
/// object that uses the reference key but is not a well-formed reference.
fn reference(value: &Value) -> Result<Option<&str>, String> {
    let Value::Object(map) = value else {
        return Ok(None);
    };
    let Some(name) = map.get(REFERENCE_KEY) else {
        return Ok(None);
    };
    if map.len() != 1 {
        return Err(format!(
            "an object with `{REFERENCE_KEY}` refers to a secret and may have no other key"
        ));
    }
    let Value::String(name) = name else {
        return Err(format!(
            "`{REFERENCE_KEY}` takes a secret's name, as a string"
        ));
    };
    check_name(name)?;
    Ok(Some(name))
}

/// Checks every reference in `args`; the error says what is wrong with the
/// first bad one.
pub fn check_references(args: &Value) -> Result<(), String> {
    let mut pending = vec![args];
    while let Some(value) = pending.pop() {
        if reference(value)?.is_some() {
            continue;
        }
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    Ok(())
}

/// Replaces every reference in `args` with the text `value` gives for its
/// name; the first error stops it (`args` may then be partly replaced). A
/// malformed reference is an error, or, with `skip_malformed`, an object
/// like any other.
fn replace_references(
    args: &mut Value,
    skip_malformed: bool,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<(), String> {
    let mut pending = vec![args];
    while let Some(item) = pending.pop() {
        let found = match reference(item) {
            Err(_) if skip_malformed => None,
            found => found?,
        };
        if let Some(name) = found {
            *item = Value::String(value(name)?);
            continue;
        }
        match item {
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Object(map) => pending.extend(map.values_mut()),
            _ => {}
        }
    }
    Ok(())
}

/// `args` with every well-formed reference replaced by `placeholder`: what
/// a check of the arguments' shape sees before the task runs (a reference
/// stands where a string goes). Malformed ones are left for
/// [`check_references`] to refuse.
pub fn with_placeholders(args: &Value, placeholder: &str) -> Value {
    let mut replaced = args.clone();
    // Cannot fail: malformed references are skipped, and the value is given.
    let _ = replace_references(&mut replaced, true, |_| Ok(placeholder.to_owned()));
    replaced
}

/// The secrets a worker knows, by name. Its `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secrets(BTreeMap<String, String>);

impl Secrets {
    /// Secrets from `(name, value)` pairs; an error names a bad name.
    pub fn new<I, N, V>(pairs: I) -> Result<Secrets, String>
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            let name = name.into();
            check_name(&name)?;
            map.insert(name, value.into());
        }
        Ok(Secrets(map))
    }

    /// Checks every name (settings read from a file are checked here).
    pub fn check(&self) -> Result<(), String> {
        self.0.keys().try_for_each(|name| check_name(name))
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every reference in `args` with the secret's value. The
    /// error names the first unknown secret; `args` may then be partly
    /// resolved and must be dropped.
    pub fn resolve(&self, args: &mut Value) -> Result<(), String> {
        replace_references(args, false, |name| {
            self.0.get(name).cloned().ok_or_else(|| {
                format!(
                    "the arguments refer to secret `{name}`, which this worker does not know \
                     (set secrets.{name} in its configuration, or LONGSHORE_SECRETS__{} in its environment)",
                    name.to_ascii_uppercase()
                )
            })
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_resolved_wherever_they_are() {
        let secrets = Secrets::new([("token", "s3cret"), ("user", "bob")]).unwrap();
        let mut args = json!({
            "headers": {"Authorization": {"$secret": "token"}},
            "list": [1, {"$secret": "user"}, {"nested": {"$secret": "token"}}],
            "plain": "token",
        });
        secrets.resolve(&mut args).unwrap();
        assert_eq!(
            args,
            json!({
                "headers": {"Authorization": "s3cret"},
                "list": [1, "bob", {"nested": "s3cret"}],
                "plain": "token",
            })
        );
    }

    #[test]
    fn an_unknown_secret_is_named_with_where_it_is_looked_for() {
        let mut args = json!({"a": {"$secret": "smtp_password"}});
        let error = Secrets::default().resolve(&mut args).unwrap_err();
        assert!(error.contains("`smtp_password`"), "{error}");
        assert!(
            error.contains("LONGSHORE_SECRETS__SMTP_PASSWORD"),
            "{error}"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for (args, expected) in [
            (json!({"$secret": 5}), "as a string"),
            (json!({"$secret": "a", "b": 1}), "no other key"),
            (json!([{"$secret": "Bad-Name"}]), "lower-case"),
            (json!({"x": {"$secret": ""}}), "1 to 64"),
        ] {
            let error = check_references(&args).unwrap_err();
            assert!(error.contains(expected), "{args}: {error}");
        }
        check_references(&json!({"a": [{"$secret": "ok_1"}], "b": "$secret"})).unwrap();
    }

    #[test]
    fn placeholders_stand_where_references_were() {
        let args = json!({"h": {"$secret": "t"}, "n": [{"$secret": "u"}], "k": 1});
        assert_eq!(
            with_placeholders(&args, "x"),
            json!({"h": "x", "n": ["x"], "k": 1})
        );
    }

    #[test]
    fn debug_shows_names_not_values() {
        let secrets = Secrets::new([("token", "s3cret")]).unwrap();
        let shown = format!("{secrets:?}");
        assert!(
            shown.contains("token") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(Secrets::new([("Token", "x")]).is_err());
    }
}
