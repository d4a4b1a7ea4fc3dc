//! `/schedules`: every schedule with its next and last runs; run now
//! (paused or not), pause and resume; `/schedules/{name}`: its fields, an
//! edit form whose cron and time-zone errors come back inline (nothing is
//! stored then) with the next runs previewed, and its recent runs.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use longshore::core::{CronSpec, Overlap, Schedule};
use longshore::ops::schedules::{self as ops, Changes};
use longshore::ops::{OpError, Wording};
use serde::Deserialize;

use super::Done;
use crate::dashboard::session::{CsrfForm, Refusal, Signed};
use crate::dashboard::view::{Chrome, TaskLine, maybe_time, time};
use crate::dashboard::{Dash, html};

/// Next runs the edit form previews.
const PREVIEW: usize = 5;

/// A schedule's line.
pub(crate) struct ScheduleLine {
    pub(crate) name: String,
    pub(crate) builtin: bool,
    pub(crate) paused: bool,
    pub(crate) actor: String,
    pub(crate) cron: String,
    pub(crate) time_zone: String,
    pub(crate) next_run: String,
    pub(crate) last_run: String,
    pub(crate) last_task: Option<String>,
    pub(crate) last_task_status: String,
    pub(crate) overlap: &'static str,
    pub(crate) skipped: i64,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct List {
    page: Chrome,
    schedules: Vec<ScheduleLine>,
}

fn next_run(schedule: &Schedule) -> String {
    if schedule.run_requested {
        return "pending (by hand)".to_owned();
    }
    match schedule.next_run_at {
        Some(_) if schedule.paused => "none while paused".to_owned(),
        at => maybe_time(at),
    }
}

/// `GET /schedules`.
pub(crate) async fn list(
    State(dash): State<Dash>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let mut schedules = Vec::new();
    let now = Utc::now();
    for s in dash.store.schedules().await? {
        let last = s.last_task_id.filter(|id| !id.is_nil());
        let last_status = match last {
            Some(id) => dash.store.task(id).await?.map_or_else(
                || "purged".to_owned(),
                |t| t.status_at(now).label().to_owned(),
            ),
            None => String::new(),
        };
        schedules.push(ScheduleLine {
            next_run: next_run(&s),
            last_run: maybe_time(s.last_run_at),
            last_task: last.map(|id| id.to_string()),
            last_task_status: last_status,
            overlap: s.def.overlap.as_str(),
            skipped: s.skipped_runs,
            builtin: s.builtin,
            paused: s.paused,
            actor: s.def.actor,
            cron: s.def.cron,
            time_zone: s.def.time_zone,
            name: s.def.name,
        });
    }
    let page = List {
        page: Chrome::new(&signed, "schedules")
            .live(10)
            .done(done.done.as_deref()),
        schedules,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The edit form's values.
#[derive(Deserialize, Default)]
pub(crate) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    overlap: String,
    #[serde(default)]
    args: String,
    /// `preview` or `save`.
    #[serde(default)]
    action: String,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct Detail {
    page: Chrome,
    name: String,
    builtin: bool,
    paused: bool,
    error: Option<String>,
    fields: Vec<(&'static str, String)>,
    form: EditForm,
    preview: Vec<String>,
    runs: Vec<TaskLine>,
}

async fn detail(
    dash: &Dash,
    chrome: Chrome,
    schedule: Schedule,
    form: Option<EditForm>,
    error: Option<String>,
    preview: Vec<String>,
) -> Result<Detail, Refusal> {
    let runs = if schedule.builtin {
        Vec::new()
    } else {
        ops::recent_runs(dash.store.as_ref(), &schedule.def.name).await?
    };
    let now = Utc::now();
    let def = &schedule.def;
    let form = form.unwrap_or_else(|| EditForm {
        cron: def.cron.clone(),
        time_zone: def.time_zone.clone(),
        overlap: def.overlap.as_str().to_owned(),
        args: serde_json::to_string_pretty(&def.args).unwrap_or_else(|_| def.args.to_string()),
        ..EditForm::default()
    });
    Ok(Detail {
        page: chrome,
        name: def.name.clone(),
        builtin: schedule.builtin,
        paused: schedule.paused,
        error,
        fields: vec![
            ("actor", def.actor.clone()),
            ("cron", format!("{} ({})", def.cron, def.time_zone)),
            ("overlap", def.overlap.as_str().to_owned()),
            ("queue", def.queue.clone()),
            ("arguments", def.args.to_string()),
            ("next run", next_run(&schedule)),
            ("last run", maybe_time(schedule.last_run_at)),
            ("skipped runs", schedule.skipped_runs.to_string()),
            ("created", time(schedule.created_at)),
            ("modified", time(schedule.modified_at)),
        ],
        form,
        preview,
        runs: runs.iter().map(|t| TaskLine::new(t, now)).collect(),
    })
}

/// `GET /schedules/{name}`.
pub(crate) async fn show(
    State(dash): State<Dash>,
    signed: Signed,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let schedule = ops::load(dash.store.as_ref(), &name).await?;
    let chrome = Chrome::new(&signed, "schedules").done(done.done.as_deref());
    let page = detail(&dash, chrome, schedule, None, None, Vec::new()).await?;
    Ok(html(StatusCode::OK, &page))
}

/// The next runs of `cron` in `time_zone`, or why it cannot be read.
fn preview(cron: &str, time_zone: &str) -> Result<Vec<String>, String> {
    let spec = CronSpec::parse(cron, time_zone).map_err(|e| match e {
        longshore::StoreError::InvalidInput(message) => message,
        other => other.to_string(),
    })?;
    let mut at = Utc::now();
    let mut runs = Vec::new();
    while runs.len() < PREVIEW {
        match spec.next_after(at) {
            Some(next) => {
                runs.push(time(next));
                at = next;
            }
            None => break,
        }
    }
    Ok(runs)
}

/// `POST /schedules/{name}/edit`: previews the next runs, or saves; an
/// invalid value comes back on the page, and nothing is stored.
pub(crate) async fn edit(
    State(dash): State<Dash>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<EditForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let schedule = ops::load(dash.store.as_ref(), &name).await?;
    let chrome = Chrome::new(&signed, "schedules");
    let previewed = preview(form.cron.trim(), form.time_zone.trim());
    if form.action != "save" {
        let (runs, error) = match previewed {
            Ok(runs) => (runs, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        let status = if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let page = detail(&dash, chrome, schedule, Some(form), error, runs).await?;
        return Ok(html(status, &page));
    }
    let changes = match changes_of(&schedule, &form) {
        Ok(changes) => changes,
        Err(error) => {
            let page = detail(&dash, chrome, schedule, Some(form), Some(error), Vec::new()).await?;
            return Ok(html(StatusCode::BAD_REQUEST, &page));
        }
    };
    let saved = match ops::edited_schedule(&schedule, changes, dash.actors.as_ref(), Wording::Api) {
        Ok((def, _)) if def == schedule.def => Ok(()),
        Ok((def, next)) => ops::update(dash.store.as_ref(), &def, next)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => {
            tracing::info!(token = %signed.session.token.name, schedule = %name, "dashboard: schedule edited");
            Ok(
                Redirect::to(&format!("/schedules/{}?done=saved", urlencode(&name)))
                    .into_response(),
            )
        }
        Err(OpError::Store(e)) => Err(e.into()),
        Err(error) => {
            let page = detail(
                &dash,
                chrome,
                schedule,
                Some(form),
                Some(error.to_string()),
                Vec::new(),
            )
            .await?;
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
    }
}

/// The changes the form asks for: only the fields that differ, so that a
/// built-in schedule's form (cron and time zone only) passes its checks.
fn changes_of(schedule: &Schedule, form: &EditForm) -> Result<Changes, String> {
    let def = &schedule.def;
    let mut changes = Changes::default();
    let cron = form.cron.trim();
    if cron != def.cron {
        changes.cron = Some(cron.to_owned());
    }
    let zone = form.time_zone.trim();
    if zone != def.time_zone {
        changes.time_zone = Some(zone.to_owned());
    }
    if !schedule.builtin {
        let overlap = form.overlap.trim();
        if !overlap.is_empty() && overlap != def.overlap.as_str() {
            changes.overlap = Some(overlap.parse::<Overlap>()?);
        }
        let args: serde_json::Value = serde_json::from_str(form.args.trim())
            .map_err(|e| format!("the arguments are not valid JSON: {e}"))?;
        if !args.is_object() {
            return Err("the arguments must be a JSON object, e.g. {\"ms\": 100}".to_owned());
        }
        if args != def.args {
            changes.args = Some(args);
        }
    }
    Ok(changes)
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `POST /schedules/{name}/{run|pause|resume}`.
pub(crate) async fn act(
    State(dash): State<Dash>,
    signed: Signed,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let done = match action.as_str() {
        "run" => {
            ops::fire_now(dash.store.as_ref(), &name).await?;
            "ran"
        }
        "pause" => {
            dash.store.set_schedule_paused(&name, true).await?;
            "paused"
        }
        "resume" => {
            dash.store.set_schedule_paused(&name, false).await?;
            "resumed"
        }
        other => {
            return Err(Refusal::NotFound(format!(
                "No schedule action is called {other}."
            )));
        }
    };
    tracing::info!(token = %signed.session.token.name, schedule = %name, action = done, "dashboard: schedule changed");
    Ok(Redirect::to(&format!("/schedules?done={done}")).into_response())
}
