//! `longshore tasks …`: list, show, stats, retry, cancel, delete by filter.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use chrono::Utc;
use longshore::core::{CancelResult, TaskFilter, TaskSelection};
use longshore::{ExecutionLogs, LogEntry, Status, TaskRow, TaskState};
use serde::Serialize;
use uuid::Uuid;

use longshore_server::settings::Settings;

mod source;

use super::Source;
use crate::output;
use crate::remote::Remote;
use longshore::ops::{bulk, filters};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// List tasks, newest first.
    List {
        /// Only these states, comma-separated (scheduled, queued, running, succeeded, failed, cancelled)
        #[arg(long, value_delimiter = ',', value_name = "STATE,...")]
        state: Vec<String>,
        /// Only this actor
        #[arg(long)]
        actor: Option<String>,
        /// Only this queue
        #[arg(long)]
        queue: Option<String>,
        /// Only the runs of this schedule
        #[arg(long, value_name = "NAME")]
        schedule: Option<String>,
        /// Only these statuses, comma-separated (scheduled, waiting_to_run, running, successful, warning, error, cancelled)
        #[arg(long, value_delimiter = ',', value_name = "STATUS,...")]
        status: Vec<String>,
        /// Only tasks working on objects of this kind, or on the one object KIND:ID
        #[arg(long, value_name = "KIND[:ID]")]
        related: Option<String>,
        /// Only tasks that work on no object
        #[arg(long)]
        standalone: bool,
        /// Leave out successful tasks (succeeded tasks that logged a warning or an error stay)
        #[arg(long)]
        exclude_successful: bool,
        #[command(flatten)]
        times: TimeArgs,
        /// At most this many; when more match, stderr says how to see them
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000), value_name = "N")]
        limit: i64,
        /// Only tasks older than this one: the last id of the previous page
        #[arg(long, value_name = "ID")]
        before: Option<String>,
        /// Every matching task, a page of 1,000 at a time as they come (with --json: one JSON object a line)
        #[arg(long, conflicts_with = "limit")]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one task with its logs, by execution.
    Show {
        /// Task id
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Count tasks by state, actor or queue.
    Stats {
        /// How to group
        #[arg(long, value_enum, default_value = "state")]
        by: GroupBy,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the task counts that stats read from a count of the tasks
    /// table. A repair, needed only after task rows were changed with the
    /// database's triggers off; task writes wait while it counts.
    Recount,
    /// Queue a finished task again, with a fresh set of attempts.
    Retry {
        /// Task id
        id: String,
    },
    /// Cancel a waiting task, or signal a running one to stop.
    Cancel {
        /// Task id
        id: String,
    },
    /// Delete the tasks that match every filter given, with their logs, in
    /// batches of 5,000 (progress on stderr, the total on stdout). Running
    /// tasks are never deleted: cancel them first. Needs at least one
    /// filter, and --dry-run (count them, by state) or --yes.
    Delete(DeleteArgs),
}

/// The time ranges of `tasks list`. Each TIME is an RFC 3339 time
/// (2025-06-01T08:00:00Z) or an age such as 30m, 2h or 7d meaning that long
/// before now; `after` includes its instant, `before` excludes it.
#[derive(clap::Args)]
pub(crate) struct TimeArgs {
    /// Only tasks created at or after TIME (RFC 3339, or an age like 2h: now minus 2 hours)
    #[arg(long, value_name = "TIME")]
    created_after: Option<String>,
    /// Only tasks created before TIME (RFC 3339, or an age like 2h: now minus 2 hours)
    #[arg(long, value_name = "TIME")]
    created_before: Option<String>,
    /// Only tasks finished at or after TIME (RFC 3339, or an age like 2h: now minus 2 hours)
    #[arg(long, value_name = "TIME")]
    finished_after: Option<String>,
    /// Only tasks finished before TIME (RFC 3339, or an age like 2h: now minus 2 hours)
    #[arg(long, value_name = "TIME")]
    finished_before: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct DeleteArgs {
    /// Only these states, comma-separated or repeated: scheduled, queued, succeeded, failed, cancelled (never running) [default: every state but running]
    #[arg(long, value_delimiter = ',', value_name = "STATE,...")]
    state: Vec<String>,
    /// Only this actor
    #[arg(long)]
    actor: Option<String>,
    /// Only this queue
    #[arg(long)]
    queue: Option<String>,
    /// Only tasks older than this, e.g. 7d or 12h: a finished task counts from when it finished, a waiting one from when it was created
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    older_than: Option<std::time::Duration>,
    /// Count the matching tasks by state and change nothing
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
    /// Really delete them
    #[arg(long)]
    yes: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum GroupBy {
    State,
    Actor,
    Queue,
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    match command {
        Command::List {
            state,
            actor,
            queue,
            schedule,
            status,
            related,
            standalone,
            exclude_successful,
            times,
            limit,
            before,
            all,
            json,
        } => {
            let before = before.as_deref().map(parse_id).transpose()?;
            let states = state
                .iter()
                .map(|s| s.trim().parse::<TaskState>())
                .collect::<Result<Vec<_>, _>>()?;
            let statuses = filters::parse_statuses(&status).map_err(anyhow::Error::msg)?;
            let (related_kind, related_id) = match related.as_deref() {
                Some(related) => {
                    let (kind, id) =
                        filters::parse_related(related).map_err(|e| anyhow::anyhow!("--{e}"))?;
                    (Some(kind), id)
                }
                None => (None, None),
            };
            let now = Utc::now();
            let time = |name: &str, value: Option<String>| {
                value
                    .map(|v| filters::parse_time(name, &v, now))
                    .transpose()
                    .map_err(anyhow::Error::msg)
            };
            let filter = TaskFilter {
                states,
                statuses,
                actor,
                queue,
                schedule,
                related_kind,
                related_id,
                standalone,
                exclude_successful,
                created_after: time("--created-after", times.created_after)?,
                created_before: time("--created-before", times.created_before)?,
                finished_after: time("--finished-after", times.finished_after)?,
                finished_before: time("--finished-before", times.finished_before)?,
                before,
                limit,
            };
            filter.validate()?;
            let source = Source::open(settings, remote).await?;
            if all {
                return list_all(&source, filter, json).await;
            }
            // One more than asked tells whether more match.
            let mut tasks = source
                .tasks(&TaskFilter {
                    limit: limit + 1,
                    ..filter
                })
                .await?;
            let more = i64::try_from(tasks.len()).unwrap_or(i64::MAX) > limit;
            tasks.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            list(&tasks, json)?;
            if let (true, Some(last)) = (more, tasks.last()) {
                eprintln!(
                    "more tasks match: add `--before {}` for the next {limit}, or use `--all` for every one",
                    last.id
                );
            }
            Ok(())
        }
        Command::Show { id, json } => {
            let id = parse_id(&id)?;
            let source = Source::open(settings, remote).await?;
            let (task, logs) = source.task(id).await?;
            show(&task, logs, json)
        }
        Command::Stats { by, json } => {
            let source = Source::open(settings, remote).await?;
            stats(&source, by, json).await
        }
        Command::Recount => {
            let source = Source::open(settings, remote).await?;
            let started = std::time::Instant::now();
            let groups = source.recount().await?;
            println!(
                "task counts rebuilt: {groups} groups (queue, actor, state) counted in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Retry { id } => {
            let id = parse_id(&id)?;
            let source = Source::open(settings, remote).await?;
            let task = source.retry(id).await?;
            println!(
                "task {id} queued again: attempt {} of {} is next",
                task.attempt + 1,
                task.max_attempts
            );
            Ok(())
        }
        Command::Cancel { id } => {
            let id = parse_id(&id)?;
            let source = Source::open(settings, remote).await?;
            let result = source.cancel(id).await?;
            match result {
                CancelResult::Cancelled => println!("task {id} cancelled"),
                CancelResult::Signalled => {
                    println!("task {id} is running: its worker was told to cancel it")
                }
            }
            Ok(())
        }
        Command::Delete(args) => delete(settings, args, remote).await,
    }
}

/// `longshore tasks delete`.
async fn delete(
    settings: &Settings,
    args: DeleteArgs,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    let states = args
        .state
        .iter()
        .map(|s| s.trim().parse::<TaskState>())
        .collect::<Result<Vec<_>, _>>()?;
    if states.contains(&TaskState::Running) {
        bail!(
            "running tasks are never deleted (their workers would run them on and only have their results thrown away): \
             cancel them first (`longshore tasks cancel ID`, or `longshore queues flush QUEUE` for a whole queue), \
             then delete them once they are cancelled"
        );
    }
    let selection = TaskSelection {
        states,
        actor: args.actor,
        queue: args.queue,
        older_than: args.older_than,
    };
    if selection.is_unfiltered() {
        bail!(
            "refusing to delete every task: give at least one of --state, --actor, --queue, --older-than \
             (`longshore queues flush QUEUE` deletes a queue's waiting tasks)"
        );
    }
    if !args.dry_run && !args.yes {
        bail!(
            "not deleting without --yes: run it with --dry-run first to count the matching tasks, then with --yes"
        );
    }
    selection.check_deletable()?;
    let source = Source::open(settings, remote).await?;
    let (counts, deleted) = source.delete(&selection, args.dry_run).await?;
    let matched = bulk::per_state(&selection.effective_states(), &counts);
    let matched_total: i64 = matched.iter().map(|(_, n)| n).sum();
    if args.json {
        #[derive(Serialize)]
        struct Deletion {
            dry_run: bool,
            matched: BTreeMap<&'static str, i64>,
            matched_total: i64,
            deleted: u64,
        }
        let deletion = Deletion {
            dry_run: args.dry_run,
            matched: matched.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            matched_total,
            deleted,
        };
        println!("{}", serde_json::to_string_pretty(&deletion)?);
        return Ok(());
    }
    if args.dry_run {
        let mut rows: Vec<Vec<String>> = matched
            .iter()
            .map(|(s, n)| vec![s.to_string(), n.to_string()])
            .collect();
        rows.push(vec!["total".into(), matched_total.to_string()]);
        output::table(&["STATE", "MATCHING"], &rows);
        println!(
            "dry run: nothing was deleted; run it again with --yes instead of --dry-run to delete them"
        );
    } else if matched_total == 0 {
        println!("no task matches: nothing was deleted");
    } else {
        println!("deleted {deleted} tasks");
    }
    Ok(())
}

fn parse_id(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text.trim()).with_context(|| format!("`{text}` is not a task id (a UUID)"))
}

/// A task as printed in JSON: the row plus its status.
#[derive(Serialize)]
pub(crate) struct TaskView<'a> {
    #[serde(flatten)]
    task: &'a TaskRow,
    status: Status,
    status_label: &'static str,
}

impl<'a> TaskView<'a> {
    pub(crate) fn new(task: &'a TaskRow) -> TaskView<'a> {
        let status = task.status_at(Utc::now());
        TaskView {
            task,
            status,
            status_label: status.label(),
        }
    }
}

/// Tasks on a page of `tasks list --all`.
const ALL_PAGE: i64 = 1000;

/// `tasks list --all`: every matching task, a page at a time as they come,
/// so that memory does not grow with the table.
async fn list_all(source: &Source, mut filter: TaskFilter, json: bool) -> anyhow::Result<()> {
    filter.limit = ALL_PAGE;
    let mut first = true;
    loop {
        let page = source.tasks(&filter).await?;
        if json {
            for task in &page {
                println!("{}", serde_json::to_string(&TaskView::new(task))?);
            }
        } else if first || !page.is_empty() {
            table(&page, first);
        }
        first = false;
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(i64::MAX) == ALL_PAGE => {
                filter.before = Some(last.id);
            }
            _ => return Ok(()),
        }
    }
}

fn list(tasks: &[TaskRow], json: bool) -> anyhow::Result<()> {
    if json {
        let views: Vec<TaskView<'_>> = tasks.iter().map(TaskView::new).collect();
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    table(tasks, true);
    Ok(())
}

/// Tasks as a table, with its headers or not.
fn table(tasks: &[TaskRow], headers: bool) {
    let now = Utc::now();
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.actor.clone(),
                t.queue.clone(),
                t.state.to_string(),
                t.status_at(now).label().to_owned(),
                format!("{}/{}", t.attempt, t.max_attempts),
                output::time(t.created_at),
            ]
        })
        .collect();
    let names = [
        "ID", "ACTOR", "QUEUE", "STATE", "STATUS", "ATTEMPT", "CREATED",
    ];
    if headers {
        output::table(&names, &rows);
    } else {
        output::rows(&names, &rows);
    }
}

