//! Workload F of `longshore bench`: what an operator's reads cost over a
//! long history. Fills the scratch database with finished and queued tasks
//! straight in SQL (far faster than running them; the count triggers see
//! these writes as any other), then times the API calls an operator makes
//! first — stats by state, actor and queue, the queue list, and the first
//! page of the task list under common filters — through a real HTTP server
//! on a loopback port, with a read token; then the dashboard's pages, each
//! with its weight, through a session that token opened.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use longshore::core::{StatsKey, TokenScope, TokenSecret};
use longshore::metrics::Metrics;
use longshore::{Store, TaskState};
use serde::Serialize;
use sqlx::{Connection, PgPool, SqliteConnection};

use longshore_server::settings::Settings;

/// Queues and actors the history is spread over.
const QUEUES: i64 = 8;
const ACTORS: i64 = 20;
/// One task in this many of the history failed; the rest succeeded.
const FAILED_ONE_IN: i64 = 50;
/// Rows per insert statement (progress is logged after each).
const CHUNK: i64 = 500_000;
/// Timed requests per call, after two untimed ones.
const REPEAT: usize = 20;
/// Single enqueues (one count change row each) left unfolded for the last
/// call.
const UNFOLDED: usize = 10_000;

/// The scratch database, for what goes past the [`Store`](longshore::Store):
/// workload F writes its history there, H reads PostgreSQL's counts.
pub(crate) enum Filler {
    Postgres(PgPool),
    Sqlite(PathBuf),
}

#[derive(Serialize)]
pub(crate) struct HistoryReport {
    pub(crate) finished: i64,
    pub(crate) queued: i64,
    pub(crate) fill_seconds: f64,
    pub(crate) calls: Vec<CallReport>,
}

#[derive(Serialize)]
pub(crate) struct CallReport {
    pub(crate) call: String,
    pub(crate) path: String,
    pub(crate) median_ms: f64,
    pub(crate) max_ms: f64,
    /// The answer's size, uncompressed.
    pub(crate) bytes: usize,
}

impl CallReport {
    fn new(call: &str, path: &str, timed: Timed) -> CallReport {
        CallReport {
            call: call.to_owned(),
            path: path.to_owned(),
            median_ms: timed.millis[timed.millis.len() / 2],
            max_ms: timed.millis.last().copied().unwrap_or(0.0),
            bytes: timed.bytes,
        }
    }
}

/// Dashboard pages timed with a session, by name; the detail of a task
/// with 1,000 log lines over three executions is timed after them.
const PAGES: &[(&str, &str)] = &[
    ("dashboard: overview", "/"),
    (
        "dashboard: tasks, first visit (successful left out)",
        "/tasks",
    ),
    ("dashboard: tasks, all", "/tasks?filtered=1"),
    ("dashboard: tasks, queued", "/tasks?filtered=1&state=queued"),
    (
        "dashboard: tasks, running (none)",
        "/tasks?filtered=1&state=running",
    ),
    ("dashboard: tasks, failed", "/tasks?filtered=1&state=failed"),
    (
        "dashboard: tasks, succeeded",
        "/tasks?filtered=1&state=succeeded",
    ),
    (
        "dashboard: tasks, one actor",
        "/tasks?filtered=1&actor=actor_7",
    ),
    (
        "dashboard: tasks, one actor's failed",
        "/tasks?filtered=1&actor=actor_7&state=failed",
    ),
    (
        "dashboard: tasks, one actor's succeeded",
        "/tasks?filtered=1&actor=actor_7&state=succeeded",
    ),
    ("dashboard: schedules", "/schedules"),
    ("dashboard: queues", "/queues"),
    ("dashboard: workers", "/workers"),
];

/// Log lines of the task whose detail page is timed, over this many
/// executions.
const LOG_LINES: i64 = 1_000;
const LOG_EXECUTIONS: i64 = 3;

