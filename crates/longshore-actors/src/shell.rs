//! `shell`: runs one of the commands the node's configuration names.
//!
//! Arguments: `{"command": "NAME", "params": {"key": value, …}}`. `NAME`
//! must be a key of `actors.shell.commands`, whose value is the command's
//! argv; `{key}` in an argument (never in the program) is replaced by the
//! task's `params.key` — a string as it is, a number or a boolean as its
//! JSON text. The filled argument stays one argument: nothing passes
//! through a shell, so quotes, spaces and `;` in a value are only text.
//!
//! The process starts in `actors.shell.working_dir` with only the
//! environment the configuration gives it, in a process group of its own.
//! Its output goes to the task's log line by line, up to
//! `actors.shell.max_output_bytes`. Exit status 0 succeeds; the configured
//! warning, error and fatal codes end the task with that outcome; any other
//! status, or death by a signal, is retried. Cancellation and the time limit
//! stop the whole group: SIGTERM, then SIGKILL after
//! `actors.shell.kill_grace`. Processes the command left behind in its
//! group are killed when it exits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use longshore::{Actor, TaskContext, TaskError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The `shell` actor's settings (`actors.shell.*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellSettings {
    /// Whether inline workers run `shell` tasks (default false).
    pub enabled: bool,
    /// The commands tasks may run, by name: each an argv whose arguments
    /// (not the program) may hold `{param}` placeholders.
    pub commands: BTreeMap<String, Vec<String>>,
    /// The directory every command starts in (default `/`).
    pub working_dir: PathBuf,
    /// Variables copied from the node's own environment (default `PATH`).
    pub inherit_env: Vec<String>,
    /// Variables set to fixed values.
    pub env: BTreeMap<String, String>,
    /// The most bytes of output (stdout and stderr together) kept in the
    /// task's log per execution; the rest is read and dropped.
    pub max_output_bytes: usize,
    /// Exit codes that finish the task with the status *Warning*.
    pub warning_exit_codes: Vec<i32>,
    /// Exit codes that finish the task with the status *Error*, not retried.
    pub error_exit_codes: Vec<i32>,
    /// Exit codes that fail the task at once, whatever attempts remain.
    pub fatal_exit_codes: Vec<i32>,
    /// After SIGTERM, how long the group has before SIGKILL.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
}

impl Default for ShellSettings {
    fn default() -> Self {
        ShellSettings {
            enabled: false,
            commands: BTreeMap::new(),
            working_dir: PathBuf::from("/"),
            inherit_env: vec!["PATH".to_owned()],
            env: BTreeMap::new(),
            max_output_bytes: 64 * 1024,
            warning_exit_codes: Vec::new(),
            error_exit_codes: Vec::new(),
            fatal_exit_codes: Vec::new(),
            kill_grace: Duration::from_secs(3),
        }
    }
}