/// The logs of the current execution and of each earlier one, as
/// `tasks show --json` prints them.
#[derive(Serialize)]
struct Executions {
    current: Vec<LogEntry>,
    previous: Vec<Execution>,
}

#[derive(Serialize)]
struct Execution {
    execution: i32,
    logs: Vec<LogEntry>,
}

fn show(task: &TaskRow, logs: Vec<LogEntry>, json: bool) -> anyhow::Result<()> {
    let split = ExecutionLogs::split(task.execution, logs);
    let executions = Executions {
        current: split.current,
        previous: split
            .previous
            .into_iter()
            .map(|(execution, logs)| Execution { execution, logs })
            .collect(),
    };
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            task: TaskView<'a>,
            logs: Executions,
        }
        let shown = Shown {
            task: TaskView::new(task),
            logs: executions,
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    let status = task.status_at(Utc::now());
    let field = |name: &str, value: String| output::field(12, name, &value);
    field("id", task.id.to_string());
    field("actor", task.actor.clone());
    field("queue", task.queue.clone());
    if let Some(schedule) = &task.schedule {
        field("schedule", schedule.clone());
    }
    field(
        "status",
        format!("{} (state {})", status.label(), task.state),
    );
    field("attempt", task.attempts_label());
    field("priority", task.priority.to_string());
    field("args", task.args.to_string());
    field("created", output::time(task.created_at));
    field("run at", output::time(task.run_at));
    field("started", output::maybe_time(task.started_at));
    field("finished", output::maybe_time(task.finished_at));
    if let Some(owner) = &task.lease_owner {
        field(
            "lease",
            format!(
                "{owner} until {}",
                output::maybe_time(task.lease_expires_at)
            ),
        );
    }
    if let Some(ms) = task.time_limit_ms {
        field("time limit", format!("{ms} ms"));
    }
    if let Some(key) = &task.unique_key {
        field("unique key", key.clone());
    }
    if !task.requires.is_empty() {
        field("requires", task.requires.join(","));
    }
    field(
        "related",
        task.related.as_ref().map_or_else(
            || "standalone".to_owned(),
            |r| format!("{}:{}", r.kind, r.id),
        ),
    );
    if let Some(error) = &task.last_error {
        field("last error", error.clone());
    }
    if task.cancel_requested {
        field("cancel", "requested".to_owned());
    }
    println!();
    println!("Current execution (#{}):", task.execution);
    print_lines(&executions.current);
    for execution in &executions.previous {
        println!("Previous execution (#{}):", execution.execution);
        print_lines(&execution.logs);
    }
    Ok(())
}