/// The calls timed, by name.
const CALLS: &[(&str, &str)] = &[
    ("stats by state", "/api/v1/stats?by=state"),
    ("stats by actor", "/api/v1/stats?by=actor"),
    ("stats by queue", "/api/v1/stats?by=queue"),
    ("queues list", "/api/v1/queues"),
    ("first page", "/api/v1/tasks?limit=50"),
    ("first page, queued", "/api/v1/tasks?state=queued&limit=50"),
    ("first page, failed", "/api/v1/tasks?state=failed&limit=50"),
    (
        "first page, succeeded",
        "/api/v1/tasks?state=succeeded&limit=50",
    ),
    (
        "first page, scheduled (there are none)",
        "/api/v1/tasks?state=scheduled&limit=50",
    ),
    (
        "first page, one actor",
        "/api/v1/tasks?actor=actor_7&limit=50",
    ),
    (
        "first page, one actor's succeeded",
        "/api/v1/tasks?actor=actor_7&state=succeeded&limit=50",
    ),
    (
        "first page, one queue's queued",
        "/api/v1/tasks?queue=queue_3&state=queued&limit=50",
    ),
    (
        "first page, not successful",
        "/api/v1/tasks?exclude_successful=true&limit=50",
    ),
];

pub(crate) async fn run(
    store: &Arc<dyn Store>,
    filler: &Filler,
    finished: i64,
    queued: i64,
) -> anyhow::Result<HistoryReport> {
    if finished < 0 || queued < 0 {
        bail!("--history-finished and --history-queued cannot be negative");
    }
    let start = Instant::now();
    fill(filler, finished, queued).await?;
    a_day_of_throughput(filler).await?;
    let fill_seconds = start.elapsed().as_secs_f64();
    // What the maintenance leader does every pass.
    store.fold_counts().await?;
    // What the database holds, as the counts say (checked, not assumed).
    let mut held_finished = 0;
    let mut held_queued = 0;
    for row in store.stats(StatsKey::State).await? {
        if row.state.is_terminal() {
            held_finished += row.count;
        } else if row.state == TaskState::Queued {
            held_queued += row.count;
        }
    }
    if (held_finished, held_queued) != (finished, queued) {
        bail!(
            "F: the database holds {held_finished} finished and {held_queued} queued tasks, \
             not {finished} and {queued}"
        );
    }
    tracing::info!(seconds = fill_seconds, "F: history written; timing the API");

    let secret = TokenSecret::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .create_token("bench-history", TokenScope::Read, &secret.hash())
        .await?;
    let settings = Settings::default();
    let app = longshore_server::dashboard::router(store.clone(), &settings).merge(
        longshore_server::api::router(store.clone(), &settings, Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let bearer = format!("Bearer {}", secret.expose());
    let mut calls = Vec::new();
    for &(call, path) in CALLS {
        let timed = time_calls(&client, &base, ("authorization", &bearer), path).await?;
        calls.push(CallReport::new(call, path, timed));
    }

    let cookie = sign_in(&client, &base, &secret).await?;
    for &(call, path) in PAGES {
        let timed = time_calls(&client, &base, ("cookie", &cookie), path).await?;
        calls.push(CallReport::new(call, path, timed));
    }
    let logged = log_a_task(filler).await?;
    let path = format!("/tasks/{logged}");
    let timed = time_calls(&client, &base, ("cookie", &cookie), &path).await?;
    calls.push(CallReport::new(
        "dashboard: a task with 1,000 log lines over 3 executions",
        "/tasks/ID",
        timed,
    ));

    // The counts between two folds: each of these enqueues appends a
    // change row that the stats read sums until the leader folds it (no
    // leader runs here).
    let unfolded = UNFOLDED;
    for _ in 0..unfolded {
        store
            .enqueue(vec![longshore::NewTask::new(
                "bench",
                serde_json::json!({}),
            )])
            .await?;
    }
    let path = "/api/v1/stats?by=queue";
    let timed = time_calls(&client, &base, ("authorization", &bearer), path).await?;
    calls.push(CallReport::new(
        "stats by queue, 10,000 changes not folded",
        path,
        timed,
    ));
    server.abort();
    Ok(HistoryReport {
        finished,
        queued,
        fill_seconds,
        calls,
    })
}

/// What [`time_calls`] measured.
struct Timed {
    /// Milliseconds per request, sorted.
    millis: Vec<f64>,
    /// The last answer's size.
    bytes: usize,
}

/// `path` requested REPEAT times after two untimed requests, with the
/// header that authenticates it.
async fn time_calls(
    client: &reqwest::Client,
    base: &str,
    (name, value): (&str, &str),
    path: &str,
) -> anyhow::Result<Timed> {
    let mut millis = Vec::with_capacity(REPEAT);
    let mut bytes = 0;
    for i in 0..REPEAT + 2 {
        let at = Instant::now();
        let answer = client
            .get(format!("{base}{path}"))
            .header(name, value)
            .send()
            .await
            .with_context(|| format!("F: {path}"))?;
        let status = answer.status();
        bytes = answer.bytes().await?.len();
        if !status.is_success() {
            bail!("F: {path} answered {status}");
        }
        if i >= 2 {
            millis.push(at.elapsed().as_secs_f64() * 1e3);
        }
    }
    millis.sort_by(f64::total_cmp);
    Ok(Timed { millis, bytes })
}

/// Signs in to the dashboard with `secret`: the session's cookie.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    secret: &TokenSecret,
) -> anyhow::Result<String> {
    let answer = client
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}&next=/", secret.expose()))
        .send()
        .await
        .context("F: signing in")?;
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.split(';').next())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "F: signing in answered {} without a cookie",
                answer.status()
            )
        })
}

