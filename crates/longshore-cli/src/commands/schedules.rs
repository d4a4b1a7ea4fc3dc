//! `longshore schedules …`: cron schedules. Add, change, list and show
//! them; pause, resume, run by hand and delete them.

use anyhow::bail;
use chrono::Utc;
use longshore::TaskRow;
use longshore::core::{FireOutcome, Overlap, Schedule, ScheduleDef};
use longshore::ops::schedules::{self as ops, Changes, DeleteRefusal, check_deletable};
use longshore::ops::{OpError, Wording};
use longshore_actors::Builtin;
use longshore_server::settings::Settings;
use serde::Serialize;

use super::{Source, task_input};
use crate::output;
use crate::remote::Remote;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a schedule: a task enqueued on a cron expression, in a time
    /// zone. Prints its next run.
    Add(AddArgs),
    /// Change a schedule: only the fields given. A new cron expression or
    /// time zone moves its next run; built-in schedules (`longshore.*`)
    /// take only --cron and --tz.
    Edit(EditArgs),
    /// Every schedule, built-in ones included: timing, overlap policy,
    /// pause, next and last run.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One schedule, every field, with its most recent runs.
    Show {
        /// Schedule name
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop a schedule from running on its own (it can still be run by
    /// hand).
    Pause {
        /// Schedule name
        name: String,
    },
    /// Let a paused schedule run again: it runs at once, then follows its
    /// cron expression.
    Resume {
        /// Schedule name
        name: String,
    },
    /// Run a schedule now, paused or not, under its overlap policy.
    Run {
        /// Schedule name
        name: String,
    },
    /// Delete a schedule (not a built-in one). The tasks it created stay.
    Delete {
        /// Schedule name
        name: String,
        /// Really delete it
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct AddArgs {
    /// Schedule name, unique across the cluster
    name: String,
    /// The actor each run calls (built-in: noop, sleep, fail, http)
    #[arg(long, value_name = "A")]
    actor: String,
    /// Cron expression: minute hour day-of-month month day-of-week (a
    /// leading seconds field is accepted), or @hourly, @daily, @weekly…
    #[arg(long, value_name = "EXPR")]
    cron: String,
    #[command(flatten)]
    fields: Fields,
    /// Create it paused: it runs only by hand until resumed
    #[arg(long)]
    paused: bool,
}

#[derive(clap::Args)]
pub(crate) struct EditArgs {
    /// Schedule name
    name: String,
    /// The actor each run calls
    #[arg(long, value_name = "A")]
    actor: Option<String>,
    /// Cron expression (see `schedules add --help`)
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,
    #[command(flatten)]
    fields: Fields,
}

/// The flags `add` and `edit` share; on `edit`, each one given replaces
/// the stored value.
#[derive(clap::Args)]
struct Fields {
    /// IANA time zone the cron expression is read in, e.g. Europe/Paris [add default: UTC]
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Arguments of each run as a JSON object, or @FILE to read them from a file (@- for stdin) [add default: {}]
    #[arg(long, value_name = "JSON")]
    args: Option<String>,
    /// Queue each run goes to [add default: default]
    #[arg(long, value_name = "Q")]
    queue: Option<String>,
    /// Priority of each run, lower runs first [add default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "P")]
    priority: Option<i16>,
    /// Executions each run may have [add default: setting retry.max_attempts]
    #[arg(long, value_name = "N")]
    max_attempts: Option<i32>,
    /// Time limit of each execution, e.g. 90s; `none` for the worker's [add default: none]
    #[arg(long, value_name = "DURATION")]
    time_limit: Option<String>,
    /// The object each run works on, as TYPE:ID (e.g. user:42); `none` for none
    #[arg(long, value_name = "TYPE:ID")]
    related: Option<String>,
    /// While the previous run is still active, a due run waits for it
    /// (queue), is dropped and counted (skip), or cancels it and starts
    /// (replace) [add default: queue]
    #[arg(long, value_name = "POLICY")]
    overlap: Option<String>,
    /// Accept an actor that is not built in (one your own workers register)
    #[arg(long)]
    any_actor: bool,
}

impl Fields {
    fn parse(&self) -> anyhow::Result<Changes> {
        let args = self
            .args
            .as_deref()
            .map(task_input::read_args)
            .transpose()?;
        let time_limit_ms = match self.time_limit.as_deref() {
            None => None,
            Some("none") => Some(None),
            Some(text) => {
                let limit = humantime::parse_duration(text).map_err(|e| {
                    anyhow::anyhow!("--time-limit `{text}`: {e} (e.g. 90s, 5m, or none)")
                })?;
                Some(Some(task_input::time_limit_ms(limit)))
            }
        };
        let related = match self.related.as_deref() {
            None => None,
            Some("none") => Some(None),
            Some(text) => Some(Some(task_input::parse_related(text)?)),
        };
        let overlap = self
            .overlap
            .as_deref()
            .map(str::parse::<Overlap>)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        Ok(Changes {
            actor: None,
            cron: None,
            time_zone: self.tz.clone(),
            args,
            queue: self.queue.clone(),
            priority: self.priority,
            max_attempts: self.max_attempts,
            time_limit_ms,
            related,
            overlap,
            any_actor: self.any_actor,
        })
    }
}

/// The fields `changes` gives, as the API's create and change bodies name
/// them.
fn to_json(changes: &Changes) -> serde_json::Map<String, serde_json::Value> {
    let mut body = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        body.insert(key.to_owned(), value);
    };
    if let Some(actor) = &changes.actor {
        put("actor", actor.clone().into());
    }
    if let Some(cron) = &changes.cron {
        put("cron", cron.clone().into());
    }
    if let Some(zone) = &changes.time_zone {
        put("time_zone", zone.clone().into());
    }
    if let Some(args) = &changes.args {
        put("args", args.clone());
    }
    if let Some(queue) = &changes.queue {
        put("queue", queue.clone().into());
    }
    if let Some(priority) = changes.priority {
        put("priority", priority.into());
    }
    if let Some(max) = changes.max_attempts {
        put("max_attempts", max.into());
    }
    if let Some(limit) = changes.time_limit_ms {
        put("time_limit_ms", limit.into());
    }
    if let Some(related) = &changes.related {
        put(
            "related",
            related.as_ref().map_or(
                serde_json::Value::Null,
                |r| serde_json::json!({"kind": r.kind, "id": r.id}),
            ),
        );
    }
    if let Some(overlap) = changes.overlap {
        put("overlap", overlap.as_str().into());
    }
    if changes.any_actor {
        put("any_actor", true.into());
    }
    body
}

/// Every schedule as the API lists it.
#[derive(serde::Deserialize)]
struct ApiSchedules {
    schedules: Vec<Schedule>,
}

/// One schedule and its recent runs as the API shows them.
#[derive(serde::Deserialize)]
struct ApiSchedule {
    schedule: Schedule,
    recent_runs: Vec<TaskRow>,
}

/// The schedule `name` and its most recent runs.
async fn fetch(source: &Source, name: &str) -> anyhow::Result<(Schedule, Vec<TaskRow>)> {
    match source {
        Source::Db(store) => {
            let schedule = ops::load(store.as_ref(), name).await?;
            let runs = ops::recent_runs(store.as_ref(), name).await?;
            Ok((schedule, runs))
        }
        Source::Api(api) => {
            let answer: ApiSchedule = api.get(&["schedules", name], &[]).await?;
            Ok((answer.schedule, answer.recent_runs))
        }
    }
}

pub(crate) async fn run(
    settings: &Settings,
    command: Command,
    remote: Option<Remote>,
) -> anyhow::Result<()> {
    match command {
        Command::Add(args) => add(settings, args, remote).await,
        Command::Edit(args) => edit(settings, args, remote).await,
        Command::List { json } => {
            let schedules = match Source::open(settings, remote).await? {
                Source::Db(store) => store.schedules().await?,
                Source::Api(api) => {
                    let answer: ApiSchedules = api.get(&["schedules"], &[]).await?;
                    answer.schedules
                }
            };
            list(&schedules, json)
        }
        Command::Show { name, json } => {
            let source = Source::open(settings, remote).await?;
            let (schedule, runs) = fetch(&source, &name).await?;
            show(&schedule, &runs, json)
        }
        Command::Pause { name } => {
            set_paused(settings, remote, &name, true).await?;
            println!(
                "schedule {name} paused: it does not run on its own until `longshore schedules resume {name}` \
                 (`longshore schedules run {name}` still runs it by hand)"
            );
            Ok(())
        }
        Command::Resume { name } => {
            let schedule = set_paused(settings, remote, &name, false).await?;
            println!(
                "schedule {name} resumed: it runs at once (at the scheduler's next pass), then on its cron `{}` ({})",
                schedule.def.cron, schedule.def.time_zone
            );
            Ok(())
        }
        Command::Run { name } => run_now(settings, remote, &name).await,
        Command::Delete { name, yes } => {
            if let Err(DeleteRefusal::Builtin(why) | DeleteRefusal::Unconfirmed(why)) =
                check_deletable(&name, yes, Wording::Cli)
            {
                bail!(why);
            }
            match Source::open(settings, remote).await? {
                Source::Db(store) => store.delete_schedule(&name).await.map_err(OpError::plain)?,
                Source::Api(api) => {
                    let _: serde_json::Value = api
                        .delete(&["schedules", &name], &[("confirm", "true".to_owned())])
                        .await?;
                }
            }
            println!("schedule {name} deleted (the tasks it created stay)");
            Ok(())
        }
    }
}

async fn set_paused(
    settings: &Settings,
    remote: Option<Remote>,
    name: &str,
    paused: bool,
) -> anyhow::Result<Schedule> {
    match Source::open(settings, remote).await? {
        Source::Db(store) => Ok(store.set_schedule_paused(name, paused).await?),
        Source::Api(api) => {
            let action = if paused { "pause" } else { "resume" };
            api.post(&["schedules", name, action], &serde_json::json!({}))
                .await
        }
    }
}

async fn add(settings: &Settings, args: AddArgs, remote: Option<Remote>) -> anyhow::Result<()> {
    // Everything is checked before anything is written.
    let mut changes = args.fields.parse()?;
    changes.actor = Some(args.actor.clone());
    changes.cron = Some(args.cron.clone());
    let mut body = to_json(&changes);
    let (def, next) = ops::new_schedule(
        &args.name,
        changes,
        settings.retry.max_attempts,
        &Builtin,
        Wording::Cli,
    )?;
    let schedule = match Source::open(settings, remote).await? {
        Source::Db(store) => ops::create(store.as_ref(), &def, next, args.paused).await?,
        Source::Api(api) => {
            body.insert("name".into(), def.name.clone().into());
            if args.paused {
                body.insert("paused".into(), true.into());
            }
            api.post(&["schedules"], &serde_json::Value::Object(body))
                .await?
        }
    };
    if args.paused {
        println!(
            "schedule {} created, paused: it runs only by hand until `longshore schedules resume {}`, \
             which runs it at once and then on its cron",
            def.name, def.name
        );
        return Ok(());
    }
    println!(
        "schedule {} created; next run: {}",
        schedule.def.name,
        next_run(&schedule)
    );
    Ok(())
}

async fn edit(settings: &Settings, args: EditArgs, remote: Option<Remote>) -> anyhow::Result<()> {
    let mut changes = args.fields.parse()?;
    changes.actor = args.actor.clone();
    changes.cron = args.cron.clone();
    ops::check_not_empty(&changes, Wording::Cli)?;
    let body = to_json(&changes);
    let source = Source::open(settings, remote).await?;
    let old = match &source {
        Source::Db(store) => ops::load(store.as_ref(), &args.name).await?,
        Source::Api(_) => fetch(&source, &args.name).await?.0,
    };
    let (def, next) = ops::edited_schedule(&old, changes, &Builtin, Wording::Cli)?;
    if def == old.def {
        println!("schedule {} unchanged", def.name);
        return Ok(());
    }
    let schedule = match &source {
        Source::Db(store) => ops::update(store.as_ref(), &def, next).await?,
        Source::Api(api) => {
            api.patch(&["schedules", &args.name], &serde_json::Value::Object(body))
                .await?
        }
    };
    let paused = if schedule.paused {
        " (paused: it runs only by hand until resumed)"
    } else {
        ""
    };
    println!(
        "schedule {} updated; next run: {}{paused}",
        schedule.def.name,
        next_run(&schedule)
    );
    Ok(())
}

/// `schedules run NAME`.
async fn run_now(settings: &Settings, remote: Option<Remote>, name: &str) -> anyhow::Result<()> {
    let (builtin, outcome) = match Source::open(settings, remote).await? {
        Source::Db(store) => ops::fire_now(store.as_ref(), name)
            .await
            .map_err(OpError::plain)?,
        Source::Api(api) => {
            let outcome: FireOutcome = api
                .post(&["schedules", name, "run"], &serde_json::json!({}))
                .await?;
            (ScheduleDef::is_builtin_name(name), outcome)
        }
    };
    match outcome {
        // Whatever the engine reports for a built-in job, it is the
        // maintenance leader that runs it.
        FireOutcome::Waiting { .. } | FireOutcome::Enqueued { .. } if builtin => {
            println!("schedule {name}: requested; the maintenance leader runs it at its next pass");
        }
        FireOutcome::Enqueued {
            task,
            replaced: None,
        } => println!("schedule {name}: enqueued task {task}"),
        FireOutcome::Enqueued {
            task,
            replaced: Some(previous),
        } => println!(
            "schedule {name}: enqueued task {task}, replacing {previous} (overlap replace: the previous run was cancelled)"
        ),
        FireOutcome::Waiting { behind } => println!(
            "schedule {name}: waiting behind task {behind} (overlap queue: runs once it finishes)"
        ),
        FireOutcome::Skipped { behind } => {
            println!("schedule {name}: skipped: task {behind} still active (overlap skip)")
        }
        FireOutcome::Stale => println!(
            "schedule {name}: nothing done (it changed meanwhile); look with `longshore schedules show {name}`"
        ),
    }
    Ok(())
}

/// When a schedule next runs, for people.
fn next_run(schedule: &Schedule) -> String {
    if schedule.run_requested && schedule.builtin {
        return "at the maintenance leader's next pass (a run by hand is pending)".to_owned();
    }
    if schedule.run_requested {
        return "as soon as its previous run finishes (a run by hand is pending)".to_owned();
    }
    match schedule.next_run_at {
        Some(at) if schedule.paused => format!("{} if resumed before then", output::time(at)),
        Some(at) => output::time(at),
        None if schedule.paused => "none while paused".to_owned(),
        None => "never (its cron expression does not come due again)".to_owned(),
    }
}

/// The task id a schedule's last run created; built-in ones create none.
fn last_task(schedule: &Schedule) -> Option<uuid::Uuid> {
    schedule.last_task_id.filter(|id| !id.is_nil())
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

fn list(schedules: &[Schedule], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(schedules)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let next = if s.run_requested {
                "pending (by hand)".to_owned()
            } else {
                output::maybe_time(s.next_run_at)
            };
            vec![
                s.def.name.clone(),
                if s.builtin { "built-in" } else { "user" }.to_owned(),
                s.def.actor.clone(),
                s.def.cron.clone(),
                s.def.time_zone.clone(),
                s.def.overlap.to_string(),
                yes_no(s.paused),
                next,
                output::maybe_time(s.last_run_at),
                last_task(s).map_or_else(|| "-".to_owned(), |id| id.to_string()),
                s.skipped_runs.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "KIND",
            "ACTOR",
            "CRON",
            "TZ",
            "OVERLAP",
            "PAUSED",
            "NEXT RUN",
            "LAST RUN",
            "LAST TASK",
            "SKIPPED",
        ],
        &rows,
    );
    Ok(())
}

fn overlap_meaning(overlap: Overlap) -> &'static str {
    match overlap {
        Overlap::Queue => "a due run waits for the previous one to finish",
        Overlap::Skip => "a due run is dropped while the previous one is active",
        Overlap::Replace => "a due run cancels the previous one if still active",
    }
}

fn show(schedule: &Schedule, runs: &[TaskRow], json: bool) -> anyhow::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            schedule: &'a Schedule,
            recent_runs: Vec<super::tasks::TaskView<'a>>,
        }
        let shown = Shown {
            schedule,
            recent_runs: runs.iter().map(super::tasks::TaskView::new).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    let def = &schedule.def;
    let field = |name: &str, value: String| output::field(14, name, &value);
    field("name", def.name.clone());
    if schedule.builtin {
        field(
            "kind",
            "built-in: the maintenance leader runs it itself (only its timing and pause can change)"
                .to_owned(),
        );
    }
    field("actor", def.actor.clone());
    field("args", def.args.to_string());
    field("queue", def.queue.clone());
    field("priority", def.priority.to_string());
    field("max attempts", def.max_attempts.to_string());
    field(
        "time limit",
        def.time_limit_ms
            .map_or_else(|| "the worker's".to_owned(), |ms| format!("{ms} ms")),
    );
    field(
        "related",
        def.related.as_ref().map_or_else(
            || "standalone".to_owned(),
            |r| format!("{}:{}", r.kind, r.id),
        ),
    );
    field("cron", def.cron.clone());
    field("time zone", def.time_zone.clone());
    field(
        "overlap",
        format!("{} ({})", def.overlap, overlap_meaning(def.overlap)),
    );
    field("paused", yes_no(schedule.paused));
    field("next run", next_run(schedule));
    field("last run", output::maybe_time(schedule.last_run_at));
    field(
        "last task",
        last_task(schedule).map_or_else(|| "-".to_owned(), |id| id.to_string()),
    );
    field(
        "skipped runs",
        match schedule.last_skipped_at {
            Some(at) => format!("{} (last at {})", schedule.skipped_runs, output::time(at)),
            None => schedule.skipped_runs.to_string(),
        },
    );
    field("created", output::time(schedule.created_at));
    field("modified", output::time(schedule.modified_at));
    println!();
    if schedule.builtin {
        println!("Recent runs: none recorded as tasks (a built-in schedule enqueues no task).");
        return Ok(());
    }
    if runs.is_empty() {
        println!("Recent runs: none yet.");
        return Ok(());
    }
    println!("Recent runs (newest first):");
    let now = Utc::now();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.state.to_string(),
                t.status_at(now).label().to_owned(),
                format!("{}/{}", t.attempt, t.max_attempts),
                output::time(t.created_at),
                output::maybe_time(t.finished_at),
            ]
        })
        .collect();
    output::table(
        &["ID", "STATE", "STATUS", "ATTEMPT", "CREATED", "FINISHED"],
        &rows,
    );
    Ok(())
}