fn print_lines(lines: &[LogEntry]) {
    if lines.is_empty() {
        println!("  (no log lines)");
    }
    for line in lines {
        let head = format!("  {}  {:<7}  ", output::time(line.at), line.level.as_str());
        let message = output::log_message(&line.message, head.chars().count());
        println!("{head}{message}");
    }
}

async fn stats(source: &Source, by: GroupBy, json: bool) -> anyhow::Result<()> {
    let rows = source.stats(by).await?;
    if let GroupBy::State = by {
        let mut counts: BTreeMap<TaskState, i64> = TaskState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            counts.insert(row.state, row.count);
        }
        if json {
            let map: BTreeMap<&str, i64> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            println!("{}", serde_json::to_string_pretty(&map)?);
        } else {
            let mut table: Vec<Vec<String>> = counts
                .iter()
                .map(|(s, n)| vec![s.to_string(), n.to_string()])
                .collect();
            table.push(vec![
                "total".into(),
                counts.values().sum::<i64>().to_string(),
            ]);
            output::table(&["STATE", "COUNT"], &table);
        }
        return Ok(());
    }
    let mut grouped: BTreeMap<String, BTreeMap<TaskState, i64>> = BTreeMap::new();
    for row in rows {
        grouped
            .entry(row.key)
            .or_default()
            .insert(row.state, row.count);
    }
    if json {
        let map: BTreeMap<&str, BTreeMap<&str, i64>> = grouped
            .iter()
            .map(|(k, counts)| {
                (
                    k.as_str(),
                    counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    let header = match by {
        GroupBy::Actor => "ACTOR",
        _ => "QUEUE",
    };
    let mut headers = vec![header];
    headers.extend(TaskState::ALL.iter().map(|s| s.as_str()));
    headers.push("total");
    let rows: Vec<Vec<String>> = grouped
        .iter()
        .map(|(key, counts)| {
            let mut row = vec![key.clone()];
            row.extend(
                TaskState::ALL
                    .iter()
                    .map(|s| counts.get(s).copied().unwrap_or(0).to_string()),
            );
            row.push(counts.values().sum::<i64>().to_string());
            row
        })
        .collect();
    output::table(&headers, &rows);
    Ok(())
}