/// Gives one finished task of the history [`LOG_LINES`] log lines over
/// [`LOG_EXECUTIONS`] executions: its id.
async fn log_a_task(filler: &Filler) -> anyhow::Result<uuid::Uuid> {
    let id = match filler {
        Filler::Postgres(pool) => {
            let id: uuid::Uuid = sqlx::query_scalar(
                "SELECT id FROM longshore_tasks WHERE state = 'succeeded' ORDER BY id LIMIT 1",
            )
            .fetch_one(pool)
            .await?;
            sqlx::query(
                "INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
                 SELECT $1, 1 + i * $3 / $2, now(), 0, 'log line ' || i || ' of the task'
                 FROM generate_series(0, $2 - 1) AS i ORDER BY i",
            )
            .bind(id)
            .bind(LOG_LINES)
            .bind(LOG_EXECUTIONS)
            .execute(pool)
            .await?;
            id
        }
        Filler::Sqlite(path) => {
            let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .context("F: opening the SQLite file")?;
            let id: String = sqlx::query_scalar(
                "SELECT id FROM longshore_tasks WHERE state = 'succeeded' ORDER BY id LIMIT 1",
            )
            .fetch_one(&mut conn)
            .await?;
            sqlx::query(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?2)
                 INSERT INTO longshore_task_logs (task_id, execution, at, level, message)
                 SELECT ?1, 1 + i * ?3 / ?2, CAST(unixepoch('subsec') * 1000000 AS INTEGER), 0,
                        'log line ' || i || ' of the task'
                 FROM s",
            )
            .bind(&id)
            .bind(LOG_LINES)
            .bind(LOG_EXECUTIONS)
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            uuid::Uuid::parse_str(&id)?
        }
    };
    Ok(id)
}

/// Writes a full day of throughput per minute for every queue (as a busy
/// day's folds leave it), which the dashboard's overview charts: the
/// overview is timed reading the most it ever reads.
async fn a_day_of_throughput(filler: &Filler) -> anyhow::Result<()> {
    match filler {
        Filler::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO longshore_throughput (minute, queue, enqueued, succeeded, failed, waiting)
                 SELECT date_trunc('minute', now()) - m * interval '1 minute', 'queue_' || q,
                        100 + m % 37, 90 + m % 41, m % 3, 1000 + m
                 FROM generate_series(1, 1440) AS m, generate_series(0, $1 - 1) AS q
                 ON CONFLICT DO NOTHING",
            )
            .bind(QUEUES)
            .execute(pool)
            .await
            .context("F: writing a day of throughput")?;
        }
        Filler::Sqlite(path) => {
            let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .context("F: opening the SQLite file")?;
            sqlx::query(
                "WITH RECURSIVE m(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM m WHERE i < 1440),
                               q(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM q WHERE j + 1 < ?1)
                 INSERT OR IGNORE INTO longshore_throughput
                     (minute, queue, enqueued, succeeded, failed, waiting)
                 SELECT (CAST(unixepoch() AS INTEGER) / 60 * 60 - i * 60) * 1000000, 'queue_' || j,
                        100 + i % 37, 90 + i % 41, i % 3, 1000 + i
                 FROM m, q",
            )
            .bind(QUEUES)
            .execute(&mut conn)
            .await
            .context("F: writing a day of throughput")?;
            conn.close().await?;
        }
    }
    Ok(())
}