impl ShellSettings {
    /// Checks the settings; the error names the setting at fault.
    pub fn check(&self) -> Result<(), String> {
        for (name, argv) in &self.commands {
            let Some(program) = argv.first() else {
                return Err(format!(
                    "invalid setting: actors.shell.commands.{name} is empty: give the program and its arguments"
                ));
            };
            if program.is_empty() {
                return Err(format!(
                    "invalid setting: actors.shell.commands.{name}: the program is an empty string"
                ));
            }
            for (index, arg) in argv.iter().enumerate() {
                let pieces = parse_template(arg).map_err(|e| {
                    format!("invalid setting: actors.shell.commands.{name}[{index}]: {e}")
                })?;
                if index == 0 && pieces.iter().any(|p| matches!(p, Piece::Param(_))) {
                    return Err(format!(
                        "invalid setting: actors.shell.commands.{name}: the program `{program}` cannot hold a placeholder"
                    ));
                }
            }
        }
        if !self.working_dir.is_absolute() {
            return Err(format!(
                "invalid setting: actors.shell.working_dir must be an absolute path, got `{}`",
                self.working_dir.display()
            ));
        }
        let lists = [
            ("warning_exit_codes", &self.warning_exit_codes),
            ("error_exit_codes", &self.error_exit_codes),
            ("fatal_exit_codes", &self.fatal_exit_codes),
        ];
        let mut seen = BTreeMap::new();
        for (list, codes) in lists {
            for &code in codes.iter() {
                if !(1..=255).contains(&code) {
                    return Err(format!(
                        "invalid setting: actors.shell.{list}: {code} is not an exit code from 1 to 255"
                    ));
                }
                if let Some(other) = seen.insert(code, list) {
                    return Err(format!(
                        "invalid setting: exit code {code} is in both actors.shell.{other} and actors.shell.{list}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A task's arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellArgs {
    command: String,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn validate(args: &serde_json::Value) -> Result<(), String> {
    let args: ShellArgs = super::parse("shell", args)?;
    if args.command.is_empty() {
        return Err("invalid arguments for actor `shell`: command is empty".into());
    }
    for (name, value) in &args.params {
        param_text(name, value).map_err(|e| format!("invalid arguments for actor `shell`: {e}"))?;
    }
    Ok(())
}

/// A piece of an argument template.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(String),
    Param(&'a str),
}

/// Splits `arg` into text and `{name}` placeholders; `{{` and `}}` are
/// literal braces.
fn parse_template(arg: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find(['{', '}']) {
        text.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if tail.starts_with('}') {
            return Err(format!(
                "`{arg}` has a `}}` without its `{{` (write `}}}}` for a brace)"
            ));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "`{arg}` has a `{{` without its `}}` (write `{{{{` for a brace)"
                ));
            };
            let name = &tail[1..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`{arg}`: `{{{name}}}` is not a placeholder (letters, digits and `_` only)"
                ));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Param(name));
            rest = &tail[end + 1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// A parameter's value as it goes into an argument.
fn param_text(name: &str, value: &serde_json::Value) -> Result<String, String> {
    match value {
        serde_json::Value::String(text) => {
            if text.contains('\0') {
                Err(format!(
                    "params.{name} holds a NUL character, which no argument can carry"
                ))
            } else {
                Ok(text.clone())
            }
        }
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Null => Err(format!(
            "params.{name} is null: give a string, a number or a boolean"
        )),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => Err(format!(
            "params.{name} is a list or an object: give a string, a number or a boolean"
        )),
    }
}

/// `argv` with its placeholders filled from `params`.
fn fill(
    argv: &[String],
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<String>, String> {
    argv.iter()
        .map(|arg| {
            let mut filled = String::new();
            for piece in parse_template(arg)? {
                match piece {
                    Piece::Text(text) => filled.push_str(&text),
                    Piece::Param(name) => {
                        let value = params.get(name).ok_or_else(|| {
                            format!("the command needs params.{name}, which the task does not give")
                        })?;
                        filled.push_str(&param_text(name, value)?);
                    }
                }
            }
            Ok(filled)
        })
        .collect()
}

/// The `shell` actor: runs configured commands (see the module docs).
pub struct ShellActor {
    settings: Arc<ShellSettings>,
}

impl ShellActor {
    /// An actor running the commands `settings` names.
    pub fn new(settings: &ShellSettings) -> Result<ShellActor, String> {
        settings.check()?;
        if !settings.working_dir.is_dir() {
            return Err(format!(
                "invalid setting: actors.shell.working_dir `{}` is not a directory on this node",
                settings.working_dir.display()
            ));
        }
        Ok(ShellActor {
            settings: Arc::new(settings.clone()),
        })
    }
}

#[async_trait]
impl Actor for ShellActor {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let args: ShellArgs = super::parse_task("shell", args)?;
        let settings = &self.settings;
        let argv = settings.commands.get(&args.command).ok_or_else(|| {
            TaskError::fatal(format!(
                "command `{}` is not in this node's actors.shell.commands",
                args.command
            ))
        })?;
        // The configured argv, not the filled one: a parameter may hold a
        // secret.
        let shown = shown_argv(argv);
        let argv = fill(argv, &args.params)
            .map_err(|e| TaskError::fatal(format!("command `{}`: {e}", args.command)))?;
        let (program, rest) = argv
            .split_first()
            .ok_or_else(|| TaskError::fatal("the command is empty"))?;
        ctx.info(format!("running `{}`: {shown}", args.command));

        let mut command = tokio::process::Command::new(program);
        command
            .args(rest)
            .env_clear()
            .current_dir(&settings.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in &settings.inherit_env {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .envs(&settings.env)
            .env("LONGSHORE_TASK_ID", ctx.task_id().to_string())
            .env("LONGSHORE_ATTEMPT", ctx.attempt().to_string())
            .env("LONGSHORE_EXECUTION", ctx.execution().to_string());
        let mut child = command
            .spawn()
            .map_err(|e| TaskError::retry(format!("cannot start `{program}`: {e}")))?;
        let group = Group::of(&child);

        let budget = Arc::new(Mutex::new(Budget::new(settings.max_output_bytes)));
        let readers = [
            child
                .stdout
                .take()
                .map(|out| tokio::spawn(copy_lines(out, "", ctx.clone(), budget.clone()))),
            child
                .stderr
                .take()
                .map(|err| tokio::spawn(copy_lines(err, "stderr: ", ctx.clone(), budget.clone()))),
        ];

        let status = tokio::select! {
            status = child.wait() => status,
            () = ctx.cancelled() => {
                group.signal(rustix::process::Signal::TERM);
                match tokio::time::timeout(settings.kill_grace, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        ctx.warn(format!(
                            "still running {} after SIGTERM: killed",
                            humantime::format_duration(settings.kill_grace)
                        ));
                        group.signal(rustix::process::Signal::KILL);
                        child.wait().await
                    }
                }
            }
        };
        // Whatever the command started and left behind goes with it, and
        // with it the last holders of the output pipes.
        group.signal(rustix::process::Signal::KILL);
        for reader in readers.into_iter().flatten() {
            // A process that left the group may hold a pipe open: its
            // output is not waited for past a second.
            let abort = reader.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), reader)
                .await
                .is_err()
            {
                abort.abort();
                ctx.warn("output cut: a process outside the command's group kept it open");
            }
        }
        if let Ok(budget) = budget.lock()
            && budget.dropped > 0
        {
            ctx.warn(format!(
                "output cut at actors.shell.max_output_bytes ({} bytes): {} more bytes were not kept",
                settings.max_output_bytes, budget.dropped
            ));
        }
        let status =
            status.map_err(|e| TaskError::retry(format!("waiting for `{program}`: {e}")))?;
        if ctx.is_cancelled() {
            // The worker records why (operator, time limit, shutdown).
            return Err(TaskError::retry(format!("stopped: {}", describe(status))));
        }
        finish(settings, status, &ctx)
    }
}

/// What an exit status means for the task.
fn finish(
    settings: &ShellSettings,
    status: ExitStatus,
    ctx: &TaskContext,
) -> Result<(), TaskError> {
    let Some(code) = status.code() else {
        return Err(TaskError::retry(describe(status)));
    };
    if code == 0 {
        return Ok(());
    }
    if settings.warning_exit_codes.contains(&code) {
        ctx.warn(describe(status));
        Ok(())
    } else if settings.error_exit_codes.contains(&code) {
        ctx.error(describe(status));
        Ok(())
    } else if settings.fatal_exit_codes.contains(&code) {
        Err(TaskError::fatal(describe(status)))
    } else {
        Err(TaskError::retry(describe(status)))
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("ended: {status}"),
    }
}

/// argv as one line of the log: each argument quoted when it needs to be,
/// so that where one ends is plain.
fn shown_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+{}".contains(c))
            {
                arg.clone()
            } else {
                format!("{arg:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command's process group, killed when the actor lets go of it (also
/// when the worker aborts a handler that outlived its grace).
struct Group(Option<rustix::process::Pid>);

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        Group(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw),
        )
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self.0 {
            // ESRCH: the group is gone already.
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::KILL);
    }
}

/// How much output is still kept, shared by stdout and stderr.
struct Budget {
    left: usize,
    dropped: u64,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            left: max,
            dropped: 0,
        }
    }

    /// The part of `line` that is kept (cut at a character boundary).
    fn take<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        let mut end = line.len().min(self.left);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        self.left -= end;
        self.dropped += (line.len() - end) as u64;
        (end > 0).then(|| &line[..end])
    }
}

/// The longest line held in memory; a longer one is logged in pieces.
const MAX_LINE: usize = 8 * 1024;

/// Copies `pipe` into the task's log a line at a time, within the budget,
/// and reads what the budget does not keep so the command never blocks on
/// a full pipe.
async fn copy_lines(
    mut pipe: impl AsyncRead + Unpin,
    prefix: &'static str,
    ctx: TaskContext,
    budget: Arc<Mutex<Budget>>,
) {
    let emit = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let Ok(mut budget) = budget.lock() else {
            return;
        };
        if let Some(kept) = budget.take(text) {
            ctx.info(format!("{prefix}{kept}"));
        }
    };
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut rest = &chunk[..read];
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&rest[..=at]);
            emit(&line);
            line.clear();
            rest = &rest[at + 1..];
        }
        line.extend_from_slice(rest);
        if line.len() >= MAX_LINE {
            emit(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn placeholders_fill_one_argument_each() {
        let argv = vec![
            "/bin/backup".to_owned(),
            "--db={db}".to_owned(),
            "{label}".to_owned(),
            "{{literal}}".to_owned(),
            "{n}-{flag}".to_owned(),
        ];
        let filled = fill(
            &argv,
            &params(json!({"db": "main", "label": "a b; rm -rf /", "n": 3, "flag": true})),
        )
        .unwrap();
        assert_eq!(
            filled,
            [
                "/bin/backup",
                "--db=main",
                "a b; rm -rf /",
                "{literal}",
                "3-true"
            ]
        );
    }

    #[test]
    fn a_missing_or_structured_parameter_is_refused() {
        let argv = vec!["/bin/x".to_owned(), "{a}".to_owned()];
        let err = fill(&argv, &params(json!({}))).unwrap_err();
        assert!(err.contains("params.a"), "{err}");
        for bad in [json!([1]), json!({"b": 1}), json!(null)] {
            let err = fill(&argv, &params(json!({ "a": bad }))).unwrap_err();
            assert!(err.contains("params.a"), "{err}");
        }
        assert!(validate(&json!({"command": "x", "params": {"a": [1]}})).is_err());
        assert!(validate(&json!({"command": "x", "params": {"a": "ok", "b": 2}})).is_ok());
        assert!(validate(&json!({"command": ""})).is_err());
        assert!(validate(&json!({"params": {}})).is_err());
        assert!(validate(&json!({"command": "x", "argv": ["sh"]})).is_err());
    }

    #[test]
    fn bad_templates_and_settings_are_named() {
        for bad in ["{", "}", "{a", "a}", "{}", "{a b}", "{a-b}"] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_template("").unwrap(),
            vec![Piece::Text(String::new())]
        );
        let check = |commands: serde_json::Value| {
            let settings = ShellSettings {
                commands: serde_json::from_value(commands).unwrap(),
                ..ShellSettings::default()
            };
            settings.check()
        };
        assert!(check(json!({"ok": ["/bin/echo", "{x}"]})).is_ok());
        let err = check(json!({"empty": []})).unwrap_err();
        assert!(err.contains("actors.shell.commands.empty"), "{err}");
        let err = check(json!({"prog": ["{x}"]})).unwrap_err();
        assert!(err.contains("program"), "{err}");
        let err = check(json!({"t": ["/bin/echo", "{x"]})).unwrap_err();
        assert!(err.contains("actors.shell.commands.t[1]"), "{err}");
        let both = ShellSettings {
            warning_exit_codes: vec![3],
            error_exit_codes: vec![3],
            ..ShellSettings::default()
        };
        assert!(both.check().unwrap_err().contains("exit code 3"));
        let zero = ShellSettings {
            fatal_exit_codes: vec![0],
            ..ShellSettings::default()
        };
        assert!(zero.check().is_err());
        let relative = ShellSettings {
            working_dir: "tmp".into(),
            ..ShellSettings::default()
        };
        assert!(relative.check().is_err());
    }

    #[test]
    fn the_output_budget_cuts_on_a_character_boundary() {
        let mut budget = Budget::new(5);
        assert_eq!(budget.take("abc"), Some("abc"));
        assert_eq!(budget.take("éé"), Some("é"));
        assert_eq!(budget.take("more"), None);
        assert_eq!(budget.dropped, 2 + 4);
    }

    #[test]
    fn argv_is_shown_with_quotes_where_needed() {
        let argv = ["/bin/echo".to_owned(), "a b".to_owned(), "--x=1".to_owned()];
        assert_eq!(shown_argv(&argv), r#"/bin/echo "a b" --x=1"#);
    }
}