/// Writes `finished` finished tasks, then `queued` queued ones, created a
/// millisecond apart up to now, with time-ordered (version 7) ids as the
/// store makes them, spread over the queues and actors.
async fn fill(filler: &Filler, finished: i64, queued: i64) -> anyhow::Result<()> {
    let total = finished + queued;
    let first_ms = chrono::Utc::now().timestamp_millis() - total - 1000;
    // The same arguments, in the same places, for either engine's query.
    macro_rules! bind_fill {
        ($query:expr, $done:expr, $end:expr) => {
            $query
                .bind($done)
                .bind($end - 1)
                .bind(finished)
                .bind(first_ms)
                .bind(QUEUES)
                .bind(ACTORS)
                .bind(FAILED_ONE_IN)
        };
    }
    let mut done = 0;
    while done < total {
        let end = (done + CHUNK).min(total);
        match filler {
            Filler::Postgres(pool) => {
                bind_fill!(sqlx::query(PG_FILL), done, end)
                    .execute(pool)
                    .await
                    .context("F: filling PostgreSQL")?;
            }
            Filler::Sqlite(path) => {
                let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .context("F: opening the SQLite file")?;
                bind_fill!(sqlx::query(SQLITE_FILL), done, end)
                    .execute(&mut conn)
                    .await
                    .context("F: filling SQLite")?;
                conn.close().await?;
            }
        }
        done = end;
        tracing::info!(written = done, of = total, "F: filling");
    }
    if let Filler::Postgres(pool) = filler {
        // As autovacuum would have by then: visibility map and statistics.
        sqlx::query("VACUUM ANALYZE longshore_tasks")
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Tasks `$1..=$2` of the sequence: those below `$3` finished (one in `$7`
/// failed), the rest queued; task `i` created at `$4 + i` ms, in queue
/// `i % $5` and of actor `i % $6`.
const PG_FILL: &str = "
INSERT INTO longshore_tasks
    (id, queue, actor, args, state, run_at, attempt, max_attempts,
     created_at, started_at, finished_at, modified_at)
SELECT
    (lpad(to_hex($4 + i), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
    'queue_' || (i % $5), 'actor_' || (i % $6), '{}'::jsonb,
    CASE WHEN i >= $3 THEN 'queued' WHEN i % $7 = 0 THEN 'failed' ELSE 'succeeded' END
        ::longshore_task_state,
    at, CASE WHEN i >= $3 THEN 0 ELSE 1 END, 3,
    at, CASE WHEN i < $3 THEN at END, CASE WHEN i < $3 THEN at END, at
FROM (
    SELECT i, md5(i::text) AS h, to_timestamp(($4 + i) / 1000.0) AS at
    FROM generate_series($1::bigint, $2::bigint) AS i
) AS s";

/// [`PG_FILL`] in SQLite's terms (times in µs, ids as hyphenated text).
const SQLITE_FILL: &str = "
WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i < ?2)
INSERT INTO longshore_tasks
    (id, queue, actor, args, state, run_at, attempt, max_attempts,
     created_at, started_at, finished_at, modified_at)
SELECT
    printf('%08x-%04x-7%03x-8%03x-%012x', (?4 + i) / 65536, (?4 + i) % 65536,
           abs(random()) % 4096, abs(random()) % 4096, abs(random()) % 281474976710656),
    'queue_' || (i % ?5), 'actor_' || (i % ?6), '{}',
    CASE WHEN i >= ?3 THEN 'queued' WHEN i % ?7 = 0 THEN 'failed' ELSE 'succeeded' END,
    (?4 + i) * 1000, CASE WHEN i >= ?3 THEN 0 ELSE 1 END, 3,
    (?4 + i) * 1000, CASE WHEN i < ?3 THEN (?4 + i) * 1000 END,
    CASE WHEN i < ?3 THEN (?4 + i) * 1000 END, (?4 + i) * 1000
FROM s";
